//! Plain records: what a site, phone, line and setting are. The store reads and writes them,
//! the renderer reads them; neither knows the other.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::mac::Mac;

/// SIP transport of a site's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    /// DNS NAPTR/SRV chooses transport, host and port: no port is written.
    Dns,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Dns => "dns",
        }
    }

    /// Whether a port is written for this transport (DNS SRV decides it otherwise).
    pub fn has_port(self) -> bool {
        self != Transport::Dns
    }
    /// The port a SIP server listens on for this transport unless told otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            _ => 5060,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            "tls" => Ok(Transport::Tls),
            "dns" | "naptr" | "srv" | "dns-naptr" => Ok(Transport::Dns),
            _ => Err(format!(
                "transport '{s}' must be udp, tcp, tls or dns (DNS NAPTR/SRV chooses)"
            )),
        }
    }
}

/// A host and port phones send SIP to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host.contains(':') {
            true => write!(f, "[{}]:{}", self.host, self.port),
            false => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

/// When phones look for changes on their own, between boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recheck {
    /// Once a day at a moment each phone picks in the window (minutes after midnight).
    Daily {
        from: u16,
        to: u16,
    },
    /// Every so many minutes (each phone's period is spread by its MAC).
    Every {
        minutes: u32,
    },
    Off,
}

/// The default: every phone checks once a night between 02:00 and 04:00 local time.
pub const DEFAULT_RECHECK: Recheck = Recheck::Daily { from: 120, to: 240 };

impl fmt::Display for Recheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |m: &u16| format!("{:02}:{:02}", m / 60, m % 60);
        match self {
            Recheck::Daily { from, to } => write!(f, "daily:{}-{}", hm(from), hm(to)),
            Recheck::Every { minutes } if minutes % 60 == 0 => write!(f, "every:{}h", minutes / 60),
            Recheck::Every { minutes } => write!(f, "every:{minutes}m"),
            Recheck::Off => f.write_str("off"),
        }
    }
}

impl Serialize for Recheck {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl FromStr for Recheck {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        let bad = || {
            format!(
                "re-check '{s}' must be daily:HH:MM-HH:MM (a window each phone picks a moment in), every:Nh or every:Nm (15 minutes to 7 days), or off"
            )
        };
        let hm = |x: &str| -> Option<u16> {
            let (h, m) = x.split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        if t == "off" {
            return Ok(Recheck::Off);
        }
        if let Some(w) = t.strip_prefix("daily:") {
            let (a, b) = w.split_once('-').ok_or_else(bad)?;
            let (from, to) = (hm(a).ok_or_else(bad)?, hm(b).ok_or_else(bad)?);
            if to <= from {
                return Err(format!(
                    "re-check window '{w}' must end after it starts, within one day"
                ));
            }
            return Ok(Recheck::Daily { from, to });
        }
        if let Some(p) = t.strip_prefix("every:") {
            let minutes: u32 = match (p.strip_suffix('h'), p.strip_suffix('m')) {
                (Some(h), _) => h.parse::<u32>().map_err(|_| bad())?.saturating_mul(60),
                (_, Some(m)) => m.parse().map_err(|_| bad())?,
                _ => return Err(bad()),
            };
            if !(15..=7 * 24 * 60).contains(&minutes) {
                return Err(bad());
            }
            return Ok(Recheck::Every { minutes });
        }
        Err(bad())
    }
}

/// How a site's phones reach the PBX, beyond the domain: outbound proxies and re-checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SiteSip {
    /// Where REGISTER and calls go when it is not the domain's host (a multi-tenant PBX's
    /// core server).
    pub outbound_proxy: Option<Endpoint>,
    /// The failover proxy.
    pub outbound_proxy_2: Option<Endpoint>,
    /// `daily:HH:MM-HH:MM`, `every:Nh`, `every:Nm` or `off`.
    #[schema(value_type = String)]
    pub recheck: Recheck,
}

impl Default for SiteSip {
    fn default() -> Self {
        SiteSip {
            outbound_proxy: None,
            outbound_proxy_2: None,
            recheck: DEFAULT_RECHECK,
        }
    }
}

