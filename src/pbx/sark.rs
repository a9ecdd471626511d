//! SARK V6 (Asterisk-based): `GET /api/extensions` (a bare array), the tenant ("cluster") as the
//! domain, `GET /api/sysglobals` for the SIP server. Extensions without a MAC are not phones.

use serde_json::Value;

use super::fetch::{Http, message};
use super::{Creds, PbxError, PbxLine, PbxPhone};

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v[k].as_str().map(str::trim).filter(|x| !x.is_empty())
}

async fn get(http: &mut Http, base: &str, path: &str, creds: &Creds) -> Result<Value, PbxError> {
    let url = format!("{}/api{path}", base.trim_end_matches('/'));
    let (st, b) = http
        .send(path, |h| {
            let r = h.get(&url);
            match &creds.token {
                Some(t) => r.bearer_auth(t),
                None => r,
            }
        })
        .await?;
    match st {
        200..=299 => Ok(b),
        // A token without admin rights gets 404 on /extensions, not 403.
        401 | 403 => Err(PbxError::Auth(format!(
            "{path}: HTTP {st}: {}",
            message(&b)
        ))),
        404 if path == "/extensions" && creds.token.is_some() => Err(PbxError::Auth(format!(
            "{path}: HTTP 404 — SARK answers so to a token without admin rights"
        ))),
        _ => Err(PbxError::Http {
            what: path.into(),
            reason: format!("HTTP {st}: {}", message(&b)),
        }),
    }
}

/// An extension: its number, its index in the answer, the record.
type Ext = (String, usize, Value);

pub async fn read(
    http: &mut Http,
    base: &str,
    creds: &Creds,
    tenant: &str,
) -> Result<Vec<PbxPhone>, PbxError> {
    let exts = get(http, base, "/extensions", creds).await?;
    let exts = exts
        .as_array()
        .cloned()
        .ok_or_else(|| PbxError::Malformed {
            record: "/api/extensions".into(),
            reason: "expected a JSON array".into(),
        })?;
    let globals = get(http, base, "/sysglobals", creds).await?;
    let server = s(&globals, "FQDN")
        .or_else(|| s(&globals, "LOCALIP"))
        .map(str::to_string);
    // Group the tenant's extensions by MAC, in extension order.
    let mut by_mac: Vec<(String, String, Vec<Ext>)> = Vec::new();
    for (i, e) in exts.iter().enumerate() {
        if s(e, "cluster").unwrap_or("default") != tenant {
            continue;
        }
        let Some(mac) = s(e, "macaddr") else { continue };
        let pkey = match &e["pkey"] {
            Value::String(p) => p.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let model = format!(
            "{} {}",
            s(e, "device").unwrap_or(""),
            s(e, "devicemodel").unwrap_or("")
        )
        .trim()
        .to_string();
        let key = mac.to_ascii_lowercase();
        match by_mac.iter_mut().find(|(m, _, _)| *m == key) {
            Some((_, _, v)) => v.push((pkey, i, e.clone())),
            None => by_mac.push((key, model, vec![(pkey, i, e.clone())])),
        }
    }
    let mut out = Vec::new();
    for (mac, model, mut exts) in by_mac {
        exts.sort_by(|a, b| a.0.cmp(&b.0));
        let record = format!("extension {} (mac {mac})", exts[0].0);
        let mut lines = Vec::new();
        for (n, (pkey, i, e)) in exts.iter().enumerate() {
            if pkey.is_empty() {
                return Err(PbxError::Malformed {
                    record: format!("extensions[{i}] (mac {mac})"),
                    reason: "no pkey".into(),
                });
            }
            let password = s(e, "passwd").ok_or_else(|| PbxError::Malformed {
                record: format!("extension {pkey} (mac {mac})"),
                reason: "no passwd".into(),
            })?;
            lines.push(PbxLine {
                n: (n + 1) as u8,
                user: pkey.clone(),
                auth_user: None,
                password: password.to_string(),
                display_name: Some(s(e, "desc").unwrap_or(pkey).to_string()),
                // SARK registers extensions to the PBX itself: the site's SIP server.
                domain: None,
            });
        }
        out.push(PbxPhone {
            record,
            transport: s(&exts[0].2, "transport").map(str::to_string),
            mac,
            model,
            server: server.clone(),
            lines,
        });
    }
    Ok(out)
}
