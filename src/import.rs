//! Bulk CSV import and export of phones and their lines.
//!
//! An import reads the file twice. The first pass validates every row against the database
//! and the catalogue, collects **every** error (line, column, reason) and counts what would be
//! created, updated or left unchanged; with any error, or `dry_run`, it stops there and nothing
//! changes. The second pass re-reads the file (refusing it if its bytes changed meanwhile) and
//! writes only the rows that differ, in batches, inside one transaction with a trial render,
//! so the database is exactly as before or exactly as after. Memory grows with the database
//! and the number of MACs in the file (a few bytes each), not with the rows' contents.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::catalog::Catalog;
use crate::mac::Mac;
use crate::manage::{Error, Manager};
use crate::model::{Line, Phone, check_text};
use crate::publish::trial_render;
use crate::store::{self, Scope};

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
}

/// One problem, where it is.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub column: String,
    pub message: String,
}

/// What an import did, or would do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rows: u64,
    pub dry_run: bool,
    /// Whether the changes were written.
    pub applied: bool,
    pub errors: Vec<RowError>,
    /// Sites whose phones changed.
    pub sites: Vec<String>,
}

/// A column of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Col {
    Mac,
    Model,
    Site,
    Label,
    Line(u8, LineField),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum LineField {
    User,
    AuthUser,
    Password,
    DisplayName,
    Label,
}

impl LineField {
    const ALL: [(LineField, &'static str); 5] = [
        (LineField::User, "user"),
        (LineField::AuthUser, "auth_user"),
        (LineField::Password, "password"),
        (LineField::DisplayName, "display_name"),
        (LineField::Label, "label"),
    ];
}

fn parse_col(name: &str) -> Option<Col> {
    let n = name.trim().to_ascii_lowercase();
    match n.as_str() {
        "mac" => return Some(Col::Mac),
        "model" => return Some(Col::Model),
        "site" => return Some(Col::Site),
        "label" => return Some(Col::Label),
        _ => {}
    }
    let rest = n.strip_prefix("line")?;
    let (num, field) = rest.split_once('_')?;
    let num: u8 = num.parse().ok().filter(|v| (1..=MAX_LINE).contains(v))?;
    let field = LineField::ALL.iter().find(|(_, s)| *s == field)?.0;
    Some(Col::Line(num, field))
}

fn col_name(c: Col) -> String {
    match c {
        Col::Mac => "mac".into(),
        Col::Model => "model".into(),
        Col::Site => "site".into(),
        Col::Label => "label".into(),
        Col::Line(n, f) => {
            let s = LineField::ALL
                .iter()
                .find(|(x, _)| *x == f)
                .map(|(_, s)| *s)
                .unwrap_or("");
            format!("line{n}_{s}")
        }
    }
}

/// Strips a UTF-8 byte-order mark.
fn skip_bom(mut r: Box<dyn Read + Send>) -> std::io::Result<Box<dyn Read + Send>> {
    let mut head = [0u8; 3];
    let mut got = 0;
    while got < 3 {
        match r.read(&mut head[got..])? {
            0 => break,
            n => got += n,
        }
    }
    let keep = if got == 3 && head == [0xEF, 0xBB, 0xBF] {
        Vec::new()
    } else {
        head[..got].to_vec()
    };
    Ok(Box::new(std::io::Cursor::new(keep).chain(r)))
}

/// `,` or `;`, whichever the header line uses more of outside quotes.
fn sniff_delimiter(input: &Input) -> std::io::Result<u8> {
    let mut r = skip_bom(input.open()?)?;
    let mut line = Vec::new();
    let mut b = [0u8; 4096];
    'read: loop {
        let n = r.read(&mut b)?;
        if n == 0 {
            break;
        }
        for &c in &b[..n] {
            if c == b'\n' {
                break 'read;
            }
            line.push(c);
        }
        if line.len() > 64 * 1024 {
            break;
        }
    }
    let (mut commas, mut semis, mut quoted) = (0, 0, false);
    for c in line {
        match c {
            b'"' => quoted = !quoted,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semis += 1,
            _ => {}
        }
    }
    Ok(if semis > commas { b';' } else { b',' })
}

/// Feeds every byte read into a hash, to notice a file that changes between the passes.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// What the database holds now, for comparison.
struct Existing {
    sites: HashMap<String, i64>,
    site_names: HashMap<i64, String>,
    phones: HashMap<Mac, (Phone, Vec<Line>)>,
}

