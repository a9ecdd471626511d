//! CSV import and export: every validation rule, real-world file shapes, all-or-nothing
//! (including a killed import), idempotence, dry run, round trip, and the API.

mod common;

use std::time::Duration;

use common::*;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn write(env: &Env, name: &str, text: &str) -> String {
    let p = env.data_dir().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Reads the database directly: (phones, lines, change-log length, sum of updated_at).
async fn db_state(env: &Env) -> (i64, i64, i64, i64) {
    let mut c = common::db(env).await;
    let one = |q: &'static str| sqlx::query_scalar::<_, i64>(q);
    let phones = one("SELECT count(*) FROM phones")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let lines = one("SELECT count(*) FROM lines")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let changes = one("SELECT count(*) FROM changes")
        .fetch_one(&mut c)
        .await
        .unwrap();
    // A sum of BIGINTs is NUMERIC in PostgreSQL: cast back to what both read as i64.
    let touched = one("SELECT CAST(coalesce(sum(updated_at), 0) AS BIGINT) FROM phones")
        .fetch_one(&mut c)
        .await
        .unwrap();
    if !common::on_postgres() {
        let ok: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(ok, "ok");
    }
    (phones, lines, changes, touched)
}

fn report(env: &Env, args: &[&str]) -> (i32, serde_json::Value) {
    let mut a = vec!["--json", "import"];
    a.extend_from_slice(args);
    let o = env.run(&a);
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&o.stderr)));
    (o.status.code().unwrap_or(-1), v)
}

