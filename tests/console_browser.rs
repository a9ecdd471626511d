//! The web console in a real browser (headless Chromium through chromedriver): a tech's day —
//! log in by keyboard, import a CSV with mistakes and see them by line, fix it and apply; find
//! a phone by a dotted MAC and read its files with passwords masked; be kept out of user
//! management; a form stripped of its CSRF token is refused; a session from before `user rm`
//! is gone. And every page: labelled inputs, usable at a phone's width, nothing from elsewhere.

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::{Env, T54W_MAC};

const TECH_PW: &str = "tech tech tech tech";
const ADMIN_PW: &str = "correct horse battery";

fn install() -> Env {
    let env = Env::new();
    env.seed();
    env.user_add("tom", "tech", TECH_PW);
    env.user_add("alice", "admin", ADMIN_PW);
    env
}

fn phone_count(env: &Env) -> usize {
    env.json(&["phone", "list"]).as_array().unwrap().len()
}

#[tokio::test]
async fn a_tech_imports_a_list_with_mistakes_fixes_it_and_applies_it() {
    let env = install();
    let srv = env.start();
    let base = srv.url("");
    let b = Browser::start().await;
    b.login(&base, "tom", TECH_PW).await;
    assert_eq!(b.path().await, "/ui/sites");
    assert_eq!(b.text("#whoami").await, "tom (tech)");

    b.click("nav a[href='/ui/import']").await;
    let with_mistakes = "mac,model,site,label\n\
        80:5e:c0:00:00:01,T54W,valleywide,Desk 1\n\
        80:5e:c0:00:00:0Z,T54W,valleywide,Desk 2\n\
        80:5e:c0:00:00:03,T99,valleywide,Desk 3\n";
    b.type_into("#csv", with_mistakes).await;
    b.click("#check").await;
    let errors = b.text("#import-errors").await;
    assert!(
        b.text("#import-errors-summary")
            .await
            .contains("nothing was changed")
    );
    let rows: Vec<&str> = errors.lines().collect();
    assert!(
        rows.iter().any(|r| r.starts_with("3 mac")),
        "line 3's MAC is not named: {errors}"
    );
    assert!(
        rows.iter().any(|r| r.starts_with("4 model")),
        "line 4's model is not named: {errors}"
    );
    assert!(!b.has("#apply").await, "a plan with errors can be applied");
    assert_eq!(phone_count(&env), 2, "a refused import changed something");

    // Fixed, and uploaded as a file this time.
    let dir = tempfile::tempdir().unwrap();
    let fixed = dir.path().join("site-macs.csv");
    std::fs::write(
        &fixed,
        "mac,model,site,label\n\
         80:5e:c0:00:00:01,T54W,valleywide,Desk 1\n\
         80:5e:c0:00:00:02,T54W,valleywide,Desk 2\n\
         80:5e:c0:00:00:03,T54W,valleywide,Desk 3\n\
         80:5E:C0:AA:BB:CC,T54W,valleywide,Front Desk\n",
    )
    .unwrap();
    b.type_into("#csv", "").await;
    b.client
        .find(common::browser::Locator::Css("#file"))
        .await
        .unwrap()
        .send_keys(fixed.to_str().unwrap())
        .await
        .unwrap();
    b.click("#check").await;
    let plan = b.text("#import-plan").await;
    assert!(
        plan.contains("3 to create") && plan.contains("1 unchanged"),
        "{plan}"
    );
    let table = b.text("#import-rows").await;
    assert_eq!(table.matches("created").count(), 3, "{table}");
    assert!(table.contains("unchanged"));
    assert_eq!(phone_count(&env), 2, "the plan changed something");
    b.click("#apply").await;
    let done = b.text("#import-result").await;
    assert!(done.contains("3 created"), "{done}");
    assert_eq!(phone_count(&env), 5);
    assert_eq!(
        env.json(&["phone", "show", "805ec0000002"])["label"],
        "Desk 2"
    );

    // The import is on record as tom's.
    b.click("nav a[href='/ui/changes']").await;
    let changes = b.text("#changes").await;
    assert!(
        changes.contains("tom (tech)") && changes.contains("import.apply"),
        "{changes}"
    );
    b.close().await;
}

