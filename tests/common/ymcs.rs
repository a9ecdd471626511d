//! A fake YMCS (Yealink cloud, open API v2) that enforces the documented protocol strictly, so
//! the client is tested, not flattered: Basic auth + `timestamp` + `nonce` on the token call, a
//! reused nonce refused (403, 500403), clock skew refused, 412 for an empty body, tokens that
//! expire, paging (≤ 100 per page), 429 over the rate, batch answers with per-MAC failures
//! (800003 already exists, 800004 owned by another organisation).
//!
//! Modes for what sources report but do not agree on: `ordinary` — an ordinary MSP account,
//! answered 403 "This request is forbidden" on `/v2/rps/addDevicesByMac` (domain.md §5, public
//! issue #600 of nemerald-voip/fspbx), which may add one device with its serial number through
//! `/v2/rps/devices` `{mac, sn, serverId}` (domain.md §5); `device_id_shape` — `/v2/dm/deviceId`
//! answered as `{data: [...]}` (0), a bare array (1), `{data: {data: [...]}}` (2) or a shape no
//! source shows (3): domain.md §5 says both of the first two are possible; `list_without_ids` —
//! device list entries without `id`, so the client must ask `deviceId`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const KEY_ID: &str = "AK-test-1";
pub const SECRET: &str = "sk-very-secret-9";

