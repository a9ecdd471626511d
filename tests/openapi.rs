//! The admin API's OpenAPI document (`GET /api/v1/openapi.json`) against the running server:
//! every documented operation is served (with the token; 401 without), every served route is
//! documented, and the document is a well-formed OpenAPI 3.1 one whose references resolve.
//! `scripts/api-check` goes further with schemathesis (generated requests, answers checked
//! against the document).

mod common;

use std::collections::BTreeSet;

use common::*;

/// The document, fetched without a token.
async fn document(srv: &Server) -> serde_json::Value {
    let r = client()
        .get(srv.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the document is open");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    r.json().await.unwrap()
}

/// Every (method, path) the document lists.
fn operations(doc: &serde_json::Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(method).is_some() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// Every `$ref` in a JSON value.
fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => refs(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_documented_operation_is_served_and_gated() {
    let env = Env::new();
    env.seed();
    let srv = env.start();
    let token = env.admin_token();
    let doc = document(&srv).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "phoneprov admin API");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        doc["components"]["securitySchemes"]["admin_token"]["scheme"],
        "bearer"
    );
    let mut dangling = Vec::new();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").expect("local ref");
        if doc["components"]["schemas"].get(name).is_none() {
            dangling.push(r);
        }
    }
    assert!(dangling.is_empty(), "unresolved references: {dangling:?}");

    let ops = operations(&doc);
    assert!(ops.len() >= 27, "{} operations: {ops:?}", ops.len());
    let c = client();
    for (method, path) in &ops {
        let concrete = path
            .replace("{mac}", T54W_MAC)
            .replace("{n}", "1")
            .replace("{op}", "register")
            .replace("{name}", "valleywide");
        let url = srv.url(&concrete);
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        // Without a token: refused, except the document itself.
        let anon = c.request(m.clone(), &url).send().await.unwrap();
        let open = path == "/api/v1/openapi.json";
        let want_open = doc["paths"][path][method.to_lowercase()]["security"]
            .as_array()
            .is_some_and(|s| {
                s.iter()
                    .any(|x| x.as_object().is_some_and(|o| o.is_empty()))
            });
        assert_eq!(open, want_open, "{method} {path}: security in the document");
        match open {
            true => assert_eq!(anon.status(), 200, "{method} {path}"),
            false => assert_eq!(anon.status(), 401, "{method} {path} without a token"),
        }
        // With it: routed (not the API's 404 for unknown paths, not 405).
        let r = c.request(m, &url).bearer_auth(&token).send().await.unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert!(
            !body.contains("no such admin API path"),
            "{method} {path} is documented but not served: {status} {body}"
        );
        let documented = doc["paths"][path][method.to_lowercase()]["responses"]
            .as_object()
            .unwrap()
            .contains_key(&status.to_string());
        assert!(
            documented,
            "{method} {path} answered {status}, not in the document: {body}"
        );
    }
}

/// The other way: nothing is routed under `/api/v1` but through `routes!`, which takes each
/// route from its handler's `#[utoipa::path]`; and every handler described is in the document.
#[tokio::test]
async fn every_served_route_is_documented() {
    let env = Env::new();
    let srv = env.start();
    let doc = document(&srv).await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/serve");
    let mut described = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        described += text.matches("#[utoipa::path(").count();
        if path.file_name().unwrap() == "admin_api.rs" {
            let gate = text.find("fn routes(").expect("routes()");
            let body = &text[gate..text[gate..].find("\n}\n").unwrap() + gate];
            assert!(
                !body.contains(".route(")
                    && !body.contains(".nest_service(")
                    && !body.contains(".route_service("),
                "an admin route is added without its description: use routes!(handler) with #[utoipa::path]"
            );
        }
    }
    assert_eq!(
        operations(&doc).len(),
        described,
        "every #[utoipa::path] handler is routed, and every route is described"
    );
}
