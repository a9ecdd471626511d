//! Firmware images as facts: what the bytes are ([`content`]), the builds known by content
//! ([`known`]), vendor, family, version and the models an image fits as the file names vendors
//! publish claim them; version ordering; the allow/deny [`policy`]; and the one [`judge`]ment
//! of an image that every entry point uses. No I/O here beyond reading policy files and
//! hashing the file being judged.

pub mod content;
pub mod judge;
pub mod known;
pub mod policy;

use std::cmp::Ordering;
use std::fmt;

use crate::catalog::{Catalog, FirmwareNames};

/// A dotted numeric version, `96.86.0.45`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Version(String);

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        let ok = s.split('.').count() >= 2
            && s.split('.')
                .all(|p| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()));
        ok.then(|| Version(s.to_string()))
    }

    fn parts(&self) -> Vec<u64> {
        self.0.split('.').filter_map(|p| p.parse().ok()).collect()
    }

    /// The first number: Yealink's firmware family (96 = T5xW, 108 = T4xU, 124 = T3x).
    pub fn family(&self) -> u32 {
        self.parts().first().copied().unwrap_or(0) as u32
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a file name says about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub vendor: String,
    pub version: Option<Version>,
    /// Catalogue models the name lists (empty when it lists none).
    pub models: Vec<String>,
}

/// Reads vendor, version and models from a published file name:
/// `T54W(T57W,T53W,T53,T53C,T54,T57)-96.86.0.45(20211130).rom`, `T54W-96.86.0.45.rom`,
/// `T46U(T43U,T46U,...)-108.86.0.90.rom`, Polycom `sip.ld` or `<part>.sip.ld`.
pub fn identify(file_name: &str) -> Option<Identity> {
    let cat = Catalog::get();
    cat.vendors.iter().find_map(|v| match v.firmware_names? {
        FirmwareNames::SipLd => sip_ld(&v.vendor, file_name),
        FirmwareNames::ModelsVersionRom => models_version_rom(cat, &v.vendor, file_name),
    })
}

fn sip_ld(vendor: &str, file_name: &str) -> Option<Identity> {
    let lower = file_name.to_ascii_lowercase();
    (lower == "sip.ld" || lower.ends_with(".sip.ld")).then(|| Identity {
        vendor: vendor.to_string(),
        version: None,
        models: Vec::new(),
    })
}

fn models_version_rom(cat: &Catalog, vendor: &str, file_name: &str) -> Option<Identity> {
    let stem = file_name
        .strip_suffix(".rom")
        .or_else(|| file_name.strip_suffix(".ROM"))?;
    // Head: `T54W` or `T54W(T57W,...)`; then `-<version>` and an optional `(<date>)`.
    let (head, tail) = match stem.find(")-") {
        Some(i) => (&stem[..=i], &stem[i + 2..]),
        None => stem.split_once('-')?,
    };
    let version_str = tail.split('(').next().unwrap_or("");
    let version = Version::parse(version_str)?;
    let mut names: Vec<&str> = vec![head.split('(').next().unwrap_or("")];
    if let Some(list) = head.split_once('(').map(|(_, l)| l.trim_end_matches(')')) {
        names.extend(list.split(','));
    }
    let mut models: Vec<String> = Vec::new();
    for n in names {
        if let Some(m) = cat.model(n).filter(|m| m.vendor == vendor)
            && !models.contains(&m.name)
        {
            models.push(m.name.clone());
        }
    }
    if models.is_empty() {
        return None;
    }
    Some(Identity {
        vendor: vendor.to_string(),
        version: Some(version),
        models,
    })
}

/// Image names mentioned in a text (a setting's value): tokens that [`identify`] recognises.
pub fn images_named_in(text: &str) -> Vec<Identity> {
    text.split(|c: char| {
        c.is_whitespace() || matches!(c, '/' | '"' | '\'' | '=' | '?' | '&' | '\\')
    })
    .filter_map(identify)
    .collect()
}

/// The catalogue models an image of `vendor` and `version` fits: the listed ones whose family
/// matches, or, with none listed, every model of the version's family.
pub fn fitting_models(vendor: &str, version: &Version, listed: &[String]) -> Vec<String> {
    let cat = Catalog::get();
    let family = version.family();
    let by_family = cat.firmware_by_family(vendor);
    cat.models()
        .filter(|m| m.vendor == vendor)
        .filter(|m| listed.is_empty() || listed.contains(&m.name))
        .filter(|m| !by_family || m.family == Some(family))
        .map(|m| m.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_vendors_publish() {
        let id = identify("T54W(T57W,T53W,T53,T53C,T54,T57)-96.86.0.45(20211130).rom").unwrap();
        assert_eq!(id.version.as_ref().map(|v| v.as_str()), Some("96.86.0.45"));
        assert_eq!(id.models, ["T54W", "T57W", "T53W", "T53"]);
        let id = identify("T54W-96.86.0.20.rom").unwrap();
        assert_eq!(
            (id.version.unwrap().family(), id.models),
            (96, vec!["T54W".to_string()])
        );
        let id = identify("T46U(T43U,T46U,T41U,T48U,T42U,T44U,T44W)-108.86.0.90.rom").unwrap();
        assert_eq!(id.models, ["T46U", "T43U", "T48U", "T42U", "T44W"]);
        let id = identify("T31(T30,T30P,T31G,T31P,T33P,T33G)-124.86.0.75.rom").unwrap();
        assert_eq!(id.models, ["T30", "T30P", "T31G", "T33G"]);
        assert_eq!(identify("3111-48300-001.sip.ld").unwrap().vendor, "polycom");
        assert_eq!(identify("sip.ld").unwrap().version, None);
        assert!(identify("firmware.bin").is_none());
        assert!(identify("T54W.rom").is_none());
        assert!(identify("X99-1.2.3.rom").is_none());
    }

    #[test]
    fn versions_order_numerically() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("96.86.0.45") > v("96.86.0.20"));
        assert!(v("96.86.0.100") > v("96.86.0.45"));
        assert!(v("108.86.0.90") > v("96.86.0.100"));
        assert!(Version::parse("96.x.0").is_none());
        assert!(Version::parse("96").is_none());
    }

    #[test]
    fn fitting() {
        let v = Version::parse("96.86.0.45").unwrap();
        let all = fitting_models("yealink", &v, &[]);
        assert!(all.contains(&"T54W".to_string()) && all.contains(&"T57W".to_string()));
        assert!(!all.contains(&"T46U".to_string()));
        // A listed model of another family does not fit.
        assert_eq!(
            fitting_models("yealink", &v, &["T54W".into(), "T46U".into()]),
            ["T54W"]
        );
    }
}
