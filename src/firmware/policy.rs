//! The firmware allow/deny policy: the shipped rules (`firmware-policy/default.toml`, embedded)
//! plus the operator's (`<data-dir>/firmware-policy.toml`), which can only add.
//!
//! Precedence: **deny always wins**. An image is refused when any deny rule matches it (exact
//! version, inclusive range, or a sha256/sha1 digest — a digest names bytes, so it matches in
//! any scope), when an allow-only rule covers its scope and does not list its version, or when
//! it is older than a minimum for its scope. The same files carry `[[known]]` builds
//! ([`super::known`]). A file with an error is refused whole, with its path, line and reason.

use std::path::Path;

use serde::Deserialize;

use super::Version;

const DEFAULT: &str = include_str!("../../firmware-policy/default.toml");
const DEFAULT_NAME: &str = "firmware-policy/default.toml (shipped)";

/// The operator's policy file, in the data dir.
pub const OPERATOR_FILE: &str = "firmware-policy.toml";

/// A policy file that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct PolicyError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    deny: Vec<toml::Spanned<RawRule>>,
    #[serde(default)]
    allow: Vec<toml::Spanned<RawRule>>,
    #[serde(default)]
    minimum: Vec<toml::Spanned<RawRule>>,
    #[serde(default)]
    known: Vec<toml::Spanned<super::known::RawKnown>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    vendor: String,
    family: Option<u32>,
    models: Option<Vec<String>>,
    versions: Option<Vec<String>>,
    range: Option<RawRange>,
    sha256: Option<Vec<String>>,
    sha1: Option<Vec<String>>,
    version: Option<String>,
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    from: String,
    to: String,
}

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Deny,
    Allow,
    Minimum,
}

/// One rule, with where it was written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rule {
    pub kind: Kind,
    pub vendor: String,
    pub family: Option<u32>,
    pub models: Vec<String>,
    pub versions: Vec<Version>,
    pub range: Option<(Version, Version)>,
    pub sha256: Vec<String>,
    pub sha1: Vec<String>,
    pub minimum: Option<Version>,
    pub reason: String,
    /// `file:line`.
    pub source: String,
}

/// What is known of an image (or of the firmware a phone runs).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub vendor: String,
    pub version: Option<Version>,
    pub models: Vec<String>,
    /// Lowercase hex.
    pub sha256: Option<String>,
    /// Lowercase hex.
    pub sha1: Option<String>,
}

/// The policy's answer: allowed when `refusals` is empty.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Verdict {
    pub refusals: Vec<String>,
    /// A deny rule matched (not merely "not in an allow list" or "below a minimum"): these bytes
    /// are known bad as what they claim to be, so their digest is remembered when refused.
    pub denied: bool,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.refusals.is_empty()
    }
}

/// Every rule in force, and every build known by content.
#[derive(Debug, Clone)]
pub struct Policy {
    pub rules: Vec<Rule>,
    pub known: Vec<super::known::KnownBuild>,
}

/// The policy in use, replaced whole when the operator's file changes.
#[derive(Debug, Clone)]
pub struct SharedPolicy(std::sync::Arc<std::sync::RwLock<std::sync::Arc<Policy>>>);

impl SharedPolicy {
    pub fn new(p: Policy) -> SharedPolicy {
        SharedPolicy(std::sync::Arc::new(std::sync::RwLock::new(
            std::sync::Arc::new(p),
        )))
    }

