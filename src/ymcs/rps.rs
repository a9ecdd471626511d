//! RPS, Yealink's redirection service: an RPS server entry per site provisioning URL and login,
//! and the phones pointed at it (or taken out of it) — through the RPS management API (v1) when
//! its keys are configured, else through YMCS v2, which refuses writes by MAC to ordinary
//! accounts (domain.md §5): there, phones with a serial number go by serial number, and a 403
//! says per MAC what to configure instead.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::rps_v1::{self, RpsClient};
use super::{
    Client, OpError, Progress, Report, YmcsError, apply_batch, by_mac, id_of, norm_mac, paths, row,
    yealink_only,
};
use crate::manage::Manager;
use crate::model::{Credential, Phone, Site};

/// Which API an RPS job talks to.
pub enum RpsApi<'a> {
    /// YMCS open API v2, with the YMCS key.
    Ymcs(&'a mut Client),
    /// The RPS management API v1, with its own key.
    V1(&'a mut RpsClient),
}

impl RpsApi<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            RpsApi::Ymcs(_) => "YMCS v2",
            RpsApi::V1(_) => "RPS management API v1",
        }
    }

    fn counts(&self) -> (u64, u64) {
        match self {
            RpsApi::Ymcs(c) => (c.requests, c.throttled),
            RpsApi::V1(c) => (c.requests, 0),
        }
    }

    /// RPS server entries: `id`, `serverName`, `url`.
    pub async fn servers(&mut self) -> Result<Vec<Value>, YmcsError> {
        match self {
            RpsApi::Ymcs(c) => c.list_all(paths::RPS_LIST_SERVERS, json!({})).await,
            RpsApi::V1(c) => c.list_all(rps_v1::SERVER_LIST).await,
        }
    }

    /// MAC → the RPS server it points at.
    async fn devices(&mut self) -> Result<HashMap<String, String>, YmcsError> {
        match self {
            RpsApi::Ymcs(c) => by_mac(c, paths::RPS_LIST_DEVICES, "serverId").await,
            RpsApi::V1(c) => Ok(c
                .list_all(rps_v1::DEVICE_LIST)
                .await?
                .iter()
                .filter_map(|d| {
                    Some((
                        norm_mac(&d["mac"])?,
                        id_of(&d["serverId"]).unwrap_or_default(),
                    ))
                })
                .collect()),
        }
    }

    async fn add_server(
        &mut self,
        name: &str,
        url: &str,
        auth: Option<&Credential>,
    ) -> Result<String, YmcsError> {
        let mut body = json!({"serverName": name, "url": url});
        if let Some(a) = auth {
            body["authName"] = json!(a.user);
            body["password"] = json!(a.password);
        }
        let (path, v) = match self {
            RpsApi::Ymcs(c) => (
                paths::RPS_ADD_SERVER,
                c.call(paths::RPS_ADD_SERVER, body, false).await?,
            ),
            RpsApi::V1(c) => (rps_v1::SERVER_ADD, c.post(rps_v1::SERVER_ADD, &body).await?),
        };
        id_of(&v["id"])
            .or_else(|| id_of(&v["data"]["id"]))
            .or_else(|| id_of(&v))
            .ok_or_else(|| YmcsError::Answer {
                path: path.into(),
                reason: format!("no server id in {v}"),
            })
    }

    /// Takes MACs out of RPS; a batch-shaped answer (or none) for [`apply_batch`].
    async fn delete(&mut self, macs: &[String]) -> Result<Value, YmcsError> {
        match self {
            RpsApi::Ymcs(c) => {
                c.call(paths::RPS_DEL_DEVICES, json!({"macs": macs}), true)
                    .await
            }
            RpsApi::V1(c) => c.post(rps_v1::DEVICE_DELETE, &json!({"macs": macs})).await,
        }
    }

    /// Points phones at a server; a batch-shaped answer for [`apply_batch`].
    async fn add(
        &mut self,
        server_id: &str,
        phones: &[(String, Option<String>)],
        auth: Option<&Credential>,
    ) -> Result<Value, YmcsError> {
        let macs: Vec<&str> = phones.iter().map(|(m, _)| m.as_str()).collect();
        match self {
            RpsApi::V1(c) => {
                let v = c
                    .post(
                        rps_v1::DEVICE_ADD,
                        &json!({"macs": macs, "serverId": server_id}),
                    )
                    .await?;
                Ok(v)
            }
            RpsApi::Ymcs(c) => {
                let mut errors = Vec::new();
                // With a serial number: the single-device call that takes one (open to
                // ordinary accounts).
                for (mac, sn) in phones.iter().filter(|(_, sn)| sn.is_some()) {
                    let mut body = json!({"mac": mac, "sn": sn, "serverId": server_id});
                    if let Some(a) = auth {
                        body["authName"] = json!(a.user);
                        body["password"] = json!(a.password);
                    }
                    if let Err(e) = c.call(paths::RPS_ADD_DEVICE, body, true).await {
                        errors.push(json!({"mac": mac, "code": e.code().unwrap_or(0), "message": e.to_string()}));
                    }
                }
                let by_mac: Vec<&str> = phones
                    .iter()
                    .filter(|(_, sn)| sn.is_none())
                    .map(|(m, _)| m.as_str())
                    .collect();
                if !by_mac.is_empty() {
                    let mut body = json!({"serverId": server_id, "macs": by_mac});
                    if let Some(a) = auth {
                        body["authName"] = json!(a.user);
                        body["password"] = json!(a.password);
                    }
                    match c.call(paths::RPS_ADD_DEVICES, body, true).await {
                        Ok(v) => errors.extend(v["errors"].as_array().cloned().unwrap_or_default()),
                        Err(e @ YmcsError::Api { status: 403, .. }) => {
                            for m in &by_mac {
                                errors.push(json!({"mac": m, "code": 403, "message": format!(
                                    "Yealink refuses RPS writes by MAC to this account ({e}): configure the RPS management API keys (PHONEPROV_RPS_KEY_ID and PHONEPROV_RPS_KEY_SECRET, or <data-dir>/rps.toml), or give the phone's serial number (phone update {m} --sn SN, or an sn column)"
                                )}));
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(json!({"errors": errors}))
            }
        }
    }
}

/// The RPS server entry name for a site: ≤ 20 characters, changes with the URL and login.
fn rps_server_name(site: &Site, url: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(url.as_bytes());
    if let Some(a) = &site.access.auth {
        h.update(b"\0");
        h.update(a.user.as_bytes());
        h.update(b"\0");
        h.update(a.password.as_bytes());
    }
    let tag = hex::encode(&h.finalize()[..3]);
    let short: String = site
        .name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(10)
        .collect();
    format!("pp-{short}-{tag}")
}

/// `ymcs rps-add`: an RPS server entry for the site's provisioning URL (with its login), and
/// every MAC pointed at it.
pub async fn rps_add(
    m: &Manager,
    mut c: RpsApi<'_>,
    targets: Vec<(Site, Vec<Phone>)>,
    confirm: bool,
    progress: Progress<'_>,
) -> Result<Report, OpError> {
    let servers = c.servers().await?;
    let in_rps: HashMap<String, String> = c.devices().await?;
    let mut report = Report::new("rps-add", confirm, vec![]);
    report.notes.push(format!("through the {}", c.name()));
    let sns: HashMap<String, Option<String>> = targets
        .iter()
        .flat_map(|(_, ps)| ps.iter().map(|p| (p.mac.to_string(), p.sn.clone())))
        .collect();
    let targets = yealink_only(targets, &mut report.rows);
    let mut work = Vec::new();
    for (site, phones) in &targets {
        let url = m.provisioning_url(site)?;
        let name = rps_server_name(site, &url);
        let existing = servers
            .iter()
            .find(|s| s["serverName"].as_str() == Some(name.as_str()))
            .and_then(|s| id_of(&s["id"]));
        if existing.is_none() {
            report.notes.push(format!(
                "create RPS server '{name}' → {url}{}",
                if site.access.auth.is_some() {
                    " (with the site's login)"
                } else {
                    ""
                }
            ));
        }
        let mut adds = Vec::new();
        let mut moves = Vec::new();
        for p in phones {
            let mac = p.mac.to_string();
            match (in_rps.get(&mac), &existing) {
                (Some(s), Some(e)) if s == e => report.rows.push(row(
                    &mac,
                    &site.name,
                    "unchanged",
                    format!("already on '{name}'"),
                )),
                (Some(s), _) => {
                    moves.push(report.rows.len());
                    report.rows.push(row(
                        &mac,
                        &site.name,
                        "move",
                        format!("from RPS server {s} to '{name}'"),
                    ));
                }
                (None, _) => {
                    adds.push(report.rows.len());
                    report
                        .rows
                        .push(row(&mac, &site.name, "add", format!("to '{name}'")));
                }
            }
        }
        work.push((site.clone(), url, name, existing, adds, moves));
    }
    if confirm {
        let total: usize = work.iter().map(|w| w.4.len() + w.5.len()).sum();
        let mut done = 0;
        for (site, url, name, existing, adds, moves) in work {
            if adds.is_empty() && moves.is_empty() {
                continue;
            }
            let auth = site.access.auth.clone();
            let server_id = match existing {
                Some(id) => id,
                None => match c.add_server(&name, &url, auth.as_ref()).await {
                    Ok(id) => id,
                    Err(e @ YmcsError::Answer { .. }) => return Err(e.into()),
                    Err(e) => {
                        for i in adds.iter().chain(&moves) {
                            report.rows[*i].result = "failed".into();
                            report.rows[*i].detail = format!("RPS server not created: {e}");
                        }
                        continue;
                    }
                },
            };
            // Moves: off the old server first (deleting is safe to repeat).
            for chunk in moves.chunks(paths::BATCH) {
                let macs: Vec<String> = chunk.iter().map(|i| report.rows[*i].mac.clone()).collect();
                if let Err(e) = c.delete(&macs).await {
                    for i in chunk {
                        report.rows[*i].result = "failed".into();
                        report.rows[*i].detail = format!("not removed from the old server: {e}");
                    }
                }
            }
            let todo: Vec<usize> = adds
                .iter()
                .chain(&moves)
                .copied()
                .filter(|i| report.rows[*i].result.is_empty())
                .collect();
            for chunk in todo.chunks(paths::BATCH) {
                let macs: Vec<String> = chunk.iter().map(|i| report.rows[*i].mac.clone()).collect();
                let phones: Vec<(String, Option<String>)> = macs
                    .iter()
                    .map(|m| (m.clone(), sns.get(m).cloned().flatten()))
                    .collect();
                let res = c.add(&server_id, &phones, auth.as_ref()).await;
                apply_batch(&mut report.rows, chunk, &macs, res, &[]);
                done += chunk.len();
                progress(done, total);
            }
        }
    }
    let (requests, throttled) = c.counts();
    Ok(report.close_with(requests, throttled))
}

/// `ymcs rps-remove`: takes the MACs out of RPS.
pub async fn rps_remove(
    mut c: RpsApi<'_>,
    targets: Vec<(Site, Vec<Phone>)>,
    confirm: bool,
    progress: Progress<'_>,
) -> Result<Report, OpError> {
    let in_rps: HashMap<String, String> = c.devices().await?;
    let mut report = Report::new("rps-remove", confirm, vec![]);
    report.notes.push(format!("through the {}", c.name()));
    let targets = yealink_only(targets, &mut report.rows);
    let mut idx = Vec::new();
    for (site, phones) in &targets {
        for p in phones {
            let mac = p.mac.to_string();
            match in_rps.get(&mac) {
                Some(s) => {
                    idx.push(report.rows.len());
                    report.rows.push(row(
                        &mac,
                        &site.name,
                        "remove",
                        format!("from RPS server {s}"),
                    ));
                }
                None => report
                    .rows
                    .push(row(&mac, &site.name, "unchanged", "not in RPS")),
            }
        }
    }
    if confirm {
        let mut done = 0;
        for chunk in idx.chunks(paths::BATCH) {
            let macs: Vec<String> = chunk.iter().map(|i| report.rows[*i].mac.clone()).collect();
            let res = c.delete(&macs).await;
            apply_batch(&mut report.rows, chunk, &macs, res, &[]);
            done += chunk.len();
            progress(done, idx.len());
        }
    }
    let (requests, throttled) = c.counts();
    Ok(report.close_with(requests, throttled))
}
