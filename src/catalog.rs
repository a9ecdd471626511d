//! Vendors and models as data, and User-Agent parsing.
//!
//! Each vendor is described by `templates/<vendor>/vendor.toml`, embedded at build time: the
//! files its phones ask for (name patterns, the template that renders each, and whether one
//! exists per phone, per site, or per common-file code), the files phones upload, and the
//! models with their account counts. Nothing else in the crate names a vendor or a model.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::mac::Mac;

const VENDOR_FILES: &[(&str, &str)] = &[
    ("yealink", include_str!("../templates/yealink/vendor.toml")),
    ("polycom", include_str!("../templates/polycom/vendor.toml")),
];

/// How many copies of a file exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One per phone; the name holds `{mac}`.
    Phone,
    /// One per site.
    Site,
    /// One per site and common-file code of the vendor's models; the name holds `{code}`.
    Code,
}

/// A file the server renders for phones of a vendor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Pattern with `{mac}` (12 lowercase hex) or `{code}`.
    pub name: String,
    /// Template name under `templates/<vendor>/`.
    pub template: String,
    pub scope: Scope,
}

/// A generic file name that stands for a phone's own file, the phone being identified by the
/// MAC in its User-Agent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alias {
    pub name: String,
    pub serves: String,
}

/// A file the phone may PUT.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadSpec {
    pub name: String,
    /// Whether a GET of the same name returns the stored body.
    pub serve_back: bool,
}

/// One phone model.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub name: String,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub family: Option<u32>,
    pub accounts: u8,
    #[serde(default)]
    pub line_keys: u16,
    #[serde(skip_deserializing)]
    pub vendor: String,
}

/// One vendor: its files, uploads and models.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vendor {
    pub vendor: String,
    pub display: String,
    /// Our transport name (`udp`, `tcp`, `tls`) to the vendor's value for it.
    pub transport: BTreeMap<String, String>,
    /// Key prefixes only phoneprov may set (firmware, provisioning server).
    #[serde(default)]
    pub reserved_keys: Vec<String>,
    pub files: Vec<FileSpec>,
    #[serde(default)]
    pub aliases: Vec<Alias>,
    #[serde(default)]
    pub uploads: Vec<UploadSpec>,
    /// The vendor cloud its phones are registered and redirected through (`ymcs`), if any.
    #[serde(default)]
    pub cloud: Option<String>,
    /// Other names the brand goes by in PBXes and spreadsheets (`Poly` for Polycom).
    #[serde(default)]
    pub brands: Vec<String>,
    /// The format of its files, checked after every render.
    #[serde(default)]
    pub format: FileFormat,
    /// An image fits only models of its version's family (its first number): true for
    /// Yealink, whose builds are per hardware family; false where one image serves many.
    #[serde(default)]
    pub firmware_by_family: bool,
    /// How its firmware files are named, so an image's name can be read (none: not read).
    #[serde(default)]
    pub firmware_names: Option<FirmwareNames>,
    pub models: Vec<Model>,
}

/// A vendor's naming of firmware files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FirmwareNames {
    /// `T54W(T57W,T53W)-96.86.0.45(20211130).rom`: models, then the version (Yealink).
    ModelsVersionRom,
    /// `sip.ld` or `<part>.sip.ld`: no version in the name (Polycom UC Software).
    SipLd,
}

/// A vendor's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileFormat {
    /// Not checked.
    #[default]
    Text,
    /// Yealink's `key = value` files: a `#!version:` first line, then comments, `include:`
    /// lines and `key = value` lines.
    KeyValue,
    /// Well-formed XML (Polycom).
    Xml,
}

/// Every vendor and model the server knows.
#[derive(Debug)]
pub struct Catalog {
    pub vendors: Vec<Vendor>,
}

