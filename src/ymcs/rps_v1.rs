//! Yealink's RPS management API (v1), the one ordinary MSP accounts may write RPS entries by
//! MAC through (YMCS v2 answers 403 to them: domain.md §5). Its own key id and secret
//! (`PHONEPROV_RPS_KEY_ID`/`_SECRET`, or `<data-dir>/rps.toml`, mode 0600), every request signed
//! (`X-Ca-Key`, `X-Ca-Nonce`, `X-Ca-Timestamp`, `Content-MD5`, `X-Ca-Signature` = base64
//! HMAC-SHA256 of method, sorted headers and path — as the open-source PBX that uses it in
//! production signs, nemerald-voip/fspbx `YealinkRpsRequestSigner.php`), and every answer read
//! through the `{ret, data, error}` envelope: an HTTP 200 with `ret < 0` is a failure whose
//! message is shown.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use super::client::{YmcsError, records};

/// The base URL of the RPS management API.
pub const BASE: &str = "https://api-dm.yealink.com:8443";
pub const SERVER_LIST: &str = "/api/open/v1/server/list";
pub const SERVER_ADD: &str = "/api/open/v1/server/add";
pub const DEVICE_LIST: &str = "/api/open/v1/device/list";
pub const DEVICE_ADD: &str = "/api/open/v1/device/add";
pub const DEVICE_DELETE: &str = "/api/open/v1/device/delete";
/// The file in the data dir holding the RPS key (must be 0600).
pub const FILE: &str = "rps.toml";
const PAGE: u64 = 100;

/// Where the RPS API is and its key.
#[derive(Clone)]
pub struct RpsConfig {
    pub base_url: String,
    pub key_id: String,
    pub key_secret: String,
}

impl std::fmt::Debug for RpsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpsConfig")
            .field("base_url", &self.base_url)
            .field("key_id", &self.key_id)
            .field("key_secret", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    base_url: Option<String>,
    key_id: Option<String>,
    key_secret: Option<String>,
}

impl RpsConfig {
    /// From `PHONEPROV_RPS_*`, then `<data-dir>/rps.toml`; `None` when neither names a key.
    /// Half a configuration (an id without a secret) is an error naming what is missing.
    pub fn load(data_dir: &Path) -> Result<Option<RpsConfig>, YmcsError> {
        let path = data_dir.join(FILE);
        let file: FileConfig =
            match crate::outbound::read_private(&path).map_err(YmcsError::Config)? {
                Some(t) => toml::from_str(&t)
                    .map_err(|e| YmcsError::Config(format!("{}: {e}", path.display())))?,
                None => FileConfig::default(),
            };
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let key_id = env("PHONEPROV_RPS_KEY_ID").or(file.key_id);
        let key_secret = env("PHONEPROV_RPS_KEY_SECRET").or(file.key_secret);
        let (key_id, key_secret) = match (key_id, key_secret) {
            (None, None) => return Ok(None),
            (Some(i), Some(s)) => (i, s),
            (Some(_), None) => {
                return Err(YmcsError::Config(
                    "PHONEPROV_RPS_KEY_ID is set but PHONEPROV_RPS_KEY_SECRET is not (or key_secret in <data-dir>/rps.toml)".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(YmcsError::Config(
                    "PHONEPROV_RPS_KEY_SECRET is set but PHONEPROV_RPS_KEY_ID is not (or key_id in <data-dir>/rps.toml)".into(),
                ));
            }
        };
        let base_url = env("PHONEPROV_RPS_BASE_URL")
            .or(file.base_url)
            .unwrap_or_else(|| BASE.to_string())
            .trim_end_matches('/')
            .to_string();
        crate::outbound::check_base_url(&base_url).map_err(YmcsError::Config)?;
        Ok(Some(RpsConfig {
            base_url,
            key_id,
            key_secret,
        }))
    }
}

/// The string a request's signature covers: method, the `X-Ca-*` (and `Content-MD5`) headers
/// sorted by name as `Name:value` lines, the path without its leading `/`, and for a call
/// without a body the query sorted by name (`k=v`, a bare name for an empty value).
pub fn string_to_sign(
    method: &str,
    headers: &[(&str, String)],
    path: &str,
    query: Option<&[(&str, String)]>,
) -> String {
    let mut h: Vec<&(&str, String)> = headers.iter().collect();
    h.sort_by(|a, b| a.0.cmp(b.0));
    let mut s = format!(
        "{}\n{}\n{}",
        method.to_ascii_uppercase(),
        h.iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join("\n"),
        path.trim_start_matches('/')
    );
    if let Some(q) = query {
        let mut q: Vec<&(&str, String)> = q.iter().collect();
        q.sort_by(|a, b| a.0.cmp(b.0));
        s.push('\n');
        s.push_str(
            &q.iter()
                .map(|(k, v)| match v.trim() {
                    "" => k.to_string(),
                    v => format!("{k}={v}"),
                })
                .collect::<Vec<_>>()
                .join("&"),
        );
    }
    s
}

/// base64 of HMAC-SHA256(secret, text).
pub fn signature(secret: &str, text: &str) -> String {
    use hmac::Mac;
    let mut m = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(), // HMAC takes a key of any length
    };
    m.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}

/// base64 of the MD5 of the body bytes.
pub fn content_md5(body: &[u8]) -> String {
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body))
}

/// The RPS v1 client; one per command.
pub struct RpsClient {
    cfg: RpsConfig,
    http: reqwest::Client,
    next_slot: Instant,
    pub requests: u64,
}

