//! PBX sync: phones and lines read from the PBX (NetSapiens API v2/v1, SARK V6), the PBX being
//! the source of truth. A sync turns the PBX's records into the import's rows and runs the same
//! engine as a CSV import — validated as a whole, all or nothing, created/updated/unchanged
//! (and removed with `prune`), idempotent — with each error naming the PBX record.
//!
//! Credentials come from `PHONEPROV_PBX_<NAME>_*` or `<data-dir>/pbx-credentials.toml` (0600),
//! never from argv, never logged.

mod fetch;
mod netsapiens;
mod sark;

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::catalog::Catalog;
use crate::import::{self, Input, Options, Report};
use crate::manage::{Error, Manager};
use crate::store::{self, PbxRow};

/// Why a PBX could not be read (a per-phone problem is a row, not this).
#[derive(Debug, thiserror::Error)]
pub enum PbxError {
    #[error("PBX configuration: {0}")]
    Config(String),
    #[error("PBX refused our credentials: {0}")]
    Auth(String),
    #[error("PBX {what}: {reason}")]
    Http { what: String, reason: String },
    #[error("PBX record {record} is malformed: {reason}")]
    Malformed { record: String, reason: String },
}

/// A phone as the PBX describes it.
#[derive(Debug, Clone)]
pub struct PbxPhone {
    /// Where it came from, for error messages (`phones[3] (mac 805ec0aabbcc)`).
    pub record: String,
    pub mac: String,
    /// The PBX's model name (`Yealink SIP-T54W`, `Polycom VVX450`).
    pub model: String,
    pub server: Option<String>,
    pub transport: Option<String>,
    pub lines: Vec<PbxLine>,
}

#[derive(Clone)]
pub struct PbxLine {
    pub n: u8,
    pub user: String,
    pub auth_user: Option<String>,
    pub password: String,
    pub display_name: Option<String>,
    /// The SIP domain of the line's address (`sip:101x@vwp.91912.service`), when given.
    pub domain: Option<String>,
}

impl std::fmt::Debug for PbxLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PbxLine")
            .field("n", &self.n)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A PBX's login: an API key, OAuth client and user, or a SARK token.
#[derive(Clone, Default)]
pub struct Creds {
    pub api_key: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
}

/// The credentials file in the data dir (mode 0600), one table per PBX name.
pub const CREDS_FILE: &str = "pbx-credentials.toml";

/// `PHONEPROV_PBX_<NAME>_...`, then the credentials file.
pub fn creds(data_dir: &Path, name: &str) -> Result<Creds, PbxError> {
    let prefix = format!(
        "PHONEPROV_PBX_{}_",
        name.to_ascii_uppercase().replace('-', "_")
    );
    let path = data_dir.join(CREDS_FILE);
    let file: toml::Table = match crate::outbound::read_private(&path).map_err(PbxError::Config)? {
        Some(t) => t
            .parse()
            .map_err(|e| PbxError::Config(format!("{}: {e}", path.display())))?,
        None => toml::Table::new(),
    };
    let table = file
        .get(name)
        .and_then(|v| v.as_table())
        .cloned()
        .unwrap_or_default();
    let get = |k: &str| {
        std::env::var(format!("{prefix}{}", k.to_ascii_uppercase()))
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| table.get(k).and_then(|v| v.as_str()).map(str::to_string))
    };
    Ok(Creds {
        api_key: get("api_key"),
        client_id: get("client_id"),
        client_secret: get("client_secret"),
        username: get("username"),
        password: get("password"),
        token: get("token"),
    })
}

/// Our model for the PBX's name: the vendor's name in front is dropped (`Yealink SIP-T54W`,
/// `Polycom VVX450`), then the catalogue's loose match.
pub fn map_model(pbx_model: &str) -> Option<String> {
    let cat = Catalog::get();
    let t = pbx_model.trim();
    let mut candidates = vec![t.to_string()];
    for v in &cat.vendors {
        for name in [&v.display, &v.vendor] {
            if t.len() > name.len() && t[..name.len()].eq_ignore_ascii_case(name) {
                candidates.push(t[name.len()..].trim().to_string());
            }
        }
    }
    candidates
        .iter()
        .find_map(|c| cat.model(c).map(|m| m.name.clone()))
}

/// A phone the PBX has that we cannot provision.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub mac: String,
    pub record: String,
    pub reason: String,
}

/// What a sync did, or would do.
#[derive(Debug, Serialize)]
pub struct SyncReport {
    pub pbx: String,
    pub api: String,
    pub domain: String,
    pub site: String,
    #[serde(flatten)]
    pub import: Report,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
    /// 429 answers waited out.
    pub throttled: u32,
}

