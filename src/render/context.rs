//! The typed values templates see. Everything a template may use is a field here; Tera refuses
//! a template that names anything else.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::catalog::Model;
use crate::model::{Layer, Line, Phone, Setting, Site};

/// The site as templates see it.
#[derive(Debug, Serialize)]
pub struct SiteCtx {
    pub name: String,
    /// The site's provisioning URL, ending in `/`.
    pub url: String,
    pub url_scheme: String,
    /// The account domain (and registrar when no outbound proxy is set).
    pub sip_server: String,
    pub sip_port: u16,
    /// Whether ports are written (not when DNS NAPTR/SRV chooses).
    pub has_port: bool,
    pub transport: String,
    /// Where SIP goes on a multi-tenant PBX, and its failover.
    pub outbound_proxy: Option<crate::model::Endpoint>,
    pub outbound_proxy_2: Option<crate::model::Endpoint>,
    pub recheck: RecheckCtx,
    /// The vendor's value for the transport (`2`, `TLS`, …).
    pub transport_value: String,
    pub time_zone: Option<TimeZoneCtx>,
    pub ntp: Vec<String>,
    /// The site's provisioning login, so the phone keeps authenticating after its first boot.
    pub auth_user: Option<String>,
    pub auth_password: Option<String>,
}

/// When phones look for changes: `mode` is `daily` (between `begin` and `end`, `HH:MM`),
/// `every` (`minutes`, spread per phone: see [`PhoneCtx::recheck_minutes`]) or `off`.
#[derive(Debug, Serialize)]
pub struct RecheckCtx {
    pub mode: &'static str,
    pub begin: String,
    pub end: String,
    pub minutes: u32,
}

impl From<crate::model::Recheck> for RecheckCtx {
    fn from(r: crate::model::Recheck) -> Self {
        use crate::model::Recheck;
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        match r {
            Recheck::Daily { from, to } => RecheckCtx {
                mode: "daily",
                begin: hm(from),
                end: hm(to),
                minutes: 24 * 60,
            },
            Recheck::Every { minutes } => RecheckCtx {
                mode: "every",
                begin: String::new(),
                end: String::new(),
                minutes,
            },
            Recheck::Off => RecheckCtx {
                mode: "off",
                begin: String::new(),
                end: String::new(),
                minutes: 0,
            },
        }
    }
}

/// A time zone, as phones want it: standard UTC offset, and whether daylight saving applies.
#[derive(Debug, Clone, Serialize)]
pub struct TimeZoneCtx {
    pub name: String,
    /// `-7`, `+5:30`, `0`.
    pub offset: String,
    pub offset_seconds: i32,
    /// Daylight saving applies, by `rule`.
    pub dst: bool,
    /// The yearly switches, written out for phones (they do not know IANA zones).
    pub rule: Option<super::timezone::DstRule>,
}

#[derive(Debug, Serialize)]
pub struct PhoneCtx {
    /// 12 lowercase hex digits.
    pub mac: String,
    pub mac_colon: String,
    pub label: String,
    /// The site's `every` period for this phone, stretched by up to a tenth by its MAC so a
    /// site's phones that booted together (a power cut) drift apart instead of arriving in the
    /// same second forever.
    pub recheck_minutes: u32,
}

/// A line with every optional field filled in.
#[derive(Serialize)]
pub struct LineCtx {
    pub n: u8,
    pub user: String,
    pub auth_user: String,
    pub password: String,
    pub display_name: String,
    pub label: String,
    /// The account's domain: its own, else the site's SIP server.
    pub domain: String,
}

impl LineCtx {
    pub fn new(l: &Line, site_domain: &str) -> Self {
        let display_name = l.display_name.clone().unwrap_or_else(|| l.user.clone());
        LineCtx {
            n: l.n,
            domain: l.domain.clone().unwrap_or_else(|| site_domain.to_string()),
            user: l.user.clone(),
            auth_user: l.auth_user.clone().unwrap_or_else(|| l.user.clone()),
            password: l.password.clone(),
            label: l.label.clone().unwrap_or_else(|| display_name.clone()),
            display_name,
        }
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SettingCtx {
    pub key: String,
    pub value: String,
}

/// The firmware image a phone is to run, already passed by the policy.
#[derive(Debug, Clone, Serialize)]
pub struct FirmwareCtx {
    pub file_name: String,
    pub version: String,
    /// Where the phone fetches it: the site's URL and the file name.
    pub url: String,
}

/// Context of a file that exists once per phone.
#[derive(Serialize)]
pub struct PhoneFileCtx<'a> {
    pub site: &'a SiteCtx,
    pub phone: PhoneCtx,
    pub model: &'a Model,
    pub lines: Vec<LineCtx>,
    pub settings: Vec<SettingCtx>,
    pub firmware: Option<FirmwareCtx>,
}

/// Context of a file that exists once per site (`code` set for per-common-file-code files).
#[derive(Serialize)]
pub struct SiteFileCtx<'a> {
    pub site: &'a SiteCtx,
    pub code: Option<&'a str>,
    pub settings: Vec<SettingCtx>,
}

impl PhoneCtx {
    pub fn new(p: &Phone, site: &Site) -> Self {
        let recheck_minutes = match site.sip.recheck {
            crate::model::Recheck::Every { minutes } => {
                // FNV-1a of the MAC: stable across renders, spread across a site.
                let h = p
                    .mac
                    .to_string()
                    .bytes()
                    .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
                    });
                minutes + (h % u64::from(minutes / 10 + 1)) as u32
            }
            _ => 0,
        };
        PhoneCtx {
            mac: p.mac.to_string(),
            mac_colon: p.mac.colon(),
            label: p.label.clone(),
            recheck_minutes,
        }
    }
}

