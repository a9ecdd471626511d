//! Yealink's cloud (YMCS open API v2): register our phones to the client's YMCS site, point
//! their RPS entries at the site's provisioning URL, reboot them in paced waves.
//!
//! Every write is planned first from what YMCS says now (reads are free), so a dry run shows
//! exactly what would change per MAC and a re-run of a finished job changes nothing. Batch
//! answers are read per MAC: an HTTP 200 with failures inside is a partial failure.

mod client;
mod clouds;
pub mod paths;
mod rps;
pub mod rps_v1;

pub use rps::{RpsApi, rps_add, rps_remove};

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

pub use client::{Client, FILE, YmcsConfig, YmcsError};
pub use clouds::Clouds;

use crate::manage::Manager;
use crate::model::{Phone, Site};

/// Why an operation could not run (a per-MAC failure is a row, not this).
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error(transparent)]
    Ymcs(#[from] YmcsError),
    #[error(transparent)]
    Manage(#[from] crate::manage::Error),
    #[error("{0}")]
    Invalid(String),
}

/// One MAC's line in a plan or a report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = YmcsRow)]
pub struct Row {
    pub mac: String,
    pub site: String,
    /// Plan: `add`, `move`, `remove`, `reboot`, `unchanged`, `skip`.
    pub action: String,
    /// Report: `ok`, `unchanged`, `failed`, `skipped`; empty in a plan.
    pub result: String,
    pub detail: String,
}

/// A plan (dry run) or what was done.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = YmcsReport)]
pub struct Report {
    pub operation: &'static str,
    pub dry_run: bool,
    pub rows: Vec<Row>,
    /// Server-side steps (e.g. the RPS server entry to create).
    pub notes: Vec<String>,
    pub requests: u64,
    pub throttled: u64,
}

impl Report {
    pub fn failed(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| r.result == "failed")
            .map(|r| r.mac.as_str())
            .collect()
    }
}

fn row(mac: &str, site: &str, action: &str, detail: impl Into<String>) -> Row {
    Row {
        mac: mac.to_string(),
        site: site.to_string(),
        action: action.to_string(),
        result: String::new(),
        detail: detail.into(),
    }
}

/// Whether the phone's vendor lives in YMCS (the vendor's `cloud` in its `vendor.toml`).
fn in_ymcs(p: &Phone) -> bool {
    let cat = crate::catalog::Catalog::get();
    cat.model(&p.model)
        .and_then(|m| cat.vendor(&m.vendor))
        .is_some_and(|v| v.cloud.as_deref() == Some("ymcs"))
}

/// Splits off the phones YMCS does not know (other vendors) as skipped rows.
fn yealink_only(targets: Vec<(Site, Vec<Phone>)>, rows: &mut Vec<Row>) -> Vec<(Site, Vec<Phone>)> {
    targets
        .into_iter()
        .map(|(s, phones)| {
            let (keep, other): (Vec<Phone>, Vec<Phone>) = phones.into_iter().partition(in_ymcs);
            for p in other {
                rows.push(row(
                    &p.mac.to_string(),
                    &s.name,
                    "skip",
                    format!("{} is not managed through YMCS", p.model),
                ));
            }
            (s, keep)
        })
        .collect()
}

/// YMCS writes MACs as 12 lowercase hex digits, or with separators: compare them so.
fn norm_mac(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    s.parse::<crate::mac::Mac>().ok().map(|m| m.to_string())
}

fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads a batch answer `{total, successCount, failureCount, errors:[{mac|field, code, message}]}`
/// into per-MAC outcomes: `ok_codes` count as success (e.g. "already exists").
fn batch_results(
    v: &Value,
    macs: &[String],
    ok_codes: &[i64],
) -> HashMap<String, Result<String, String>> {
    let mut out: HashMap<String, Result<String, String>> = macs
        .iter()
        .map(|m| (m.clone(), Ok("done".to_string())))
        .collect();
    for e in v["errors"].as_array().into_iter().flatten() {
        let mac = norm_mac(&e["mac"]).or_else(|| norm_mac(&e["field"]));
        let code = e["code"].as_i64().unwrap_or(0);
        let msg = e["message"].as_str().unwrap_or("").to_string();
        let what = match code {
            paths::ALREADY_EXISTS => format!("already there ({code})"),
            paths::OTHER_ORGANISATION => format!("owned by another organisation ({code}): {msg}"),
            _ => format!("code {code}: {msg}"),
        };
        let res = if ok_codes.contains(&code) {
            Ok(what)
        } else {
            Err(what)
        };
        match mac {
            Some(m) => {
                out.insert(m, res);
            }
            None => {
                // An error that names no MAC: the whole batch is in doubt.
                for r in out.values_mut() {
                    if r.is_ok() {
                        *r = Err(format!("batch error without a MAC: code {code}: {msg}"));
                    }
                }
            }
        }
    }
    out
}