#[tokio::test]
async fn a_tech_finds_a_phone_sees_its_files_masked_and_is_kept_to_their_role() {
    let env = install();
    let srv = env.start();
    let base = srv.url("");
    let b = Browser::start().await;
    b.login(&base, "tom", TECH_PW).await;

    // A dotted MAC, as printed on some labels and in Cisco's tools, finds the phone.
    b.click("nav a[href='/ui/phones']").await;
    b.type_into("#q", "805e.c0aa.bbcc").await;
    b.click("#search").await;
    assert_eq!(b.path().await, format!("/ui/phones/{T54W_MAC}"));
    assert_eq!(b.text("#label").await, "Front Desk");

    // Its files, as the phone gets them, with every password masked for a tech.
    b.click(&format!("#files a[href$='{T54W_MAC}.cfg']")).await;
    let text = b.text("#file-text").await;
    assert!(text.contains("account.1.user_name = 201"), "{text}");
    assert!(text.contains("account.1.password = ********"), "{text}");
    assert!(!text.contains("Xk29-pq8s-Lm2v") && !text.contains("Second-Pw-22"));
    assert!(b.has("#masked").await);

    // User management is not a tech's.
    b.goto(&format!("{base}/ui/users")).await;
    assert!(b.body().await.contains("This needs the admin role"));
    assert!(!b.has("nav a[href='/ui/users']").await);

    // A form stripped of its CSRF token is refused, and changes nothing.
    b.goto(&format!("{base}/ui/phones/{T54W_MAC}")).await;
    b.type_into("#edit-label", "Stolen").await;
    b.js("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")
        .await;
    b.click("#save").await;
    assert!(b.body().await.contains("security token"));
    assert_eq!(
        env.json(&["phone", "show", T54W_MAC])["label"],
        "Front Desk"
    );
    // With it, the change is made.
    b.goto(&format!("{base}/ui/phones/{T54W_MAC}")).await;
    b.type_into("#edit-label", "Reception").await;
    b.click("#save").await;
    assert_eq!(b.text("#label").await, "Reception");

    // Removed by an admin: the session in this browser is gone at once.
    env.ok(&["user", "rm", "tom"]);
    b.goto(&format!("{base}/ui/sites")).await;
    assert!(
        b.path().await.starts_with("/ui/login"),
        "{}",
        b.path().await
    );
    b.close().await;
}

#[tokio::test]
async fn every_page_is_labelled_keyboard_usable_and_fits_a_phone() {
    let env = install();
    let srv = env.start();
    let base = srv.url("");
    let b = Browser::start().await;
    b.login(&base, "alice", ADMIN_PW).await;
    b.client.set_window_size(390, 844).await.unwrap();
    let pages = [
        "/ui/sites".to_string(),
        "/ui/sites/valleywide".into(),
        "/ui/phones".into(),
        format!("/ui/phones/{T54W_MAC}"),
        format!("/ui/phones/{T54W_MAC}/files/{T54W_MAC}.cfg"),
        "/ui/import".into(),
        "/ui/firmware".into(),
        "/ui/ymcs".into(),
        "/ui/audit".into(),
        "/ui/changes".into(),
        "/ui/users".into(),
    ];
    for p in &pages {
        b.goto(&format!("{base}{p}")).await;
        // Every control has a label (or an aria-label).
        let unlabelled = b
            .js("return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                 .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
                 .map(e => e.name || e.id)")
            .await;
        assert_eq!(
            unlabelled,
            serde_json::json!([]),
            "{p}: unlabelled controls"
        );
        // Nothing loaded from another origin.
        let foreign = b
            .js(
                "return performance.getEntriesByType('resource').map(r => r.name)
                 .filter(n => !n.startsWith(location.origin))",
            )
            .await;
        assert_eq!(foreign, serde_json::json!([]), "{p}: loads from elsewhere");
        // The page itself does not scroll sideways at a phone's width (wide tables scroll
        // in their own box).
        let overflow = b
            .js("return document.documentElement.scrollWidth - window.innerWidth")
            .await;
        assert!(
            overflow.as_i64().unwrap_or(99) <= 1,
            "{p}: {overflow} px too wide"
        );
        // One main heading; the tab it belongs to is marked for screen readers, not by colour.
        assert!(b.has("main h1").await, "{p}: no heading");
    }
    b.goto(&format!("{base}/ui/phones")).await;
    assert_eq!(
        b.js("return document.querySelector('nav a[aria-current=page]').textContent")
            .await,
        "Phones"
    );
    // The first Tab from the top reaches the skip link, and it leads to the content.
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys(&char::from(fantoccini::key::Key::Tab).to_string())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        b.js("return document.activeElement.className").await,
        "skip"
    );
    b.close().await;
}