    pub fn get(&self) -> std::sync::Arc<Policy> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn set(&self, p: Policy) {
        match self.0.write() {
            Ok(mut g) => *g = std::sync::Arc::new(p),
            Err(e) => *e.into_inner() = std::sync::Arc::new(p),
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// What one file contributes.
#[derive(Default)]
struct Parsed {
    rules: Vec<Rule>,
    known: Vec<super::known::KnownBuild>,
}

fn parse(text: &str, file: &str) -> Result<Parsed, PolicyError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| PolicyError {
        file: file.to_string(),
        line: e.span().map(|s| line_of(text, s.start)).unwrap_or(1),
        reason: e.message().to_string(),
    })?;
    let mut rules = Vec::new();
    let mut known = Vec::new();
    for spanned in raw.known {
        let line = line_of(text, spanned.span().start);
        let k = super::known::KnownBuild::from_raw(spanned.into_inner(), format!("{file}:{line}"))
            .map_err(|reason| PolicyError {
                file: file.to_string(),
                line,
                reason,
            })?;
        known.push(k);
    }
    let groups = [
        (Kind::Deny, raw.deny),
        (Kind::Allow, raw.allow),
        (Kind::Minimum, raw.minimum),
    ];
    for (kind, list) in groups {
        for spanned in list {
            let line = line_of(text, spanned.span().start);
            let err = |reason: String| PolicyError {
                file: file.to_string(),
                line,
                reason,
            };
            let r = spanned.into_inner();
            let vendor = r.vendor.to_ascii_lowercase();
            if crate::catalog::Catalog::get().vendor(&vendor).is_none() {
                return Err(err(format!("unknown vendor '{}'", r.vendor)));
            }
            let version = |s: &String| {
                Version::parse(s)
                    .ok_or_else(|| err(format!("'{s}' is not a version (digits and dots)")))
            };
            let versions = r
                .versions
                .iter()
                .flatten()
                .map(version)
                .collect::<Result<Vec<_>, _>>()?;
            let range = match &r.range {
                Some(rg) => {
                    let (from, to) = (version(&rg.from)?, version(&rg.to)?);
                    if from > to {
                        return Err(err(format!("range from {from} is after to {to}")));
                    }
                    Some((from, to))
                }
                None => None,
            };
            let sha256: Vec<String> = r
                .sha256
                .iter()
                .flatten()
                .map(|s| s.to_ascii_lowercase())
                .collect();
            let sha1: Vec<String> = r
                .sha1
                .iter()
                .flatten()
                .map(|s| s.to_ascii_lowercase())
                .collect();
            for (list, len, what) in [(&sha256, 64, "sha256"), (&sha1, 40, "sha1")] {
                if let Some(bad) = list
                    .iter()
                    .find(|s| s.len() != len || !s.bytes().all(|b| b.is_ascii_hexdigit()))
                {
                    return Err(err(format!(
                        "'{bad}' is not a {what} digest ({len} hex digits)"
                    )));
                }
            }
            if kind != Kind::Deny && !(sha256.is_empty() && sha1.is_empty()) {
                return Err(err("digests belong to deny rules".into()));
            }
            let mut models = Vec::new();
            for m in r.models.iter().flatten() {
                match crate::catalog::Catalog::get().model(m) {
                    Some(cm) => models.push(cm.name.clone()),
                    None => return Err(err(format!("unknown model '{m}'"))),
                }
            }
            let minimum = r.version.as_ref().map(version).transpose()?;
            match kind {
                Kind::Deny
                    if versions.is_empty()
                        && range.is_none()
                        && sha256.is_empty()
                        && sha1.is_empty() =>
                {
                    return Err(err(
                        "a deny rule needs versions, range, sha256 or sha1".into()
                    ));
                }
                Kind::Allow if versions.is_empty() => {
                    return Err(err("an allow rule needs versions".into()));
                }
                Kind::Minimum if minimum.is_none() => {
                    return Err(err("a minimum rule needs version".into()));
                }
                Kind::Deny | Kind::Allow if minimum.is_some() => {
                    return Err(err(
                        "'version' belongs to minimum rules; use versions".into()
                    ));
                }
                _ => {}
            }
            rules.push(Rule {
                kind,
                vendor,
                family: r.family,
                models,
                versions,
                range,
                sha256,
                sha1,
                minimum,
                reason: r.reason.unwrap_or_else(|| "no reason given".into()),
                source: format!("{file}:{line}"),
            });
        }
    }
    Ok(Parsed { rules, known })
}

impl Policy {
    /// The shipped rules and known builds only.
    pub fn shipped() -> Policy {
        let mut p = Policy {
            rules: Vec::new(),
            known: Vec::new(),
        };
        for (text, name) in [
            (DEFAULT, DEFAULT_NAME),
            (super::known::SHIPPED, super::known::SHIPPED_NAME),
        ] {
            // The shipped files are checked by the unit tests below; they cannot be broken in a
            // released binary.
            if let Ok(parsed) = parse(text, name) {
                p.rules.extend(parsed.rules);
                p.known.extend(parsed.known);
            }
        }
        p
    }