/// A list call's records as MAC → the id in `field` (site or RPS server).
async fn by_mac(
    c: &mut Client,
    path: &str,
    field: &str,
) -> Result<HashMap<String, String>, YmcsError> {
    Ok(c.list_all(path, json!({}))
        .await?
        .iter()
        .filter_map(|d| Some((norm_mac(&d["mac"])?, id_of(&d[field]).unwrap_or_default())))
        .collect())
}

impl Report {
    fn new(operation: &'static str, confirm: bool, rows: Vec<Row>) -> Report {
        Report {
            operation,
            dry_run: !confirm,
            rows,
            notes: vec![],
            requests: 0,
            throttled: 0,
        }
    }
}

/// Progress of a long write, for a terminal.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// The YMCS site id for our site (its `ymcs_site`, or its own name).
fn ymcs_site_id(sites: &[Value], site: &Site) -> Result<String, OpError> {
    let want = site.ymcs_site.clone().unwrap_or_else(|| site.name.clone());
    sites
        .iter()
        .find(|s| s["name"].as_str() == Some(want.as_str()))
        .and_then(|s| id_of(&s["id"]))
        .ok_or_else(|| {
            OpError::Invalid(format!(
                "site '{}': YMCS has no site named '{want}'; create it in YMCS, or map ours with `phoneprov site update {} --ymcs-site NAME`",
                site.name, site.name
            ))
        })
}

/// `ymcs status`: the key works; YMCS sites with their device counts.
pub async fn status(c: &mut Client) -> Result<Value, OpError> {
    let sites = c.list_all(paths::LIST_SITES, json!({})).await?;
    let mut out = Vec::new();
    for s in &sites {
        let v = c
            .call(
                paths::LIST_DEVICES,
                json!({"skip": 0, "limit": 1, "autoCount": true, "filter": {"siteId": s["id"]}}),
                true,
            )
            .await?;
        out.push(json!({"id": s["id"], "name": s["name"], "devices": v["total"]}));
    }
    Ok(json!({"token": "ok", "sites": out}))
}

/// `ymcs devices`: per MAC, whether we, YMCS, or both know it, and where.
pub async fn devices(
    m: &Manager,
    c: &mut Client,
    site: Option<&str>,
) -> Result<Vec<Value>, OpError> {
    let sites = c.list_all(paths::LIST_SITES, json!({})).await?;
    let names = site_names(&sites);
    let theirs: HashMap<String, String> = by_mac(c, paths::LIST_DEVICES, "siteId")
        .await?
        .into_iter()
        .map(|(mac, id)| (mac, names.get(&id).cloned().unwrap_or_default()))
        .collect();
    let ours = match site {
        Some(s) => m.phones_for(Some(s), &[]).await?,
        None => {
            let mut all = Vec::new();
            for s in m.site_list().await? {
                all.extend(m.phones_for(Some(&s.site.name), &[]).await?);
            }
            all
        }
    };
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (s, phones) in &ours {
        let want = s.ymcs_site.clone().unwrap_or_else(|| s.name.clone());
        for p in phones {
            let mac = p.mac.to_string();
            seen.insert(mac.clone());
            let state = match theirs.get(&mac) {
                Some(y) if *y == want => "both",
                Some(_) => "other-ymcs-site",
                None => "ours-only",
            };
            out.push(json!({"mac": mac, "site": s.name, "model": p.model,
                "ymcs_site": theirs.get(&mac), "state": state}));
        }
    }
    if site.is_none() {
        for (mac, y) in &theirs {
            if !seen.contains(mac) {
                out.push(json!({"mac": mac, "site": null, "model": null, "ymcs_site": y, "state": "ymcs-only"}));
            }
        }
    }
    out.sort_by(|a, b| a["mac"].as_str().cmp(&b["mac"].as_str()));
    Ok(out)
}

