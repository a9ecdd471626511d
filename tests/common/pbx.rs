//! Fake PBXes holding the recorded shapes: NetSapiens v2 with v44 field names, v2 with v45 names
//! (and one record in v44 spelling: live servers mix them), v1, and SARK V6. They enforce auth
//! (a bad key gets 401/403; an expired OAuth token gets 401 until refreshed), page (at most
//! `page` records whatever `limit` asks), and rate-limit (429 with `RateLimit` headers).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Query, State as Shared};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const DOMAIN: &str = "acme.pbx";
pub const API_KEY: &str = "nsd_good_key_1";
pub const CLIENT_ID: &str = "client-1";
pub const CLIENT_SECRET: &str = "client-secret-1";
pub const USERNAME: &str = "admin@acme.pbx";
pub const PASSWORD: &str = "oauth-pass-1";
pub const SARK_TOKEN: &str = "sark-token-1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    V2v44,
    V2v45,
    V1,
    Sark,
}

/// A phone on the PBX: MAC, model, lines (extension, password, name).
#[derive(Debug, Clone)]
pub struct Ph {
    pub mac: String,
    pub model: String,
    pub lines: Vec<(String, String, String)>,
}

#[derive(Debug)]
pub struct State {
    pub flavor: Flavor,
    pub phones: Vec<Ph>,
    /// Records returned per page at most.
    pub page: usize,
    /// Requests answered before a 429 (then the count starts again); 0: no limit.
    pub burst: usize,
    pub served_since_429: usize,
    /// Tokens and how many calls each may still make.
    pub tokens: HashMap<String, u32>,
    pub token_uses: u32,
    pub issued: u32,
    pub refreshes: u32,
    /// Turn every record answer into 500 (a PBX that is down).
    pub down: bool,
    /// A record the client must refuse.
    pub malformed: bool,
    pub requests: u32,
    pub rejected: HashMap<u16, u32>,
}

impl State {
    pub fn new(flavor: Flavor) -> State {
        State {
            flavor,
            phones: vec![
                Ph {
                    mac: "805ec0aa0001".into(),
                    model: "Yealink SIP-T54W".into(),
                    lines: vec![("101x".into(), "pw-101-aaaa".into(), "Front Desk".into())],
                },
                Ph {
                    mac: "805ec0aa0002".into(),
                    model: "Yealink SIP-T46U".into(),
                    lines: vec![
                        ("102x".into(), "pw-102-bbbb".into(), "Sales".into()),
                        ("103x".into(), "pw-103-cccc".into(), "Sales 2".into()),
                    ],
                },
                Ph {
                    mac: "0004f2aa0003".into(),
                    model: "Polycom VVX450".into(),
                    lines: vec![("104x".into(), "pw-104-dddd".into(), "Conference".into())],
                },
                Ph {
                    mac: "001122aa0004".into(),
                    model: "Cisco SPA504G".into(),
                    lines: vec![("105x".into(), "pw-105-eeee".into(), "Old Phone".into())],
                },
                Ph {
                    mac: "805ec0aa0005".into(),
                    model: "Yealink SIP-T54W".into(),
                    lines: vec![("106x".into(), "pw-106-ffff".into(), "Back Office".into())],
                },
            ],
            page: 2,
            burst: 0,
            served_since_429: 0,
            tokens: HashMap::new(),
            token_uses: 1000,
            issued: 0,
            refreshes: 0,
            down: false,
            malformed: false,
            requests: 0,
            rejected: HashMap::new(),
        }
    }
}

pub struct Fake {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
}

impl Fake {
    pub fn start(state: State) -> Fake {
        let state = Arc::new(Mutex::new(state));
        let s2 = state.clone();
        let addr = super::serve_fake(axum::Router::new().fallback(handle).with_state(s2));
        Fake { addr, state }
    }
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

fn err(st: &mut State, status: u16, msg: &str) -> Response {
    *st.rejected.entry(status).or_default() += 1;
    (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({"code": status, "message": msg})),
    )
        .into_response()
}

fn paged(st: &State, q: &HashMap<String, String>, all: Vec<Value>) -> Response {
    let start: usize = q.get("start").and_then(|s| s.parse().ok()).unwrap_or(0);
    let limit: usize = q.get("limit").and_then(|s| s.parse().ok()).unwrap_or(100);
    let n = limit.min(st.page);
    axum::Json(Value::Array(all.into_iter().skip(start).take(n).collect())).into_response()
}

fn mint(st: &mut State) -> Value {
    st.issued += 1;
    let (a, r) = (format!("at-{}", st.issued), format!("rt-{}", st.issued));
    st.tokens.insert(a.clone(), st.token_uses);
    json!({"access_token": a, "refresh_token": r, "expires_in": 3600, "token_type": "Bearer", "domain": DOMAIN})
}

