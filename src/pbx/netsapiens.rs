//! NetSapiens (PacketDial, OIT, SkySwitch, ...): API v2 (with v44 and v45 field spellings, mixed
//! freely) and API v1 for cores without v2. Every path and field name is here.

use serde_json::{Value, json};

use super::fetch::{Http, message};
use super::{Creds, PbxError, PbxLine, PbxPhone};

/// Records asked for per page.
const PAGE: usize = 1000;

/// The first non-empty, non-"n/a" string among `keys`.
fn field<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .filter_map(|k| v[*k].as_str())
        .map(str::trim)
        .find(|s| !s.is_empty() && !s.eq_ignore_ascii_case("n/a"))
}

/// `sip:101x@domain` → `101x`.
fn uri_user(uri: &str) -> &str {
    let u = uri.trim().strip_prefix("sip:").unwrap_or(uri.trim());
    u.split('@').next().unwrap_or(u)
}

/// `sip:101x@vwp.91912.service` → `vwp.91912.service` (lower case, any `;params` or port off).
fn uri_domain(uri: &str) -> Option<String> {
    let (_, d) = uri.trim().split_once('@')?;
    let d = d.split([';', '>', ':']).next()?.trim().to_ascii_lowercase();
    (!d.is_empty()).then_some(d)
}

/// A logged-in session.
pub struct Session<'a> {
    http: &'a mut Http,
    base: String,
    creds: &'a Creds,
    token: String,
    refresh: Option<String>,
    /// The legacy token endpoint answers for this core (v2's is absent).
    legacy: bool,
}

impl<'a> Session<'a> {
    pub async fn open(
        http: &'a mut Http,
        base: &str,
        creds: &'a Creds,
    ) -> Result<Session<'a>, PbxError> {
        let mut s = Session {
            http,
            base: base.trim_end_matches('/').to_string(),
            creds,
            token: String::new(),
            refresh: None,
            legacy: false,
        };
        match &creds.api_key {
            Some(k) => s.token = k.clone(),
            None => s.login(false).await?,
        }
        Ok(s)
    }

    /// OAuth: password grant (or refresh), v2's endpoint first, the legacy one on a 404.
    async fn login(&mut self, refresh: bool) -> Result<(), PbxError> {
        let c = self.creds;
        let need = |v: &Option<String>, n: &str| {
            v.clone().ok_or_else(|| {
                PbxError::Config(format!(
                    "no {n}: set an API key, or client id, secret, username and password"
                ))
            })
        };
        let (id, secret) = (
            need(&c.client_id, "client id")?,
            need(&c.client_secret, "client secret")?,
        );
        let mut fields: Vec<(&str, String)> = vec![("client_id", id), ("client_secret", secret)];
        match (&self.refresh, refresh) {
            (Some(r), true) => {
                fields.push(("grant_type", "refresh_token".into()));
                fields.push(("refresh_token", r.clone()));
            }
            _ => {
                fields.push(("grant_type", "password".into()));
                fields.push(("username", need(&c.username, "username")?));
                fields.push(("password", need(&c.password, "password")?));
            }
        }
        let mut status_body = None;
        if !self.legacy {
            let url = format!("{}/ns-api/v2/tokens", self.base);
            let body: serde_json::Map<String, Value> = fields
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            let (st, b) = self
                .http
                .send("token", |h| h.post(&url).json(&body))
                .await?;
            if st == 404 {
                self.legacy = true;
            } else {
                status_body = Some((st, b));
            }
        }
        let (st, b) = match status_body {
            Some(x) => x,
            None => {
                let url = format!("{}/ns-api/oauth2/token/", self.base);
                let form = fields.clone();
                self.http
                    .send("token (legacy)", |h| h.post(&url).form(&form))
                    .await?
            }
        };
        if st != 200 {
            return Err(PbxError::Auth(format!(
                "token refused (HTTP {st}): {}",
                message(&b)
            )));
        }
        self.token = b["access_token"]
            .as_str()
            .ok_or_else(|| PbxError::Auth("token answer without access_token".into()))?
            .to_string();
        self.refresh = b["refresh_token"].as_str().map(str::to_string);
        Ok(())
    }

    /// A call with the bearer token; on a 401 with OAuth, refresh (or log in again) once.
    async fn call(
        &mut self,
        what: &str,
        req: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Value, PbxError> {
        for attempt in 0..2 {
            let token = self.token.clone();
            let (st, b) = self.http.send(what, |h| req(h, &token)).await?;
            match st {
                200..=299 => return Ok(b),
                401 if attempt == 0 && self.creds.api_key.is_none() => {
                    if self.login(true).await.is_err() {
                        self.login(false).await?;
                    }
                }
                401 | 403 => {
                    return Err(PbxError::Auth(format!(
                        "{what}: HTTP {st}: {}",
                        message(&b)
                    )));
                }
                _ => {
                    return Err(PbxError::Http {
                        what: what.into(),
                        reason: format!("HTTP {st}: {}", message(&b)),
                    });
                }
            }
        }
        Err(PbxError::Auth(format!(
            "{what}: still unauthorised after logging in again"
        )))
    }

    /// Every record of a v2 list, page by page (until an empty page).
    async fn list(&mut self, path: &str) -> Result<Vec<Value>, PbxError> {
        let mut out = Vec::new();
        loop {
            let url = format!(
                "{}/ns-api/v2{path}?limit={PAGE}&start={}",
                self.base,
                out.len()
            );
            let v = self.call(path, |h, t| h.get(&url).bearer_auth(t)).await?;
            let page = v.as_array().cloned().ok_or_else(|| PbxError::Malformed {
                record: path.to_string(),
                reason: "expected a JSON array".into(),
            })?;
            if page.is_empty() {
                return Ok(out);
            }
            out.extend(page);
        }
    }

    /// A v1 call: `POST /ns-api/?object=..&action=..&domain=..&format=json`.
    async fn v1(
        &mut self,
        object: &str,
        action: &str,
        domain: &str,
    ) -> Result<Vec<Value>, PbxError> {
        let url = format!("{}/ns-api/", self.base);
        let q = [
            ("object", object),
            ("action", action),
            ("domain", domain),
            ("format", "json"),
        ];
        let what = format!("{object} {action}");
        let v = self
            .call(&what, |h, t| h.post(&url).query(&q).bearer_auth(t))
            .await?;
        v.as_array().cloned().ok_or_else(|| PbxError::Malformed {
            record: what,
            reason: "expected a JSON array".into(),
        })
    }
}