/// Folds a model name for comparison: `SIP-T54W`, `t54w`, `VVX 450`, `vvx450`, `VVX_450`.
fn fold(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    let upper = upper.strip_prefix("SIP-").unwrap_or(&upper);
    upper
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

impl Catalog {
    /// The catalogue compiled into the binary.
    pub fn get() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            let vendors = VENDOR_FILES
                .iter()
                .map(|(name, text)| {
                    let mut v: Vendor = toml::from_str(text)
                        .unwrap_or_else(|e| panic!("templates/{name}/vendor.toml: {e}"));
                    for m in &mut v.models {
                        m.vendor = v.vendor.clone();
                    }
                    v
                })
                .collect();
            Catalog { vendors }
        })
    }

    /// Finds a model by any common spelling of its name.
    /// A model by any of its spellings, with or without the brand in front (`Yealink T46U`,
    /// `Yealink SIP-T54W`, `Polycom VVX 450`, `Poly VVX 450`) — the brand must be the model's.
    pub fn model(&self, name: &str) -> Option<&Model> {
        let want = fold(name);
        if let Some(m) = self.models().find(|m| fold(&m.name) == want) {
            return Some(m);
        }
        let t = name.trim();
        for v in &self.vendors {
            for brand in std::iter::once(&v.display).chain(&v.brands) {
                let Some(rest) = t
                    .get(..brand.len())
                    .filter(|p| p.eq_ignore_ascii_case(brand))
                    .and_then(|_| t.get(brand.len()..))
                    .filter(|r| r.starts_with([' ', '-', '_']))
                else {
                    continue;
                };
                let want = fold(rest.trim_start_matches([' ', '-', '_']));
                if let Some(m) = v.models.iter().find(|m| fold(&m.name) == want) {
                    return Some(m);
                }
            }
        }
        None
    }

    pub fn models(&self) -> impl Iterator<Item = &Model> {
        self.vendors.iter().flat_map(|v| v.models.iter())
    }

    /// Whether `vendor`'s images fit only models of their version's family.
    pub fn firmware_by_family(&self, vendor: &str) -> bool {
        self.vendor(vendor).is_some_and(|v| v.firmware_by_family)
    }

    pub fn vendor(&self, id: &str) -> Option<&Vendor> {
        self.vendors.iter().find(|v| v.vendor == id)
    }

    /// The vendor that reserves `key`, if any does.
    pub fn reserved_by(&self, key: &str) -> Option<&Vendor> {
        let k = key.to_ascii_lowercase();
        self.vendors.iter().find(|v| {
            v.reserved_keys
                .iter()
                .any(|p| k.starts_with(&p.to_ascii_lowercase()))
        })
    }

    /// A model name that is not in the catalogue, explained, with the names that are.
    pub fn unknown_model_message(&self, name: &str) -> String {
        let names: Vec<&str> = self.models().map(|m| m.name.as_str()).collect();
        format!("unknown model '{name}'; known models: {}", names.join(", "))
    }
}

/// What a User-Agent says about the phone that sent it. Unknown agents are a value, not an
/// error.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct UserAgent {
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub mac: Option<Mac>,
}

