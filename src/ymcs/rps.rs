//! RPS, Yealink's redirection service: an RPS server entry per site provisioning URL and login,
//! and the phones pointed at it (or taken out of it).

use std::collections::HashMap;

use serde_json::json;

use super::{
    Client, OpError, Progress, Report, YmcsError, apply_batch, by_mac, id_of, paths, row,
    yealink_only,
};
use crate::manage::Manager;
use crate::model::{Phone, Site};

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
    c: &mut Client,
    targets: Vec<(Site, Vec<Phone>)>,
    confirm: bool,
    progress: Progress<'_>,
) -> Result<Report, OpError> {
    let servers = c.list_all(paths::RPS_LIST_SERVERS, json!({})).await?;
    let in_rps: HashMap<String, String> = by_mac(c, paths::RPS_LIST_DEVICES, "serverId").await?;
    let mut report = Report::new("rps-add", confirm, vec![]);
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
                None => {
                    let mut body = json!({"serverName": name, "url": url});
                    if let Some(a) = &auth {
                        body["authName"] = json!(a.user);
                        body["password"] = json!(a.password);
                    }
                    match c.call(paths::RPS_ADD_SERVER, body, false).await {
                        Ok(v) => id_of(&v["id"])
                            .or_else(|| id_of(&v["data"]["id"]))
                            .ok_or_else(|| {
                                OpError::Ymcs(YmcsError::Answer {
                                    path: paths::RPS_ADD_SERVER.into(),
                                    reason: "no server id".into(),
                                })
                            })?,
                        Err(e) => {
                            for i in adds.iter().chain(&moves) {
                                report.rows[*i].result = "failed".into();
                                report.rows[*i].detail = format!("RPS server not created: {e}");
                            }
                            continue;
                        }
                    }
                }
            };
            // Moves: off the old server first (deleting is safe to repeat).
            for chunk in moves.chunks(paths::BATCH) {
                let macs: Vec<String> = chunk.iter().map(|i| report.rows[*i].mac.clone()).collect();
                if let Err(e) = c
                    .call(paths::RPS_DEL_DEVICES, json!({"macs": macs}), true)
                    .await
                {
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
                let mut body = json!({"serverId": server_id, "macs": macs});
                if let Some(a) = &auth {
                    body["authName"] = json!(a.user);
                    body["password"] = json!(a.password);
                }
                let res = c.call(paths::RPS_ADD_DEVICES, body, true).await;
                apply_batch(&mut report.rows, chunk, &macs, res, &[]);
                done += chunk.len();
                progress(done, total);
            }
        }
    }
    Ok(report.close(c))
}

/// `ymcs rps-remove`: takes the MACs out of RPS.
pub async fn rps_remove(
    c: &mut Client,
    targets: Vec<(Site, Vec<Phone>)>,
    confirm: bool,
    progress: Progress<'_>,
) -> Result<Report, OpError> {
    let in_rps: HashMap<String, String> = by_mac(c, paths::RPS_LIST_DEVICES, "serverId").await?;
    let mut report = Report::new("rps-remove", confirm, vec![]);
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
            let res = c
                .call(paths::RPS_DEL_DEVICES, json!({"macs": macs}), true)
                .await;
            apply_batch(&mut report.rows, chunk, &macs, res, &[]);
            done += chunk.len();
            progress(done, idx.len());
        }
    }
    Ok(report.close(c))
}