#[derive(Debug, Clone)]
pub struct RpsServer {
    pub id: String,
    pub name: String,
    pub url: String,
    pub auth_name: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RpsDevice {
    pub server_id: String,
    pub auth_name: Option<String>,
    pub password: Option<String>,
}

/// Everything the fake holds and records.
#[derive(Debug, Default)]
pub struct State {
    pub token_ttl_secs: u64,
    /// Requests allowed per second (sliding window).
    pub rate: usize,
    /// The fake's clock minus the real one (clock skew), ms.
    pub skew_ms: i64,
    /// Answer the next N calls to a path with 500.
    pub fail_next: HashMap<String, u32>,
    pub sites: Vec<(String, String)>,
    /// MAC → site id.
    pub devices: HashMap<String, String>,
    /// MACs another organisation owns.
    pub foreign: HashSet<String>,
    pub servers: Vec<RpsServer>,
    pub rps: HashMap<String, RpsDevice>,
    pub reboots: Vec<(String, Instant)>,
    pub ordinary: bool,
    pub device_id_shape: u8,
    pub list_without_ids: bool,
    // Records.
    pub nonces: HashSet<String>,
    pub tokens: HashMap<String, Instant>,
    pub recent: Vec<Instant>,
    pub token_calls: u32,
    pub calls: Vec<String>,
    pub rejected: HashMap<u16, u32>,
}

pub struct Fake {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
}

impl Fake {
    pub fn start(state: State) -> Fake {
        let state = Arc::new(Mutex::new(state));
        let s2 = state.clone();
        let addr = super::serve_fake(
            axum::Router::new()
                .route("/v2/{*path}", axum::routing::post(handle))
                .layer(axum::middleware::map_response_with_state(
                    state.clone(),
                    with_date,
                ))
                .with_state(s2),
        );
        Fake { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Points every later command (and server) of `env` at this fake, with its key.
    pub fn connect(&self, env: &super::Env) {
        env.set_var("PHONEPROV_YMCS_BASE_URL", &self.url());
        env.set_var("PHONEPROV_YMCS_KEY_ID", KEY_ID);
        env.set_var("PHONEPROV_YMCS_KEY_SECRET", SECRET);
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

/// Every answer carries a `Date` read off the fake's own clock (its skew included), as every
/// HTTP origin server's does (RFC 9110 §6.6.1: an origin with a clock must send one).
async fn with_date(Shared(state): Shared<Arc<Mutex<State>>>, mut r: Response) -> Response {
    let skew = state.lock().unwrap().skew_ms;
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(skew);
    let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    r.headers_mut()
        .insert(axum::http::header::DATE, date.parse().unwrap());
    r
}

fn err(st: &mut State, status: u16, code: i64, message: &str, details: Value) -> Response {
    *st.rejected.entry(status).or_default() += 1;
    let body = json!({"code": code, "requestId": format!("req-{}", st.calls.len()),
        "message": message, "details": details});
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn norm(mac: &Value) -> Option<String> {
    let s: String = mac
        .as_str()?
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect();
    (s.len() == 12).then(|| s.to_lowercase())
}

fn page(st: &mut State, body: &Value, all: Vec<Value>) -> Response {
    let (Some(skip), Some(limit)) = (body["skip"].as_u64(), body["limit"].as_u64()) else {
        return err(
            st,
            400,
            400001,
            "skip and limit are required",
            json!([{"field": "limit", "message": "required"}]),
        );
    };
    if limit == 0 || limit > 100 {
        return err(
            st,
            400,
            400002,
            "limit out of range",
            json!([{"field": "limit", "message": "1 to 100"}]),
        );
    }
    let total = all.len();
    let data: Vec<Value> = all
        .into_iter()
        .skip(skip as usize)
        .take(limit as usize)
        .collect();
    axum::Json(json!({"total": total, "data": data})).into_response()
}

async fn handle(
    Shared(state): Shared<Arc<Mutex<State>>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut guard = state.lock().unwrap();
    let st = &mut *guard;
    let path = format!("/v2/{path}");
    st.calls.push(path.clone());
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    // Rate: at most `rate` requests in any second.
    let now = Instant::now();
    st.recent
        .retain(|t| now.duration_since(*t) < Duration::from_secs(1));
    if st.rate > 0 && st.recent.len() >= st.rate {
        return err(st, 429, 429001, "too many requests", json!([]));
    }
    st.recent.push(now);
    if let Some(n) = st.fail_next.get_mut(&path).filter(|n| **n > 0) {
        *n -= 1;
        return err(st, 500, 500000, "internal error", json!([]));
    }
    // timestamp: ms, within 5 minutes of our clock.
    let Some(ts) = h("timestamp").and_then(|t| t.parse::<i64>().ok()) else {
        return err(
            st,
            400,
            400010,
            "timestamp header missing",
            json!([{"field": "timestamp", "message": "required"}]),
        );
    };
    if (now_ms() + st.skew_ms - ts).abs() > 5 * 60 * 1000 {
        return err(
            st,
            401,
            500401,
            "timestamp out of range (clock skew)",
            json!([{"field": "timestamp", "message": "expired"}]),
        );
    }
    // nonce: ≤ 32 characters, never reused.
    let Some(nonce) = h("nonce").filter(|n| !n.is_empty() && n.len() <= 32) else {
        return err(
            st,
            400,
            400011,
            "nonce header missing or too long",
            json!([{"field": "nonce", "message": "1 to 32 characters"}]),
        );
    };
    if !st.nonces.insert(nonce) {
        return err(st, 403, 500403, "nonce reused", json!([]));
    }
    if body.is_empty() {
        return err(st, 412, 412000, "request body required", json!([]));
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return err(st, 400, 400012, "body is not JSON", json!([]));
    };
    let auth = h("authorization").unwrap_or_default();
    if path == "/v2/token" {
        use base64::Engine;
        let want = base64::engine::general_purpose::STANDARD.encode(format!("{KEY_ID}:{SECRET}"));
        if auth != format!("Basic {want}") {
            return err(st, 401, 500101, "invalid access key", json!([]));
        }
        if body != json!({"grant_type": "client_credentials"}) {
            return err(
                st,
                400,
                400013,
                "grant_type must be client_credentials",
                json!([{"field": "grant_type", "message": "invalid"}]),
            );
        }
        st.token_calls += 1;
        let token = format!("tok-{}-{}", st.token_calls, st.nonces.len());
        let ttl = if st.token_ttl_secs == 0 {
            86400
        } else {
            st.token_ttl_secs
        };
        st.tokens
            .insert(token.clone(), now + Duration::from_secs(ttl));
        return axum::Json(
            json!({"access_token": token, "token_type": "bearer", "expires_in": ttl}),
        )
        .into_response();
    }
    let token = auth.strip_prefix("Bearer ").unwrap_or("");
    match st.tokens.get(token) {
        Some(until) if *until > now => {}
        Some(_) => return err(st, 401, 500102, "token expired", json!([])),
        None => return err(st, 401, 500100, "invalid token", json!([])),
    }
    let macs_of = |b: &Value| -> Vec<Value> { b["macs"].as_array().cloned().unwrap_or_default() };
    match path.as_str() {
        "/v2/dm/listSites" => {
            let all = st
                .sites
                .iter()
                .map(|(id, n)| json!({"id": id, "name": n}))
                .collect();
            page(st, &body, all)
        }
        "/v2/dm/listDevices" => {
            let site = body["filter"]["siteId"].as_str().map(str::to_string);
            let mut all: Vec<(String, String)> = st
                .devices
                .iter()
                .filter(|(_, s)| site.as_ref().is_none_or(|x| x == *s))
                .map(|(m, s)| (m.clone(), s.clone()))
                .collect();
            all.sort();
            let with_ids = !st.list_without_ids;
            let all = all
                .into_iter()
                .map(|(m, s)| match with_ids {
                    true => json!({"id": format!("dev-{m}"), "mac": m.to_uppercase(), "siteId": s}),
                    false => json!({"mac": m.to_uppercase(), "siteId": s}),
                })
                .collect();
            page(st, &body, all)
        }
        "/v2/dm/addDevicesByMac" => {
            let site = body["siteId"].as_str().unwrap_or("").to_string();
            if !st.sites.iter().any(|(id, _)| *id == site) {
                return err(
                    st,
                    400,
                    400020,
                    "no such site",
                    json!([{"field": "siteId", "message": "unknown"}]),
                );
            }
            let macs = macs_of(&body);
            if macs.is_empty() || macs.len() > 100 {
                return err(
                    st,
                    400,
                    400021,
                    "1 to 100 MACs per call",
                    json!([{"field": "macs", "message": "size"}]),
                );
            }
            let mut errors = Vec::new();
            for m in &macs {
                let Some(m) = norm(m) else {
                    errors.push(json!({"field": m, "code": 400022, "message": "bad MAC"}));
                    continue;
                };
                if st.foreign.contains(&m) {
                    errors.push(json!({"mac": m, "code": 800004, "message": "device belongs to another organisation"}));
                } else if let std::collections::hash_map::Entry::Vacant(e) =
                    st.devices.entry(m.clone())
                {
                    e.insert(site.clone());
                } else {
                    errors.push(
                        json!({"mac": m, "code": 800003, "message": "device already exists"}),
                    );
                }
            }
            let n = macs.len();
            axum::Json(json!({"total": n, "successCount": n - errors.len(), "failureCount": errors.len(), "errors": errors})).into_response()
        }
        "/v2/dm/deviceId" => {
            if body["deviceIdType"] != "mac" || !body["deviceType"].is_string() {
                return err(
                    st,
                    400,
                    400030,
                    "deviceType and deviceIdType=mac required",
                    json!([]),
                );
            }
            let data: Vec<Value> = body["deviceIds"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(norm)
                .filter(|m| st.devices.contains_key(m))
                .map(|m| json!({"mac": m, "deviceId": format!("dev-{m}")}))
                .collect();
            let answer = match st.device_id_shape {
                0 => json!({"data": data}),
                1 => json!(data),
                2 => json!({"data": {"total": data.len(), "data": data}}),
                _ => json!({"result": {"items": data}}),
            };
            axum::Json(answer).into_response()
        }
        "/v2/dm/device/reboot" => {
            let ids: Vec<String> = body["deviceIds"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            let mut errors = Vec::new();
            for id in &ids {
                match id
                    .strip_prefix("dev-")
                    .filter(|m| st.devices.contains_key(*m))
                {
                    Some(m) => st.reboots.push((m.to_string(), now)),
                    None => errors
                        .push(json!({"field": id, "code": 800005, "message": "no such device"})),
                }
            }
            axum::Json(json!({"total": ids.len(), "successCount": ids.len() - errors.len(), "failureCount": errors.len(), "errors": errors})).into_response()
        }
        "/v2/rps/listServers" => {
            let all = st.servers.iter().map(|s| json!({"id": s.id, "serverName": s.name, "url": s.url, "authName": s.auth_name})).collect();
            page(st, &body, all)
        }
        "/v2/rps/servers" => {
            let name = body["serverName"].as_str().unwrap_or("");
            let url = body["url"].as_str().unwrap_or("");
            if name.is_empty() || name.chars().count() > 20 || url.is_empty() || url.len() > 512 {
                return err(
                    st,
                    400,
                    400040,
                    "serverName (≤ 20) and url (≤ 512) required",
                    json!([{"field": "serverName", "message": "length"}]),
                );
            }
            if st.servers.iter().any(|s| s.name == name) {
                return err(st, 400, 800003, "server name already exists", json!([]));
            }
            let id = format!("srv-{}", st.servers.len() + 1);
            st.servers.push(RpsServer {
                id: id.clone(),
                name: name.into(),
                url: url.into(),
                auth_name: body["authName"].as_str().map(str::to_string),
                password: body["password"].as_str().map(str::to_string),
            });
            axum::Json(json!({"id": id})).into_response()
        }
        "/v2/rps/listDevices" => {
            let mut all: Vec<(String, String)> = st
                .rps
                .iter()
                .map(|(m, d)| (m.clone(), d.server_id.clone()))
                .collect();
            all.sort();
            let all = all
                .into_iter()
                .map(|(m, s)| json!({"mac": m, "serverId": s}))
                .collect();
            page(st, &body, all)
        }
        "/v2/rps/devices" => {
            let (Some(mac), Some(sn)) = (
                norm(&body["mac"]),
                body["sn"].as_str().filter(|s| !s.is_empty()),
            ) else {
                return err(
                    st,
                    400,
                    400060,
                    "mac and sn are required",
                    json!([{"field": "sn", "message": "required"}]),
                );
            };
            let server = body["serverId"].as_str().unwrap_or("").to_string();
            if !st.servers.iter().any(|s| s.id == server) {
                return err(st, 400, 400050, "no such server", json!([]));
            }
            let _ = sn;
            st.rps.insert(
                mac,
                RpsDevice {
                    server_id: server,
                    auth_name: body["authName"].as_str().map(str::to_string),
                    password: body["password"].as_str().map(str::to_string),
                },
            );
            axum::Json(json!({"id": format!("rps-{}", st.rps.len())})).into_response()
        }
        "/v2/rps/addDevicesByMac" if st.ordinary => {
            err(st, 403, 403, "This request is forbidden", json!([]))
        }
        "/v2/rps/addDevicesByMac" => {
            let server = body["serverId"].as_str().unwrap_or("").to_string();
            if !st.servers.iter().any(|s| s.id == server) {
                return err(
                    st,
                    400,
                    400050,
                    "no such server",
                    json!([{"field": "serverId", "message": "unknown"}]),
                );
            }
            let macs = macs_of(&body);
            if macs.is_empty() || macs.len() > 100 {
                return err(st, 400, 400021, "1 to 100 MACs per call", json!([]));
            }
            let mut errors = Vec::new();
            for m in &macs {
                let Some(m) = norm(m) else { continue };
                if st.foreign.contains(&m) {
                    errors.push(json!({"mac": m, "code": 800004, "message": "device belongs to another organisation"}));
                } else if let std::collections::hash_map::Entry::Vacant(e) = st.rps.entry(m.clone())
                {
                    e.insert(RpsDevice {
                        server_id: server.clone(),
                        auth_name: body["authName"].as_str().map(str::to_string),
                        password: body["password"].as_str().map(str::to_string),
                    });
                } else {
                    errors.push(
                        json!({"mac": m, "code": 800003, "message": "device already exists"}),
                    );
                }
            }
            let n = macs.len();
            axum::Json(json!({"total": n, "successCount": n - errors.len(), "failureCount": errors.len(), "errors": errors})).into_response()
        }
        "/v2/rps/delDevices" => {
            let macs = macs_of(&body);
            for m in macs.iter().filter_map(norm) {
                st.rps.remove(&m);
            }
            let n = macs.len();
            axum::Json(json!({"total": n, "successCount": n, "failureCount": 0, "errors": []}))
                .into_response()
        }
        _ => err(st, 404, 404000, "no such API", json!([])),
    }
}