fn is_version(tok: &str) -> bool {
    tok.split('.').count() >= 3
        && tok
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

impl UserAgent {
    /// Parses the User-Agent of a Yealink or Polycom phone; anything else gives an empty value.
    pub fn parse(ua: &str) -> UserAgent {
        let ua = ua.trim();
        // By `get`: a multi-byte character across byte 7 is not a Yealink (found by
        // tests/parsers_property.rs; slicing panicked).
        if let (Some(head), Some(rest)) = (ua.get(..7), ua.get(7..))
            && head.eq_ignore_ascii_case("yealink")
        {
            return Self::yealink(rest);
        }
        if let Some(tok) = ua.split_whitespace().find(|t| t.contains("-UA/"))
            && tok.starts_with("Polycom")
        {
            return Self::polycom(tok, ua);
        }
        UserAgent::default()
    }

    // `Yealink SIP-T54W 96.86.0.45 80:5e:c0:aa:bb:cc`, `Yealink-T46G 28.71.0.81 28.1.0...`,
    // `Yealink SIP VP-T49G ...`, `Yealink W60B ...`; runs of spaces are common.
    fn yealink(rest: &str) -> UserAgent {
        let rest = rest.trim_start_matches(['-', ' ']);
        let toks: Vec<&str> = rest.split_whitespace().collect();
        let fw_at = toks.iter().position(|t| is_version(t));
        let model_toks = &toks[..fw_at.unwrap_or(toks.len().min(1))];
        let model = model_toks
            .iter()
            .filter(|t| !t.eq_ignore_ascii_case("SIP"))
            .map(|t| t.strip_prefix("SIP-").unwrap_or(t))
            .collect::<Vec<_>>()
            .join(" ");
        let firmware = fw_at.map(|i| toks[i].to_string());
        let mac = fw_at.and_then(|i| toks.get(i + 1)).and_then(|t| {
            if t.contains(':') || t.len() == 12 {
                t.parse::<Mac>().ok()
            } else {
                None
            }
        });
        UserAgent {
            vendor: Some("yealink".into()),
            model: (!model.is_empty()).then_some(model),
            firmware,
            mac,
        }
    }

    // `PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application`. Updater and BootROM requests carry
    // the updater's version, not the application's, so no firmware is reported for them.
    fn polycom(tok: &str, whole: &str) -> UserAgent {
        let (product, version) = tok.split_once("-UA/").unwrap_or((tok, ""));
        let model = product.split_once('-').map(|(_, m)| m.to_string());
        let is_app = !whole.contains("Type/") || whole.contains("Type/Application");
        UserAgent {
            vendor: Some("polycom".into()),
            model,
            firmware: (is_app && is_version(version)).then(|| version.to_string()),
            mac: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_loads_and_is_consistent() {
        let c = Catalog::get();
        assert!(c.models().count() > 40);
        for v in &c.vendors {
            for t in ["udp", "tcp", "tls"] {
                assert!(v.transport.contains_key(t), "{} lacks {t}", v.vendor);
            }
            for f in &v.files {
                match f.scope {
                    Scope::Phone => assert!(f.name.contains("{mac}"), "{}", f.name),
                    Scope::Code => assert!(f.name.contains("{code}"), "{}", f.name),
                    Scope::Site => assert!(!f.name.contains('{'), "{}", f.name),
                }
            }
            if v.files.iter().any(|f| f.scope == Scope::Code) {
                for m in &v.models {
                    assert_eq!(m.code.as_ref().map(|c| c.len()), Some(3), "{}", m.name);
                }
            }
        }
        assert_eq!(c.model("SIP-T54W").unwrap().code.as_deref(), Some("096"));
        assert_eq!(c.model("vvx450").unwrap().name, "VVX_450");
        assert_eq!(c.model("VVX 450").unwrap().accounts, 12);
        assert!(c.model("T99X").is_none());
        // With the brand in front, as PBXes and spreadsheets write them.
        for (spelling, want) in [
            ("Yealink T46U", "T46U"),
            ("Yealink SIP-T54W", "T54W"),
            ("yealink sip-t54w", "T54W"),
            ("Polycom VVX 450", "VVX_450"),
            ("Poly VVX450", "VVX_450"),
        ] {
            assert_eq!(
                c.model(spelling).map(|m| m.name.as_str()),
                Some(want),
                "{spelling}"
            );
        }
        assert!(
            c.model("Polycom T46U").is_none(),
            "the brand must be the model's"
        );
        assert!(c.model("Yealink T99").is_none());
        assert!(c.unknown_model_message("T99X").contains("T54W"));
    }

    #[test]
    fn a_multi_byte_user_agent_is_no_phone_and_no_panic() {
        // Regression: found by tests/parsers_property.rs.
        for ua in ["𐀀𐀀", "Yealin𐀀", "éééé", "Yealink𐀀 SIP-T54W"] {
            let _ = UserAgent::parse(ua);
        }
        assert_eq!(UserAgent::parse("𐀀𐀀").vendor, None);
    }

    #[test]
    fn user_agents_from_the_field() {
        let fixture = include_str!("../tests/fixtures/user-agents.tsv");
        let mut n = 0;
        for line in fixture
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let cols: Vec<&str> = line.split('\t').collect();
            let ua = UserAgent::parse(cols[0]);
            let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
            assert_eq!(ua.vendor, opt(cols[1]), "{line}");
            assert_eq!(ua.model, opt(cols[2]), "{line}");
            assert_eq!(ua.firmware, opt(cols[3]), "{line}");
            assert_eq!(ua.mac.map(|m| m.to_string()), opt(cols[4]), "{line}");
            n += 1;
        }
        assert!(n >= 14);
        assert_eq!(UserAgent::parse(""), UserAgent::default());
        assert_eq!(
            UserAgent::parse("Yealink").vendor.as_deref(),
            Some("yealink")
        );
        let vp = UserAgent::parse("Yealink SIP VP-T49G 51.80.0.100 00:15:65:11:22:33");
        assert_eq!(vp.model.as_deref(), Some("VP-T49G"));
    }
}