fn errors(v: &serde_json::Value) -> Vec<(u64, String, String)> {
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["column"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn fixtures_idempotence_and_dry_run() {
    let env = Env::new();
    env.ok(&[
        "site",
        "add",
        "valleywide",
        "--sip-server",
        "pbx.example.com",
    ]);

    // The broken file: one error per row after the first, all reported, nothing changed.
    let before = db_state(&env).await;
    let (code, v) = report(&env, &[&fixture("phones-bad.csv")]);
    assert_eq!(code, 2);
    let e = errors(&v);
    assert_eq!(e.len(), 4, "{e:?}");
    assert_eq!((e[0].0, e[0].1.as_str()), (3, "mac"));
    assert!(e[0].2.contains("'G' is not a hex digit"));
    assert_eq!((e[1].0, e[1].1.as_str()), (4, "mac"));
    assert!(e[1].2.contains("also on line 2"), "{}", e[1].2);
    assert_eq!((e[2].0, e[2].1.as_str()), (5, "model"));
    assert!(e[2].2.contains("unknown model 'T99X'"));
    assert_eq!((e[3].0, e[3].1.as_str()), (6, "site"));
    assert!(e[3].2.contains("unknown site 'nosuchsite'"));
    assert_eq!(v["applied"], false);
    assert_eq!(
        db_state(&env).await,
        before,
        "a refused import changed something"
    );

    // Dry run of the good file: the plan, nothing written.
    let (code, v) = report(&env, &[&fixture("phones-sample.csv"), "--dry-run"]);
    assert_eq!(code, 0);
    assert_eq!(
        (
            v["created"].as_u64(),
            v["updated"].as_u64(),
            v["unchanged"].as_u64()
        ),
        (Some(4), Some(0), Some(0))
    );
    assert_eq!(
        (v["dry_run"].as_bool(), v["applied"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(db_state(&env).await, before);

    // Import, then the same again: 0 created, 0 updated, 4 unchanged, not a byte touched.
    let (code, v) = report(&env, &[&fixture("phones-sample.csv")]);
    assert_eq!(
        (code, v["created"].as_u64(), v["applied"].as_bool()),
        (0, Some(4), Some(true))
    );
    let after = db_state(&env).await;
    assert_eq!((after.0, after.1), (4, 4));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (code, v) = report(&env, &[&fixture("phones-sample.csv")]);
    assert_eq!(
        (
            code,
            v["created"].as_u64(),
            v["updated"].as_u64(),
            v["unchanged"].as_u64()
        ),
        (0, Some(0), Some(0), Some(4))
    );
    assert_eq!(
        db_state(&env).await,
        after,
        "an idempotent re-import wrote something"
    );

    // The imported phones are served like any other.
    let cfg = env.ok(&["render", "80-5e-c0-11-22-02", "805ec0112202.cfg"]);
    assert_eq!(
        yealink_value(&cfg, "account.1.password"),
        Some("Rt55-ab9c-Qq1z")
    );
    let lines = env.ok(&["render", "0004f2a1b2c3", "0004f2a1b2c3-lines.cfg"]);
    assert!(lines.contains("reg.1.address=\"204@"));

    // A changed row is an update; the file changes with it.
    let changed = std::fs::read_to_string(fixture("phones-sample.csv"))
        .unwrap()
        .replace("Rt55-ab9c-Qq1z", "New-Pw-202");
    let p = write(&env, "changed.csv", &changed);
    let (_, v) = report(&env, &[&p]);
    assert_eq!(
        (
            v["created"].as_u64(),
            v["updated"].as_u64(),
            v["unchanged"].as_u64()
        ),
        (Some(0), Some(1), Some(3))
    );
    let cfg = env.ok(&["render", "805ec0112202", "805ec0112202.cfg"]);
    assert_eq!(
        yealink_value(&cfg, "account.1.password"),
        Some("New-Pw-202")
    );
    // Passwords never appear in reports.
    let text = env.ok(&["import", &p]);
    assert!(!text.contains("New-Pw-202"));
}

#[tokio::test]
async fn every_rule_reported_at_once() {
    let env = Env::new();
    env.ok(&["site", "add", "a", "--sip-server", "pbx"]);
    env.ok(&["site", "add", "b", "--sip-server", "pbx"]);
    env.ok(&[
        "phone",
        "add",
        "805ec0000099",
        "--model",
        "T54W",
        "--site",
        "b",
    ]);
    let csv = "\
mac,model,site,line1_user,line1_password,line17_user,line17_password,line3_user,line3_password
805ec0000001,T54W,a,201,pw1,,,,
80-5E-C0-00-00-01,T54W,a,202,pw2,,,,
805ec0000002,T54W,a,203,pw3,217,pw17,,
805ec0000003,T31G,a,204,pw4,,,303,pw
805ec0000004,T54W,a,205,,,,,
805ec0000099,T54W,a,206,pw6,,,,
805ec0000005,,a,207,pw7,,,,
805ec0000006,T54W,,208,pw8,,,,
805ec0000007,T54W,a,,pw9,,,,
";
    let p = write(&env, "rules.csv", csv);
    let before = db_state(&env).await;
    let (code, v) = report(&env, &[&p]);
    assert_eq!(code, 2);
    let e = errors(&v);
    let want: &[(u64, &str, &str)] = &[
        (3, "mac", "is also on line 2"),
        (4, "line17_user", "line 17 is beyond a T54W's 16 lines"),
        (5, "line3_user", "line 3 is beyond a T31G's 2 lines"),
        (6, "line1_password", "missing password for new line 1"),
        (7, "site", "enrolled in site 'b'; pass --move"),
        (8, "model", "a model is required for a new phone"),
        (9, "site", "no site"),
        (10, "line1_user", "line1_user is required"),
    ];
    assert_eq!(e.len(), want.len(), "{e:#?}");
    for ((line, col, msg), (wl, wc, wm)) in e.iter().zip(want) {
        assert_eq!((*line, col.as_str()), (*wl, *wc), "{msg}");
        assert!(msg.contains(wm), "line {line}: '{msg}' lacks '{wm}'");
    }
    assert_eq!(db_state(&env).await, before);

    // An unknown column is an error naming it, not silently dropped data.
    let p = write(
        &env,
        "typo.csv",
        "mac,model,site,line1_pasword\n805ec0000001,T54W,a,x\n",
    );
    let (code, v) = report(&env, &[&p]);
    assert_eq!(code, 2);
    let e = errors(&v);
    assert_eq!((e[0].0, e[0].1.as_str()), (1, "line1_pasword"));
    assert!(e[0].2.contains("unknown column 'line1_pasword'"));

    // --site for the file; --move to move the enrolled phone.
    let p = write(
        &env,
        "move.csv",
        "mac,model\n805ec0000099,T54W\n805ec0000010,T46U\n",
    );
    let (_, v) = report(&env, &[&p, "--site", "a"]);
    assert!(errors(&v)[0].2.contains("pass --move"));
    let (code, v) = report(&env, &[&p, "--site", "a", "--move"]);
    assert_eq!(
        (code, v["created"].as_u64(), v["updated"].as_u64()),
        (0, Some(1), Some(1))
    );
    assert_eq!(env.json(&["phone", "show", "805ec0000099"])["site"], "a");
}

#[tokio::test]
async fn real_world_files() {
    let env = Env::new();
    env.ok(&["site", "add", "valleywide", "--sip-server", "pbx"]);
    // BOM, CRLF, ';' delimiter, quoted fields with the delimiter and quotes, spaces around
    // fields, mixed-case header in another order, every MAC form, blank trailing lines.
    let csv = "\u{feff}Label ; MAC ;Model;SITE;LINE1_USER;line1_password;line1_display_name\r\n\
\"Front; Desk\" ; 80:5E:C0:11:22:01 ; T54W ;valleywide;201;\"pw\"\"quoted\";\"Smith, Jane\"\r\n\
Back;80-5e-c0-11-22-02;t54w;valleywide;202;pw2;Back\r\n\
Dotted;805e.c011.2203;SIP-T46U;valleywide;203;pw3;\r\n\
Poly;0004F2A1B2C3;vvx450;valleywide;204;pw4;Conf\r\n\
\r\n\
;;;;;;\r\n";
    let p = write(&env, "excel.csv", csv);
    let (code, v) = report(&env, &[&p]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["created"].as_u64(), Some(4));
    let show = env.json(&["phone", "show", "805ec0112201"]);
    assert_eq!(show["label"], "Front; Desk");
    assert_eq!(show["lines"][0]["display_name"], "Smith, Jane");
    let cfg = env.ok(&["render", "805ec0112201", "805ec0112201.cfg"]);
    assert_eq!(
        yealink_value(&cfg, "account.1.password"),
        Some("pw\"quoted")
    );
    assert_eq!(
        env.json(&["phone", "show", "805ec0112203"])["model"],
        "T46U"
    );
    assert_eq!(
        env.json(&["phone", "show", "0004f2a1b2c3"])["model"],
        "VVX_450"
    );

    // A row with the wrong number of fields, and a row that is not UTF-8.
    let mut bad = b"mac,model,site\n805ec0000001,T54W\n805ec0000002,T54W,valleywide\n".to_vec();
    bad.extend_from_slice(b"805ec0000003,T5\xff4W,valleywide\n");
    let p = env.data_dir().join("bad.csv");
    std::fs::write(&p, &bad).unwrap();
    let (code, v) = report(&env, &[p.to_str().unwrap()]);
    assert_eq!(code, 2);
    let e = errors(&v);
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(e[0].0, 2);
    assert!(e[0].2.contains("2 fields; the header has 3"));
    assert_eq!(e[1].0, 4);
    assert!(e[1].2.contains("UTF-8"));
}

#[tokio::test]
async fn export_then_import_is_a_no_op() {
    let env = Env::new();
    env.ok(&["site", "add", "valleywide", "--sip-server", "pbx"]);
    env.ok(&["import", &fixture("phones-sample.csv")]);
    env.ok(&[
        "line",
        "set",
        "805ec0112201",
        "2",
        "--user",
        "299",
        "--auth-user",
        "a299",
        "--password",
        "Two-Pw",
        "--label",
        "Second",
    ]);
    let before = db_state(&env).await;

    let with = env.ok(&["export", "--with-secrets"]);
    assert!(with.contains("Two-Pw"));
    let p = write(&env, "with.csv", &with);
    let (code, v) = report(&env, &[&p]);
    assert_eq!(
        (
            code,
            v["unchanged"].as_u64(),
            v["created"].as_u64(),
            v["updated"].as_u64()
        ),
        (0, Some(4), Some(0), Some(0))
    );

    let without = env.ok(&["export"]);
    assert!(
        !without.contains("Two-Pw") && !without.contains("Xk29-pq8s-Lm2v"),
        "no secrets without --with-secrets"
    );
    let p = write(&env, "without.csv", &without);
    let (_, v) = report(&env, &[&p]);
    assert_eq!(
        v["unchanged"].as_u64(),
        Some(4),
        "blank passwords keep the stored ones"
    );
    assert_eq!(db_state(&env).await, before);
    let cfg = env.ok(&["render", "805ec0112201", "805ec0112201.cfg"]);
    assert_eq!(yealink_value(&cfg, "account.2.password"), Some("Two-Pw"));

    let site_only = env.ok(&["export", "--site", "valleywide"]);
    assert_eq!(site_only.lines().count(), 5);
    assert!(
        env.refused(&["export", "--site", "nosuch"])
            .contains("no site named 'nosuch'")
    );
}

#[tokio::test]
async fn import_over_the_api() {
    let env = Env::new();
    env.ok(&["site", "add", "valleywide", "--sip-server", "pbx"]);
    let srv = env.start();
    let token = env.admin_token();
    let c = client();
    let body = std::fs::read(fixture("phones-sample.csv")).unwrap();
    let url = srv.url("/api/v1/import");
    let r = c
        .post(format!("{url}?dry_run=true"))
        .bearer_auth(&token)
        .header("Content-Type", "text/csv")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (v["created"].as_u64(), v["applied"].as_bool()),
        (Some(4), Some(false))
    );
    let r = c
        .post(&url)
        .bearer_auth(&token)
        .body(body)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (v["created"].as_u64(), v["applied"].as_bool()),
        (Some(4), Some(true))
    );
    let bad = std::fs::read(fixture("phones-bad.csv")).unwrap();
    let r = c
        .post(&url)
        .bearer_auth(&token)
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["errors"].as_array().unwrap().len(), 4);
    assert_eq!(
        c.post(&url).body("mac\n").send().await.unwrap().status(),
        401
    );
    // Imported phones are served by the running server.
    let key = env.site_key("valleywide");
    eventually(Duration::from_secs(3), || async {
        let (st, body) = get(&srv.url(&format!("/p/{key}/805ec0112203.cfg")), "x").await;
        (st == 200 && body.contains("Hh71-zz3k-Pp0a")).then_some(())
    })
    .await
    .expect("imported phone served");
    let csv = c
        .get(srv.url("/api/v1/export"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("mac,model,site,label,sn,line1_user"));
}

/// 100,000 rows, in the site's CSV shape.
fn big_csv(n: usize) -> String {
    let mut s = String::from("mac,model,site,label,line1_user,line1_password,line1_display_name\n");
    for i in 0..n {
        s.push_str(&format!(
            "805ec1{i:06x},T54W,big,Desk {i},{u},pw-{i:08}-x,User {i}\n",
            u = 10000 + i
        ));
    }
    s
}

#[tokio::test]
async fn a_killed_import_leaves_the_database_as_before_or_as_after() {
    let env = Env::new();
    env.ok(&["site", "add", "big", "--sip-server", "pbx"]);
    let p = write(&env, "big.csv", &big_csv(100_000));
    let empty = db_state(&env).await;
    let mut outcomes = Vec::new();
    // Kill points measured from the moment validation ends and writing begins.
    for delay_ms in [0u64, 50, 150, 300, 600, 1000, 1600, 2500] {
        use std::io::BufRead;
        let mut child = std::process::Command::new(bin())
            .envs(env.db_env())
            .env("PHONEPROV_DATA_DIR", env.data_dir())
            .env("PHONEPROV_PUBLIC_URL", PUBLIC_URL)
            .env("PHONEPROV_LOG", "info")
            .args(["import", &p])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("import validated; writing") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("validation finished");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let s = db_state(&env).await;
        assert!(
            s.0 == 0 || s.0 == 100_000,
            "after a kill {delay_ms} ms into writing: {} phones",
            s.0
        );
        assert_eq!(s.0, s.1, "phones and lines land together");
        outcomes.push((delay_ms, finished, s.0));
        if s.0 == 100_000 {
            break;
        }
        assert_eq!(s, empty, "a killed import left something behind");
    }
    eprintln!("kill outcomes (ms, finished on its own, phones): {outcomes:?}");
    // Whatever happened, a full run ends with everything, once.
    env.ok(&["import", &p]);
    let s = db_state(&env).await;
    assert_eq!((s.0, s.1), (100_000, 100_000));
}

/// Line numbers are the file's physical lines, whatever its line endings (issue: Excel's CRLF
/// reported one too low, and an error on the first row hid every later one).
#[test]
fn errors_name_the_lines_an_editor_shows() {
    let env = Env::new();
    env.seed();
    let lines_of = |name: &str, text: &[u8]| -> Vec<u64> {
        let p = env.data_dir().join(name);
        std::fs::write(&p, text).unwrap();
        let o = env.run(&[
            "--json",
            "import",
            p.to_str().unwrap(),
            "--site",
            "valleywide",
        ]);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{name}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["line"].as_u64().unwrap())
            .collect()
    };
    let rows = ["mac,model", "ZZZZ,T54W", "YYYY,T54W", "805ec01122ab,T99"];
    for (name, sep) in [("lf.csv", "\n"), ("crlf.csv", "\r\n"), ("cr.csv", "\r")] {
        let text = rows.join(sep) + sep;
        assert_eq!(lines_of(name, text.as_bytes()), [2, 3, 4], "{name}");
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend(text.as_bytes());
        assert_eq!(
            lines_of(&format!("bom-{name}"), &bom),
            [2, 3, 4],
            "BOM {name}"
        );
        // Blank lines count as lines.
        let blank = format!("mac,model{sep}{sep}ZZZZ,T54W{sep}{sep}{sep}805ec01122ab,T99{sep}");
        assert_eq!(
            lines_of(&format!("blank-{name}"), blank.as_bytes()),
            [3, 6],
            "blank {name}"
        );
        // A quoted field spanning lines (a label may not hold a line break: refused on the line
        // its row starts) and the next row, on the line after it ends.
        let quoted =
            format!("mac,model,label{sep}805ec0112201,T54W,\"two{sep}lines\"{sep}ZZZZ,T54W,x{sep}");
        assert_eq!(
            lines_of(&format!("quoted-{name}"), quoted.as_bytes()),
            [2, 4],
            "quoted {name}"
        );
    }
    // A header error is only a header error.
    let err = lines_of("head.csv", b"mac,model,bogus\r\n805ec0112201,T54W,1\r\n");
    assert_eq!(err, [1]);
}

/// Model names with the brand, as spreadsheets and PBXes write them, everywhere.
#[test]
fn model_names_with_the_brand() {
    let env = Env::new();
    env.seed();
    let p = env.data_dir().join("brands.csv");
    std::fs::write(&p, "mac,model,site\n805ec0000301,Yealink T46U,valleywide\n0004f2000302,Polycom VVX 450,valleywide\n805ec0000303,Yealink SIP-T54W,valleywide\n").unwrap();
    env.ok(&["import", p.to_str().unwrap()]);
    assert_eq!(
        env.json(&["phone", "show", "0004f2000302"])["model"],
        "VVX_450"
    );
    env.ok(&[
        "phone",
        "add",
        "805ec0000304",
        "--model",
        "Yealink T31G",
        "--site",
        "valleywide",
    ]);
    let err = env.refused(&[
        "phone",
        "add",
        "805ec0000305",
        "--model",
        "Yealink T99",
        "--site",
        "valleywide",
    ]);
    assert!(err.contains("T99"), "{err}");
}

/// The library reports both passes: rows validated (every 1,000) and phones written of those
/// that change, ending at the total.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reports_validation_and_writing_progress() {
    use phoneprov::import::{Input, Options, Progress, Step};
    let env = Env::new();
    env.seed();
    let mut csv = String::from("mac,model,site,line1_user,line1_password\n");
    for i in 0..4500 {
        csv.push_str(&format!(
            "805ecb{i:06x},T54W,valleywide,{},pw-{i:05}-x\n",
            1000 + i
        ));
    }
    let path = env.data_dir().join("big.csv");
    std::fs::write(&path, csv).unwrap();
    let store = phoneprov::store::Store::connect(
        &phoneprov::store::Location::parse(&env.db_url()).unwrap(),
        Some(env.data_dir()),
    )
    .await
    .unwrap();
    let m = phoneprov::manage::Manager::open(store.clone(), "http://prov.test", env.data_dir())
        .unwrap();
    let steps = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = steps.clone();
    let progress = Progress::new(move |s| s2.lock().unwrap().push(s));
    let r = phoneprov::import::import(&m, &Input::Path(path), &Options::default(), &progress)
        .await
        .unwrap();
    assert_eq!(r.created, 4500);
    let steps = steps.lock().unwrap().clone();
    let validated: Vec<u64> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Validated(n) => Some(*n),
            _ => None,
        })
        .collect();
    assert_eq!(validated, [1000, 2000, 3000, 4000], "{steps:?}");
    let written: Vec<(u64, u64)> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Written { done, total } => Some((*done, *total)),
            _ => None,
        })
        .collect();
    assert_eq!(written.last(), Some(&(4500, 4500)), "{steps:?}");
    assert!(written.len() >= 3, "batches of 2,000: {written:?}");
    store.close().await;
}
