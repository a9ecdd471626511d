//! Bulk CSV import and export of phones and their lines.
//!
//! An import reads the file twice. The first pass validates every row against the database
//! and the catalogue, collects **every** error (line, column, reason) and counts what would be
//! created, updated or left unchanged; with any error, or `dry_run`, it stops there and nothing
//! changes. The second pass re-reads the file (refusing it if its bytes changed meanwhile) and
//! writes only the rows that differ, in batches, inside one transaction with a trial render,
//! so the database is exactly as before or exactly as after. Memory grows with the database
//! and the number of MACs in the file (a few bytes each), not with the rows' contents.

mod columns;
mod export;
mod rows;

pub use export::export;

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use sha2::Digest;

use crate::mac::Mac;
use crate::manage::{Error, Manager};
use crate::model::{Line, Phone};
use crate::publish::trial_render;
use crate::store::{self, Scope};
use columns::{Hashing, header, skip_bom, sniff_delimiter};
use rows::{Change, Existing, Pass, Planned};

/// Highest line number a column may name.
const MAX_LINE: u8 = 64;

/// Where the CSV comes from; read twice.
#[derive(Debug, Clone)]
pub enum Input {
    Path(PathBuf),
    Bytes(bytes::Bytes),
}

impl Input {
    fn open(&self) -> std::io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            Input::Path(p) => Box::new(std::fs::File::open(p)?),
            Input::Bytes(b) => Box::new(std::io::Cursor::new(b.clone())),
        })
    }

    fn name(&self) -> String {
        match self {
            Input::Path(p) => p.display().to_string(),
            Input::Bytes(_) => "request body".into(),
        }
    }
}

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Site for rows without a `site` value.
    pub site: Option<String>,
    pub dry_run: bool,
    /// Allow moving a phone that is enrolled in another site.
    pub allow_move: bool,
    /// A row's lines are all the phone's lines: lines it does not name are removed (a source
    /// of truth such as a PBX; a CSV only adds and changes lines).
    pub exact_lines: bool,
    /// Also remove the phones of `site` that the input does not name.
    pub prune: bool,
}

/// One problem, where it is.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RowError {
    pub line: u64,
    pub column: String,
    pub message: String,
    /// The source record the line stands for, when the input was made from one (a PBX's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

/// What an import did, or would do.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[schema(as = ImportReport)]
pub struct Report {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Phones removed (or, in a dry run, to be removed) by `prune`.
    pub removed: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed_macs: Vec<String>,
    pub rows: u64,
    pub dry_run: bool,
    /// Whether the changes were written.
    pub applied: bool,
    pub errors: Vec<RowError>,
    /// Sites whose phones changed.
    pub sites: Vec<String>,
    /// Every phone of the file (for follow-up work such as YMCS registration).
    #[serde(skip)]
    pub macs: Vec<crate::mac::Mac>,
    /// Every phone of the file as it is (or, in a dry run, would be) after the import.
    #[serde(skip)]
    pub planned: Vec<crate::model::Phone>,
    /// What happens to each of `planned`: `created`, `updated`, `moved` or `unchanged`.
    #[serde(skip)]
    pub changes: Vec<&'static str>,
}