/// Checks a token grant (JSON for v2, form for the legacy endpoint).
fn grant(st: &mut State, f: &HashMap<String, String>) -> Response {
    let g = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    if g("client_id") != CLIENT_ID || g("client_secret") != CLIENT_SECRET {
        return err(st, 401, "invalid client");
    }
    match g("grant_type") {
        "password" if g("username") == USERNAME && g("password") == PASSWORD => {
            axum::Json(mint(st)).into_response()
        }
        "refresh_token" if g("refresh_token").starts_with("rt-") => {
            st.refreshes += 1;
            axum::Json(mint(st)).into_response()
        }
        _ => err(st, 401, "invalid grant"),
    }
}

fn authorised(st: &mut State, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(t) = auth.strip_prefix("Bearer ") else {
        return Err(Box::new(err(st, 401, "no credentials")));
    };
    if st.flavor == Flavor::Sark {
        return if t == SARK_TOKEN {
            Ok(())
        } else {
            Err(Box::new(err(st, 401, "bad token")))
        };
    }
    if t == API_KEY {
        return Ok(());
    }
    if t.starts_with("nsd_") || t.starts_with("nsr_") {
        return Err(Box::new(err(st, 403, "key not allowed")));
    }
    match st.tokens.get_mut(t) {
        Some(n) if *n > 0 => {
            *n -= 1;
            Ok(())
        }
        Some(_) => Err(Box::new(err(st, 401, "token expired"))),
        None => Err(Box::new(err(st, 401, "invalid token"))),
    }
}

fn ns_phone(st: &State, i: usize, p: &Ph) -> Value {
    let v45 = st.flavor == Flavor::V2v45 && i != 1; // record 1 keeps the v44 spelling
    let mut o = serde_json::Map::new();
    if v45 {
        o.insert(
            "device-provisioning-mac-address".into(),
            json!(p.mac.to_uppercase()),
        );
        o.insert("device-models-brand-and-model".into(), json!(p.model));
        o.insert(
            "device-provisioning-registration-core-server".into(),
            json!("core1.pbx.example"),
        );
        o.insert(
            "device-provisioning-sip-transport-protocol".into(),
            json!("udp"),
        );
        for n in 1..=4 {
            let v = p
                .lines
                .get(n - 1)
                .map(|l| format!("sip:{}@{DOMAIN}", l.0))
                .unwrap_or_else(|| "n/a".into());
            o.insert(format!("device-provisioning-sip-uri-{n}"), json!(v));
        }
    } else {
        o.insert("mac".into(), json!(p.mac));
        o.insert("model".into(), json!(p.model));
        o.insert("server".into(), json!("core1.pbx.example"));
        o.insert("transport".into(), json!("udp"));
        for n in 1..=8 {
            let v = p
                .lines
                .get(n - 1)
                .map(|l| format!("sip:{}@{DOMAIN}", l.0))
                .unwrap_or_default();
            o.insert(format!("device{n}"), json!(v));
        }
    }
    let _ = i;
    Value::Object(o)
}

fn ns_devices(st: &State, owner: Option<&str>) -> Vec<Value> {
    let mut out = Vec::new();
    for p in &st.phones {
        for (n, (ext, pw, name)) in p.lines.iter().enumerate() {
            let user = ext.trim_end_matches('x');
            if owner.is_some_and(|o| o != user) {
                continue;
            }
            let mut d = json!({"device": ext, "user": user, "device-sip-registration-uri": format!("sip:{ext}@{DOMAIN}"),
                "device-sip-registration-password": pw, "name-full-name": format!("{name} (device)"),
                "device-provisioning-mac-address": p.mac, "device-provisioning-line": (n + 1).to_string()});
            if st.malformed && ext == "101x" {
                d.as_object_mut()
                    .unwrap()
                    .remove("device-sip-registration-password");
            }
            out.push(d);
        }
    }
    out
}

fn ns_users(st: &State) -> Vec<Value> {
    st.phones
        .iter()
        .flat_map(|p| p.lines.iter())
        .map(|(ext, _, name)| json!({"user": ext.trim_end_matches('x'), "caller-id-name": name}))
        .collect()
}

