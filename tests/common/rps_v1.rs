//! A strict fake of Yealink's RPS management API (v1). Every request's signature is recomputed
//! from the raw bytes received, and a wrong `Content-MD5`, a stale timestamp, a reused nonce, a
//! missing header or a wrong key is refused. Shapes and where they come from:
//! - signing, headers and the string to sign: nemerald-voip/fspbx
//!   `app/Services/YealinkRpsRequestSigner.php` (domain.md §5);
//! - the envelope `{ret, data, error: {msg, fieldErrors: [{msg}]}}`, `ret >= 0` success, and the
//!   calls `server/list` `{skip, limit, autoCount}` → `data: {total, data}`, `server/add` →
//!   `data.id`, `device/list` (devices with `id`, `serverId`, `mac`), `device/add`
//!   `{macs, serverId}`, `device/delete` `{macs}`: fspbx `YealinkRpsCloudProvider.php` as
//!   summarised in domain.md §5.
//!
//! Failures are answered the way that client reads them: HTTP 200 with `ret < 0`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

pub const KEY_ID: &str = "RPS-AK-7";
pub const SECRET: &str = "rps-secret-very-long-1";

#[derive(Debug, Clone)]
pub struct Server {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub auth_name: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Default)]
pub struct State {
    pub servers: Vec<Server>,
    /// MAC → server id.
    pub devices: HashMap<String, i64>,
    /// MACs another organisation owns: `device/add` fails with this message.
    pub foreign: HashSet<String>,
    /// Answer the next call to a path with `ret = -1` and this message.
    pub fail_next: HashMap<String, String>,
    // Records.
    pub nonces: HashSet<String>,
    pub calls: Vec<String>,
    pub refused: Vec<String>,
}

pub struct Fake {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
}

