//! Property: whatever the fleet — random sites, models, setting layers (reserved keys written
//! straight into the database included) and assignments (including ones the verbs refuse) —
//! no rendered file points at an image the policy denies, and every firmware reference names
//! an allowed stored image that fits the phone.

mod common;

use std::collections::HashSet;

use common::rng::Rng;

use phoneprov::manage::{LineInput, Manager, PhoneInput, SiteInput};

const IMAGES: &[&str] = &[
    "T54W(T57W,T53W,T53)-96.86.0.20.rom",
    "T54W(T57W,T53W,T53)-96.86.0.47.rom",
    "T54W(T57W,T53W,T53)-96.86.0.50.rom",
    "T54W-96.86.0.60.rom",
    "T46U(T43U,T46U,T48U,T42U)-108.86.0.70.rom",
    "T46U(T43U,T46U,T48U,T42U)-108.86.0.90.rom",
    "T31(T30,T30P,T31G,T33G)-124.86.0.41.rom",
    "T31(T30,T30P,T31G,T33G)-124.86.0.75.rom",
];
const MODELS: &[&str] = &[
    "T54W", "T57W", "T53W", "T46U", "T43U", "T33G", "T31G", "VVX_450", "VVX_250", "SPIP_550",
    "VVX_601",
];
const KEYS: &[&str] = &[
    "static.firmware.url",
    "firmware.url",
    "static.auto_provision.server.url",
    "upgrade.custom.server.url",
    "device.prov.serverName",
    "features.dnd.enable",
    "lang.gui",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_rendered_file_points_at_a_denied_image() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for round in 0..12 {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_path_buf();
        let store = common::open_store(&data).await;
        let m = Manager::open(store.clone(), "http://prov.test", &data).unwrap();
        // Images: all but the shipped-denied build go through the verb; that one is forced in.
        let up = tempfile::tempdir().unwrap();
        let mut digests = Vec::new();
        let mut bad_bytes = Vec::new();
        for (i, name) in IMAGES.iter().enumerate() {
            let bytes: Vec<u8> = (0..2000 + i * 10)
                .map(|k| (k * 31 + i * 7 + round) as u8)
                .collect();
            let path = up.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            if name.contains("96.86.0.20") {
                assert!(
                    m.firmware_add(&path, None, &[]).await.is_err(),
                    "the bricking build is never stored"
                );
                bad_bytes = bytes.clone();
            } else {
                let img = m.firmware_add(&path, None, &[]).await.unwrap();
                digests.push((name.to_string(), img.sha256));
            }
        }
        let polycom: Vec<u8> = (0..3000).map(|k| (k * 13 + round) as u8).collect();
        std::fs::write(up.path().join("sip.ld"), &polycom).unwrap();
        let poly = m
            .firmware_add(
                &up.path().join("sip.ld"),
                Some("6.4.3.5156"),
                &["VVX_450".into(), "VVX_250".into()],
            )
            .await
            .unwrap();
        // The refused bytes again, under random names and declared identities: never stored,
        // never judged allowed (by the catalogue, the remembered digest or the policy).
        for k in 0..8 {
            let name = format!(
                "{}{}",
                rng.pick(&[
                    "renamed-good",
                    "T54W-96.86.0.71",
                    "T46U(T43U)-108.86.0.91",
                    "x",
                    "T31-124.86.0.80"
                ]),
                rng.pick(&[".rom", ".bin", ".sip.ld", ".ROM"])
            );
            let version = *rng.pick(&[
                None,
                Some("96.86.0.45"),
                Some("96.86.0.71"),
                Some("108.86.0.91"),
                Some("6.4.3.5156"),
            ]);
            let models: Vec<String> = rng
                .pick(&[
                    &[][..],
                    &["T54W"][..],
                    &["T46U"][..],
                    &["VVX_450"][..],
                    &["T53W", "T57W"][..],
                ])
                .iter()
                .map(|m| m.to_string())
                .collect();
            let dir = up.path().join(format!("again{k}"));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(&name);
            std::fs::write(&path, &bad_bytes).unwrap();
            let said = format!("round {round}: {name} --version {version:?} --models {models:?}");
            if let Ok(c) = m.firmware_check(&path, version, &models).await {
                assert!(!c.verdict.allowed(), "{said}: judged allowed");
            }
            assert!(
                m.firmware_add(&path, version, &models).await.is_err(),
                "{said}: stored"
            );
        }
        let bad_sha = phoneprov::firmware::content::Content::of_bytes(&bad_bytes).sha256;
        assert!(
            m.firmware_list()
                .await
                .unwrap()
                .iter()
                .all(|i| i.image.sha256 != bad_sha),
            "round {round}: the refused bytes were stored"
        );
        let mut db = common::db_of(&store).await;
        sqlx::query("INSERT INTO firmware (sha256, vendor, version, models, size, file_name, added_at) VALUES ($1, 'yealink', '96.86.0.20', 'T54W T57W T53W T53', 300000, 'T54W-96.86.0.20.rom', 0)")
            .bind("b".repeat(64))
            .execute(&mut db)
            .await
            .unwrap();

        // The fleet.
        let mut phones = Vec::new();
        for s in 0..4 {
            let site = format!("s{s}");
            m.site_add(SiteInput {
                name: site.clone(),
                sip_server: "pbx".into(),
                transport: None,
                time_zone: None,
                ntp: vec![],
                allow_keyless: false,
                ymcs_site: None,
                ..Default::default()
            })
            .await
            .unwrap();
            for p in 0..8 {
                let model = rng.pick(MODELS).to_string();
                let mac = format!("805ec0{:02x}{:02x}{:02x}", round, s, p);
                m.phone_add(PhoneInput {
                    mac: mac.clone(),
                    model: model.clone(),
                    site: site.clone(),
                    label: None,
                    ..Default::default()
                })
                .await
                .unwrap();
                m.line_set(
                    &mac,
                    1,
                    LineInput {
                        user: "1".into(),
                        auth_user: None,
                        password: "pw".into(),
                        display_name: None,
                        label: None,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
                phones.push((mac, model, s));
            }
        }
        // Random assignments and settings, straight into the database (no verb's checks).
        let shas: Vec<String> = digests
            .iter()
            .map(|(_, d)| d.clone())
            .chain([poly.sha256.clone(), "b".repeat(64)])
            .collect();
        for _ in 0..30 {
            let sha = rng.pick(&shas).clone();
            let (mac, model, s) = rng.pick(&phones).clone();
            let q = match rng.next() % 3 {
                0 => sqlx::query("INSERT INTO firmware_assign (site_id, model, mac, sha256) VALUES ((SELECT id FROM sites WHERE name = $1), NULL, NULL, $2) ON CONFLICT ((coalesce(site_id, 0)), (coalesce(model, '')), (coalesce(mac, ''))) DO UPDATE SET sha256 = excluded.sha256").bind(format!("s{s}")).bind(sha),
                1 => sqlx::query("INSERT INTO firmware_assign (site_id, model, mac, sha256) VALUES ((SELECT id FROM sites WHERE name = $1), $2, NULL, $3) ON CONFLICT ((coalesce(site_id, 0)), (coalesce(model, '')), (coalesce(mac, ''))) DO UPDATE SET sha256 = excluded.sha256").bind(format!("s{s}")).bind(model).bind(sha),
                _ => sqlx::query("INSERT INTO firmware_assign (site_id, model, mac, sha256) VALUES (NULL, NULL, $1, $2) ON CONFLICT ((coalesce(site_id, 0)), (coalesce(model, '')), (coalesce(mac, ''))) DO UPDATE SET sha256 = excluded.sha256").bind(mac.clone()).bind(sha),
            };
            let _ = q.execute(&mut db).await;
            let key = rng.pick(KEYS).to_string();
            let value = format!("http://evil.example/{}", rng.pick(IMAGES));
            let q = if rng.chance(50) {
                sqlx::query("INSERT INTO settings (site_id, key, value) VALUES ((SELECT id FROM sites WHERE name = $1), $2, $3) ON CONFLICT DO NOTHING").bind(format!("s{s}")).bind(key).bind(value)
            } else {
                sqlx::query("INSERT INTO settings (mac, key, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                    .bind(mac)
                    .bind(key)
                    .bind(value)
            };
            q.execute(&mut db).await.unwrap();
        }
        // The operator's policy, written after the images were stored: now some are denied.
        std::fs::write(data.join("firmware-policy.toml"), format!(
            "[[deny]]\nvendor = \"yealink\"\nversions = [\"96.86.0.50\"]\n\n[[deny]]\nvendor = \"yealink\"\nrange = {{ from = \"108.86.0.60\", to = \"108.86.0.80\" }}\n\n[[minimum]]\nvendor = \"yealink\"\nmodels = [\"T33G\", \"T31G\"]\nversion = \"124.86.0.50\"\n\n[[deny]]\nvendor = \"polycom\"\nsha256 = [\"{}\"]\n",
            if round % 2 == 0 { poly.sha256.clone() } else { "c".repeat(64) }
        )).unwrap();
        let m = Manager::open(store.clone(), "http://prov.test", &data).unwrap();
        let policy = m.policy.get();
        let stored = m.firmware_list().await.unwrap();
        let denied: HashSet<String> = stored
            .iter()
            .filter(|i| !i.verdict.allowed())
            .map(|i| i.image.file_name.clone())
            .collect();
        let allowed: Vec<_> = stored
            .iter()
            .filter(|i| i.verdict.allowed())
            .map(|i| i.image.clone())
            .collect();
        assert!(
            denied.contains("T54W-96.86.0.20.rom") && denied.len() >= 4,
            "round {round}: {denied:?}"
        );
        let policy_now = policy;

        for (mac, model, _) in &phones {
            for (name, bytes) in m.render_phone(mac).await.unwrap() {
                let text = String::from_utf8_lossy(&bytes);
                // Keys that choose firmware or the provisioning server carry only phoneprov's values.
                for l in text.lines() {
                    if let Some((k, _)) = l.split_once(" = ")
                        && phoneprov::catalog::Catalog::get()
                            .reserved_by(k.trim())
                            .is_some()
                    {
                        assert!(
                            !l.contains("evil.example"),
                            "round {round}, {mac} {name}: {l}"
                        );
                    }
                }
                assert!(
                    !text.contains("upgrade.custom.server.url")
                        && !text.contains("evil.example/T54W-96.86.0.20"),
                    "round {round}, {mac} {name}:\n{text}"
                );
                // Every image named anywhere in the file is one the policy allows.
                if let Some(why) = policy_now.denied_in_text(&text) {
                    panic!("round {round}, {mac} {name} names a denied image ({why}):\n{text}");
                }
                let refs: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("static.firmware.url = "))
                    .chain(
                        text.split("APP_FILE_PATH=\"")
                            .skip(1)
                            .filter_map(|r| r.split('"').next())
                            // An empty path names no image.
                            .filter(|v| !v.is_empty()),
                    )
                    .collect();
                for r in refs {
                    let file = r.rsplit('/').next().unwrap_or(r);
                    let image = allowed.iter().find(|i| i.file_name == file);
                    let image = image.unwrap_or_else(|| {
                        panic!("round {round}, {mac} {name}: '{r}' is no allowed image")
                    });
                    assert!(
                        image.models.contains(model),
                        "round {round}, {mac}: {} does not fit a {model}",
                        image.file_name
                    );
                }
            }
        }
        store.close().await;
    }
}
