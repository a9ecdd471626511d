//! `phoneprov migrate-db --to URL`: an install's database moved to another, empty one, every
//! table (audit included), checked by row counts and a content digest; refused into a database
//! that holds rows. On the SQLite run it moves the file into another file; on the PostgreSQL
//! run it moves PostgreSQL into SQLite and that back into a new PostgreSQL database — and a
//! server on each copy serves the same bytes.

mod common;

use std::time::Duration;

use common::*;

async fn fetched(srv: &Server, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (mac, ua, file) in [
        (T54W_MAC, T54W_UA, format!("{T54W_MAC}.cfg")),
        (VVX_MAC, VVX_UA, format!("{VVX_MAC}-lines.cfg")),
    ] {
        let (st, body) = get(&srv.url(&format!("/p/{key}/{file}")), ua).await;
        assert_eq!(st, 200, "{mac} {file}: {body}");
        out.push(body);
    }
    out
}

/// `migrate-db` from `env`'s database into `to`: the tally it printed.
fn migrate(env: &Env, db: Option<&str>, to: &str) -> serde_json::Value {
    let mut args = vec![];
    if let Some(d) = db {
        args.extend(["--database-url", d]);
    }
    args.extend(["migrate-db", "--to", to]);
    env.json(&args)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_install_moves_between_databases_whole_and_checked() {
    let env = Env::new();
    let key = env.seed();
    env.ok(&[
        "setting",
        "set",
        "--site",
        "valleywide",
        "lang.gui",
        "Deutsch",
    ]);
    // Audit and last-seen rows, written by a server.
    let srv = env.start();
    let before = fetched(&srv, &key).await;
    eventually(Duration::from_secs(10), || async {
        let a = env.json(&["audit", "--limit", "5"]);
        (!a.as_array()?.is_empty()).then_some(())
    })
    .await
    .expect("audit rows written");
    drop(srv);

    let work = tempfile::tempdir().unwrap();
    let file = format!("sqlite:{}", work.path().join("copy.sqlite").display());
    let t1 = migrate(&env, None, &file);
    let rows = &t1["rows"];
    assert_eq!(rows["sites"], 1, "{t1}");
    assert_eq!(rows["phones"], 2, "{t1}");
    assert!(rows["fetch_audit"].as_i64().unwrap() >= 1, "{t1}");
    assert!(rows["server_secrets"].as_i64().unwrap() >= 1, "{t1}");
    assert_eq!(t1["sha256"].as_str().unwrap().len(), 64);

    // Refused into a database that holds rows; nothing changes there.
    let o = env.run(&["migrate-db", "--to", &file]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not empty"), "{err}");
    let again = migrate(
        &env,
        Some(&file),
        &format!("sqlite:{}", work.path().join("c2.sqlite").display()),
    );
    assert_eq!(
        again["sha256"], t1["sha256"],
        "the refused run changed the copy"
    );

    // The other way: the file into a new PostgreSQL database, when the suite has a server.
    let mut copies = vec![file.clone()];
    if let Some(base) = postgres() {
        let pg = fresh_postgres_db(&base);
        let t2 = migrate(&env, Some(&file), &pg);
        assert_eq!(t2, t1, "SQLite to PostgreSQL keeps every row and value");
        copies.push(pg);
    }

    // A server on each copy serves the same bytes as the original did.
    for db in copies {
        let other = Env::new();
        other.set_var("PHONEPROV_DATABASE_URL", &db);
        let srv = other.start();
        assert_eq!(fetched(&srv, &key).await, before, "served from {db}");
        // New rows go on after the copied ones (PostgreSQL identities were moved on).
        other.ok(&["site", "add", "annex", "--sip-server", "pbx.example.com"]);
        other.ok(&["setting", "set", "--site", "annex", "lang.gui", "English"]);
    }
}