impl RpsClient {
    pub fn new(cfg: RpsConfig) -> Result<RpsClient, YmcsError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .user_agent(concat!("phoneprov/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| YmcsError::Config(format!("HTTP client: {e}")))?;
        Ok(RpsClient {
            cfg,
            http,
            next_slot: Instant::now(),
            requests: 0,
        })
    }

    /// No documented rate limit: stay at 10 requests a second, as for YMCS writes.
    async fn pace(&mut self) {
        let now = Instant::now();
        if self.next_slot > now {
            tokio::time::sleep(self.next_slot - now).await;
        }
        self.next_slot = self.next_slot.max(now) + Duration::from_millis(100);
    }

    /// One signed POST; the envelope's `data` on success.
    pub async fn post(&mut self, path: &str, body: &Value) -> Result<Value, YmcsError> {
        self.pace().await;
        self.requests += 1;
        let bytes = serde_json::to_vec(body).map_err(|e| YmcsError::Answer {
            path: path.into(),
            reason: format!("cannot encode the request: {e}"),
        })?;
        let mut nonce = [0u8; 16];
        let _ = getrandom::fill(&mut nonce);
        let headers = vec![
            ("X-Ca-Key", self.cfg.key_id.clone()),
            ("X-Ca-Nonce", hex::encode(nonce)),
            ("X-Ca-Timestamp", crate::store::now_ms().to_string()),
            ("Content-MD5", content_md5(&bytes)),
        ];
        let sig = signature(
            &self.cfg.key_secret,
            &string_to_sign("POST", &headers, path, None),
        );
        let mut req = self
            .http
            .post(format!("{}{path}", self.cfg.base_url))
            .header("Content-Type", "application/json;charset=UTF-8")
            .header("X-Ca-Signature", sig);
        for (k, v) in &headers {
            req = req.header(*k, v);
        }
        let r = req.body(bytes).send().await.map_err(|e| {
            crate::telemetry::cloud_call("rps", "error");
            YmcsError::Transport {
                path: path.into(),
                reason: crate::outbound::describe_send_error(&e),
            }
        })?;
        let status = r.status().as_u16();
        crate::telemetry::cloud_call(
            "rps",
            match status {
                200..=299 => "ok",
                429 => "throttled",
                _ => "error",
            },
        );
        let text = r.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&text).map_err(|_| YmcsError::Answer {
            path: path.into(),
            reason: format!("HTTP {status}, not JSON: {}", snippet(&text)),
        })?;
        envelope(path, status, v)
    }

    /// Every record of a list call, page by page.
    pub async fn list_all(&mut self, path: &str) -> Result<Vec<Value>, YmcsError> {
        let mut out = Vec::new();
        let mut skip = 0u64;
        loop {
            let data = self
                .post(
                    path,
                    &json!({"skip": skip, "limit": PAGE, "autoCount": true}),
                )
                .await?;
            let (page, total) = records(path, &data)?;
            let n = page.len() as u64;
            out.extend(page);
            skip += n;
            let done = match total {
                Some(t) => skip >= t,
                None => n < PAGE,
            };
            if n == 0 || done {
                return Ok(out);
            }
        }
    }
}

fn snippet(s: &str) -> String {
    s.chars().take(200).collect()
}

/// `{ret, data, error:{msg, fieldErrors:[{msg}]}}`: `ret >= 0` is success. Anything else —
/// another HTTP status, a missing `ret` — is an error naming the call and what came back.
fn envelope(path: &str, status: u16, v: Value) -> Result<Value, YmcsError> {
    let Some(ret) = v["ret"].as_i64() else {
        return Err(YmcsError::Answer {
            path: path.into(),
            reason: format!(
                "HTTP {status} without a ret envelope: {}",
                snippet(&v.to_string())
            ),
        });
    };
    if ret >= 0 && (200..300).contains(&status) {
        return Ok(v["data"].clone());
    }
    let mut message = v["error"]["msg"]
        .as_str()
        .unwrap_or("no message")
        .to_string();
    let fields: Vec<&str> = v["error"]["fieldErrors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["msg"].as_str())
        .collect();
    if !fields.is_empty() {
        message.push_str(&format!(" ({})", fields.join("; ")));
    }
    Err(YmcsError::Api {
        path: path.into(),
        status,
        code: ret,
        message,
        details: String::new(),
        request_id: "-".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_follows_the_documented_recipe() {
        let h = vec![
            ("X-Ca-Timestamp", "1700000000000".to_string()),
            ("X-Ca-Key", "AK1".to_string()),
            ("Content-MD5", content_md5(b"{}")),
            ("X-Ca-Nonce", "abc".to_string()),
        ];
        assert_eq!(
            string_to_sign("post", &h, "/api/open/v1/server/list", None),
            "POST\nContent-MD5:mZFLkyvTelC5g8XnyQrpOw==\nX-Ca-Key:AK1\nX-Ca-Nonce:abc\nX-Ca-Timestamp:1700000000000\napi/open/v1/server/list"
        );
        let q = vec![("id", "7".to_string()), ("empty", String::new())];
        assert!(string_to_sign("GET", &h[..2], "/x", Some(&q)).ends_with("\nx\nempty&id=7"));
        // RFC 4231 test case 2 (5bdcc146…3843 in hex; checked with Python's hmac).
        assert_eq!(
            signature("Jefe", "what do ya want for nothing?"),
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
        );
    }

    #[test]
    fn envelopes() {
        assert_eq!(
            envelope("/p", 200, json!({"ret": 0, "data": {"id": 5}})).unwrap()["id"],
            5
        );
        let e = envelope(
            "/p",
            200,
            json!({"ret": -1, "error": {"msg": "bad", "fieldErrors": [{"msg": "macs: invalid"}]}}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/p") && e.contains("bad (macs: invalid)"), "{e}");
        let e = envelope("/p", 200, json!({"data": []}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("without a ret envelope"), "{e}");
    }
}
