//! HTTP for PBX connectors: JSON in and out, 429s waited out as the `Retry-After` or
//! `RateLimit` headers say, auth failures and error bodies turned into [`PbxError`]s.

use std::time::Duration;

use serde_json::Value;

use super::PbxError;

/// Longest wait a rate limit may ask for before we give up on the call.
const MAX_WAIT: Duration = Duration::from_secs(90);

pub struct Http {
    client: reqwest::Client,
    /// 429 answers waited out.
    pub throttled: u32,
}

/// How long a 429 asks us to wait: `Retry-After: N`, or `reset=N` in `RateLimit`.
fn wait_of(r: &reqwest::Response) -> Duration {
    let h = |k: &str| {
        r.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let secs = h("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or_else(|| {
            h("ratelimit").and_then(|v| {
                v.split([',', ';'])
                    .filter_map(|p| p.trim().strip_prefix("reset="))
                    .find_map(|n| n.trim().parse::<u64>().ok())
            })
        })
        .unwrap_or(1);
    Duration::from_secs(secs.max(1))
}

impl Http {
    pub fn new() -> Result<Http, PbxError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("phoneprov/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PbxError::Config(format!("HTTP client: {e}")))?;
        Ok(Http {
            client,
            throttled: 0,
        })
    }

    /// Sends a request built by `make` (again after a 429); the status and JSON body.
    pub async fn send(
        &mut self,
        what: &str,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<(u16, Value), PbxError> {
        let mut waited = Duration::ZERO;
        loop {
            let r = make(&self.client)
                .send()
                .await
                .map_err(|e| PbxError::Http {
                    what: what.to_string(),
                    reason: if e.is_timeout() {
                        "timed out".into()
                    } else {
                        e.to_string()
                    },
                })?;
            let status = r.status().as_u16();
            if status == 429 {
                let w = wait_of(&r);
                waited += w;
                self.throttled += 1;
                if waited > MAX_WAIT {
                    return Err(PbxError::Http {
                        what: what.into(),
                        reason: format!("rate limited for over {}s", MAX_WAIT.as_secs()),
                    });
                }
                tracing::info!(what, wait_s = w.as_secs(), "PBX rate limit: waiting");
                tokio::time::sleep(w).await;
                continue;
            }
            let text = r.text().await.unwrap_or_default();
            let body = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Ok((status, body));
        }
    }
}

/// The PBX's error message, from `{code, message}` or whatever it sent.
pub fn message(body: &Value) -> String {
    body["message"]
        .as_str()
        .or_else(|| body["error_description"].as_str())
        .or_else(|| body["error"].as_str())
        .unwrap_or("no message")
        .to_string()
}