/// Runs one pass over the file, calling `each` with every planned row; returns the file's hash.
fn pass(
    input: &Input,
    delimiter: u8,
    p: &mut Pass,
    errors: &mut Vec<RowError>,
    mut each: impl FnMut(Planned) -> Result<(), Error>,
) -> Result<(u64, Vec<u8>), Error> {
    let io = |e: std::io::Error| Error::Invalid(format!("cannot read {}: {e}", input.name()));
    let reader = Hashing::new(skip_bom(input.open().map_err(io)?).map_err(io)?);
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(reader);
    let header_errors = errors.len();
    p.cols = header(&mut rdr, errors);
    // A header error is only a header error: rows are still read (and counted) but not judged.
    let header_failed = errors.len() > header_errors;
    let width = rdr.headers().map(|h| h.len()).unwrap_or(0);
    let mut rows = 0;
    let mut rec = csv::StringRecord::new();
    loop {
        let start = rdr.position().byte();
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                // The reader's start position lands before skipped blank lines: count back
                // from where the record ended, by the line breaks inside its quoted fields.
                let end = rdr.position().byte();
                let breaks: u64 = rec.iter().map(line_breaks).sum();
                let line = rdr
                    .get_ref()
                    .lines
                    .line_of(end.saturating_sub(1).max(start))
                    .saturating_sub(breaks)
                    .max(1);
                if rec.iter().all(|f| f.trim().is_empty()) {
                    continue;
                }
                rows += 1;
                if rec.len() != width {
                    errors.push(RowError {
                        line,
                        column: String::new(),
                        message: format!(
                            "the row has {} fields; the header has {width}",
                            rec.len()
                        ),
                        record: None,
                    });
                    continue;
                }
                if header_failed {
                    continue;
                }
                if let Some(plan) = p.row(line, &rec, errors) {
                    each(plan)?;
                }
            }
            Err(e) => {
                rows += 1;
                let byte = e.position().map(|p| p.byte()).unwrap_or(start);
                let line = rdr.get_ref().lines.line_of(byte);
                let message = match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => "the row is not valid UTF-8 text".to_string(),
                    _ => e.to_string(),
                };
                errors.push(RowError {
                    line,
                    column: String::new(),
                    message,
                    record: None,
                });
            }
        }
    }
    let hash = rdr.into_inner().hash.finalize().to_vec();
    Ok((rows, hash))
}

/// Line breaks in a field (`\r\n`, `\r` and `\n` each one), for fields quoted across lines.
fn line_breaks(f: &str) -> u64 {
    let b = f.as_bytes();
    (0..b.len())
        .filter(|&i| b[i] == b'\n' && (i == 0 || b[i - 1] != b'\r') || b[i] == b'\r')
        .count() as u64
}

async fn load_existing(m: &Manager) -> Result<Existing, Error> {
    let mut conn = m.store.conn().await?;
    let sites = store::list_sites(&mut conn).await?;
    let mut phones: HashMap<Mac, (Phone, Vec<Line>)> = HashMap::new();
    store::each_phone(&mut conn, |p| {
        phones.insert(p.mac, (p, Vec::new()));
    })
    .await?;
    store::each_line(&mut conn, |mac, l| {
        if let Some(e) = phones.get_mut(&mac) {
            e.1.push(l);
        }
    })
    .await?;
    for (_, lines) in phones.values_mut() {
        lines.sort_by_key(|l| l.n);
        lines.shrink_to_fit();
    }
    Ok(Existing {
        sites: sites.iter().map(|s| (s.name.clone(), s.id)).collect(),
        site_names: sites.into_iter().map(|s| (s.id, s.name)).collect(),
        phones,
    })
}

/// What a pass found: rows read, the file's hash, and every error.
type PassResult = Result<(u64, Vec<u8>, Vec<RowError>), Error>;

/// Runs a pass on a blocking thread (parsing is CPU work), handing each planned row to `sink`.
async fn run_pass(
    existing: &Arc<Existing>,
    input: &Input,
    opts: &Options,
    delimiter: u8,
    mut sink: impl FnMut(Planned) -> Result<(), Error> + Send + 'static,
) -> PassResult {
    let (existing, input, opts) = (existing.clone(), input.clone(), opts.clone());
    tokio::task::spawn_blocking(move || {
        let mut p = Pass {
            existing,
            opts,
            cols: Vec::new(),
            seen: HashMap::new(),
        };
        let mut errors = Vec::new();
        let (rows, hash) = pass(&input, delimiter, &mut p, &mut errors, &mut sink)?;
        Ok((rows, hash, errors))
    })
    .await
    .map_err(|e| Error::Invalid(format!("import stopped: {e}")))?
}

