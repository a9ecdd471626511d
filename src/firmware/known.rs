//! Vendor builds known by size and digest: the shipped catalogue
//! (`firmware-policy/known-builds.toml`, embedded) plus the operator's `[[known]]` entries in
//! the policy file. A build is a fact about bytes; the judgement ([`super::judge`]) uses it to
//! name bytes whatever they are called, and to refuse bytes that claim a known version they
//! are not.

use serde::Deserialize;

use super::Version;
use super::content::Content;

/// The shipped catalogue.
pub(super) const SHIPPED: &str = include_str!("../../firmware-policy/known-builds.toml");
pub(super) const SHIPPED_NAME: &str = "firmware-policy/known-builds.toml (shipped)";

/// A `[[known]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKnown {
    vendor: String,
    version: String,
    size: u64,
    sha1: Option<String>,
    sha256: Option<String>,
    models: Option<Vec<String>>,
    file_name: Option<String>,
    source: Option<String>,
}

/// One published build.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KnownBuild {
    pub vendor: String,
    pub version: Version,
    pub size: u64,
    /// Lower-case hex; at least one of the two is set.
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    /// Catalogue models the build fits; empty: every model of its family.
    pub models: Vec<String>,
    pub file_name: Option<String>,
    /// Where the facts come from, as written in the entry.
    pub source: String,
    /// `file:line` of the entry.
    pub at: String,
}

fn hex_digest(s: &str, len: usize, what: &str) -> Result<String, String> {
    let s = s.trim().to_ascii_lowercase();
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("'{s}' is not a {what} digest ({len} hex digits)"));
    }
    Ok(s)
}

impl KnownBuild {
    /// Checks an entry; the error is the reason, for the caller to place at file:line.
    pub(super) fn from_raw(r: RawKnown, at: String) -> Result<KnownBuild, String> {
        let cat = crate::catalog::Catalog::get();
        let vendor = r.vendor.to_ascii_lowercase();
        if cat.vendor(&vendor).is_none() {
            return Err(format!("unknown vendor '{}'", r.vendor));
        }
        let version = Version::parse(&r.version)
            .ok_or_else(|| format!("'{}' is not a version (digits and dots)", r.version))?;
        let sha1 = r.sha1.map(|s| hex_digest(&s, 40, "sha1")).transpose()?;
        let sha256 = r.sha256.map(|s| hex_digest(&s, 64, "sha256")).transpose()?;
        if sha1.is_none() && sha256.is_none() {
            return Err("a known build needs sha1 or sha256".into());
        }
        if r.size == 0 {
            return Err("a known build needs its size in bytes".into());
        }
        let mut models = Vec::new();
        for m in r.models.iter().flatten() {
            match cat.model(m) {
                Some(cm) if cm.vendor == vendor => models.push(cm.name.clone()),
                _ => return Err(format!("unknown {vendor} model '{m}'")),
            }
        }
        Ok(KnownBuild {
            vendor,
            version,
            size: r.size,
            sha1,
            sha256,
            models,
            file_name: r.file_name,
            source: r.source.unwrap_or_else(|| "no source given".into()),
            at,
        })
    }

    /// Whether these bytes are this build: the size and every digest the entry gives agree.
    pub fn matches(&self, c: &Content) -> bool {
        self.size == c.size
            && self.sha1.as_ref().is_none_or(|d| *d == c.sha1)
            && self.sha256.as_ref().is_none_or(|d| *d == c.sha256)
    }

    /// What the entry says the bytes are, for messages: "43072240 bytes, sha1 0975d447…".
    pub fn describe(&self) -> String {
        let mut s = format!("{} bytes", self.size);
        if let Some(d) = &self.sha1 {
            s.push_str(&format!(", sha1 {d}"));
        }
        if let Some(d) = &self.sha256 {
            s.push_str(&format!(", sha256 {d}"));
        }
        s
    }
}

/// The first known build these bytes are.
pub fn build_of<'a>(known: &'a [KnownBuild], c: &Content) -> Option<&'a KnownBuild> {
    known.iter().find(|k| k.matches(c))
}

/// Every known build of a vendor's version (a version may have been published more than once).
pub fn builds_of<'a>(
    known: &'a [KnownBuild],
    vendor: &str,
    version: &Version,
) -> Vec<&'a KnownBuild> {
    known
        .iter()
        .filter(|k| k.vendor == vendor && k.version == *version)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_catalogue_parses_and_knows_the_bricking_build() {
        let p = super::super::policy::Policy::shipped();
        assert!(p.known.len() >= 8, "{:?}", p.known);
        let v20 = Version::parse("96.86.0.20").unwrap();
        let b = builds_of(&p.known, "yealink", &v20);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].size, 42_374_880);
        assert_eq!(
            b[0].sha1.as_deref(),
            Some("ca661d49516fd30b5324224dc1352027a686ef9b")
        );
        let v45 = Version::parse("96.86.0.45").unwrap();
        assert_eq!(builds_of(&p.known, "yealink", &v45)[0].size, 43_072_240);
        let fake = Content {
            size: 42_374_880,
            sha256: "0".repeat(64),
            sha1: "ca661d49516fd30b5324224dc1352027a686ef9b".into(),
        };
        assert_eq!(build_of(&p.known, &fake).map(|k| &k.version), Some(&v20));
        let wrong_size = Content {
            size: 1,
            ..fake.clone()
        };
        assert!(
            build_of(&p.known, &wrong_size).is_none(),
            "size is a fact too"
        );
    }
}
