//! Export: every phone (of one site, or all) as CSV that the import reads back unchanged.

use super::columns::LineField;
use super::load_existing;
use crate::manage::{Error, Manager};
use crate::model::{Line, Phone};

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
        "sn".into(),
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
            p.sn.clone().unwrap_or_default(),
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
                    l.domain.clone().unwrap_or_default(),
                ]),
                None => rec.extend(std::iter::repeat_n(String::new(), LineField::ALL.len())),
            }
        }
        w.write_record(&rec).map_err(csv_err)?;
    }
    w.flush()
        .map_err(|e| Error::Invalid(format!("cannot write CSV: {e}")))?;
    Ok(phones.len() as u64)
}