/// Which API the core speaks: `/ns-api/v2/version` answers without auth on v2 cores.
pub async fn detect(http: &mut Http, base: &str) -> Result<String, PbxError> {
    let url = format!("{}/ns-api/v2/version", base.trim_end_matches('/'));
    let (st, b) = http.send("version", |h| h.get(&url)).await?;
    match st {
        200 => Ok(format!("v2 ({})", b["apiversion"].as_str().unwrap_or("?"))),
        404 => Ok("v1".into()),
        _ => Err(PbxError::Http {
            what: "version".into(),
            reason: format!("HTTP {st}"),
        }),
    }
}

/// Phones and lines of a domain over API v2.
pub async fn read_v2(
    http: &mut Http,
    base: &str,
    creds: &Creds,
    domain: &str,
) -> Result<Vec<PbxPhone>, PbxError> {
    let mut s = Session::open(http, base, creds).await?;
    let phones = s.list(&format!("/domains/{domain}/phones")).await?;
    let users = s.list(&format!("/domains/{domain}/users")).await?;
    // Domain-wide devices (v45); per user on cores without that call.
    let devices = match s.list(&format!("/domains/{domain}/devices")).await {
        Ok(d) => d,
        Err(PbxError::Http { reason, .. }) if reason.starts_with("HTTP 404") => {
            let mut all = Vec::new();
            for u in &users {
                if let Some(user) = field(u, &["user"]) {
                    all.extend(
                        s.list(&format!("/domains/{domain}/users/{user}/devices"))
                            .await?,
                    );
                }
            }
            all
        }
        Err(e) => return Err(e),
    };
    let caller_id: std::collections::HashMap<&str, &str> = users
        .iter()
        .filter_map(|u| {
            Some((
                field(u, &["user"])?,
                field(u, &["caller-id-name"]).or_else(|| field(u, &["name-full-name"]))?,
            ))
        })
        .collect();
    let mut out = Vec::new();
    for (i, p) in phones.iter().enumerate() {
        let mac = field(p, &["mac", "device-provisioning-mac-address"])
            .unwrap_or("")
            .to_string();
        let record = format!(
            "phones[{i}] (mac {})",
            if mac.is_empty() { "missing" } else { &mac }
        );
        let model = field(p, &["model", "device-models-brand-and-model"])
            .unwrap_or("")
            .to_string();
        let mut lines = Vec::new();
        for n in 1..=8u8 {
            let uri_keys = [
                format!("device{n}"),
                format!("device-provisioning-sip-uri-{n}"),
            ];
            let Some(uri) = field(p, &[&uri_keys[0], &uri_keys[1]]) else {
                continue;
            };
            if p[format!("device-provisioning-line-{n}-enabled")].as_str() == Some("no") {
                continue;
            }
            let dev = devices
                .iter()
                .find(|d| {
                    field(d, &["device-sip-registration-uri"])
                        .is_some_and(|u| u.eq_ignore_ascii_case(uri))
                })
                .or_else(|| {
                    devices.iter().find(|d| {
                        field(d, &["device-provisioning-mac-address"])
                            .is_some_and(|m| m.eq_ignore_ascii_case(&mac))
                            && field(d, &["device-provisioning-line"]) == Some(&n.to_string())
                    })
                })
                .ok_or_else(|| PbxError::Malformed {
                    record: record.clone(),
                    reason: format!("line {n} ({uri}) matches no SIP device of the domain"),
                })?;
            let password = field(dev, &["device-sip-registration-password"]).ok_or_else(|| {
                PbxError::Malformed {
                    record: record.clone(),
                    reason: format!(
                        "SIP device of line {n} ({uri}) has no device-sip-registration-password"
                    ),
                }
            })?;
            let user = uri_user(uri).to_string();
            let auth = field(dev, &["device"])
                .map(str::to_string)
                .filter(|a| *a != user);
            let display = field(dev, &["user"])
                .and_then(|u| caller_id.get(u).copied())
                .or_else(|| field(dev, &["name-full-name"]))
                .map(str::to_string);
            lines.push(PbxLine {
                n,
                user,
                auth_user: auth,
                password: password.to_string(),
                display_name: display,
                domain: uri_domain(uri),
            });
        }
        out.push(PbxPhone {
            record,
            mac,
            model,
            server: field(
                p,
                &["server", "device-provisioning-registration-core-server"],
            )
            .map(str::to_string),
            transport: field(
                p,
                &["transport", "device-provisioning-sip-transport-protocol"],
            )
            .map(str::to_string),
            lines,
        });
    }
    Ok(out)
}