async fn handle(
    Shared(state): Shared<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut g = state.lock().unwrap();
    let st = &mut *g;
    st.requests += 1;
    if st.burst > 0 {
        if st.served_since_429 >= st.burst {
            st.served_since_429 = 0;
            *st.rejected.entry(429).or_default() += 1;
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    ("RateLimit", "limit=60, remaining=0, reset=1"),
                    ("RateLimit-Policy", "60;w=60"),
                ],
                "slow down",
            )
                .into_response();
        }
        st.served_since_429 += 1;
    }
    let path = uri.path().to_string();
    let v2 = matches!(st.flavor, Flavor::V2v44 | Flavor::V2v45);
    if !v2 && path.starts_with("/ns-api/v2/") {
        return err(st, 404, "no such API");
    }
    match (st.flavor, method.as_str(), path.as_str()) {
        (_, "GET", "/ns-api/v2/version") if v2 => return axum::Json(json!({"apiversion": if st.flavor == Flavor::V2v45 { "45.1" } else { "44.2" }, "hostname": "core1"})).into_response(),
        (_, "POST", "/ns-api/v2/tokens") if v2 => {
            let f: HashMap<String, String> = serde_json::from_slice(&body).unwrap_or_default();
            return grant(st, &f);
        }
        (Flavor::V1, "POST", "/ns-api/oauth2/token/") => {
            let f: HashMap<String, String> = url_form(&body);
            return grant(st, &f);
        }
        _ => {}
    }
    if let Err(r) = authorised(st, &headers) {
        return *r;
    }
    if st.down {
        return err(st, 500, "core unavailable");
    }
    let dom = format!("/ns-api/v2/domains/{DOMAIN}");
    match (st.flavor, method.as_str()) {
        (Flavor::V2v44 | Flavor::V2v45, "GET") => {
            if path == format!("{dom}/phones") {
                let all = st
                    .phones
                    .iter()
                    .enumerate()
                    .map(|(i, p)| ns_phone(st, i, p))
                    .collect();
                return paged(st, &q, all);
            }
            if path == format!("{dom}/users") {
                return paged(st, &q, ns_users(st));
            }
            if path == format!("{dom}/devices") && st.flavor == Flavor::V2v45 {
                return paged(st, &q, ns_devices(st, None));
            }
            if let Some(u) = path
                .strip_prefix(&format!("{dom}/users/"))
                .and_then(|r| r.strip_suffix("/devices"))
            {
                let d = ns_devices(st, Some(u));
                return paged(st, &q, d);
            }
            err(st, 404, "not found")
        }
        (Flavor::V1, "POST") if path == "/ns-api/" => {
            if q.get("domain").map(String::as_str) != Some(DOMAIN)
                || q.get("format").map(String::as_str) != Some("json")
            {
                return err(st, 400, "domain and format=json required");
            }
            match (
                q.get("object").map(String::as_str),
                q.get("action").map(String::as_str),
            ) {
                (Some("mac"), Some("list")) => {
                    let all: Vec<Value> = st.phones.iter().map(|p| {
                        let mut o = json!({"mac": p.mac, "model": p.model, "server": "core1.pbx.example", "transport": "udp"});
                        for (n, l) in p.lines.iter().enumerate() {
                            o[format!("device{}", n + 1)] = json!(format!("sip:{}@{DOMAIN}", l.0));
                        }
                        o
                    }).collect();
                    axum::Json(Value::Array(all)).into_response()
                }
                (Some("device"), Some("read")) => {
                    let mut all = Vec::new();
                    for p in &st.phones {
                        for (n, (ext, pw, name)) in p.lines.iter().enumerate() {
                            let mut d = json!({"aor": format!("sip:{ext}@{DOMAIN}"), "mac": p.mac, "model": p.model,
                                "line": (n + 1).to_string(), "authentication_key": pw, "sub_fullname": name});
                            if st.malformed && n == 0 && p.mac.ends_with("0001") {
                                d.as_object_mut().unwrap().remove("authentication_key");
                            }
                            all.push(d);
                        }
                    }
                    axum::Json(Value::Array(all)).into_response()
                }
                _ => err(st, 400, "unknown object/action"),
            }
        }
        (Flavor::Sark, "GET") if path == "/api/extensions" => {
            let mut all = vec![
                json!({"pkey": "300", "passwd": "no-phone", "desc": "Softphone", "macaddr": "", "cluster": "acme"}),
            ];
            for p in &st.phones {
                let (brand, model) = p.model.split_once(' ').unwrap_or(("", &p.model));
                for (ext, pw, name) in &p.lines {
                    all.push(json!({"pkey": ext.trim_end_matches('x'), "passwd": pw, "desc": name, "macaddr": p.mac.to_uppercase(),
                        "device": brand, "devicemodel": model.trim_start_matches("SIP-"), "cluster": "acme", "transport": "udp", "active": "YES"}));
                }
            }
            all.push(json!({"pkey": "900", "passwd": "x", "desc": "Other tenant", "macaddr": "805ec0ffffff", "device": "Yealink", "devicemodel": "T54W", "cluster": "other"}));
            if st.malformed {
                all.push(json!({"pkey": "901", "desc": "No secret", "macaddr": "805ec0aa0009", "device": "Yealink", "devicemodel": "T54W", "cluster": "acme"}));
            }
            axum::Json(Value::Array(all)).into_response()
        }
        (Flavor::Sark, "GET") if path == "/api/sysglobals" => axum::Json(
            json!({"FQDN": "core1.pbx.example", "LOCALIP": "10.0.0.5", "BINDPORT": "5060"}),
        )
        .into_response(),
        _ => err(st, 404, "not found"),
    }
}

fn url_form(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.replace('+', " ");
    let mut out = Vec::new();
    let bytes = b.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&b[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}
