//! The YMCS HTTP client: configuration (never from argv, never logged), the token (cached,
//! refreshed before expiry and on a 401), a fresh `timestamp` and `nonce` on every call, pacing
//! under the API's rate limit, retries with backoff where repeating is safe, paging, and the
//! `{code, requestId, message, details}` envelope turned into errors.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use super::paths;

/// Why a YMCS call failed.
#[derive(Debug, thiserror::Error)]
pub enum YmcsError {
    #[error("YMCS is not configured: {0}")]
    Config(String),
    #[error("YMCS {path}: HTTP {status}, code {code}: {message}{details} (request {request_id})")]
    Api {
        path: String,
        status: u16,
        code: i64,
        message: String,
        details: String,
        request_id: String,
    },
    #[error("YMCS {path}: {reason}")]
    Transport { path: String, reason: String },
    #[error("YMCS {path}: unexpected answer: {reason}")]
    Answer { path: String, reason: String },
}

impl YmcsError {
    pub fn code(&self) -> Option<i64> {
        match self {
            YmcsError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Where YMCS is and how to log in.
#[derive(Clone)]
pub struct YmcsConfig {
    pub base_url: String,
    pub key_id: String,
    pub key_secret: String,
    /// Requests per second, at most.
    pub rate: f64,
    pub timeout: Duration,
}

impl std::fmt::Debug for YmcsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YmcsConfig")
            .field("base_url", &self.base_url)
            .field("key_id", &self.key_id)
            .field("key_secret", &"<redacted>")
            .field("rate", &self.rate)
            .finish()
    }
}

/// The settings file's keys (all optional; the environment wins).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    region: Option<String>,
    base_url: Option<String>,
    key_id: Option<String>,
    key_secret: Option<String>,
    rate: Option<f64>,
}

/// The file in the data dir holding YMCS settings and the access key (must be 0600).
pub const FILE: &str = "ymcs.toml";

impl YmcsConfig {
    /// From `PHONEPROV_YMCS_*`, then `<data-dir>/ymcs.toml`.
    pub fn load(data_dir: &Path) -> Result<YmcsConfig, YmcsError> {
        let path = data_dir.join(FILE);
        let file: FileConfig =
            match crate::outbound::read_private(&path).map_err(YmcsError::Config)? {
                Some(t) => toml::from_str(&t)
                    .map_err(|e| YmcsError::Config(format!("{}: {e}", path.display())))?,
                None => FileConfig::default(),
            };
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let region = env("PHONEPROV_YMCS_REGION").or(file.region);
        let base = env("PHONEPROV_YMCS_BASE_URL").or(file.base_url);
        let key_id = env("PHONEPROV_YMCS_KEY_ID").or(file.key_id);
        let key_secret = env("PHONEPROV_YMCS_KEY_SECRET").or(file.key_secret);
        // Every missing setting at once, not one per try.
        let mut missing = Vec::new();
        if base.is_none() && region.is_none() {
            missing.push("PHONEPROV_YMCS_REGION (us, eu, au) or PHONEPROV_YMCS_BASE_URL");
        }
        if key_id.is_none() {
            missing.push("PHONEPROV_YMCS_KEY_ID");
        }
        if key_secret.is_none() {
            missing.push("PHONEPROV_YMCS_KEY_SECRET");
        }
        if !missing.is_empty() {
            return Err(YmcsError::Config(format!(
                "set {} (or region/base_url, key_id, key_secret in <data-dir>/ymcs.toml, mode 0600)",
                missing.join(", ")
            )));
        }
        let base_url = match (base, region) {
            (Some(b), _) => b.trim_end_matches('/').to_string(),
            (None, Some(r)) => paths::region_url(r.trim())
                .ok_or_else(|| YmcsError::Config(format!("region '{r}' must be us, eu or au")))?
                .to_string(),
            (None, None) => unreachable_config()?,
        };
        check_base(&base_url)?;
        let (Some(key_id), Some(key_secret)) = (key_id, key_secret) else {
            return unreachable_config();
        };
        let rate = match env("PHONEPROV_YMCS_RATE") {
            Some(r) => r.parse::<f64>().map_err(|_| {
                YmcsError::Config(format!("PHONEPROV_YMCS_RATE '{r}' is not a number"))
            })?,
            None => file.rate.unwrap_or(50.0),
        };
        if !(rate > 0.0 && rate <= 50.0) {
            return Err(YmcsError::Config(format!(
                "rate {rate} must be above 0 and at most 50 requests/s (the API's limit)"
            )));
        }
        Ok(YmcsConfig {
            base_url,
            key_id,
            key_secret,
            rate,
            timeout: Duration::from_secs(20),
        })
    }
}

