//! Yealink's cloud on the calls that work for an ordinary MSP account: RPS through the signed
//! RPS management API (v1) when its keys are configured, by serial number on YMCS v2 otherwise,
//! a 403 on writes by MAC said per MAC with what to do; answers read tolerantly, unknown shapes
//! failing loudly. Against strict fakes (`tests/common/rps_v1.rs`, `tests/common/ymcs.rs`).

mod common;

use common::*;

const USER: &str = "prov-valley";
const PW: &str = "Pr0v-Secret-77x";

fn run(env: &Env, args: &[&str]) -> (i32, String, String) {
    let o = env.run(args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

fn ymcs_fake(st: common::ymcs::State) -> common::ymcs::Fake {
    common::ymcs::Fake::start(common::ymcs::State {
        sites: vec![("s-1".into(), "valleywide".into())],
        ..st
    })
}

fn connect_rps(env: &Env, fake: &common::rps_v1::Fake, secret: &str) {
    env.set_var("PHONEPROV_RPS_BASE_URL", &fake.url());
    env.set_var("PHONEPROV_RPS_KEY_ID", common::rps_v1::KEY_ID);
    env.set_var("PHONEPROV_RPS_KEY_SECRET", secret);
}

fn login(env: &Env) {
    env.ok(&[
        "site",
        "update",
        "valleywide",
        "--auth-user",
        USER,
        "--auth-password",
        PW,
    ]);
}

#[test]
fn onboarding_through_the_rps_management_api() {
    let env = Env::new();
    env.seed();
    login(&env);
    let ymcs = ymcs_fake(Default::default());
    let rps = common::rps_v1::Fake::start(Default::default());
    ymcs.connect(&env);
    connect_rps(&env, &rps, common::rps_v1::SECRET);
    let csv = env.data_dir().join("new.csv");
    std::fs::write(
        &csv,
        "mac,model,site,line1_user,line1_password\n805ec0000101,T54W,valleywide,301,pw-301-secret\n805ec0000102,T46U,valleywide,302,pw-302-secret\n",
    )
    .unwrap();
    // The README's flow: import, register, point RPS at the site — confirmed.
    let (code, out, err) = run(
        &env,
        &[
            "import",
            csv.to_str().unwrap(),
            "--ymcs",
            "register,rps",
            "--confirm",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("through the RPS management API v1"), "{out}");
    let url = env.json(&["site", "show", "valleywide"])["provisioning_url"]
        .as_str()
        .unwrap()
        .to_string();
    rps.with(|st| {
        assert_eq!(st.servers.len(), 1, "{:?}", st.servers);
        let s = &st.servers[0];
        assert_eq!(
            (
                s.url.as_str(),
                s.auth_name.as_deref(),
                s.password.as_deref()
            ),
            (url.as_str(), Some(USER), Some(PW))
        );
        for m in ["805ec0000101", "805ec0000102"] {
            assert_eq!(
                st.devices.get(m),
                Some(&s.id),
                "{m} points at the site: {:?}",
                st.devices
            );
        }
        assert!(
            st.refused.is_empty(),
            "every request was signed right: {:?}",
            st.refused
        );
    });
    ymcs.with(|st| {
        assert!(
            !st.calls.iter().any(|c| c.starts_with("/v2/rps/")),
            "RPS not through YMCS: {:?}",
            st.calls
        )
    });
    // The rest of the site, then again: only reads.
    let (code, out, _) = run(
        &env,
        &["ymcs", "rps-add", "--site", "valleywide", "--confirm"],
    );
    assert_eq!(code, 0, "{out}");
    rps.with(|st| assert!(st.devices.contains_key("805ec0aabbcc"), "{out}"));
    let writes_before = rps.with(|st| {
        st.calls
            .iter()
            .filter(|c| c.contains("/add") || c.contains("/delete"))
            .count()
    });
    let (code, out, _) = run(
        &env,
        &["ymcs", "rps-add", "--site", "valleywide", "--confirm"],
    );
    assert_eq!(code, 0, "{out}");
    let writes_after = rps.with(|st| {
        st.calls
            .iter()
            .filter(|c| c.contains("/add") || c.contains("/delete"))
            .count()
    });
    assert_eq!(
        writes_before, writes_after,
        "an idempotent re-run sends only reads"
    );
    // rps-remove through the same API; YMCS need not be configured for it.
    let env2_vars = [
        "PHONEPROV_YMCS_BASE_URL",
        "PHONEPROV_YMCS_KEY_ID",
        "PHONEPROV_YMCS_KEY_SECRET",
    ];
    for v in env2_vars {
        env.set_var(v, "");
    }
    let (code, out, err) = run(&env, &["ymcs", "rps-remove", "805ec0000102", "--confirm"]);
    assert_eq!(code, 0, "{out}{err}");
    rps.with(|st| assert!(!st.devices.contains_key("805ec0000102")));
    // Per-MAC failures carry Yealink's message; a failing envelope is a failure, not a skip.
    rps.with(|st| {
        st.foreign.insert("805ec0000102".into());
    });
    let (code, out, _) = run(&env, &["ymcs", "rps-add", "805ec0000102", "--confirm"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("805ec0000102") && out.contains("belongs to another organisation"),
        "{out}"
    );
}

#[test]
fn a_wrong_rps_secret_is_said_with_the_api_s_words() {
    let env = Env::new();
    env.seed();
    let rps = common::rps_v1::Fake::start(Default::default());
    connect_rps(&env, &rps, "not-the-secret");
    let (code, out, err) = run(
        &env,
        &["ymcs", "rps-add", "--site", "valleywide", "--confirm"],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("/api/open/v1/server/list") && err.contains("signature mismatch"),
        "{out}{err}"
    );
    // Half a configuration names what is missing.
    env.set_var("PHONEPROV_RPS_KEY_SECRET", "");
    let (_, _, err) = run(&env, &["ymcs", "rps-add", "--site", "valleywide"]);
    assert!(err.contains("PHONEPROV_RPS_KEY_SECRET is not"), "{err}");
}

#[test]
fn an_ordinary_ymcs_account_goes_by_serial_number() {
    let env = Env::new();
    env.seed();
    let ymcs = ymcs_fake(common::ymcs::State {
        ordinary: true,
        ..Default::default()
    });
    ymcs.connect(&env);
    env.ok(&[
        "phone",
        "add",
        "805ec0000201",
        "--model",
        "T54W",
        "--site",
        "valleywide",
        "--sn",
        "8012345678901234",
    ]);
    let (code, out, _) = run(
        &env,
        &["ymcs", "rps-add", "--site", "valleywide", "--confirm"],
    );
    assert_eq!(code, 1, "{out}");
    // The one with a serial number went by serial number; the other says what to configure.
    ymcs.with(|st| assert!(st.rps.contains_key("805ec0000201"), "{:?}", st.rps));
    let line = out
        .lines()
        .find(|l| l.contains("805ec0aabbcc"))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.contains("refuses RPS writes by MAC")
            && line.contains("PHONEPROV_RPS_KEY_ID")
            && line.contains("--sn"),
        "{out}"
    );
    assert!(
        out.contains("This request is forbidden"),
        "Yealink's own words: {out}"
    );
    // Serial numbers are checked where they come in.
    let err = env.refused(&["phone", "update", "805ec0aabbcc", "--sn", "12-34"]);
    assert!(err.contains("serial number"), "{err}");
    env.ok(&[
        "phone",
        "update",
        "805ec0aabbcc",
        "--sn",
        "80aabbcc00112233",
    ]);
    assert_eq!(
        env.json(&["phone", "show", "805ec0aabbcc"])["sn"],
        "80AABBCC00112233"
    );
    let (code, out, _) = run(
        &env,
        &["ymcs", "rps-add", "--site", "valleywide", "--confirm"],
    );
    assert_eq!(code, 0, "{out}");
    ymcs.with(|st| assert!(st.rps.contains_key("805ec0aabbcc")));
    let out = env.ok(&["export"]);
    assert!(
        out.lines().next().unwrap().contains(",sn,") && out.contains("80AABBCC00112233"),
        "{out}"
    );
}

#[test]
fn reboot_reads_every_answer_shape_and_fails_on_an_unknown_one() {
    for shape in [0u8, 1, 2] {
        let env = Env::new();
        env.seed();
        let mut st = common::ymcs::State {
            list_without_ids: true,
            device_id_shape: shape,
            ..Default::default()
        };
        st.devices.insert("805ec0aabbcc".into(), "s-1".into());
        let fake = ymcs_fake(st);
        fake.connect(&env);
        let (code, out, err) = run(&env, &["ymcs", "reboot", "805ec0aabbcc", "--confirm"]);
        assert_eq!(code, 0, "shape {shape}: {out}{err}");
        fake.with(|st| assert_eq!(st.reboots.len(), 1, "shape {shape}: {:?}", st.calls));
    }
    let env = Env::new();
    env.seed();
    let mut st = common::ymcs::State {
        list_without_ids: true,
        device_id_shape: 3,
        ..Default::default()
    };
    st.devices.insert("805ec0aabbcc".into(), "s-1".into());
    let fake = ymcs_fake(st);
    fake.connect(&env);
    let (code, out, err) = run(&env, &["ymcs", "reboot", "805ec0aabbcc", "--confirm"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("/v2/dm/deviceId") && err.contains("a list was expected"),
        "{err}"
    );
    fake.with(|st| assert!(st.reboots.is_empty()));
}

#[test]
fn status_says_which_rps_api_the_keys_reach() {
    let env = Env::new();
    env.seed();
    let ymcs = ymcs_fake(Default::default());
    ymcs.connect(&env);
    let (code, out, _) = run(&env, &["ymcs", "status"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("RPS management API (v1): not configured"),
        "{out}"
    );
    let rps = common::rps_v1::Fake::start(Default::default());
    connect_rps(&env, &rps, common::rps_v1::SECRET);
    let (_, out, _) = run(&env, &["ymcs", "status"]);
    assert!(out.contains("RPS management API (v1): key works"), "{out}");
}

/// `import --ymcs register,rps` without `--confirm` is a plan of the whole step: nothing
/// imported, YMCS only read, exit 3 (issue: the README said "plan", the import applied).
#[test]
fn import_with_cloud_steps_without_confirm_is_a_plan() {
    let env = Env::new();
    env.seed();
    let ymcs = ymcs_fake(Default::default());
    let rps = common::rps_v1::Fake::start(Default::default());
    ymcs.connect(&env);
    connect_rps(&env, &rps, common::rps_v1::SECRET);
    let csv = env.data_dir().join("plan.csv");
    std::fs::write(&csv, "mac,model,site,line1_user,line1_password\n805ec0000401,T54W,valleywide,401,pw-401-secret\n").unwrap();
    let (code, out, err) = run(
        &env,
        &["import", csv.to_str().unwrap(), "--ymcs", "register,rps"],
    );
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("[DRY RUN] register 805ec0000401"), "{out}");
    assert!(out.contains("[DRY RUN] rps-add 805ec0000401"), "{out}");
    assert!(out.contains("nothing was imported"), "{out}");
    assert!(
        env.run(&["phone", "show", "805ec0000401"]).status.code() != Some(0),
        "not imported"
    );
    ymcs.with(|st| assert!(st.devices.is_empty()));
    rps.with(|st| assert!(st.servers.is_empty() && st.devices.is_empty()));
    // A cloud failure names pasteable commands to retry.
    rps.with(|st| {
        st.fail_next.insert(
            "/api/open/v1/server/list".into(),
            "service unavailable".into(),
        );
    });
    let (code, _, err) = run(
        &env,
        &[
            "import",
            csv.to_str().unwrap(),
            "--ymcs",
            "rps",
            "--confirm",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("retry with: phoneprov ymcs rps-add --site valleywide --confirm"),
        "{err}"
    );
}

/// Missing YMCS settings are named all at once.
#[test]
fn missing_cloud_settings_are_named_at_once() {
    let env = Env::new();
    env.seed();
    let (code, _, err) = run(&env, &["ymcs", "status"]);
    assert_eq!(code, 2, "{err}");
    for k in [
        "PHONEPROV_YMCS_REGION",
        "PHONEPROV_YMCS_KEY_ID",
        "PHONEPROV_YMCS_KEY_SECRET",
    ] {
        assert!(err.contains(k), "{k}: {err}");
    }
}
