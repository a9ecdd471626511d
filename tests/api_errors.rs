//! Every admin API error is JSON and names the API's own parameters; an unknown path is a 404,
//! not the phones' Digest challenge (issue: a typo popped a browser login box).

mod common;

use common::*;

#[tokio::test]
async fn every_admin_api_error_is_json() {
    let env = Env::new();
    env.seed();
    // A site with a login: phones' misses get a Digest challenge; the API must not.
    env.ok(&[
        "site",
        "update",
        "valleywide",
        "--auth-user",
        "prov-v",
        "--auth-password",
        "Prov-Secret-88",
    ]);
    let srv = env.start();
    let token = env.admin_token();
    let c = client();
    let api = |p: &str| srv.url(&format!("/api/v1{p}"));
    let cases = [
        (
            c.get(api("/sitez")).bearer_auth(&token),
            404,
            "no such admin API path",
        ),
        (
            c.post(api("/sites"))
                .bearer_auth(&token)
                .header("Content-Type", "text/plain")
                .body("x"),
            415,
            "Content-Type",
        ),
        (
            c.post(api("/sites"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"name": "x"})),
            422,
            "sip_server",
        ),
        (
            c.put(api("/sites")).bearer_auth(&token),
            405,
            "Method Not Allowed",
        ),
        (
            c.delete(api("/sites/valleywide")).bearer_auth(&token),
            409,
            "?force=true",
        ),
        (c.get(api("/sites")), 401, "admin token"),
    ];
    for (rq, status, want) in cases {
        let r = rq.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{want}");
        assert!(
            r.headers()[reqwest::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{status} is JSON"
        );
        assert!(
            r.headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .is_none_or(|v| !v.to_str().unwrap().starts_with("Digest"))
        );
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(v["error"].as_str().unwrap().contains(want), "{status}: {v}");
    }
}