    /// The shipped rules plus the operator's file, if it exists.
    pub fn load(operator: &Path) -> Result<Policy, PolicyError> {
        let mut rules = Vec::new();
        let mut known = Vec::new();
        for (text, name) in [
            (DEFAULT, DEFAULT_NAME),
            (super::known::SHIPPED, super::known::SHIPPED_NAME),
        ] {
            let p = parse(text, name)?;
            rules.extend(p.rules);
            known.extend(p.known);
        }
        match std::fs::read_to_string(operator) {
            Ok(text) => {
                let p = parse(&text, &operator.display().to_string())?;
                rules.extend(p.rules);
                known.extend(p.known);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(PolicyError {
                    file: operator.display().to_string(),
                    line: 0,
                    reason: e.to_string(),
                });
            }
        }
        Ok(Policy { rules, known })
    }

    /// Why a text (a setting's value) may not be written: it names an image the policy denies.
    pub fn denied_in_text(&self, text: &str) -> Option<String> {
        super::images_named_in(text).into_iter().find_map(|id| {
            let v = self.check(&Facts {
                vendor: id.vendor,
                version: id.version,
                models: id.models,
                sha256: None,
                sha1: None,
            });
            (!v.allowed()).then(|| v.refusals.join("; "))
        })
    }

    /// Judges an image. A rule with a family or models applies when the image may be in its
    /// scope: an image whose version (so family) or models are unknown is judged by it too.
    pub fn check(&self, f: &Facts) -> Verdict {
        let mut v = Verdict::default();
        // A digest names bytes: it is denied whatever vendor, family or models they claim.
        for r in self.rules.iter().filter(|r| r.kind == Kind::Deny) {
            let why = |what: String| format!("{what} ({}: {})", r.source, r.reason);
            if let Some(d) = f.sha256.as_ref().filter(|d| r.sha256.contains(d)) {
                v.refusals.push(why(format!("sha256 {d} is denied")));
                v.denied = true;
            }
            if let Some(d) = f.sha1.as_ref().filter(|d| r.sha1.contains(d)) {
                v.refusals.push(why(format!("sha1 {d} is denied")));
                v.denied = true;
            }
        }
        for r in self.rules.iter().filter(|r| r.vendor == f.vendor) {
            let family_ok = match (r.family, &f.version) {
                (Some(fam), Some(ver)) => ver.family() == fam,
                _ => true,
            };
            let models_ok = r.models.is_empty()
                || f.models.is_empty()
                || r.models.iter().any(|m| f.models.contains(m));
            if !(family_ok && models_ok) {
                continue;
            }
            let why = |what: String| format!("{what} ({}: {})", r.source, r.reason);
            match r.kind {
                Kind::Deny => {
                    if let Some(ver) = &f.version {
                        if r.versions.contains(ver) {
                            v.refusals.push(why(format!("version {ver} is denied")));
                            v.denied = true;
                        } else if let Some((from, to)) =
                            r.range.as_ref().filter(|(a, b)| ver >= a && ver <= b)
                        {
                            v.refusals.push(why(format!(
                                "version {ver} is in the denied range {from}..{to}"
                            )));
                            v.denied = true;
                        }
                    }
                }
                Kind::Allow => match &f.version {
                    Some(ver) if r.versions.contains(ver) => {}
                    Some(ver) => v
                        .refusals
                        .push(why(format!("version {ver} is not in the allow list"))),
                    None => v.refusals.push(why(
                        "an image of unknown version is not in the allow list".into(),
                    )),
                },
                Kind::Minimum => match (&f.version, &r.minimum) {
                    (Some(ver), Some(min)) if ver < min => v.refusals.push(why(format!(
                        "version {ver} is older than the minimum {min}"
                    ))),
                    (None, Some(min)) => v.refusals.push(why(format!(
                        "an image of unknown version cannot be shown to be at least {min}"
                    ))),
                    _ => {}
                },
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(version: &str, models: &[&str]) -> Facts {
        Facts {
            vendor: "yealink".into(),
            version: Version::parse(version),
            models: models.iter().map(|m| m.to_string()).collect(),
            sha256: None,
            sha1: None,
        }
    }

    #[test]
    fn shipped_policy_denies_the_bricking_build() {
        let p = Policy::shipped();
        assert_eq!(p.rules.len(), 2);
        let v = p.check(&facts("96.86.0.20", &["T54W"]));
        assert!(!v.allowed());
        assert!(
            v.refusals[0].contains("96.86.0.20 is denied"),
            "{:?}",
            v.refusals
        );
        assert!(
            v.refusals[0].contains("default.toml"),
            "names the rule's file"
        );
        assert!(
            p.check(&facts("96.86.0.20", &[])).refusals.len() == 1,
            "models unknown: still denied"
        );
        assert!(p.check(&facts("96.86.0.45", &["T54W"])).allowed());
        assert!(
            p.check(&facts("108.86.0.20", &["T46U"])).allowed(),
            "another family"
        );
        // By content: the bricking build's published SHA-1 is denied under any claimed identity.
        let mut disguised = facts("108.86.0.90", &["T46U"]);
        disguised.sha1 = Some("ca661d49516fd30b5324224dc1352027a686ef9b".into());
        let v = p.check(&disguised);
        assert!(v.denied && v.refusals[0].contains("sha1 ca661d49"), "{v:?}");
        let mut polycom = disguised.clone();
        polycom.vendor = "polycom".into();
        assert!(!p.check(&polycom).allowed(), "whatever vendor it claims");
    }

    #[test]
    fn operator_rules_add_and_deny_wins() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.toml");
        std::fs::write(
            &f,
            r#"
[[allow]]
vendor = "yealink"
family = 96
versions = ["96.86.0.20", "96.86.0.45"]
reason = "tested builds"

[[deny]]
vendor = "yealink"
range = { from = "108.86.0.10", to = "108.86.0.50" }
reason = "bad T4xU series"

[[deny]]
vendor = "yealink"
sha256 = ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]

[[minimum]]
vendor = "yealink"
models = ["T33G"]
version = "124.86.0.40"
"#,
        )
        .unwrap();
        let p = Policy::load(&f).unwrap();
        // Allowed by the operator's allow list, denied by the shipped rule: deny wins.
        assert!(!p.check(&facts("96.86.0.20", &["T54W"])).allowed());
        assert!(p.check(&facts("96.86.0.45", &["T54W"])).allowed());
        let v = p.check(&facts("96.86.0.50", &["T54W"]));
        assert!(
            v.refusals[0].contains("not in the allow list") && v.refusals[0].contains("p.toml:2"),
            "{v:?}"
        );
        assert!(!p.check(&facts("108.86.0.30", &["T46U"])).allowed());
        assert!(p.check(&facts("108.86.0.90", &["T46U"])).allowed());
        let mut by_digest = facts("108.86.0.90", &["T46U"]);
        by_digest.sha256 = Some("a".repeat(64));
        assert!(!p.check(&by_digest).allowed());
        assert!(!p.check(&facts("124.86.0.30", &["T33G"])).allowed());
        assert!(
            p.check(&facts("124.86.0.30", &["T31G"])).allowed(),
            "minimum scoped to T33G"
        );
    }

    #[test]
    fn broken_files_name_file_line_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.toml");
        for (text, line, want) in [
            (
                "[[deny]]\nvendor = \"yealink\"\nversions = [\"96.x\"]\n",
                1,
                "'96.x' is not a version",
            ),
            (
                "\n\n[[deny]]\nvendor = \"cisco\"\nversions = [\"1.2\"]\n",
                3,
                "unknown vendor 'cisco'",
            ),
            (
                "[[deny]]\nvendor = \"yealink\"\n",
                1,
                "needs versions, range, sha256 or sha1",
            ),
            (
                "[[deny]]\nvendor = \"yealink\"\nversion = [\"1.2\"\n",
                3,
                "",
            ),
            (
                "[[deny]]\nvendor = \"yealink\"\nversions = [\"1.2\"]\nbogus = 1\n",
                4,
                "bogus",
            ),
            (
                "[[minimum]]\nvendor = \"yealink\"\nmodels = [\"T99\"]\nversion = \"1.2\"\n",
                1,
                "unknown model 'T99'",
            ),
        ] {
            std::fs::write(&f, text).unwrap();
            let e = Policy::load(&f).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(want), "{e}");
            assert!(e.to_string().starts_with(&f.display().to_string()), "{e}");
        }
    }
}