/// Merges the settings that apply to one phone (or, with `phone` None, the site layer only),
/// later layers winning, sorted by key so output is stable.
pub fn merge_settings(
    settings: &[Setting],
    site: &Site,
    vendor: &str,
    phone: Option<&Phone>,
) -> Vec<SettingCtx> {
    let cat = crate::catalog::Catalog::get();
    let mut applicable: Vec<&Setting> = settings
        .iter()
        .filter(|s| s.vendor.as_deref().is_none_or(|v| v == vendor))
        // A key any vendor reserves never reaches any file, whatever the database holds.
        .filter(|s| cat.reserved_by(&s.key).is_none())
        // Nor one no file format can hold (rows from before keys were checked this strictly).
        .filter(|s| crate::model::setting_key_ok(&s.key))
        .filter(|s| match (&s.layer, phone) {
            (Layer::Site { site_id }, _) => *site_id == site.id,
            (Layer::Model { model }, Some(p)) => *model == p.model,
            (Layer::SiteModel { site_id, model }, Some(p)) => {
                *site_id == site.id && *model == p.model
            }
            (Layer::Phone { mac }, Some(p)) => *mac == p.mac,
            _ => false,
        })
        .collect();
    // Within a layer, a vendor-specific value beats an all-vendor one.
    applicable.sort_by_key(|s| (s.layer.rank(), s.vendor.is_some()));
    let mut merged = BTreeMap::new();
    for s in applicable {
        merged.insert(s.key.clone(), s.value.clone());
    }
    merged
        .into_iter()
        .map(|(key, value)| SettingCtx { key, value })
        .collect()
}

/// Understands an IANA zone name (`America/Denver`) or a UTC offset (`-7`, `+5:30`, `UTC-3`).
pub fn parse_time_zone(tz: &str) -> Result<TimeZoneCtx, String> {
    use chrono::{Offset, TimeZone};
    let t = tz.trim();
    let bare = t
        .strip_prefix("UTC")
        .or_else(|| t.strip_prefix("GMT"))
        .unwrap_or(t);
    if let Some(secs) = parse_offset(bare) {
        return Ok(TimeZoneCtx {
            name: t.to_string(),
            offset: format_offset(secs),
            offset_seconds: secs,
            dst: false,
            rule: None,
        });
    }
    let zone: chrono_tz::Tz = t.parse().map_err(|_| {
        format!(
            "time zone '{tz}' is neither an IANA name (America/Denver) nor a UTC offset (-7, +5:30)"
        )
    })?;
    // Standard time is the smaller of the January and July offsets; DST when they differ.
    let year = 2025;
    let jan = zone
        .with_ymd_and_hms(year, 1, 15, 12, 0, 0)
        .single()
        .map(|d| d.offset().fix().local_minus_utc());
    let jul = zone
        .with_ymd_and_hms(year, 7, 15, 12, 0, 0)
        .single()
        .map(|d| d.offset().fix().local_minus_utc());
    let (Some(jan), Some(jul)) = (jan, jul) else {
        return Err(format!("time zone '{tz}' has no usable offset"));
    };
    let std = jan.min(jul);
    let rule = super::timezone::dst_rule(zone);
    if jan != jul && rule.is_none() {
        tracing::warn!(
            zone = t,
            "daylight saving of this zone is not a weekday rule phones can follow: written off"
        );
    }
    Ok(TimeZoneCtx {
        name: t.to_string(),
        offset: format_offset(std),
        offset_seconds: std,
        dst: rule.is_some(),
        rule,
    })
}

fn parse_offset(s: &str) -> Option<i32> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        b'0'..=b'9' => (1, s),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?),
        None => (rest.parse::<i32>().ok()?, 0),
    };
    if !(0..=14).contains(&h) || !(0..60).contains(&m) || (m != 0 && m % 15 != 0) {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

fn format_offset(secs: i32) -> String {
    let sign = if secs < 0 { "-" } else { "+" };
    let a = secs.abs();
    match (a / 3600, (a % 3600) / 60) {
        (0, 0) => "0".to_string(),
        (h, 0) => format!("{sign}{h}"),
        (h, m) => format!("{sign}{h}:{m:02}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones() {
        let d = parse_time_zone("America/Denver").unwrap();
        assert_eq!(
            (d.offset.as_str(), d.offset_seconds, d.dst),
            ("-7", -25200, true)
        );
        let p = parse_time_zone("America/Phoenix").unwrap();
        assert_eq!((p.offset.as_str(), p.dst), ("-7", false));
        let k = parse_time_zone("Asia/Kolkata").unwrap();
        assert_eq!((k.offset.as_str(), k.offset_seconds), ("+5:30", 19800));
        assert_eq!(parse_time_zone("-7").unwrap().offset, "-7");
        assert_eq!(parse_time_zone("UTC+5:30").unwrap().offset_seconds, 19800);
        assert_eq!(parse_time_zone("0").unwrap().offset, "0");
        assert!(
            parse_time_zone("Mars/Olympus")
                .unwrap_err()
                .contains("IANA")
        );
        assert!(parse_time_zone("+25").is_err());
        assert!(parse_time_zone("+5:07").is_err());
    }
}
