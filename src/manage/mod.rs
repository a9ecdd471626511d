//! The operator's verbs on sites, phones, lines and settings, shared by the CLI and the admin
//! API. Each verb validates its input, makes its change in one transaction, renders every file
//! the change touches inside that transaction, and commits only if all of them render: a
//! change that fails changes nothing. Errors say what was wrong in words a tech can act on.

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::mac::Mac;
use crate::model::{
    Credential, Layer, Line, Phone, Seen, Setting, Site, SiteAccess, Transport, check_setting,
    check_text,
};
use crate::publish::{PublishError, trial_render};
use crate::render::{RenderError, SharedRenderer, context::parse_time_zone};
use crate::store::{self, Conn, Scope, SiteFields, Store, StoreError, Tx};

pub mod mask;
mod phones;
mod settings;
mod sites;

/// What went wrong with an operator's request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is wrong; the message says how.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the change was not made: {0}")]
    Render(#[from] RenderError),
    #[error("firmware policy: {0}")]
    Policy(#[from] crate::firmware::policy::PolicyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Rendered files could not be written (verbs only render in memory; kept for the match).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<PublishError> for Error {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Store(e) => Error::Store(e),
            PublishError::Render(e) => Error::Render(e),
            PublishError::Policy(e) => Error::Policy(e),
            PublishError::Io(e) => Error::Io(e),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the verbs work with.
#[derive(Clone, Debug)]
pub struct Manager {
    pub store: Store,
    /// Shared with the publisher, so changes are checked against the templates in use.
    pub renderer: SharedRenderer,
    /// The firmware policy in use.
    pub policy: crate::firmware::policy::SharedPolicy,
    /// Where firmware images are kept, by digest.
    pub firmware_dir: std::path::PathBuf,
}

/// A new site, as a user gives it.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteInput {
    /// Lowercase letters, digits, `-` and `_`.
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")]
    pub name: String,
    /// `host` or `host:port`.
    pub sip_server: String,
    #[serde(default)]
    pub transport: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub ntp: Vec<String>,
    #[serde(default)]
    pub allow_keyless: bool,
    /// The YMCS site its phones go to, when not the one of the same name.
    #[serde(default)]
    pub ymcs_site: Option<String>,
    /// Where phones send SIP when not the SIP server's host (`host[:port]`).
    #[serde(default)]
    pub outbound_proxy: Option<String>,
    /// The failover proxy.
    #[serde(default)]
    pub outbound_proxy_2: Option<String>,
    /// `daily:HH:MM-HH:MM`, `every:Nh`, `every:Nm` or `off`.
    #[serde(default)]
    pub recheck: Option<String>,
}

/// Changes to a site; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteUpdate {
    pub sip_server: Option<String>,
    pub transport: Option<String>,
    pub time_zone: Option<String>,
    pub ntp: Option<Vec<String>>,
    pub allow_keyless: Option<bool>,
    /// A stored image (version or sha256) for phones in recovery mode, or "off".
    #[serde(default)]
    pub recovery: Option<String>,
    #[serde(default)]
    pub rotate_key: bool,
    #[serde(default)]
    pub auth_user: Option<String>,
    #[serde(default)]
    pub auth_password: Option<String>,
    #[serde(default)]
    pub no_auth: bool,
    /// How long the previous login keeps working (`7d`, `12h`, `0`); default 7 days.
    #[serde(default)]
    pub rotation_window: Option<String>,
    /// Replaces the allowed networks; an empty list removes the restriction.
    #[serde(default)]
    pub allow_nets: Option<Vec<String>>,
    #[serde(default)]
    pub require_https: Option<bool>,
    /// `auto`, `allow` or `deny`.
    #[serde(default)]
    pub tftp: Option<String>,
    /// The YMCS site its phones go to; empty: the one of the same name.
    #[serde(default)]
    pub ymcs_site: Option<String>,
    /// Outbound proxy `host[:port]`; empty removes it.
    #[serde(default)]
    pub outbound_proxy: Option<String>,
    /// Failover proxy; empty removes it.
    #[serde(default)]
    pub outbound_proxy_2: Option<String>,
    #[serde(default)]
    pub recheck: Option<String>,
}

/// A site as shown to its operator, with its provisioning URL.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SiteView {
    #[serde(flatten)]
    pub site: Site,
    pub provisioning_url: String,
    pub phones: i64,
    /// With a login: how many of the site's phones have fetched a file with the current one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phones_on_current_login: Option<i64>,
    /// What would stop phones from reaching the site (a loopback provisioning URL).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A new phone.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneInput {
    #[schema(value_type = crate::mac::MacText, inline)]
    pub mac: String,
    pub model: String,
    pub site: String,
    #[serde(default)]
    pub label: Option<String>,
    /// Serial number (the phone's label): Yealink's cloud needs it for some calls.
    #[serde(default)]
    pub sn: Option<String>,
}