impl Fake {
    pub fn start(state: State) -> Fake {
        let state = Arc::new(Mutex::new(state));
        let addr = super::serve_fake(
            axum::Router::new()
                .fallback(handle)
                .with_state(state.clone()),
        );
        Fake { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

fn fail(st: &mut State, why: &str) -> Response {
    st.refused.push(why.to_string());
    axum::Json(json!({"ret": -1, "data": null, "error": {"msg": why, "fieldErrors": []}}))
        .into_response()
}

fn ok(data: Value) -> Response {
    axum::Json(json!({"ret": 0, "data": data, "error": null})).into_response()
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Recomputes the signature the way the documented signer builds it.
fn expected_signature(
    method: &str,
    headers: &[(&str, String)],
    path: &str,
    query: Option<&str>,
) -> String {
    use hmac::Mac;
    let mut h: Vec<&(&str, String)> = headers.iter().collect();
    h.sort_by(|a, b| a.0.cmp(b.0));
    let mut s = format!(
        "{method}\n{}\n{}",
        h.iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join("\n"),
        path.trim_start_matches('/')
    );
    if let Some(q) = query {
        let mut parts: Vec<&str> = q.split('&').filter(|p| !p.is_empty()).collect();
        parts.sort();
        s.push('\n');
        s.push_str(&parts.join("&"));
    }
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    m.update(s.as_bytes());
    b64(&m.finalize().into_bytes())
}

fn norm(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    (s.len() == 12
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then(|| s.to_string())
}

async fn handle(
    Shared(state): Shared<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut g = state.lock().unwrap();
    let st = &mut *g;
    let path = uri.path().to_string();
    st.calls.push(path.clone());
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    // Every signing header present.
    let (Some(key), Some(nonce), Some(ts), Some(sig)) = (
        h("x-ca-key"),
        h("x-ca-nonce"),
        h("x-ca-timestamp"),
        h("x-ca-signature"),
    ) else {
        return fail(
            st,
            "missing X-Ca-Key, X-Ca-Nonce, X-Ca-Timestamp or X-Ca-Signature",
        );
    };
    if key != KEY_ID {
        return fail(st, "invalid AccessKey id");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    match ts.parse::<i64>() {
        Ok(t) if (now - t).abs() <= 15 * 60 * 1000 => {}
        _ => return fail(st, "X-Ca-Timestamp expired"),
    }
    if !st.nonces.insert(nonce.clone()) {
        return fail(st, "X-Ca-Nonce reused");
    }
    let mut signed = vec![
        ("X-Ca-Key", key),
        ("X-Ca-Nonce", nonce),
        ("X-Ca-Timestamp", ts),
    ];
    let with_body = method == Method::POST;
    if with_body {
        let Some(md5) = h("content-md5") else {
            return fail(st, "Content-MD5 missing");
        };
        use md5::Digest;
        if md5 != b64(&md5::Md5::digest(&body)) {
            return fail(st, "Content-MD5 does not match the body");
        }
        if !h("content-type")
            .unwrap_or_default()
            .starts_with("application/json")
        {
            return fail(st, "Content-Type must be application/json");
        }
        signed.push(("Content-MD5", md5));
    }
    let want = expected_signature(
        method.as_str(),
        &signed,
        &path,
        (!with_body).then(|| uri.query().unwrap_or("")),
    );
    if sig != want {
        return fail(st, "signature mismatch");
    }
    if let Some(msg) = st.fail_next.remove(&path) {
        return fail(st, &msg);
    }
    let Ok(b) = serde_json::from_slice::<Value>(&body) else {
        return fail(st, "body is not JSON");
    };
    let page = |all: Vec<Value>, b: &Value| -> Result<Value, String> {
        let (Some(skip), Some(limit)) = (b["skip"].as_u64(), b["limit"].as_u64()) else {
            return Err("skip and limit are required".into());
        };
        if limit == 0 || limit > 100 {
            return Err("limit must be 1 to 100".into());
        }
        let total = all.len();
        let data: Vec<Value> = all
            .into_iter()
            .skip(skip as usize)
            .take(limit as usize)
            .collect();
        Ok(json!({"total": total, "data": data}))
    };
    match path.as_str() {
        "/api/open/v1/server/list" => {
            let all = st
                .servers
                .iter()
                .map(|s| json!({"id": s.id, "serverName": s.name, "url": s.url, "authName": s.auth_name}))
                .collect();
            match page(all, &b) {
                Ok(v) => ok(v),
                Err(e) => fail(st, &e),
            }
        }
        "/api/open/v1/server/add" => {
            let name = b["serverName"].as_str().unwrap_or("");
            let url = b["url"].as_str().unwrap_or("");
            if name.is_empty() || url.is_empty() {
                return fail(st, "serverName and url are required");
            }
            if st.servers.iter().any(|s| s.name == name) {
                return fail(st, "server name already exists");
            }
            let id = 1000 + st.servers.len() as i64;
            st.servers.push(Server {
                id,
                name: name.into(),
                url: url.into(),
                auth_name: b["authName"].as_str().map(str::to_string),
                password: b["password"].as_str().map(str::to_string),
            });
            ok(json!({"id": id}))
        }
        "/api/open/v1/device/list" => {
            let mut all: Vec<(&String, &i64)> = st.devices.iter().collect();
            all.sort();
            let all = all
                .into_iter()
                .map(|(m, s)| json!({"id": format!("d-{m}"), "mac": m, "serverId": s}))
                .collect();
            match page(all, &b) {
                Ok(v) => ok(v),
                Err(e) => fail(st, &e),
            }
        }
        "/api/open/v1/device/add" => {
            let Some(server) = b["serverId"]
                .as_i64()
                .or_else(|| b["serverId"].as_str()?.parse().ok())
            else {
                return fail(st, "serverId is required");
            };
            if !st.servers.iter().any(|s| s.id == server) {
                return fail(st, "no such server");
            }
            let macs: Vec<Value> = b["macs"].as_array().cloned().unwrap_or_default();
            let Some(macs) = macs.iter().map(norm).collect::<Option<Vec<String>>>() else {
                return fail(st, "macs must be 12 lower-case hex digits");
            };
            if let Some(m) = macs.iter().find(|m| st.foreign.contains(*m)) {
                return fail(st, &format!("device {m} belongs to another organisation"));
            }
            for m in macs {
                st.devices.insert(m, server);
            }
            ok(Value::Null)
        }
        "/api/open/v1/device/delete" => {
            let macs: Vec<Value> = b["macs"].as_array().cloned().unwrap_or_default();
            let Some(macs) = macs.iter().map(norm).collect::<Option<Vec<String>>>() else {
                return fail(st, "macs must be 12 lower-case hex digits");
            };
            for m in macs {
                st.devices.remove(&m);
            }
            ok(Value::Null)
        }
        _ => fail(st, "no such API"),
    }
}