/// `ymcs register`: adds our phones to their YMCS site by MAC.
pub async fn register(
    c: &mut Client,
    targets: Vec<(Site, Vec<Phone>)>,
    confirm: bool,
    progress: Progress<'_>,
) -> Result<Report, OpError> {
    let sites = c.list_all(paths::LIST_SITES, json!({})).await?;
    let site_names = site_names(&sites);
    let known: HashMap<String, String> = by_mac(c, paths::LIST_DEVICES, "siteId").await?;
    let mut rows = Vec::new();
    let targets = yealink_only(targets, &mut rows);
    let mut work: Vec<(String, Vec<usize>)> = Vec::new();
    for (site, phones) in &targets {
        let sid = ymcs_site_id(&sites, site)?;
        let mut idx = Vec::new();
        for p in phones {
            let mac = p.mac.to_string();
            match known.get(&mac) {
                Some(s) if *s == sid => {
                    rows.push(row(&mac, &site.name, "unchanged", "already registered"))
                }
                Some(other) => rows.push(row(
                    &mac,
                    &site.name,
                    "skip",
                    format!(
                        "registered to YMCS site '{}'; move it in YMCS first",
                        site_names
                            .get(other)
                            .cloned()
                            .unwrap_or_else(|| other.clone())
                    ),
                )),
                None => {
                    idx.push(rows.len());
                    rows.push(row(
                        &mac,
                        &site.name,
                        "add",
                        format!("to YMCS site id {sid}"),
                    ));
                }
            }
        }
        work.push((sid, idx));
    }
    let mut report = Report {
        operation: "register",
        dry_run: !confirm,
        rows,
        notes: vec![],
        requests: 0,
        throttled: 0,
    };
    if confirm {
        let total: usize = work.iter().map(|(_, i)| i.len()).sum();
        let mut done = 0;
        for (sid, idx) in work {
            for chunk in idx.chunks(paths::BATCH) {
                let macs: Vec<String> = chunk.iter().map(|i| report.rows[*i].mac.clone()).collect();
                let res = c
                    .call(
                        paths::ADD_DEVICES_BY_MAC,
                        json!({"siteId": sid, "macs": macs}),
                        true,
                    )
                    .await;
                apply_batch(
                    &mut report.rows,
                    chunk,
                    &macs,
                    res,
                    &[paths::ALREADY_EXISTS],
                );
                done += chunk.len();
                progress(done, total);
            }
        }
    }
    Ok(report.close(c))
}

/// Marks rows from a batch call's answer.
fn apply_batch(
    rows: &mut [Row],
    idx: &[usize],
    macs: &[String],
    res: Result<Value, YmcsError>,
    ok_codes: &[i64],
) {
    match res {
        Ok(v) => {
            let per = batch_results(&v, macs, ok_codes);
            for i in idx {
                let r = &mut rows[*i];
                match per.get(&r.mac) {
                    Some(Ok(d)) => {
                        r.result = "ok".into();
                        r.detail = d.clone();
                    }
                    Some(Err(d)) => {
                        r.result = "failed".into();
                        r.detail = d.clone();
                    }
                    None => r.result = "ok".into(),
                }
            }
        }
        Err(e) => {
            for i in idx {
                rows[*i].result = "failed".into();
                rows[*i].detail = e.to_string();
            }
        }
    }
}

impl Report {
    /// The report as it leaves an operation: after a write, rows it did not touch get their
    /// plan's outcome; the client's request counts.
    fn close(self, c: &Client) -> Report {
        self.close_with(c.requests, c.throttled)
    }

    fn close_with(mut self, requests: u64, throttled: u64) -> Report {
        if !self.dry_run {
            for r in &mut self.rows {
                if r.result.is_empty() {
                    r.result = match r.action.as_str() {
                        "unchanged" => "unchanged",
                        _ => "skipped",
                    }
                    .into();
                }
            }
        }
        self.requests = requests;
        self.throttled = throttled;
        self
    }
}

/// YMCS site id → name.
fn site_names(sites: &[Value]) -> HashMap<String, String> {
    sites
        .iter()
        .filter_map(|s| Some((id_of(&s["id"])?, s["name"].as_str()?.to_string())))
        .collect()
}