impl Manager {
    pub async fn pbx_add(
        &self,
        name: &str,
        kind: &str,
        base_url: &str,
        api_version: &str,
    ) -> Result<PbxRow, Error> {
        let name_ok = !name.is_empty()
            && name.len() <= 40
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(Error::Invalid(format!(
                "PBX name '{name}' may hold only letters, digits, '-' and '_' (1 to 40)"
            )));
        }
        if !matches!(kind, "netsapiens" | "sark") {
            return Err(Error::Invalid(format!(
                "kind '{kind}' must be netsapiens or sark"
            )));
        }
        if !matches!(api_version, "auto" | "v2" | "v1") {
            return Err(Error::Invalid(format!(
                "api version '{api_version}' must be auto, v2 or v1"
            )));
        }
        if kind == "sark" && api_version != "auto" {
            return Err(Error::Invalid(
                "--api-version applies to NetSapiens only".into(),
            ));
        }
        let base = base_url.trim().trim_end_matches('/');
        crate::outbound::check_base_url(base).map_err(Error::Invalid)?;
        let mut conn = self.store.conn().await?;
        if store::pbx_named(&mut conn, name).await?.is_some() {
            return Err(Error::Conflict(format!("a PBX named '{name}' exists")));
        }
        store::insert_pbx(&mut conn, name, kind, base, api_version).await?;
        store::pbx_named(&mut conn, name)
            .await?
            .ok_or_else(|| Error::NotFound(name.into()))
    }

    pub async fn pbx_named(&self, name: &str) -> Result<PbxRow, Error> {
        let mut conn = self.store.conn().await?;
        store::pbx_named(&mut conn, name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no PBX named '{name}'")))
    }

    pub async fn pbx_list(&self) -> Result<Vec<PbxRow>, Error> {
        let mut conn = self.store.conn().await?;
        Ok(store::list_pbx(&mut conn).await?)
    }

    pub async fn pbx_pairs(&self, pbx: Option<i64>) -> Result<Vec<store::SyncPair>, Error> {
        let mut conn = self.store.conn().await?;
        Ok(store::sync_pairs(&mut conn, pbx).await?)
    }

    pub async fn pbx_rm(&self, name: &str) -> Result<(), Error> {
        let p = self.pbx_named(name).await?;
        let mut conn = self.store.conn().await?;
        store::delete_pbx(&mut conn, p.id).await?;
        Ok(())
    }
}

/// Reads the PBX, then imports what it says into `site`.
pub async fn sync(
    m: &Manager,
    data_dir: &Path,
    pbx: &str,
    domain: &str,
    site: &str,
    dry_run: bool,
    prune: bool,
) -> Result<SyncReport, SyncError> {
    let row = m.pbx_named(pbx).await?;
    let site_row = m.site_show(site).await?;
    let creds = creds(data_dir, &row.name)?;
    let mut http = fetch::Http::new()?;
    let (api, phones) = match row.kind.as_str() {
        "sark" => (
            "sark".to_string(),
            sark::read(&mut http, &row.base_url, &creds, domain).await?,
        ),
        _ => {
            let api = match row.api_version.as_str() {
                "auto" => netsapiens::detect(&mut http, &row.base_url).await?,
                v => v.to_string(),
            };
            let phones = match api.starts_with("v2") {
                true => netsapiens::read_v2(&mut http, &row.base_url, &creds, domain).await?,
                false => netsapiens::read_v1(&mut http, &row.base_url, &creds, domain).await?,
            };
            (api, phones)
        }
    };
    // Rows for the import engine; records we cannot provision are skipped, per MAC.
    let mut skipped = Vec::new();
    let mut warnings = Vec::new();
    let mut records = vec![String::new(), String::new()]; // lines 0 and 1 (header)
    let max_line = phones
        .iter()
        .flat_map(|p| p.lines.iter().map(|l| l.n))
        .max()
        .unwrap_or(1);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["mac".to_string(), "model".into(), "site".into()];
    for n in 1..=max_line {
        for f in ["user", "auth_user", "password", "display_name", "domain"] {
            header.push(format!("line{n}_{f}"));
        }
    }
    let csv_err = |e: csv::Error| SyncError::Manage(Error::Invalid(format!("building rows: {e}")));
    w.write_record(&header).map_err(csv_err)?;
    for p in &phones {
        if p.mac.is_empty() {
            return Err(PbxError::Malformed {
                record: p.record.clone(),
                reason: "no MAC".into(),
            }
            .into());
        }
        let Some(model) = map_model(&p.model) else {
            skipped.push(Skipped {
                mac: p.mac.clone(),
                record: p.record.clone(),
                reason: format!("model '{}' is not one we provision", p.model),
            });
            continue;
        };
        if let Some(server) = &p.server {
            // The PBX's core server is where phones send SIP: the site's outbound proxy, or
            // its SIP server when it has none.
            let host = server.split(':').next().unwrap_or(server);
            let ours = site_row
                .site
                .sip
                .outbound_proxy
                .as_ref()
                .map(|e| e.host.as_str())
                .unwrap_or(&site_row.site.sip_server);
            if !host.eq_ignore_ascii_case(ours)
                && !warnings.iter().any(|w: &String| w.contains(host))
            {
                warnings.push(format!(
                    "the PBX names core server '{server}' for {}; site '{site}' sends SIP to '{ours}' (set it with `phoneprov site update {site} --outbound-proxy {server}`)",
                    p.record
                ));
            }
        }
        let mut rec = vec![p.mac.clone(), model, site.to_string()];
        for n in 1..=max_line {
            match p.lines.iter().find(|l| l.n == n) {
                Some(l) => rec.extend([
                    l.user.clone(),
                    l.auth_user.clone().unwrap_or_default(),
                    l.password.clone(),
                    l.display_name.clone().unwrap_or_default(),
                    l.domain.clone().unwrap_or_default(),
                ]),
                None => rec.extend(std::iter::repeat_n(String::new(), 5)),
            }
        }
        w.write_record(&rec).map_err(csv_err)?;
        records.push(p.record.clone());
    }
    let bytes = w
        .into_inner()
        .map_err(|e| SyncError::Manage(Error::Invalid(format!("building rows: {e}"))))?;
    let opts = Options {
        site: Some(site.to_string()),
        dry_run,
        allow_move: false,
        exact_lines: true,
        prune,
    };
    let mut report = import::import(
        m,
        &Input::Bytes(bytes.into()),
        &opts,
        &crate::import::Progress::none(),
    )
    .await?;
    for e in &mut report.errors {
        e.record = records
            .get(e.line as usize)
            .cloned()
            .filter(|r| !r.is_empty());
    }
    if !dry_run && report.errors.is_empty() {
        let mut conn = m.store.conn().await.map_err(Error::from)?;
        store::record_sync(&mut conn, row.id, domain, site_row.site.id, prune, None)
            .await
            .map_err(Error::from)?;
    }
    Ok(SyncReport {
        pbx: row.name,
        api,
        domain: domain.to_string(),
        site: site.to_string(),
        import: report,
        skipped,
        warnings,
        throttled: http.throttled,
    })
}