/// The state a row asks for, and how it differs from now.
struct Planned {
    phone: Phone,
    /// Lines to write (the whole line, merged with what exists).
    lines: Vec<Line>,
    change: Change,
    old_site: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Created,
    Updated,
    Unchanged,
}

/// Reads rows and turns each into a plan or errors.
struct Pass {
    existing: Arc<Existing>,
    opts: Options,
    cols: Vec<Col>,
    seen: HashMap<Mac, u64>,
}

impl Pass {
    fn row(
        &mut self,
        line: u64,
        rec: &csv::StringRecord,
        errors: &mut Vec<RowError>,
    ) -> Option<Planned> {
        let err = |errors: &mut Vec<RowError>, col: Col, message: String| {
            errors.push(RowError {
                line,
                column: col_name(col),
                message,
            });
        };
        let before = errors.len();
        let get = |c: Col| -> Option<&str> {
            self.cols
                .iter()
                .position(|x| *x == c)
                .and_then(|i| rec.get(i))
                .map(str::trim)
        };
        // MAC
        let mac = match get(Col::Mac).unwrap_or("").parse::<Mac>() {
            Ok(m) => m,
            Err(e) => {
                err(errors, Col::Mac, e.to_string());
                return None;
            }
        };
        if let Some(first) = self.seen.insert(mac, line) {
            err(
                errors,
                Col::Mac,
                format!("{} is also on line {first}", mac.colon()),
            );
            self.seen.insert(mac, first);
            return None;
        }
        let existing = self.existing.phones.get(&mac);
        // Model
        let cat = Catalog::get();
        let model = match get(Col::Model).filter(|s| !s.is_empty()) {
            Some(name) => match cat.model(name) {
                Some(m) => Some(m),
                None => {
                    err(errors, Col::Model, cat.unknown_model_message(name));
                    None
                }
            },
            None => match existing {
                Some((p, _)) => cat.model(&p.model),
                None => {
                    err(
                        errors,
                        Col::Model,
                        "a model is required for a new phone".into(),
                    );
                    None
                }
            },
        };
        // Site
        let site_name = get(Col::Site)
            .filter(|s| !s.is_empty())
            .or(self.opts.site.as_deref());
        let site_id = match site_name {
            Some(name) => match self.existing.sites.get(name) {
                Some(id) => Some(*id),
                None => {
                    err(errors, Col::Site, format!("unknown site '{name}'"));
                    None
                }
            },
            None => {
                err(
                    errors,
                    Col::Site,
                    "no site: add a site column or pass --site".into(),
                );
                None
            }
        };
        if let (Some((p, _)), Some(site_id)) = (existing, site_id) {
            if p.site_id != site_id && !self.opts.allow_move {
                let from = self
                    .existing
                    .site_names
                    .get(&p.site_id)
                    .cloned()
                    .unwrap_or_default();
                err(
                    errors,
                    Col::Site,
                    format!(
                        "{} is enrolled in site '{from}'; pass --move to move it to '{}'",
                        mac.colon(),
                        site_name.unwrap_or_default()
                    ),
                );
            }
        }
        // Label: a present column sets it, even to empty; an absent one keeps it.
        let label = match get(Col::Label) {
            Some(l) => {
                if let Err(m) = check_text("label", l, 200) {
                    err(errors, Col::Label, m);
                }
                l.to_string()
            }
            None => existing.map(|(p, _)| p.label.clone()).unwrap_or_default(),
        };
        // Lines
        let mut lines: Vec<Line> = existing.map(|(_, l)| l.clone()).unwrap_or_default();
        let accounts = model.map(|m| m.accounts).unwrap_or(MAX_LINE);
        let nums: BTreeSet<u8> = self
            .cols
            .iter()
            .filter_map(|c| match c {
                Col::Line(n, _) => Some(*n),
                _ => None,
            })
            .collect();
        for n in nums {
            let field = |f| get(Col::Line(n, f)).unwrap_or("");
            if LineField::ALL.iter().all(|(f, _)| field(*f).is_empty()) {
                continue;
            }
            if n > accounts {
                let m = model.map(|m| m.name.as_str()).unwrap_or("");
                err(
                    errors,
                    Col::Line(n, LineField::User),
                    format!("line {n} is beyond a {m}'s {accounts} lines"),
                );
                continue;
            }
            let user = field(LineField::User);
            if user.is_empty() {
                err(
                    errors,
                    Col::Line(n, LineField::User),
                    format!("line{n}_user is required when other line{n} columns are set"),
                );
                continue;
            }
            let old = lines.iter().position(|l| l.n == n);
            let password = match (field(LineField::Password), old) {
                ("", Some(i)) => lines[i].password.clone(),
                ("", None) => {
                    err(
                        errors,
                        Col::Line(n, LineField::Password),
                        format!("missing password for new line {n}"),
                    );
                    continue;
                }
                (p, _) => p.to_string(),
            };
            let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
            let new = Line {
                n,
                user: user.to_string(),
                auth_user: opt(field(LineField::AuthUser)),
                password,
                display_name: opt(field(LineField::DisplayName)),
                label: opt(field(LineField::Label)),
            };
            for (f, v) in [
                (LineField::User, Some(&new.user)),
                (LineField::AuthUser, new.auth_user.as_ref()),
                (LineField::Password, Some(&new.password)),
                (LineField::DisplayName, new.display_name.as_ref()),
                (LineField::Label, new.label.as_ref()),
            ] {
                if let Some(Err(m)) = v.map(|v| check_text(&col_name(Col::Line(n, f)), v, 200)) {
                    err(errors, Col::Line(n, f), m);
                }
            }
            match old {
                Some(i) => lines[i] = new,
                None => lines.push(new),
            }
        }
        if let Some(m) = model {
            if let Some(l) = lines.iter().find(|l| l.n > m.accounts) {
                err(
                    errors,
                    Col::Model,
                    format!(
                        "the phone has line {} but a {} has {} lines",
                        l.n, m.name, m.accounts
                    ),
                );
            }
        }
        if errors.len() > before {
            return None;
        }
        let (model, site_id) = (model?, site_id?);
        lines.sort_by_key(|l| l.n);
        let phone = Phone {
            mac,
            model: model.name.clone(),
            site_id,
            label,
        };
        let change = match existing {
            None => Change::Created,
            Some((p, l))
                if p.model == phone.model
                    && p.site_id == phone.site_id
                    && p.label == phone.label
                    && *l == lines =>
            {
                Change::Unchanged
            }
            Some(_) => Change::Updated,
        };
        Some(Planned {
            phone,
            lines,
            change,
            old_site: existing.map(|(p, _)| p.site_id),
        })
    }
}

