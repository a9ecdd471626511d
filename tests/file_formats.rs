//! Property: whatever the verbs accept — random site names, labels, display names, passwords
//! and setting keys and values, hostile characters included (`--`, `]]>`, quotes, `&`, `<`,
//! non-ASCII) — every Polycom file parses as XML (checked with xml-rs, a parser the server does
//! not use), and every Yealink line is `key = value` with each line field written as given.

mod common;

use common::rng::Rng;
use phoneprov::manage::{LayerInput, LineInput, Manager, PhoneInput, SiteInput};

const HOSTILE: &[&str] = &[
    "a", "Z", "7", "-", "--", " ", "]]>", "\"", "'", "&", "<", ">", "&amp;", "<!--", "-->", "é",
    "日本", "Ω", "%NULL%", "%", "=", "#", "x", "_", ".", "${a}", "{{", "}}",
];
const KEY_PIECES: &[&str] = &["a", "b", "1", "-", "_", ".", "x9", "Z", "--"];
const NAME_PIECES: &[&str] = &["a", "b", "7", "-", "--", "_", "z"];

fn well_formed_xml(text: &str) -> Result<(), String> {
    let parser = xml::reader::EventReader::from_str(text);
    for e in parser {
        e.map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_input_renders_to_files_phones_parse() {
    let mut rng = Rng(0x0dd_f11e_5eed_0002);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let store = common::open_store(&data).await;
    let m = Manager::open(store.clone(), "http://prov.test", &data).unwrap();
    let (mut accepted, mut refused, mut files) = (0, 0, 0);
    for round in 0..30u64 {
        let site = format!("s{round}{}", rng.text(NAME_PIECES, 4));
        if m.site_add(SiteInput {
            name: site.clone(),
            sip_server: "pbx.example.com".into(),
            transport: None,
            time_zone: Some(
                rng.pick(&["Australia/Sydney", "Europe/Berlin", "-7"])
                    .to_string(),
            ),
            ntp: vec!["ntp.example.com".into()],
            allow_keyless: false,
            ymcs_site: None,
            ..Default::default()
        })
        .await
        .is_err()
        {
            refused += 1;
            continue;
        }
        for (i, model) in ["VVX_450", "SPIP_550", "T54W", "T31G"].iter().enumerate() {
            let mac = format!("0004f2{:02x}{:02x}00", round, i);
            let label = rng.text(HOSTILE, 6);
            if m.phone_add(PhoneInput {
                mac: mac.clone(),
                model: model.to_string(),
                site: site.clone(),
                label: Some(label),
                ..Default::default()
            })
            .await
            .is_err()
            {
                refused += 1;
                continue;
            }
            let line = LineInput {
                user: format!("10{i}"),
                auth_user: Some(rng.text(HOSTILE, 4)),
                password: rng.text(HOSTILE, 8),
                display_name: Some(rng.text(HOSTILE, 6)),
                label: Some(rng.text(HOSTILE, 5)),
                ..Default::default()
            };
            let kept = match m.line_set(&mac, 1, line.clone()).await {
                Ok(_) => {
                    accepted += 1;
                    Some(line)
                }
                Err(_) => {
                    refused += 1;
                    None
                }
            };
            let key = format!(
                "{}{}",
                rng.pick(&["", "1", "-", "a", "_"]),
                rng.text(KEY_PIECES, 5)
            );
            let layer = LayerInput {
                phone: Some(mac.clone()),
                ..Default::default()
            };
            match m.setting_set(&layer, &key, &rng.text(HOSTILE, 6)).await {
                Ok(_) => accepted += 1,
                Err(_) => refused += 1,
            }
            for (name, bytes) in m.render_phone(&mac).await.unwrap() {
                files += 1;
                let text = String::from_utf8(bytes.to_vec()).unwrap();
                if model.starts_with('T') {
                    let mut lines = text.lines();
                    assert_eq!(lines.next(), Some("#!version:1.0.0.1"), "{name}");
                    for l in lines {
                        let t = l.trim();
                        if t.is_empty() || t.starts_with('#') || t.starts_with("include:") {
                            continue;
                        }
                        let (k, _) = l
                            .split_once(" = ")
                            .unwrap_or_else(|| panic!("{name}: {l:?}"));
                        assert!(
                            !k.is_empty()
                                && k.bytes()
                                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
                            "{name}: {l:?}"
                        );
                    }
                    if let (Some(l), true) =
                        (&kept, name.ends_with(".cfg") && name.starts_with("0004"))
                    {
                        for (k, v) in [
                            ("account.1.password", &l.password),
                            ("account.1.display_name", l.display_name.as_ref().unwrap()),
                            ("account.1.label", l.label.as_ref().unwrap()),
                            ("account.1.auth_name", l.auth_user.as_ref().unwrap()),
                        ] {
                            let want = format!("{k} = {v}");
                            assert!(
                                text.lines().any(|x| x == want),
                                "{name}: {want:?} not written as given:\n{text}"
                            );
                        }
                    }
                } else {
                    well_formed_xml(&text)
                        .unwrap_or_else(|e| panic!("{name} is not XML ({e}):\n{text}"));
                }
            }
        }
    }
    eprintln!("{accepted} inputs accepted, {refused} refused, {files} files parsed");
    assert!(
        accepted > 50 && refused > 5 && files > 200,
        "{accepted} {refused} {files}"
    );
    store.close().await;
}

#[tokio::test]
async fn names_with_double_hyphens_and_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let store = common::open_store(&data).await;
    let m = Manager::open(store.clone(), "http://prov.test", &data).unwrap();
    // The checking parser is strict about what phones choke on.
    assert!(well_formed_xml("<!-- a -- b --><a/>").is_err());
    assert!(well_formed_xml("<a 1bad=\"x\"/>").is_err());
    m.site_add(SiteInput {
        name: "north--annex-".into(),
        sip_server: "pbx.example.com".into(),
        transport: None,
        time_zone: None,
        ntp: vec![],
        allow_keyless: false,
        ymcs_site: None,
        ..Default::default()
    })
    .await
    .unwrap();
    m.phone_add(PhoneInput {
        mac: "0004f2000001".into(),
        model: "VVX 450".into(),
        site: "north--annex-".into(),
        label: Some("Front -- desk -".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    for (name, bytes) in m.render_phone("0004f2000001").await.unwrap() {
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        well_formed_xml(&text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
    }
    let layer = LayerInput {
        phone: Some("0004f2000001".into()),
        ..Default::default()
    };
    let e = m.setting_set(&layer, "1bad.key", "x").await.unwrap_err();
    assert!(e.to_string().contains("must start with a letter"), "{e}");
    for (v, why) in [
        (" pw-with-space", "leading or trailing spaces"),
        ("%NULL%", "%NULL%"),
        ("%empty%", "%empty%"),
    ] {
        let e = m
            .line_set(
                "0004f2000001",
                1,
                LineInput {
                    user: "101".into(),
                    auth_user: None,
                    password: v.into(),
                    display_name: None,
                    label: None,
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains(why), "{v:?}: {e}");
    }
    store.close().await;
}
