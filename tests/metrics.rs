//! `GET /metrics`: Prometheus text that counts what phones asked for over HTTP and TFTP, open
//! to the host itself, closed to other addresses without an admin token.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use common::*;

/// Parses the exposition format strictly enough: every sample line is `name{labels} value`
/// with a float value, every metric has HELP/TYPE lines. Returns samples by their full name.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim_start();
            assert!(
                rest.starts_with("HELP ") || rest.starts_with("TYPE "),
                "comment line: {line}"
            );
            continue;
        }
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number in {line}"));
        let base = name.split('{').next().unwrap();
        assert!(
            base.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name {base}"
        );
        out.insert(name.to_string(), v);
    }
    out
}

fn from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_by_transport_kind_and_result() {
    let env = Env::new();
    let key = env.seed();
    let token = env.admin_token();
    let srv = env.start();
    let base = srv.url(&format!("/p/{key}"));
    for f in [
        format!("{T54W_MAC}.boot"),
        "y000000000096.cfg".into(),
        format!("{T54W_MAC}.cfg"),
        format!("{T54W_MAC}.cfg"),
        format!("{T54W_MAC}.cfg"),
    ] {
        let (st, _) = get(&format!("{base}/{f}"), T54W_UA).await;
        assert_eq!(st, 200, "{f}");
    }
    let (st, _) = get(&format!("{base}/805ec0000000.cfg"), T54W_UA).await;
    assert_eq!(st, 404);
    // One TFTP transfer.
    let out = tempfile::tempdir().unwrap();
    let (host, port) = srv.tftp.split_once(':').unwrap();
    let o = Command::new("tftp")
        .args(["-m", "binary", host, port, "-c", "get"])
        .arg(format!("p/{key}/{T54W_MAC}.cfg"))
        .arg(out.path().join("a.cfg"))
        .output()
        .unwrap();
    assert!(o.status.success());

    let text = eventually(Duration::from_secs(5), || async {
        let r = from("127.0.0.1")
            .get(srv.url("/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the host itself reads metrics");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let t = r.text().await.unwrap();
        // The cache's figures are read every half second.
        let cached = samples(&t)
            .get("phoneprov_file_cache_lookups_total{from=\"memory\"}")
            .is_some_and(|n| *n >= 1.0);
        (t.contains("phoneprov_tftp_transfers_total{end=\"done\"}") && cached).then_some(t)
    })
    .await
    .expect("the TFTP transfer is counted")
    .0;
    let s = samples(&text);
    let req = |t: &str, k: &str, r: &str| {
        s.get(&format!(
            "phoneprov_requests_total{{transport=\"{t}\",kind=\"{k}\",result=\"{r}\"}}"
        ))
        .copied()
        .unwrap_or(0.0)
    };
    assert_eq!(req("http", "per_mac", "served"), 3.0, "{text}");
    assert_eq!(req("http", "boot", "served"), 1.0);
    assert_eq!(req("http", "common", "served"), 1.0);
    assert_eq!(req("http", "per_mac", "not_found"), 1.0);
    assert_eq!(req("tftp", "per_mac", "served"), 1.0);
    assert_eq!(s["phoneprov_tftp_transfers_total{end=\"done\"}"], 1.0);
    assert!(s["phoneprov_tftp_bytes_sent_total"] > 100.0);
    assert_eq!(s["phoneprov_tftp_transfers_active"], 0.0);
    assert!(s["phoneprov_snapshot_files"] >= 5.0, "{text}");
    // A phone's files come from disk until its fourth read (kept then), then from memory:
    // the TFTP transfer was its fifth.
    let lookups = |from: &str| {
        s.get(&format!(
            "phoneprov_file_cache_lookups_total{{from=\"{from}\"}}"
        ))
        .copied()
        .unwrap_or(0.0)
    };
    assert_eq!(lookups("disk"), 4.0, "{text}");
    assert_eq!(lookups("memory"), 1.0, "{text}");
    assert!(s["phoneprov_file_cache_bytes"] > 0.0, "{text}");
    // The latency histogram has the buckets it was given, and every phone request is in it.
    assert_eq!(
        s["phoneprov_request_duration_seconds_count{transport=\"http\"}"], 6.0,
        "{text}"
    );
    assert!(s.contains_key(
        "phoneprov_request_duration_seconds_bucket{transport=\"http\",le=\"0.0001\"}"
    ));
    assert!(text.contains("# HELP phoneprov_requests_total"));

    // Another address: refused without the admin token, served with it.
    let other = from("127.0.0.2");
    let r = other.get(srv.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(!r.text().await.unwrap().contains("phoneprov_requests_total"));
    let r = other
        .get(srv.url("/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_open_serves_every_address() {
    let env = Env::new();
    env.seed();
    let srv = env.start_with(&["--metrics-open"]);
    let r = from("127.0.0.2")
        .get(srv.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    samples(&r.text().await.unwrap());
}