/// Why a sync did not run to a report.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Pbx(#[from] PbxError),
    #[error(transparent)]
    Manage(#[from] Error),
}

/// `serve --sync-every`: every recorded pair, again and again; a failing PBX is logged and
/// retried with backoff (doubling up to an hour), and never blocks serving.
pub async fn keep_in_sync(
    m: Manager,
    data_dir: std::path::PathBuf,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut backoff: std::collections::HashMap<
        (String, String, String),
        (Duration, tokio::time::Instant),
    > = Default::default();
    loop {
        let pairs = m.pbx_pairs(None).await.unwrap_or_default();
        for p in pairs {
            let key = (p.pbx.clone(), p.domain.clone(), p.site.clone());
            if backoff
                .get(&key)
                .is_some_and(|(_, next)| tokio::time::Instant::now() < *next)
            {
                continue;
            }
            let started = std::time::Instant::now();
            let outcome = sync(&m, &data_dir, &p.pbx, &p.domain, &p.site, false, p.prune).await;
            let result = match &outcome {
                Ok(r) if r.import.errors.is_empty() => "ok",
                Ok(_) => "refused",
                Err(_) => "failed",
            };
            crate::telemetry::pbx_synced(&p.pbx, result, started.elapsed().as_secs_f64());
            match outcome {
                Ok(r) if r.import.errors.is_empty() => {
                    backoff.remove(&key);
                    if r.import.created + r.import.updated + r.import.removed > 0 {
                        tracing::info!(pbx = %p.pbx, domain = %p.domain, site = %p.site, created = r.import.created,
                            updated = r.import.updated, removed = r.import.removed, "PBX sync applied");
                    }
                }
                outcome => {
                    let reason = match outcome {
                        Ok(r) => format!(
                            "{} invalid record(s), first: {:?}",
                            r.import.errors.len(),
                            r.import.errors.first().map(|e| &e.message)
                        ),
                        Err(e) => e.to_string(),
                    };
                    let wait = backoff
                        .get(&key)
                        .map(|(d, _)| (*d * 2).min(Duration::from_secs(3600)))
                        .unwrap_or(every);
                    tracing::warn!(pbx = %p.pbx, domain = %p.domain, site = %p.site, error = %reason, retry_in_s = wait.as_secs(), "PBX sync failed; serving goes on");
                    if let (Ok(row), Ok(mut conn)) =
                        (m.pbx_named(&p.pbx).await, m.store.conn().await)
                        && let Ok(site) = m.site_show(&p.site).await
                    {
                        let _ = store::record_sync(
                            &mut conn,
                            row.id,
                            &p.domain,
                            site.site.id,
                            p.prune,
                            Some(&reason),
                        )
                        .await;
                    }
                    backoff.insert(key, (wait, tokio::time::Instant::now() + wait));
                }
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_from_pbx_names() {
        assert_eq!(map_model("Yealink SIP-T54W").as_deref(), Some("T54W"));
        assert_eq!(map_model("Polycom VVX450").as_deref(), Some("VVX_450"));
        assert_eq!(map_model("T46U").as_deref(), Some("T46U"));
        assert_eq!(map_model("Cisco SPA504G"), None);
    }
}