/// Reads the header; errors name line 1.
fn header(rdr: &mut csv::Reader<impl Read>, errors: &mut Vec<RowError>) -> Vec<Col> {
    let h = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            errors.push(RowError {
                line: 1,
                column: String::new(),
                message: format!("cannot read the header: {e}"),
            });
            return Vec::new();
        }
    };
    let mut cols = Vec::new();
    let mut seen = HashSet::new();
    for name in h.iter() {
        match parse_col(name) {
            Some(c) if seen.insert(c) => cols.push(c),
            Some(_) => errors.push(RowError { line: 1, column: name.trim().into(), message: format!("column '{}' appears twice", name.trim()) }),
            None if name.trim().is_empty() => errors.push(RowError { line: 1, column: String::new(), message: "a column has no name".into() }),
            None => errors.push(RowError {
                line: 1,
                column: name.trim().into(),
                message: format!("unknown column '{}': expected mac, model, site, label, lineN_user, lineN_auth_user, lineN_password, lineN_display_name, lineN_label", name.trim()),
            }),
        }
    }
    if !cols.contains(&Col::Mac) && errors.is_empty() {
        errors.push(RowError {
            line: 1,
            column: "mac".into(),
            message: "the header has no 'mac' column".into(),
        });
    }
    cols
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
    let reader = Hashing {
        inner: skip_bom(input.open().map_err(io)?).map_err(io)?,
        hash: Sha256::new(),
    };
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(reader);
    p.cols = header(&mut rdr, errors);
    let width = rdr.headers().map(|h| h.len()).unwrap_or(0);
    let mut rows = 0;
    let mut rec = csv::StringRecord::new();
    loop {
        let line = rdr.position().line();
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                let line = rec.position().map(|p| p.line()).unwrap_or(line);
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
                    });
                    continue;
                }
                if errors.iter().any(|e| e.line == 1) {
                    continue;
                }
                if let Some(plan) = p.row(line, &rec, errors) {
                    each(plan)?;
                }
            }
            Err(e) => {
                rows += 1;
                let line = e.position().map(|p| p.line()).unwrap_or(line);
                let message = match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => "the row is not valid UTF-8 text".to_string(),
                    _ => e.to_string(),
                };
                errors.push(RowError {
                    line,
                    column: String::new(),
                    message,
                });
            }
        }
    }
    let hash = rdr.into_inner().hash.finalize().to_vec();
    Ok((rows, hash))
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