/// Changes to a phone; absent fields stay as they are, an empty `sn` removes it.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneUpdate {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub sn: Option<String>,
    /// Another model (the phone was enrolled as the wrong one).
    #[serde(default)]
    pub model: Option<String>,
    /// Another site; needs `move_site`, as a CSV import needs `--move`.
    #[serde(default)]
    pub site: Option<String>,
    #[serde(default)]
    pub move_site: bool,
}

/// A line as set by a user.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineInput {
    pub user: String,
    #[serde(default)]
    pub auth_user: Option<String>,
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    /// The account's SIP domain when it is not the site's.
    #[serde(default)]
    pub domain: Option<String>,
}

/// A line as shown: never the password.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LineView {
    pub n: u8,
    pub user: String,
    pub auth_user: Option<String>,
    pub display_name: Option<String>,
    pub label: Option<String>,
    pub domain: Option<String>,
    pub password_set: bool,
}

/// A phone as shown to its operator.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PhoneView {
    #[schema(value_type = String)]
    pub mac: Mac,
    pub mac_colon: String,
    pub model: String,
    pub vendor: String,
    pub site: String,
    pub label: String,
    pub sn: Option<String>,
    pub lines: Vec<LineView>,
    pub last_seen: Option<Seen>,
    /// Why the firmware it last reported is denied by the policy, if it is: at risk.
    pub firmware_denied: Option<Vec<String>>,
    /// Names of the files this phone fetches that are its own.
    pub files: Vec<String>,
}

/// Where a setting goes, as a user names it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LayerInput {
    pub site: Option<String>,
    pub model: Option<String>,
    pub phone: Option<String>,
    /// Narrows a site-wide setting to one vendor's phones.
    pub vendor: Option<String>,
}

pub fn parse_mac(s: &str) -> Result<Mac> {
    s.parse::<Mac>().map_err(|e| Error::Invalid(e.to_string()))
}

fn model_name(name: &str) -> Result<String> {
    let cat = Catalog::get();
    cat.model(name)
        .map(|m| m.name.clone())
        .ok_or_else(|| Error::Invalid(cat.unknown_model_message(name)))
}

fn check_site_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "site name '{name}' must be 1 to 63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
        )))
    }
}

/// `host` or `host:port` (IPv6 as `[::1]:5060`).
/// Whether a URL's host is loopback (`localhost`, 127.0.0.0/8, `::1`).
pub fn url_is_loopback(url: &str) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host = rest.split('/').next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(h) => h.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A SIP domain: a host name (letters, digits, '.', '-'), 1 to 253 characters.
pub(crate) fn check_domain(field: &str, d: &str) -> std::result::Result<(), String> {
    let ok = !d.is_empty()
        && d.len() <= 253
        && !d.starts_with(['.', '-'])
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
    match ok {
        true => Ok(()),
        false => Err(format!(
            "{field} '{d}' must be a host name: letters, digits, '.' and '-' (1 to 253 characters)"
        )),
    }
}

/// A site's proxies and schedule after a change: `None` keeps a field, an empty value removes
/// a proxy.
pub(crate) fn new_sip(
    current: &crate::model::SiteSip,
    transport: Transport,
    proxy: Option<&str>,
    proxy_2: Option<&str>,
    recheck: Option<&str>,
) -> Result<crate::model::SiteSip> {
    let endpoint = |v: Option<&str>, now: &Option<crate::model::Endpoint>, what: &str| match v
        .map(str::trim)
    {
        None => Ok(now.clone()),
        Some("") => Ok(None),
        Some(s) => parse_server(s, transport)
            .map(|(host, port)| Some(crate::model::Endpoint { host, port }))
            .map_err(|e| Error::Invalid(format!("{what}: {e}"))),
    };
    let sip = crate::model::SiteSip {
        outbound_proxy: endpoint(proxy, &current.outbound_proxy, "outbound proxy")?,
        outbound_proxy_2: endpoint(proxy_2, &current.outbound_proxy_2, "second outbound proxy")?,
        recheck: match recheck {
            None => current.recheck,
            Some(r) => r.parse().map_err(Error::Invalid)?,
        },
    };
    if sip.outbound_proxy.is_none() && sip.outbound_proxy_2.is_some() {
        return Err(Error::Invalid(
            "a second outbound proxy needs a first one (--outbound-proxy)".into(),
        ));
    }
    Ok(sip)
}