/// Phones and lines of a domain over API v1: the MAC list for models, one device read for
/// lines and passwords.
pub async fn read_v1(
    http: &mut Http,
    base: &str,
    creds: &Creds,
    domain: &str,
) -> Result<Vec<PbxPhone>, PbxError> {
    let mut s = Session::open(http, base, creds).await?;
    let macs = s.v1("mac", "list", domain).await?;
    let devices = s.v1("device", "read", domain).await?;
    let mut out = Vec::new();
    for (i, p) in macs.iter().enumerate() {
        let mac = field(p, &["mac"]).unwrap_or("").to_string();
        let record = format!(
            "mac list[{i}] (mac {})",
            if mac.is_empty() { "missing" } else { &mac }
        );
        let mut lines = Vec::new();
        for d in devices
            .iter()
            .filter(|d| field(d, &["mac"]).is_some_and(|m| m.eq_ignore_ascii_case(&mac)))
        {
            let n: u8 = field(d, &["line"])
                .and_then(|l| l.parse().ok())
                .ok_or_else(|| PbxError::Malformed {
                    record: record.clone(),
                    reason: format!(
                        "device {} has no line number",
                        field(d, &["aor"]).unwrap_or("?")
                    ),
                })?;
            let aor = field(d, &["aor"]).ok_or_else(|| PbxError::Malformed {
                record: record.clone(),
                reason: format!("line {n} has no aor"),
            })?;
            let password =
                field(d, &["authentication_key"]).ok_or_else(|| PbxError::Malformed {
                    record: record.clone(),
                    reason: format!("line {n} ({aor}) has no authentication_key"),
                })?;
            lines.push(PbxLine {
                n,
                user: uri_user(aor).to_string(),
                auth_user: None,
                password: password.to_string(),
                display_name: field(d, &["sub_fullname"]).map(str::to_string),
                domain: uri_domain(aor),
            });
        }
        lines.sort_by_key(|l| l.n);
        out.push(PbxPhone {
            record,
            mac,
            model: field(p, &["model"]).unwrap_or("").to_string(),
            server: field(p, &["server"]).map(str::to_string),
            transport: field(p, &["transport"]).map(str::to_string),
            lines,
        });
    }
    Ok(out)
}