/// `--pace 60/min` or `60` → reboots per minute.
pub fn parse_pace(s: &str) -> Result<u32, String> {
    let n = s.trim().trim_end_matches("/min").trim();
    n.parse::<u32>()
        .ok()
        .filter(|n| (1..=600).contains(n))
        .ok_or_else(|| format!("pace '{s}' must be 1 to 600 per minute, e.g. 60/min"))
}

/// `ymcs reboot`: one phone at a time, `pace` per minute, so a site's phones do not all boot
/// against the server at once. A reboot is not repeated on a timeout (it may have happened).
pub async fn reboot(
    c: &mut Client,
    targets: Vec<(Site, Vec<Phone>)>,
    confirm: bool,
    pace: u32,
    progress: Progress<'_>,
) -> Result<Report, OpError> {
    let mut skipped = Vec::new();
    let targets = yealink_only(targets, &mut skipped);
    let all: Vec<(String, String)> = targets
        .iter()
        .flat_map(|(s, ps)| ps.iter().map(|p| (p.mac.to_string(), s.name.clone())))
        .collect();
    // Device ids from the device list (its entries carry `id`); `deviceId` only for the rest.
    let mut ids: HashMap<String, String> = by_mac(c, paths::LIST_DEVICES, "id")
        .await?
        .into_iter()
        .filter(|(_, id)| !id.is_empty())
        .collect();
    let missing: Vec<&str> = all
        .iter()
        .map(|(m, _)| m.as_str())
        .filter(|m| !ids.contains_key(*m))
        .collect();
    for chunk in missing.chunks(paths::BATCH) {
        let v = c
            .call(
                paths::DEVICE_ID,
                json!({"deviceType": "phone", "deviceIds": chunk, "deviceIdType": "mac"}),
                true,
            )
            .await?;
        let (entries, _) = client::records(paths::DEVICE_ID, &v)?;
        for d in entries {
            match (
                norm_mac(&d["mac"]),
                id_of(&d["deviceId"]).or_else(|| id_of(&d["id"])),
            ) {
                (Some(m), Some(id)) => {
                    ids.insert(m, id);
                }
                _ => {
                    return Err(YmcsError::Answer {
                        path: paths::DEVICE_ID.into(),
                        reason: format!("an entry without mac and deviceId: {d}"),
                    }
                    .into());
                }
            }
        }
    }
    let gap = Duration::from_secs_f64(60.0 / pace as f64);
    let mut report = Report::new("reboot", confirm, skipped);
    let mut idx = Vec::new();
    for (mac, site) in &all {
        match ids.get(mac) {
            Some(id) => {
                let at = gap * idx.len() as u32;
                idx.push(report.rows.len());
                report.rows.push(row(
                    mac,
                    site,
                    "reboot",
                    format!("device {id}, at +{:.1}s", at.as_secs_f64()),
                ));
            }
            None => report.rows.push(row(
                mac,
                site,
                "skip",
                "not registered in YMCS (ymcs register first)",
            )),
        }
    }
    if confirm {
        let start = tokio::time::Instant::now();
        for (k, i) in idx.iter().enumerate() {
            tokio::time::sleep_until(start + gap * k as u32).await;
            let mac = report.rows[*i].mac.clone();
            let id = ids.get(&mac).cloned().unwrap_or_default();
            let res = c
                .call(
                    paths::REBOOT,
                    json!({"deviceIds": [id], "deviceType": "phone"}),
                    false,
                )
                .await;
            apply_batch(&mut report.rows, &[*i], &[mac], res, &[]);
            progress(k + 1, idx.len());
        }
    }
    Ok(report.close(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_read_per_mac() {
        let macs = vec![
            "805ec0000001".to_string(),
            "805ec0000002".into(),
            "805ec0000003".into(),
        ];
        let v = json!({"total": 3, "successCount": 1, "failureCount": 2, "errors": [
            {"mac": "80:5E:C0:00:00:02", "code": 800003, "message": "exists"},
            {"mac": "805EC0000003", "code": 800004, "message": "other org"}]});
        let r = batch_results(&v, &macs, &[paths::ALREADY_EXISTS]);
        assert!(r["805ec0000001"].is_ok());
        assert!(r["805ec0000002"].as_ref().unwrap().contains("already"));
        assert!(
            r["805ec0000003"]
                .as_ref()
                .unwrap_err()
                .contains("another organisation")
        );
        assert_eq!(parse_pace("60/min").unwrap(), 60);
        assert!(parse_pace("0").is_err());
    }
}
