//! One row of the file against the database and the catalogue: its plan, or its errors.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::columns::{Col, LineField, col_name};
use super::{MAX_LINE, Options, RowError};
use crate::catalog::Catalog;
use crate::mac::Mac;
use crate::model::{Line, Phone, check_text};

/// What the database holds now, for comparison.
pub(super) struct Existing {
    pub(super) sites: HashMap<String, i64>,
    pub(super) site_names: HashMap<i64, String>,
    pub(super) phones: HashMap<Mac, (Phone, Vec<Line>)>,
}

/// The state a row asks for, and how it differs from now.
pub(super) struct Planned {
    pub(super) phone: Phone,
    /// Lines to write (the whole line, merged with what exists).
    pub(super) lines: Vec<Line>,
    pub(super) change: Change,
    pub(super) old_site: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    Created,
    Updated,
    Unchanged,
}

/// Reads rows and turns each into a plan or errors.
pub(super) struct Pass {
    pub(super) existing: Arc<Existing>,
    pub(super) opts: Options,
    pub(super) cols: Vec<Col>,
    pub(super) seen: HashMap<Mac, u64>,
}

impl Pass {
    pub(super) fn row(
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
                record: None,
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
        if let (Some((p, _)), Some(site_id)) = (existing, site_id)
            && p.site_id != site_id
            && !self.opts.allow_move
        {
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
        // Serial number: like the label.
        let sn = match get(Col::Sn) {
            Some(v) => match crate::model::parse_sn(v) {
                Ok(sn) => sn,
                Err(m) => {
                    err(errors, Col::Sn, m);
                    None
                }
            },
            None => existing.and_then(|(p, _)| p.sn.clone()),
        };
        // Lines
        let mut lines: Vec<Line> = match self.opts.exact_lines {
            true => Vec::new(),
            false => existing.map(|(_, l)| l.clone()).unwrap_or_default(),
        };
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
                domain: opt(field(LineField::Domain)).map(|d| d.to_ascii_lowercase()),
            };
            if let Some(Err(m)) = new
                .domain
                .as_ref()
                .map(|d| crate::manage::check_domain(&col_name(Col::Line(n, LineField::Domain)), d))
            {
                err(errors, Col::Line(n, LineField::Domain), m);
            }
            for (f, v) in [
                (LineField::User, Some(&new.user)),
                (LineField::AuthUser, new.auth_user.as_ref()),
                (LineField::Password, Some(&new.password)),
                (LineField::DisplayName, new.display_name.as_ref()),
                (LineField::Label, new.label.as_ref()),
            ] {
                if let Some(Err(m)) =
                    v.map(|v| crate::model::check_line_value(&col_name(Col::Line(n, f)), v))
                {
                    err(errors, Col::Line(n, f), m);
                }
            }
            match old {
                Some(i) => lines[i] = new,
                None => lines.push(new),
            }
        }
        if let Some(m) = model
            && let Some(l) = lines.iter().find(|l| l.n > m.accounts)
        {
            err(
                errors,
                Col::Model,
                format!(
                    "the phone has line {} but a {} has {} lines",
                    l.n, m.name, m.accounts
                ),
            );
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
            sn,
        };
        let change = match existing {
            None => Change::Created,
            Some((p, l))
                if p.model == phone.model
                    && p.site_id == phone.site_id
                    && p.label == phone.label
                    && p.sn == phone.sn
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