/// How far an import has got, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Rows checked so far in the first pass (reported every 1,000 rows).
    Validated(u64),
    /// Phones written of those that change.
    Written { done: u64, total: u64 },
}

/// Where an import reports its steps (cheap to clone; called from the reading task too).
#[derive(Clone)]
pub struct Progress(Arc<dyn Fn(Step) + Send + Sync>);

impl Progress {
    pub fn new(f: impl Fn(Step) + Send + Sync + 'static) -> Progress {
        Progress(Arc::new(f))
    }

    /// Reports nothing.
    pub fn none() -> Progress {
        Progress::new(|_| {})
    }

    fn report(&self, s: Step) {
        (self.0)(s)
    }
}

/// Imports a CSV file: validate all, then all or nothing.
pub async fn import(
    m: &Manager,
    input: &Input,
    opts: &Options,
    progress: &Progress,
) -> Result<Report, Error> {
    let delimiter = sniff_delimiter(input)
        .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", input.name())))?;
    let existing = Arc::new(load_existing(m).await?);

    // First pass: validate and count.
    #[derive(Default)]
    struct Counts {
        created: u64,
        updated: u64,
        unchanged: u64,
        sites: BTreeSet<i64>,
        macs: Vec<crate::mac::Mac>,
        planned: Vec<crate::model::Phone>,
        changes: Vec<&'static str>,
    }
    let counts = Arc::new(std::sync::Mutex::new(Counts::default()));
    let c2 = counts.clone();
    let p2 = progress.clone();
    let (rows, hash, mut errors) = run_pass(&existing, input, opts, delimiter, move |plan| {
        let mut c = c2
            .lock()
            .map_err(|_| Error::Invalid("import stopped".into()))?;
        match plan.change {
            Change::Created => c.created += 1,
            Change::Updated => c.updated += 1,
            Change::Unchanged => c.unchanged += 1,
        }
        let checked = c.created + c.updated + c.unchanged;
        if checked % 1000 == 0 {
            p2.report(Step::Validated(checked));
        }
        c.macs.push(plan.phone.mac);
        c.planned.push(plan.phone.clone());
        c.changes.push(match (plan.change, plan.old_site) {
            (Change::Created, _) => "created",
            (Change::Updated, Some(o)) if o != plan.phone.site_id => "moved",
            (Change::Updated, _) => "updated",
            (Change::Unchanged, _) => "unchanged",
        });
        if plan.change != Change::Unchanged {
            c.sites.insert(plan.phone.site_id);
            c.sites.extend(plan.old_site);
        }
        Ok(())
    })
    .await?;
    let c = std::mem::take(
        &mut *counts
            .lock()
            .map_err(|_| Error::Invalid("import stopped".into()))?,
    );
    let mut report = Report {
        created: c.created,
        updated: c.updated,
        unchanged: c.unchanged,
        rows,
        dry_run: opts.dry_run,
        macs: c.macs,
        planned: c.planned,
        changes: c.changes,
        sites: c
            .sites
            .iter()
            .filter_map(|id| existing.site_names.get(id).cloned())
            .collect(),
        ..Default::default()
    };
    if !errors.is_empty() {
        errors.sort_by(|a, b| (a.line, &a.column).cmp(&(b.line, &b.column)));
        report.errors = errors;
        return Ok(report);
    }
    // Prune: the site's phones the input does not name.
    let mut prune: Vec<Mac> = Vec::new();
    if opts.prune {
        let site = opts
            .site
            .as_deref()
            .ok_or_else(|| Error::Invalid("pruning needs the site".into()))?;
        let site_id = *existing
            .sites
            .get(site)
            .ok_or_else(|| Error::NotFound(format!("no site named '{site}'")))?;
        let named: std::collections::HashSet<Mac> = report.macs.iter().copied().collect();
        prune = existing
            .phones
            .iter()
            .filter(|(mac, (p, _))| p.site_id == site_id && !named.contains(mac))
            .map(|(mac, _)| *mac)
            .collect();
        prune.sort();
        report.removed = prune.len() as u64;
        report.removed_macs = prune.iter().map(|m| m.to_string()).collect();
        if !prune.is_empty() {
            report.sites.push(site.to_string());
            report.sites.sort();
            report.sites.dedup();
        }
    }
    if opts.dry_run || report.created + report.updated + report.removed == 0 {
        return Ok(report);
    }

    // Second pass: the changed rows stream through a bounded channel into batched writes, all
    // in one transaction.
    tracing::info!(
        rows,
        changes = report.created + report.updated,
        "import validated; writing"
    );
    let mut tx = m.store.begin().await?;
    let (send, mut recv) = tokio::sync::mpsc::channel::<Planned>(4096);
    let reading = {
        let (existing, input, opts) = (existing.clone(), input.clone(), opts.clone());
        tokio::spawn(async move {
            run_pass(&existing, &input, &opts, delimiter, move |plan| {
                if plan.change != Change::Unchanged {
                    send.blocking_send(plan)
                        .map_err(|_| Error::Invalid("import stopped".into()))?;
                }
                Ok(())
            })
            .await
        })
    };
    let mut phones: Vec<Phone> = Vec::new();
    let mut lines: Vec<(Mac, Line)> = Vec::new();
    let mut samples: HashMap<(i64, String), Mac> = HashMap::new();
    let mut written = 0u64;
    while let Some(plan) = recv.recv().await {
        samples
            .entry((plan.phone.site_id, plan.phone.model.clone()))
            .or_insert(plan.phone.mac);
        if let Some((_, old)) = existing.phones.get(&plan.phone.mac) {
            for l in old
                .iter()
                .filter(|l| !plan.lines.iter().any(|n| n.n == l.n))
            {
                store::delete_line(&mut tx, plan.phone.mac, l.n).await?;
            }
        }
        lines.extend(plan.lines.into_iter().map(|l| (plan.phone.mac, l)));
        phones.push(plan.phone);
        if phones.len() >= 2000 {
            store::upsert_phones(&mut tx, &phones).await?;
            store::upsert_lines(&mut tx, &lines).await?;
            written += phones.len() as u64;
            progress.report(Step::Written {
                done: written,
                total: report.created + report.updated,
            });
            phones.clear();
            lines.clear();
        }
    }
    store::upsert_phones(&mut tx, &phones).await?;
    store::upsert_lines(&mut tx, &lines).await?;
    written += phones.len() as u64;
    progress.report(Step::Written {
        done: written,
        total: report.created + report.updated,
    });
    let (_, hash2, errors2) = reading
        .await
        .map_err(|e| Error::Invalid(format!("import stopped: {e}")))??;
    if hash != hash2 || !errors2.is_empty() {
        return Err(Error::Conflict(format!(
            "{} changed while it was being imported; nothing was changed",
            input.name()
        )));
    }
    for mac in &prune {
        store::delete_phone(&mut tx, *mac).await?;
    }
    let mut changed_sites = c.sites.clone();
    if let Some(p) = prune.first().and_then(|m| existing.phones.get(m)) {
        changed_sites.insert(p.0.site_id);
    }
    for site in &changed_sites {
        store::log_change(&mut tx, Scope::Site(*site)).await?;
    }
    // One trial render per site and model: a template that cannot render these phones stops
    // the import before anything is committed.
    for ((site, _), mac) in samples {
        trial_render(
            &mut tx,
            &m.renderer.get(),
            &m.policy.get(),
            Scope::Phone(site, mac),
        )
        .await?;
    }
    store::commit(tx).await?;
    report.applied = true;
    tracing::info!(created = report.created, updated = report.updated, unchanged = report.unchanged, sites = ?report.sites, "import applied");
    Ok(report)
}