/// A client site: one PBX server, one provisioning URL.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Site {
    pub id: i64,
    pub name: String,
    /// The secret path segment of the site's provisioning URL.
    #[serde(skip)]
    pub key: String,
    pub sip_server: String,
    pub sip_port: u16,
    pub transport: Transport,
    /// IANA name (`America/Denver`) or UTC offset (`-7`, `+5:30`).
    pub time_zone: Option<String>,
    pub ntp: Vec<String>,
    /// Whether phones may fetch this site's files at `/` without the site key.
    pub allow_keyless: bool,
    /// sha256 of the stored image handed to phones in recovery mode, if switched on.
    pub recovery_sha256: Option<String>,
    /// Who may fetch the site's files, from where, over what.
    pub access: SiteAccess,
    /// The Yealink cloud (YMCS) site its phones belong to, when not the one of the same name.
    pub ymcs_site: Option<String>,
    /// Outbound proxies and re-check schedule.
    pub sip: SiteSip,
}

/// A provisioning login (HTTP Basic or Digest). The password is never printed or serialised.
#[derive(Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Credential {
    pub user: String,
    #[serde(skip)]
    pub password: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Whether a site's sensitive files (everything rendered for it) may go out over TFTP, which
/// cannot carry credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TftpSensitive {
    /// Allowed unless the site has credentials.
    #[default]
    Auto,
    Allow,
    Deny,
}

impl TftpSensitive {
    pub fn as_str(self) -> &'static str {
        match self {
            TftpSensitive::Auto => "auto",
            TftpSensitive::Allow => "allow",
            TftpSensitive::Deny => "deny",
        }
    }
}

impl FromStr for TftpSensitive {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(TftpSensitive::Auto),
            "allow" => Ok(TftpSensitive::Allow),
            "deny" => Ok(TftpSensitive::Deny),
            _ => Err(format!("tftp '{s}' must be auto, allow or deny")),
        }
    }
}

/// A site's fetch rules: credentials (with the one being rotated out), allowed networks,
/// HTTPS only, TFTP for sensitive files.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct SiteAccess {
    pub auth: Option<Credential>,
    /// The credential being rotated out, accepted until `previous_until` (unix ms).
    pub previous_auth: Option<Credential>,
    pub previous_until: Option<i64>,
    /// Bumped on every credential change; fetches record which one they proved.
    pub auth_generation: i64,
    /// When set, only these networks may fetch the site's files.
    #[schema(value_type = Vec<String>)]
    pub allow_nets: Vec<crate::net::Cidr>,
    /// Plain HTTP (and TFTP) refused for the site's sensitive files; rendered URLs use https.
    pub require_https: bool,
    pub tftp_sensitive: TftpSensitive,
}

impl SiteAccess {
    /// Whether rendered files may go out over TFTP.
    pub fn tftp_allowed(&self) -> bool {
        match self.tftp_sensitive {
            TftpSensitive::Allow => !self.require_https,
            TftpSensitive::Deny => false,
            TftpSensitive::Auto => self.auth.is_none() && !self.require_https,
        }
    }
}

/// A phone: a MAC of a known model, in one site.
#[derive(Debug, Clone, Serialize)]
pub struct Phone {
    pub mac: Mac,
    pub model: String,
    pub site_id: i64,
    pub label: String,
    /// Serial number, when known (Yealink's cloud needs it for some calls).
    pub sn: Option<String>,
}

/// A serial number as Yealink prints them: 8 to 32 letters and digits (upper-cased).
pub fn parse_sn(s: &str) -> Result<Option<String>, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if !(8..=32).contains(&t.len()) || !t.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "serial number '{t}' must be 8 to 32 letters and digits (as on the phone's label)"
        ));
    }
    Ok(Some(t.to_ascii_uppercase()))
}

/// One SIP account of a phone.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Line {
    pub n: u8,
    pub user: String,
    pub auth_user: Option<String>,
    pub password: String,
    pub display_name: Option<String>,
    pub label: Option<String>,
    /// The account's SIP domain when it is not the site's (the PBX's device URI names it).
    pub domain: Option<String>,
}

/// Never prints the password.
impl fmt::Debug for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Line")
            .field("n", &self.n)
            .field("user", &self.user)
            .field("auth_user", &self.auth_user)
            .field("password", &"<redacted>")
            .field("display_name", &self.display_name)
            .field("label", &self.label)
            .finish()
    }
}