/// The branch the check of missing settings above rules out, as an error rather than a panic.
fn unreachable_config<T>() -> Result<T, YmcsError> {
    Err(YmcsError::Config("YMCS settings incomplete".into()))
}

fn check_base(url: &str) -> Result<(), YmcsError> {
    crate::outbound::check_base_url(url).map_err(YmcsError::Config)
}

/// A fresh nonce: 32 hex characters.
fn nonce() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

fn now_ms() -> String {
    crate::store::now_ms().to_string()
}

/// The YMCS client. One per command; not shared between threads.
pub struct Client {
    cfg: YmcsConfig,
    http: reqwest::Client,
    token: Option<(String, Instant)>,
    /// When the next request may go, for pacing.
    next_slot: Instant,
    /// Requests sent, for reports.
    pub requests: u64,
    /// 429 answers seen.
    pub throttled: u64,
    /// YMCS's clock minus ours, from the `Date` of its last answer (ms; second resolution).
    pub clock_skew_ms: Option<i64>,
}

impl Client {
    pub fn new(cfg: YmcsConfig) -> Result<Client, YmcsError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .user_agent(concat!("phoneprov/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| YmcsError::Config(format!("HTTP client: {e}")))?;
        Ok(Client {
            cfg,
            http,
            token: None,
            next_slot: Instant::now(),
            requests: 0,
            throttled: 0,
            clock_skew_ms: None,
        })
    }

    /// Waits for this request's slot under the rate limit.
    async fn pace(&mut self) {
        let gap = Duration::from_secs_f64(1.0 / self.cfg.rate);
        let now = Instant::now();
        if self.next_slot > now {
            tokio::time::sleep(self.next_slot - now).await;
        }
        self.next_slot = self.next_slot.max(now) + gap;
    }

    async fn fetch_token(&mut self) -> Result<String, YmcsError> {
        let path = paths::TOKEN;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.cfg.key_id, self.cfg.key_secret));
        let mut tries = 0;
        loop {
            let body = json!({"grant_type": "client_credentials"});
            let r = self.post(path, format!("Basic {basic}"), &body).await;
            match r {
                Ok(v) => {
                    let token = v["access_token"]
                        .as_str()
                        .ok_or_else(|| YmcsError::Answer {
                            path: path.into(),
                            reason: "no access_token".into(),
                        })?;
                    let ttl = v["expires_in"].as_u64().unwrap_or(3600);
                    // Refresh a minute early (or at half-life for short tokens).
                    let margin = (ttl / 2).min(60);
                    self.token = Some((
                        token.to_string(),
                        Instant::now() + Duration::from_secs(ttl - margin),
                    ));
                    tracing::debug!(ttl, "YMCS token obtained");
                    return Ok(token.to_string());
                }
                Err(e) if retryable(&e, true) && tries < 5 => {
                    tries += 1;
                    self.backoff(tries).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn token(&mut self) -> Result<String, YmcsError> {
        match &self.token {
            Some((t, until)) if Instant::now() < *until => Ok(t.clone()),
            _ => self.fetch_token().await,
        }
    }

    async fn backoff(&mut self, tries: u32) {
        let ms = 250u64 << tries.min(5);
        tracing::debug!(ms, "YMCS: backing off");
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// Turns a response into its JSON body, or the error it carries.
    async fn answer(
        &mut self,
        path: &str,
        r: reqwest::Result<reqwest::Response>,
    ) -> Result<Value, YmcsError> {
        let r = r.map_err(|e| {
            crate::telemetry::cloud_call("ymcs", "error");
            YmcsError::Transport {
                path: path.into(),
                reason: crate::outbound::describe_send_error(&e),
            }
        })?;
        if let Some(date) = r
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        {
            self.clock_skew_ms =
                Some(date.timestamp_millis() - chrono::Utc::now().timestamp_millis());
        }
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            crate::telemetry::cloud_call("ymcs", "ok");
            return Ok(body);
        }
        if status == 429 {
            self.throttled += 1;
            crate::telemetry::cloud_call("ymcs", "throttled");
        } else {
            crate::telemetry::cloud_call("ymcs", "error");
        }
        let details = body["details"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|x| {
                        format!(
                            "{}: {}",
                            x["field"].as_str().unwrap_or("?"),
                            x["message"].as_str().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .filter(|s| !s.is_empty())
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        Err(YmcsError::Api {
            path: path.into(),
            status,
            code: body["code"].as_i64().unwrap_or(status as i64),
            message: body["message"].as_str().unwrap_or("no message").to_string(),
            details,
            request_id: body["requestId"].as_str().unwrap_or("-").to_string(),
        })
    }

    /// One request, paced, with a fresh `timestamp` and `nonce`.
    async fn post(
        &mut self,
        path: &str,
        authorization: String,
        body: &Value,
    ) -> Result<Value, YmcsError> {
        self.pace().await;
        self.requests += 1;
        let r = self
            .http
            .post(format!("{}{path}", self.cfg.base_url))
            .header("Authorization", authorization)
            .header("timestamp", now_ms())
            .header("nonce", nonce())
            .json(body)
            .send()
            .await;
        self.answer(path, r).await
    }

    /// One call. `safe`: repeating it cannot do harm (reads, and adds that answer "already
    /// exists" the second time) — retried on 5xx and timeouts as well as on 429, which the API
    /// sends before doing anything.
    pub async fn call(&mut self, path: &str, body: Value, safe: bool) -> Result<Value, YmcsError> {
        let body = if body.is_null() { json!({}) } else { body };
        let mut tries = 0;
        let mut refreshed = false;
        loop {
            let token = self.token().await?;
            let r = self.post(path, format!("Bearer {token}"), &body).await;
            match r {
                Ok(v) => return Ok(v),
                Err(YmcsError::Api { status: 401, .. }) if !refreshed => {
                    refreshed = true;
                    self.token = None;
                }
                Err(e) if retryable(&e, safe) && tries < 5 => {
                    tries += 1;
                    self.backoff(tries).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Every record of a list call, page by page.
    pub async fn list_all(&mut self, path: &str, filter: Value) -> Result<Vec<Value>, YmcsError> {
        let mut out = Vec::new();
        let mut skip = 0u64;
        loop {
            let body =
                json!({"skip": skip, "limit": paths::PAGE, "autoCount": true, "filter": filter});
            let v = self.call(path, body, true).await?;
            let (data, total) = records(path, &v)?;
            let n = data.len() as u64;
            out.extend(data);
            skip += n;
            let done = match total {
                Some(t) => skip >= t,
                None => n < u64::from(paths::PAGE),
            };
            if n == 0 || done {
                return Ok(out);
            }
        }
    }
}

/// The records of a list answer. Sources show `{data: [...]}` (with `total`), `{data: {data:
/// [...], total}}` and a bare array, and say nothing of which call answers which: all three
/// are read, with the total when one is given. Any other shape is an error naming the call and
/// what came back — never an empty list.
pub fn records(path: &str, v: &Value) -> Result<(Vec<Value>, Option<u64>), YmcsError> {
    match v {
        Value::Array(a) => Ok((a.clone(), None)),
        Value::Object(o) => match o.get("data") {
            Some(Value::Array(a)) => Ok((a.clone(), v["total"].as_u64())),
            Some(Value::Object(inner)) => match inner.get("data") {
                Some(Value::Array(a)) => Ok((
                    a.clone(),
                    v["data"]["total"].as_u64().or(v["total"].as_u64()),
                )),
                _ => Err(unexpected(path, v)),
            },
            _ => Err(unexpected(path, v)),
        },
        _ => Err(unexpected(path, v)),
    }
}

fn unexpected(path: &str, v: &Value) -> YmcsError {
    let text: String = v.to_string().chars().take(200).collect();
    YmcsError::Answer {
        path: path.into(),
        reason: format!("a list was expected (data: [...] or [...]); got {text}"),
    }
}

/// Whether an error may be retried: 429 always; 5xx and timeouts when the call is safe to repeat.
fn retryable(e: &YmcsError, safe: bool) -> bool {
    match e {
        YmcsError::Api { status: 429, .. } => true,
        YmcsError::Api { status, .. } => safe && *status >= 500,
        YmcsError::Transport { .. } => safe,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_shapes() {
        let a = json!([{"id": 1}]);
        assert_eq!(records("/x", &a).unwrap(), (vec![json!({"id": 1})], None));
        let b = json!({"total": 3, "data": [{"id": 1}]});
        assert_eq!(records("/x", &b).unwrap().1, Some(3));
        let c = json!({"data": {"total": 2, "data": [{"id": 1}, {"id": 2}]}});
        assert_eq!(records("/x", &c).unwrap().0.len(), 2);
        for bad in [
            json!({"items": []}),
            json!({"data": {"rows": []}}),
            json!("ok"),
            json!(null),
        ] {
            let e = records("/v2/dm/deviceId", &bad).unwrap_err().to_string();
            assert!(
                e.contains("/v2/dm/deviceId") && e.contains("a list was expected"),
                "{e}"
            );
        }
    }

    #[test]
    fn nonces() {
        assert_eq!(nonce().len(), 32);
        assert_ne!(nonce(), nonce());
    }
}