fn parse_server(s: &str, transport: Transport) -> Result<(String, u16)> {
    let s = s.trim();
    let bad = || {
        Error::Invalid(format!(
            "SIP server '{s}' must be a host name or address, optionally with :port (1-65535)"
        ))
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(p) => (h.to_string(), Some(p)),
            None if after.is_empty() => (h.to_string(), None),
            None => return Err(bad()),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p)),
            _ => (s.to_string(), None),
        }
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    if !host_ok {
        return Err(bad());
    }
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?,
        None => transport.default_port(),
    };
    Ok((host, port))
}

fn check_ntp(ntp: &[String]) -> Result<()> {
    for h in ntp {
        let ok = !h.is_empty()
            && h.len() <= 253
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
        if !ok {
            return Err(Error::Invalid(format!(
                "NTP server '{h}' is not a host name or address"
            )));
        }
    }
    if ntp.len() > 2 {
        return Err(Error::Invalid(
            "at most two NTP servers (phones take two)".into(),
        ));
    }
    Ok(())
}

/// 128 random bits, hex.
pub fn new_site_key() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| Error::Invalid(format!("no randomness available: {e}")))?;
    Ok(hex::encode(b))
}

async fn commit(tx: Tx) -> Result<()> {
    Ok(store::commit(tx).await?)
}

impl Manager {
    /// The verbs over a data dir: its templates and firmware policy loaded.
    pub fn open(
        store: Store,
        urls: impl Into<crate::render::Urls>,
        data_dir: &std::path::Path,
    ) -> Result<Manager> {
        let renderer =
            crate::render::Renderer::new(&urls.into(), Some(&data_dir.join("templates")))?;
        let policy = crate::firmware::policy::Policy::load(
            &data_dir.join(crate::firmware::policy::OPERATOR_FILE),
        )?;
        Ok(Manager {
            store,
            renderer: SharedRenderer::new(renderer),
            policy: crate::firmware::policy::SharedPolicy::new(policy),
            firmware_dir: data_dir.join("firmware"),
        })
    }

    async fn site_named(&self, conn: &mut Conn, name: &str) -> Result<Site> {
        store::site_by_name(conn, name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no site named '{name}'")))
    }

    async fn phone_of(&self, conn: &mut Conn, mac: Mac) -> Result<Phone> {
        store::phone(conn, mac)
            .await?
            .ok_or_else(|| Error::NotFound(format!("phone {} is not enrolled", mac.colon())))
    }

    /// Renders what the change touches inside its transaction; an error rolls it back.
    async fn check_render(&self, conn: &mut Conn, scope: Scope) -> Result<()> {
        Ok(trial_render(conn, &self.renderer.get(), &self.policy.get(), scope).await?)
    }

    pub fn view_site(&self, site: Site, phones: i64) -> SiteView {
        let provisioning_url = self
            .renderer
            .get()
            .urls()
            .site_url(&site)
            .unwrap_or_else(|e| format!("(none: {e})"));
        let mut warnings = Vec::new();
        if url_is_loopback(&provisioning_url) {
            warnings.push(format!(
                "the provisioning URL {provisioning_url} is on this machine's loopback: phones would be told to provision from themselves. Set public_url in <data-dir>/phoneprov.toml (or PHONEPROV_PUBLIC_URL) to the address phones reach this server at"
            ));
        }
        SiteView {
            provisioning_url,
            site,
            phones,
            phones_on_current_login: None,
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers() {
        assert_eq!(
            parse_server("pbx.example.com", Transport::Udp).unwrap(),
            ("pbx.example.com".into(), 5060)
        );
        assert_eq!(
            parse_server("pbx.example.com:5080", Transport::Udp)
                .unwrap()
                .1,
            5080
        );
        assert_eq!(
            parse_server("pbx.example.com", Transport::Tls).unwrap().1,
            5061
        );
        assert_eq!(
            parse_server("[2001:db8::1]:5062", Transport::Udp).unwrap(),
            ("2001:db8::1".into(), 5062)
        );
        assert_eq!(
            parse_server("2001:db8::1", Transport::Udp).unwrap().0,
            "2001:db8::1"
        );
        for bad in [
            "",
            "pbx:0",
            "pbx:99999",
            "pbx:x",
            "pb x",
            "pbx;evil",
            "[::1",
        ] {
            assert!(parse_server(bad, Transport::Udp).is_err(), "{bad}");
        }
    }

    #[test]
    fn site_names() {
        assert!(check_site_name("valleywide").is_ok());
        assert!(check_site_name("acme-2_b").is_ok());
        for bad in ["", "-x", "Acme", "a b", "a/b", &"a".repeat(64)] {
            assert!(check_site_name(bad).is_err(), "{bad}");
        }
    }
}
