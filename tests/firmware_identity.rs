//! Firmware identity by content: bytes the policy refused stay refused under any name and any
//! declared version, at every entry point (store, check, API upload, assignment, rendering,
//! serving a stored image or a static file over HTTP and TFTP, `recover`, site recovery, policy
//! reload); `sha1` deny rules; known builds by size and digest, shipped and the operator's.

mod common;

use std::time::Duration;

use common::images::*;
use common::*;

/// The bricking build's published name.
const BRICK: &str = "T54W(T57W,T53W,T53,T53C,T54,T57)-96.86.0.20(20211130).rom";

/// A stored image forced into the database, as a store of an older build (or a bug) might have
/// left it: the verbs must judge it by its bytes all the same.
async fn force_stored(env: &Env, bytes: &[u8], file_name: &str, version: &str) {
    let dir = env.data_dir().join("firmware");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{}.img", sha(bytes))), bytes).unwrap();
    let mut c = common::db(env).await;
    sqlx::query("INSERT INTO firmware (sha256, vendor, version, models, size, sha1, file_name, added_at) VALUES ($1, 'yealink', $2, 'T54W T57W T53W T53', $3, $4, $5, 0)")
        .bind(sha(bytes))
        .bind(version)
        .bind(bytes.len() as i64)
        .bind(sha1(bytes))
        .bind(file_name)
        .execute(&mut c)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_renamed_and_redeclared_bricking_build_is_refused_everywhere() {
    let env = Env::new();
    let key = env.seed();
    let up = tempfile::tempdir().unwrap();
    let brick = blob(250_000, 11);

    // 1. Stored under its published name: refused, and its digest named.
    let err = env.refused(&[
        "firmware",
        "add",
        put(up.path(), BRICK, &brick).to_str().unwrap(),
    ]);
    assert!(err.contains("96.86.0.20 is denied"), "{err}");
    assert!(err.contains(&sha(&brick)), "names the sha256: {err}");

    // 2. The same bytes renamed and declared as the good build: refused, with both identities.
    let renamed = put(up.path(), "renamed-good.rom", &brick);
    let err = env.refused(&[
        "firmware",
        "add",
        renamed.to_str().unwrap(),
        "--version",
        "96.86.0.45",
        "--models",
        "T54W",
    ]);
    assert!(
        err.contains(&format!("refused as {BRICK}")) && err.contains("version 96.86.0.20"),
        "remembered by content: {err}"
    );
    assert!(
        err.contains("these bytes are not Yealink's 96.86.0.45")
            && err.contains("0975d447c78795c58d9bd2c2ed728f4f29415de8")
            && err.contains(&sha1(&brick)),
        "the catalogue names both digests: {err}"
    );
    // Declared as a build the catalogue does not know: still refused by the remembered digest.
    for args in [
        vec!["--version", "96.86.0.71", "--models", "T54W"],
        vec!["--version", "96.86.0.71"],
        vec![],
        vec!["--version", "108.86.0.90", "--models", "T46U"],
    ] {
        let mut a = vec!["firmware", "add", renamed.to_str().unwrap()];
        a.extend(args.iter().copied());
        let err = env.refused(&a);
        assert!(err.contains("refused as"), "{args:?}: {err}");
        let mut c = vec!["firmware", "check", renamed.to_str().unwrap()];
        c.extend(args.iter().copied());
        let o = env.run(&c);
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {out}");
        assert!(
            out.contains("DENIED") && out.contains("refused as"),
            "{out}"
        );
    }
    assert!(
        env.json(&["firmware", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );

    // 3. The admin API's upload, under yet another name.
    let srv = env.start();
    let r = client()
        .post(srv.url("/api/v1/firmware"))
        .query(&[
            ("name", "T54W-96.86.0.72.rom"),
            ("version", "96.86.0.72"),
            ("models", "T54W"),
        ])
        .bearer_auth(env.admin_token())
        .body(brick.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(body.contains("refused as"), "{body}");

    // 4. Static files: the bytes under any name are never served, by HTTP or TFTP.
    let files = env.data_dir().join("files");
    std::fs::create_dir_all(&files).unwrap();
    for name in ["renamed-good.rom", "ringtone.wav", "notes.txt"] {
        std::fs::write(files.join(name), &brick).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    for name in ["renamed-good.rom", "ringtone.wav", "notes.txt"] {
        let (st, _) = get(&srv.url(&format!("/p/{key}/{name}")), T54W_UA).await;
        assert_eq!(st, 404, "HTTP served {name}");
        assert!(
            !tftp_get(&srv, &format!("p/{key}/{name}"), &out.path().join("x")),
            "TFTP served {name}"
        );
    }
    drop(srv);

    // 5. A stored record of the same bytes (forced in): assignment, site recovery and serving
    // refuse it; no rendered file names it.
    force_stored(&env, &brick, "T54W-96.86.0.73.rom", "96.86.0.73").await;
    let list = env.json(&["firmware", "list"]);
    assert_eq!(list[0]["verdict"]["refusals"].as_array().unwrap().len(), 1);
    assert!(
        list[0]["verdict"]["refusals"][0]
            .as_str()
            .unwrap()
            .contains("refused as"),
        "{list}"
    );
    let err = env.refused(&["firmware", "assign", "96.86.0.73", "--site", "valleywide"]);
    assert!(err.contains("refused as"), "{err}");
    let err = env.refused(&["site", "update", "valleywide", "--recovery", "96.86.0.73"]);
    assert!(err.contains("refused as"), "{err}");
    let cfg = env.ok(&["render", T54W_MAC, &format!("{T54W_MAC}.cfg")]);
    assert!(!cfg.contains("static.firmware.url"), "{cfg}");
    let srv = env.start();
    let (st, _) = get(&srv.url(&format!("/p/{key}/T54W-96.86.0.73.rom")), T54W_UA).await;
    assert_eq!(st, 404);
    assert!(!tftp_get(
        &srv,
        &format!("p/{key}/T54W-96.86.0.73.rom"),
        &out.path().join("y")
    ));
    drop(srv);

    // 6. `recover` with the renamed bytes and a good version: refused before listening.
    let err = env.refused(&[
        "recover",
        "--image",
        renamed.to_str().unwrap(),
        "--version",
        "96.86.0.71",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(
        err.contains("refusing to recover") && err.contains("refused as"),
        "{err}"
    );
}

#[tokio::test]
async fn sha1_rules_and_known_builds_judge_bytes_not_names() {
    let env = Env::new();
    let key = env.seed();
    let up = tempfile::tempdir().unwrap();
    let denied = blob(120_000, 21);
    let mine = blob(130_000, 22);
    let good = blob(140_000, 23);
    let impostor = blob(140_000, 24);

    // Fake bytes under the published name of a build the shipped catalogue knows.
    let err = env.refused(&[
        "firmware",
        "add",
        put(
            up.path(),
            "T54W(T57W,T53W,T53,T53C,T54,T57)-96.86.0.45(20211130).rom",
            &impostor,
        )
        .to_str()
        .unwrap(),
    ]);
    assert!(
        err.contains("these bytes are not Yealink's 96.86.0.45")
            && err.contains("43072240 bytes, sha1 0975d447c78795c58d9bd2c2ed728f4f29415de8")
            && err.contains(&sha1(&impostor)),
        "{err}"
    );

    // The operator's policy: a sha1 rule on test bytes, and a known build of their own.
    std::fs::write(
        env.data_dir().join("firmware-policy.toml"),
        format!(
            "[[deny]]\nvendor = \"yealink\"\nsha1 = [\"{}\"]\nreason = \"bad lab batch\"\n\n[[known]]\nvendor = \"yealink\"\nversion = \"96.86.0.80\"\nsize = {}\nsha1 = \"{}\"\nsource = \"our lab\"\n",
            sha1(&denied),
            mine.len(),
            sha1(&mine)
        ),
    )
    .unwrap();
    for (name, args) in [
        ("T54W-96.86.0.74.rom", vec![]),
        ("T46U-108.86.0.90.rom", vec![]),
        (
            "anything.bin",
            vec!["--version", "96.86.0.74", "--models", "T54W"],
        ),
    ] {
        let mut a = vec!["firmware", "add"];
        let p = put(up.path(), name, &denied);
        a.push(p.to_str().unwrap());
        a.extend(args);
        let err = env.refused(&a);
        assert!(
            err.contains(&format!("sha1 {} is denied", sha1(&denied)))
                && err.contains("bad lab batch"),
            "{name}: {err}"
        );
    }
    // Known bytes are identified by content: no version needed, and a wrong claim is refused.
    let v = env.json(&[
        "firmware",
        "add",
        put(up.path(), "lab-build.rom", &mine).to_str().unwrap(),
    ]);
    assert_eq!(v["version"], "96.86.0.80", "{v}");
    assert_eq!(v["sha1"], sha1(&mine));
    let err = env.refused(&[
        "firmware",
        "add",
        put(up.path(), "other.rom", &good).to_str().unwrap(),
        "--version",
        "96.86.0.80",
        "--models",
        "T54W",
    ]);
    assert!(
        err.contains("these bytes are not Yealink's 96.86.0.80") && err.contains("our lab"),
        "{err}"
    );
    let o = env.run(&[
        "firmware",
        "check",
        put(up.path(), "T54W-96.86.0.99.rom", &mine)
            .to_str()
            .unwrap(),
    ]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.contains("these bytes are Yealink's 96.86.0.80") && out.contains("not 96.86.0.99"),
        "{out}"
    );

    // A static copy of the sha1-denied bytes is not served.
    let files = env.data_dir().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("tone.wav"), &denied).unwrap();

    // Policy reload: a good stored, assigned, served image becomes, by a new catalogue entry,
    // a build the policy denies; the running server stops naming and serving it.
    env.ok(&[
        "firmware",
        "add",
        put(up.path(), "T54W-96.86.0.75.rom", &good)
            .to_str()
            .unwrap(),
    ]);
    env.ok(&["firmware", "assign", "96.86.0.75", "--site", "valleywide"]);
    let srv = env.start();
    let (st, _) = get(&srv.url(&format!("/p/{key}/tone.wav")), T54W_UA).await;
    assert_eq!(st, 404, "sha1-denied bytes served as a static file");
    let (st, _) = get(&srv.url(&format!("/p/{key}/T54W-96.86.0.75.rom")), T54W_UA).await;
    assert_eq!(st, 200);
    let url = srv.url(&format!("/p/{key}/{T54W_MAC}.cfg"));
    let (_, cfg) = get(&url, T54W_UA).await;
    assert!(cfg.contains("T54W-96.86.0.75.rom"), "{cfg}");
    let policy = std::fs::read_to_string(env.data_dir().join("firmware-policy.toml")).unwrap();
    std::fs::write(
        env.data_dir().join("firmware-policy.toml"),
        format!(
            "{policy}\n[[known]]\nvendor = \"yealink\"\nversion = \"96.86.0.20\"\nsize = {}\nsha256 = \"{}\"\nsource = \"found to be the bricking build\"\n",
            good.len(),
            sha(&good)
        ),
    )
    .unwrap();
    eventually(Duration::from_secs(5), || async {
        let (_, body) = get(&url, T54W_UA).await;
        (!body.contains("static.firmware.url")).then_some(())
    })
    .await
    .expect("re-rendered without the image");
    let (st, _) = get(&srv.url(&format!("/p/{key}/T54W-96.86.0.75.rom")), T54W_UA).await;
    assert_eq!(st, 404);
    let out = tempfile::tempdir().unwrap();
    assert!(!tftp_get(
        &srv,
        &format!("p/{key}/T54W-96.86.0.75.rom"),
        &out.path().join("z")
    ));
    let list = env.json(&["firmware", "list"]).to_string();
    assert!(
        list.contains("these bytes are Yealink's 96.86.0.20"),
        "{list}"
    );
}

#[test]
fn recover_refuses_an_image_changed_after_it_was_checked() {
    let env = Env::new();
    let up = tempfile::tempdir().unwrap();
    let good = blob(300_000, 31);
    let image = put(up.path(), "T54W-96.86.0.76.rom", &good);
    let (child, addr) = spawn_recover(&env, &image);
    let out = tempfile::tempdir().unwrap();
    assert!(tftp_get_from(&addr, "fw.rom", &out.path().join("a")));
    assert_eq!(
        sha(&std::fs::read(out.path().join("a")).unwrap()),
        sha(&good)
    );
    // Swapped on disk while recover runs: the new bytes were never judged.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&image, blob(300_001, 32)).unwrap();
    assert!(!tftp_get_from(&addr, "fw.rom", &out.path().join("b")));
    sigint(child.id());
    let o = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(said.contains("changed on disk"), "{said}");
}

#[tokio::test]
async fn images_stored_before_sha1s_were_kept_get_theirs_from_the_file() {
    let env = Env::new();
    env.seed();
    let bytes = blob(50_000, 41);
    force_stored(&env, &bytes, "T54W-96.86.0.77.rom", "96.86.0.77").await;
    {
        let mut c = common::db(&env).await;
        sqlx::query("UPDATE firmware SET sha1 = NULL")
            .execute(&mut c)
            .await
            .unwrap();
    }
    let list = env.json(&["firmware", "list"]);
    assert_eq!(list[0]["sha1"], sha1(&bytes), "{list}");
    assert_eq!(list[0]["verdict"]["refusals"], serde_json::json!([]));
}
