//! The template lookup chain: templates shipped in the binary, each replaceable by a file of
//! the same name under `<data-dir>/templates/<vendor>/`. A broken replacement is refused with
//! its file and the parser's line and column.

use std::path::{Path, PathBuf};

use super::RenderError;

/// Templates compiled into the binary, by `<vendor>/<name>`.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "yealink/mac.boot",
        include_str!("../../templates/yealink/mac.boot"),
    ),
    (
        "yealink/mac.cfg",
        include_str!("../../templates/yealink/mac.cfg"),
    ),
    (
        "yealink/common.cfg",
        include_str!("../../templates/yealink/common.cfg"),
    ),
    (
        "polycom/master.cfg",
        include_str!("../../templates/polycom/master.cfg"),
    ),
    (
        "polycom/default-master.cfg",
        include_str!("../../templates/polycom/default-master.cfg"),
    ),
    (
        "polycom/lines.cfg",
        include_str!("../../templates/polycom/lines.cfg"),
    ),
    (
        "polycom/settings.cfg",
        include_str!("../../templates/polycom/settings.cfg"),
    ),
    (
        "polycom/site.cfg",
        include_str!("../../templates/polycom/site.cfg"),
    ),
];

/// Where each template came from, for error messages.
#[derive(Debug, Clone, Default)]
pub struct Origins(Vec<(String, PathBuf)>);

impl Origins {
    /// `templates/yealink/mac.cfg (shipped)` or the override's path.
    pub fn describe(&self, name: &str) -> String {
        match self.0.iter().find(|(n, _)| n == name) {
            Some((_, p)) => p.display().to_string(),
            None => format!("templates/{name} (shipped)"),
        }
    }
}

/// Text made safe inside an XML comment: `--` may not occur there, nor a final `-`.
fn xml_comment(
    v: &tera::Value,
    _: &std::collections::HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let s = match v {
        tera::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '-' && out.ends_with('-') {
            out.push(' ');
        }
        out.push(c);
    }
    if out.ends_with('-') {
        out.push(' ');
    }
    Ok(tera::Value::String(out))
}

/// Builds the Tera environment: shipped templates, then overrides from `dir` if given.
pub fn load(dir: Option<&Path>) -> Result<(tera::Tera, Origins), RenderError> {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![]);
    tera.register_filter("xml_comment", xml_comment);
    let mut sources: Vec<(String, String)> = SHIPPED
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    let mut origins = Origins::default();
    if let Some(dir) = dir {
        for (name, _) in SHIPPED {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    if let Some(slot) = sources.iter_mut().find(|(n, _)| n == name) {
                        slot.1 = text;
                    }
                    origins.0.push((name.to_string(), path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(RenderError::Template {
                        file: path.display().to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        }
    }
    // One template at a time, so a parse error names the file it is in.
    for (name, text) in &sources {
        tera.add_raw_template(name, text)
            .map_err(|e| RenderError::Template {
                file: origins.describe(name),
                reason: error_chain(&e),
            })?;
    }
    Ok((tera, origins))
}

/// Tera puts the useful part (line, column, what was expected) in the error's sources.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// A cheap fingerprint of the override directory (names, sizes, modification times), so a
/// server can notice an edit without reading every file.
pub fn fingerprint(dir: &Path) -> Vec<(String, u64, Option<std::time::SystemTime>)> {
    SHIPPED
        .iter()
        .filter_map(|(name, _)| {
            let meta = std::fs::metadata(dir.join(name)).ok()?;
            Some((name.to_string(), meta.len(), meta.modified().ok()))
        })
        .collect()
}