/// Imports a CSV file: validate all, then all or nothing.
pub async fn import(
    m: &Manager,
    input: &Input,
    opts: &Options,
    progress: &mut (dyn FnMut(u64) + Send),
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
    }
    let counts = Arc::new(std::sync::Mutex::new(Counts::default()));
    let c2 = counts.clone();
    let (rows, hash, mut errors) = run_pass(&existing, input, opts, delimiter, move |plan| {
        let mut c = c2
            .lock()
            .map_err(|_| Error::Invalid("import stopped".into()))?;
        match plan.change {
            Change::Created => c.created += 1,
            Change::Updated => c.updated += 1,
            Change::Unchanged => c.unchanged += 1,
        }
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
    if opts.dry_run || report.created + report.updated == 0 {
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
            progress(written);
            phones.clear();
            lines.clear();
        }
    }
    store::upsert_phones(&mut tx, &phones).await?;
    store::upsert_lines(&mut tx, &lines).await?;
    written += phones.len() as u64;
    progress(written);
    let (_, hash2, errors2) = reading
        .await
        .map_err(|e| Error::Invalid(format!("import stopped: {e}")))??;
    if hash != hash2 || !errors2.is_empty() {
        return Err(Error::Conflict(format!(
            "{} changed while it was being imported; nothing was changed",
            input.name()
        )));
    }
    for site in &c.sites {
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

/// Writes every phone (of one site, or all) as CSV that [`import`] reads back unchanged.
/// Without `with_secrets`, passwords are left blank (an import then keeps the stored ones).
pub async fn export(
    m: &Manager,
    site: Option<&str>,
    with_secrets: bool,
    out: impl std::io::Write,
) -> Result<u64, Error> {
    let existing = load_existing(m).await?;
    let site_id = match site {
        Some(name) => Some(
            *existing
                .sites
                .get(name)
                .ok_or_else(|| Error::NotFound(format!("no site named '{name}'")))?,
        ),
        None => None,
    };
    let mut phones: Vec<&(Phone, Vec<Line>)> = existing
        .phones
        .values()
        .filter(|(p, _)| site_id.is_none_or(|s| p.site_id == s))
        .collect();
    phones.sort_by_key(|(p, _)| p.mac);
    let max_line = phones
        .iter()
        .flat_map(|(_, l)| l.iter().map(|l| l.n))
        .max()
        .unwrap_or(1);
    let mut w = csv::Writer::from_writer(out);
    let mut head = vec![
        "mac".to_string(),
        "model".into(),
        "site".into(),
        "label".into(),
    ];
    for n in 1..=max_line {
        for (_, f) in LineField::ALL {
            head.push(format!("line{n}_{f}"));
        }
    }
    let csv_err = |e: csv::Error| Error::Invalid(format!("cannot write CSV: {e}"));
    w.write_record(&head).map_err(csv_err)?;
    for (p, lines) in &phones {
        let mut rec = vec![
            p.mac.colon(),
            p.model.clone(),
            existing
                .site_names
                .get(&p.site_id)
                .cloned()
                .unwrap_or_default(),
            p.label.clone(),
        ];
        for n in 1..=max_line {
            match lines.iter().find(|l| l.n == n) {
                Some(l) => rec.extend([
                    l.user.clone(),
                    l.auth_user.clone().unwrap_or_default(),
                    if with_secrets {
                        l.password.clone()
                    } else {
                        String::new()
                    },
                    l.display_name.clone().unwrap_or_default(),
                    l.label.clone().unwrap_or_default(),
                ]),
                None => rec.extend(std::iter::repeat_n(String::new(), 5)),
            }
        }
        w.write_record(&rec).map_err(csv_err)?;
    }
    w.flush()
        .map_err(|e| Error::Invalid(format!("cannot write CSV: {e}")))?;
    Ok(phones.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns() {
        assert_eq!(parse_col(" MAC "), Some(Col::Mac));
        assert_eq!(
            parse_col("Line12_Auth_User"),
            Some(Col::Line(12, LineField::AuthUser))
        );
        assert_eq!(parse_col("line0_user"), None);
        assert_eq!(parse_col("line65_user"), None);
        assert_eq!(parse_col("line1_pasword"), None);
        assert_eq!(
            col_name(Col::Line(3, LineField::DisplayName)),
            "line3_display_name"
        );
    }
}
