//! Properties of every parser that takes outside input (proptest, in the ordinary suite):
//! whatever the bytes, no panic, and what comes out keeps its promise — a MAC in any spelling
//! is one MAC, a request path never yields a name that leaves its directory, a TFTP packet
//! survives encode/parse, credentials nobody was given never pass and a Digest answer passes
//! once, a firmware file name or a policy file never crashes the server, and a CSV import
//! either applies whole or changes nothing. Cases per property: PROPTEST_CASES (default 256;
//! the import property runs a sixteenth of them, each on a fresh database).

mod common;

use proptest::prelude::*;

use phoneprov::auth::{Authenticator, Outcome};
use phoneprov::catalog::UserAgent;
use phoneprov::mac::Mac;
use phoneprov::model::Credential;
use phoneprov::resolve::{MAX_NAME, name_mac, split_path};
use phoneprov::serve::tftp::packet::{Packet, Request};

/// A phone's MAC: unicast (a multicast address is refused as no phone's) and not all zeros.
fn any_mac() -> impl Strategy<Value = [u8; 6]> {
    any::<[u8; 6]>()
        .prop_map(|mut b| {
            b[0] &= 0xfe;
            b
        })
        .prop_filter("all zeros", |b| *b != [0; 6])
}

/// Text a scanner or a broken phone might send: printable, control and multi-byte
/// characters, path punctuation and escapes.
fn hostile() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            any::<char>().prop_map(|c| c.to_string()),
            Just("../".to_string()),
            Just("%2e%2e%2f".to_string()),
            Just("%00".to_string()),
            Just("/p/".to_string()),
            Just("\\".to_string()),
            Just(".".to_string()),
            "[0-9a-fA-F:.-]{1,14}",
        ],
        0..12,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn a_mac_in_any_spelling_is_one_mac(b in any_mac(), style in 0usize..5, upper: bool) {
        let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
        let mut s = match style {
            0 => hex.concat(),
            1 => hex.join(":"),
            2 => hex.join("-"),
            3 => format!("{}{}.{}{}.{}{}", hex[0], hex[1], hex[2], hex[3], hex[4], hex[5]),
            _ => format!(" {} ", hex.join(":")),
        };
        if upper {
            s = s.to_uppercase();
        }
        let m: Mac = s.parse().map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
        prop_assert_eq!(m.bytes(), b);
        prop_assert_eq!(m.to_string(), hex.concat());
        prop_assert_eq!(Mac::from_bare(&m.to_string()), Some(m));
    }

    #[test]
    fn any_text_parses_as_a_mac_or_is_refused_without_panic(s in hostile()) {
        if let Ok(m) = s.parse::<Mac>() {
            let canon = m.to_string();
            prop_assert_eq!(canon.len(), 12);
            prop_assert_eq!(canon.parse::<Mac>().ok(), Some(m));
        }
    }

    #[test]
    fn any_user_agent_parses_and_a_yealink_one_names_its_phone(s in hostile(), b in any_mac()) {
        let _ = UserAgent::parse(&s);
        let mac = Mac::from_bytes(b);
        let ua = UserAgent::parse(&format!("Yealink SIP-T54W 96.86.0.45 {}", mac.colon()));
        prop_assert_eq!(ua.mac, Some(mac));
    }

    #[test]
    fn a_request_path_never_yields_a_name_outside_its_directory(s in hostile(), prefix in 0usize..3) {
        let path = match prefix {
            0 => s.clone(),
            1 => format!("/{s}"),
            _ => format!("/p/0123456789abcdef0123456789abcdef/{s}"),
        };
        if let Some(t) = split_path(&path) {
            for part in std::iter::once(&t.name).chain(t.key.as_ref()) {
                prop_assert!(!part.is_empty(), "{path:?}");
                prop_assert!(!part.contains(['/', '\\', '\0']), "{path:?} -> {part:?}");
                prop_assert!(part != "." && part != "..", "{path:?}");
            }
            prop_assert!(t.name.len() <= MAX_NAME);
            let _ = name_mac(&t.name);
        }
    }

    #[test]
    fn any_datagram_parses_or_is_refused_and_packets_survive_a_round_trip(
        raw in prop::collection::vec(any::<u8>(), 0..600),
        name in "[a-zA-Z0-9._-]{1,40}",
        block: u16,
        data in prop::collection::vec(any::<u8>(), 0..512),
        blksize in 8u32..65464,
    ) {
        let _ = Packet::parse(&raw);
        let rrq = Packet::Rrq(Request {
            filename: name.clone(),
            mode: Some(phoneprov::serve::tftp::packet::Mode::Octet),
            options: vec![("blksize".into(), blksize.to_string())],
        });
        let bytes = rrq.to_bytes();
        prop_assert_eq!(Packet::parse(&bytes).ok(), Some(rrq));
        let d = Packet::Data { block, data: &data };
        let bytes = d.to_bytes();
        prop_assert_eq!(Packet::parse(&bytes).ok(), Some(d));
        let a = Packet::Ack { block };
        let bytes = a.to_bytes();
        prop_assert_eq!(Packet::parse(&bytes).ok(), Some(a));
    }

    #[test]
    fn credentials_nobody_was_given_never_pass(header in hostile(), scheme in 0usize..3) {
        let auth = Authenticator::default();
        let cur = Credential { user: "prov".into(), password: "Prov-Secret-1-x".into() };
        let h = match scheme {
            0 => header.clone(),
            1 => format!("Basic {header}"),
            _ => format!("Digest username=\"prov\", realm=\"phoneprov\", {header}"),
        };
        let o = auth.check(Some(&h), "GET", "/p/k/805ec0aabbcc.cfg", Some(&cur), None, 1_000);
        prop_assert!(!matches!(o, Outcome::Current | Outcome::Previous), "{h:?} passed");
    }

    #[test]
    fn a_digest_answer_passes_once_and_a_changed_one_never(
        uri_tail in "[a-z0-9]{1,12}\\.cfg",
        flip in 0usize..200,
    ) {
        let auth = Authenticator::default();
        let cur = Credential { user: "prov".into(), password: "Prov-Secret-1-x".into() };
        let now = 5_000;
        let [digest_challenge, _] = auth.challenge(now);
        let nonce = digest_challenge
            .split("nonce=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_default()
            .to_string();
        let uri = format!("/p/k/{uri_tail}");
        let answer = phoneprov::auth::digest_answer(
            "prov", &cur.password, "GET", &uri, &nonce, "00000001", "c0ffee",
        );
        // A changed character in any value the answer is made of never passes.
        let field = ["response=\"", "nonce=\"", "cnonce=\"", "uri=\"", "nc="][flip % 5];
        let at = answer.find(field).map(|i| i + field.len()).unwrap_or(0);
        let mut bad = answer.clone().into_bytes();
        let i = at + (flip / 5) % 8;
        bad[i] = if bad[i] == b'1' { b'2' } else { b'1' };
        let bad = String::from_utf8(bad).unwrap();
        if bad != answer {
            let o = auth.check(Some(&bad), "GET", &uri, Some(&cur), None, now);
            prop_assert!(!matches!(o, Outcome::Current | Outcome::Previous), "{bad:?}");
        }
        let first = auth.check(Some(&answer), "GET", &uri, Some(&cur), None, now);
        prop_assert_eq!(first, Outcome::Current);
        let again = auth.check(Some(&answer), "GET", &uri, Some(&cur), None, now);
        prop_assert_eq!(again, Outcome::Replayed);
    }

    #[test]
    fn any_firmware_file_name_is_read_without_panic(s in hostile(), v in "[0-9.]{0,20}") {
        let _ = phoneprov::firmware::identify(&s);
        let _ = phoneprov::firmware::identify(&format!("T54W(T57W,T53W)-{v}.rom"));
        if let Some(ver) = phoneprov::firmware::Version::parse(&v) {
            prop_assert_eq!(phoneprov::firmware::Version::parse(&ver.to_string()), Some(ver));
        }
    }

    #[test]
    fn any_policy_file_loads_or_is_refused_with_a_reason(text in hostile(), rule in 0usize..4) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("firmware-policy.toml");
        let body = match rule {
            0 => text.clone(),
            1 => format!("[[deny]]\nversion = \"{}\"\n", text.replace(['"', '\\', '\n'], "")),
            2 => format!("[[allow]]\nmodels = [\"{}\"]\n", text.replace(['"', '\\', '\n'], "")),
            _ => format!("[[deny]]\nsha256 = \"{}\"\n", text.replace(['"', '\\', '\n'], "")),
        };
        std::fs::write(&path, &body).unwrap();
        match phoneprov::firmware::policy::Policy::load(&path) {
            Ok(p) => {
                // Whatever it says, the brick build stays denied.
                let v = p.check(&phoneprov::firmware::policy::Facts {
                    vendor: "yealink".into(),
                    version: phoneprov::firmware::Version::parse("96.86.0.20"),
                    models: vec!["T54W".into()],
                    sha256: None,
                    sha1: None,
                });
                prop_assert!(!v.allowed(), "{body:?} let 96.86.0.20 through");
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

/// A CSV cell: valid or not in the ways techs get them wrong.
fn cell(kind: usize, i: usize) -> String {
    match kind {
        0 => format!("805ec2{i:06x}"),
        1 => format!("80:5E:C2:00:{:02X}:{:02X}", i / 256 % 256, i % 256),
        2 => "not-a-mac".into(),
        3 => String::new(),
        4 => "T54W".into(),
        5 => "T99X".into(),
        6 => "\"quoted, with comma\"".into(),
        _ => "é\u{202e}".into(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: ProptestConfig::default().cases / 16,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_csv_import_applies_whole_or_changes_nothing(
        rows in prop::collection::vec((0usize..8, 0usize..8, 0usize..8), 1..20),
        header_ok: bool,
    ) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = common::open_store(dir.path()).await;
            let m = phoneprov::manage::Manager::open(store.clone(), "http://prov.test", dir.path())
                .unwrap();
            m.site_add(phoneprov::manage::SiteInput {
                name: "s".into(),
                sip_server: "pbx".into(),
                ..Default::default()
            })
            .await
            .unwrap();
            let mut csv = String::from(if header_ok { "mac,model,site,label\n" } else { "mack,model\n" });
            for (i, (a, b, c)) in rows.iter().enumerate() {
                csv.push_str(&format!("{},{},s,{}\n", cell(*a, i), cell(*b + 2, i), cell(*c, i)));
            }
            let count = || async {
                let mut c = store.conn().await.unwrap();
                phoneprov::store::list_phones(&mut c, None).await.unwrap().len()
            };
            let r = phoneprov::import::import(
                &m,
                &phoneprov::import::Input::Bytes(csv.clone().into()),
                &phoneprov::import::Options::default(),
                &phoneprov::import::Progress::none(),
            )
            .await;
            match r {
                Ok(report) if report.errors.is_empty() => {
                    prop_assert!(report.applied);
                    prop_assert_eq!(count().await as u64, report.created, "{}", csv);
                }
                Ok(report) => {
                    // Every mistake named by its line and column; nothing written.
                    prop_assert!(!report.applied);
                    prop_assert_eq!(count().await, 0, "a refused import changed something:\n{}", csv);
                    for e in &report.errors {
                        prop_assert!(e.line >= 1 && e.line <= rows.len() as u64 + 1, "{e:?}");
                        prop_assert!(!e.message.is_empty(), "{e:?}");
                    }
                }
                Err(e) => {
                    prop_assert_eq!(count().await, 0, "a failed import changed something:\n{}", csv);
                    prop_assert!(!e.to_string().is_empty());
                }
            }
            Ok(())
        })?;
    }
}