/// Where a raw vendor setting applies. Later layers win: model everywhere → site → model
/// within site → phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "layer", rename_all = "snake_case")]
pub enum Layer {
    Model {
        model: String,
    },
    Site {
        site_id: i64,
    },
    SiteModel {
        site_id: i64,
        model: String,
    },
    Phone {
        #[schema(value_type = String)]
        mac: Mac,
    },
}

impl Layer {
    /// Rank in the override order; higher wins.
    pub fn rank(&self) -> u8 {
        match self {
            Layer::Model { .. } => 0,
            Layer::Site { .. } => 1,
            Layer::SiteModel { .. } => 2,
            Layer::Phone { .. } => 3,
        }
    }
}

/// An operator's raw vendor key at a layer. `vendor` narrows a site-wide setting to one
/// vendor's phones; `None` means every vendor.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Setting {
    pub layer: Layer,
    pub vendor: Option<String>,
    pub key: String,
    pub value: String,
}

/// When, from where and with what a phone last fetched a file.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Seen {
    /// Unix milliseconds.
    pub at: i64,
    pub peer: String,
    pub transport: String,
    pub file: String,
    pub user_agent: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
}

/// Bytes the firmware policy refused, with what they claimed to be then (vendor, version and
/// models are absent for records older than that), so a renamed copy is judged as the original.
#[derive(Debug, Clone, Serialize)]
pub struct RefusedImage {
    pub file_name: String,
    pub vendor: Option<String>,
    pub version: Option<String>,
    pub models: Vec<String>,
    pub reason: String,
}

/// Whether a setting key can be written in every vendor's format (an XML attribute name for
/// Polycom, a `key = value` key for Yealink).
pub fn setting_key_ok(key: &str) -> bool {
    key.len() <= 200
        && key
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Refuses keys and values that could break out of a vendor's file format.
pub fn check_setting(key: &str, value: &str) -> Result<(), String> {
    if !setting_key_ok(key) {
        return Err(format!(
            "setting key '{key}' must start with a letter or '_' and hold only letters, digits, '.', '_' and '-' (1 to 200 characters): Polycom files are XML, where a key is an attribute name"
        ));
    }
    check_text("value", value, 4096)
}

/// Refuses a line's field (user, auth user, password, display name, label) that a phone would
/// not keep as typed: Yealink writes values raw after `key = `, so leading or trailing spaces
/// are lost, and `%NULL%` / `%EMPTY%` mean "reset" and "empty" there.
pub fn check_line_value(field: &str, value: &str) -> Result<(), String> {
    check_text(field, value, 200)?;
    if value != value.trim() {
        return Err(format!(
            "{field} has leading or trailing spaces, which a Yealink phone does not keep"
        ));
    }
    if ["%NULL%", "%EMPTY%"]
        .iter()
        .any(|m| value.eq_ignore_ascii_case(m))
    {
        return Err(format!(
            "{field} may not be {value}: a Yealink phone reads %NULL% as 'reset to default' and %EMPTY% as 'empty'"
        ));
    }
    Ok(())
}

/// Refuses text that would break a line-oriented or XML file: control characters, too long.
pub fn check_text(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("{field} is longer than {max} bytes"));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(format!(
            "{field} contains a control character (newline, tab, NUL …), which would break the phone's file"
        ));
    }
    Ok(())
}

/// What a console user may do: `admin` everything (users and secrets included), `tech` the
/// day's work (sites, phones, import, firmware assignment, YMCS) but never a password,
/// `viewer` read only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Tech,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Tech => "tech",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may change things (everything but reading).
    pub fn may_change(self) -> bool {
        self >= Role::Tech
    }

    /// Whether this role may see SIP and provisioning passwords, and manage users.
    pub fn is_admin(self) -> bool {
        self == Role::Admin
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "tech" => Ok(Role::Tech),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!("no role '{other}': admin, tech or viewer")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A console user. The password hash is never serialised.
#[derive(Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    #[serde(skip)]
    pub password_hash: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// One change made through the console: who, from where, what.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// Unix milliseconds.
    pub at: i64,
    pub user: String,
    pub role: String,
    pub peer: String,
    /// A verb: `phone.update`, `import.apply`, `user.add`, …
    pub action: String,
    pub detail: String,
}
