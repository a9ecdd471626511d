//! The operator's verbs on sites, phones, lines and settings, shared by the CLI and the admin
//! API. Each verb validates its input, makes its change in one transaction, renders every file
//! the change touches inside that transaction, and commits only if all of them render: a
//! change that fails changes nothing. Errors say what was wrong in words a tech can act on.

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::mac::Mac;
use crate::model::{Layer, Line, Phone, Seen, Setting, Site, Transport, check_setting, check_text};
use crate::publish::{PublishError, render_site, trial_render};
use crate::render::{RenderError, SharedRenderer, context::parse_time_zone, site_url};
use crate::store::{self, Conn, Scope, SiteFields, Store, StoreError, Tx};

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
}

impl From<PublishError> for Error {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Store(e) => Error::Store(e),
            PublishError::Render(e) => Error::Render(e),
            PublishError::Policy(e) => Error::Policy(e),
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteInput {
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
}

/// Changes to a site; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteUpdate {
    pub sip_server: Option<String>,
    pub transport: Option<String>,
    pub time_zone: Option<String>,
    pub ntp: Option<Vec<String>>,
    pub allow_keyless: Option<bool>,
    #[serde(default)]
    pub rotate_key: bool,
}

/// A site as shown to its operator, with its provisioning URL.
#[derive(Debug, Serialize)]
pub struct SiteView {
    #[serde(flatten)]
    pub site: Site,
    pub provisioning_url: String,
    pub phones: i64,
}

/// A new phone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneInput {
    pub mac: String,
    pub model: String,
    pub site: String,
    #[serde(default)]
    pub label: Option<String>,
}

/// A line as set by a user.
#[derive(Debug, Clone, Deserialize)]
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
}

/// A line as shown: never the password.
#[derive(Debug, Serialize)]
pub struct LineView {
    pub n: u8,
    pub user: String,
    pub auth_user: Option<String>,
    pub display_name: Option<String>,
    pub label: Option<String>,
    pub password_set: bool,
}

/// A phone as shown to its operator.
#[derive(Debug, Serialize)]
pub struct PhoneView {
    pub mac: Mac,
    pub mac_colon: String,
    pub model: String,
    pub vendor: String,
    pub site: String,
    pub label: String,
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
    pub fn open(store: Store, public_url: &str, data_dir: &std::path::Path) -> Result<Manager> {
        let renderer = crate::render::Renderer::new(public_url, Some(&data_dir.join("templates")))?;
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
        SiteView {
            provisioning_url: site_url(self.renderer.get().public_url(), &site.key),
            site,
            phones,
        }
    }

    pub async fn site_add(&self, input: SiteInput) -> Result<SiteView> {
        check_site_name(&input.name)?;
        let transport: Transport = input
            .transport
            .as_deref()
            .unwrap_or("udp")
            .parse()
            .map_err(Error::Invalid)?;
        let (sip_server, sip_port) = parse_server(&input.sip_server, transport)?;
        if let Some(tz) = &input.time_zone {
            parse_time_zone(tz).map_err(Error::Invalid)?;
        }
        check_ntp(&input.ntp)?;
        let fields = SiteFields {
            name: input.name.clone(),
            sip_server,
            sip_port,
            transport,
            time_zone: input.time_zone.clone(),
            ntp: input.ntp.clone(),
            allow_keyless: input.allow_keyless,
        };
        let mut tx = self.store.begin().await?;
        if store::site_by_name(&mut tx, &input.name).await?.is_some() {
            return Err(Error::Conflict(format!(
                "a site named '{}' already exists",
                input.name
            )));
        }
        let site = store::insert_site(&mut tx, &fields, &new_site_key()?).await?;
        store::log_change(&mut tx, Scope::Site(site.id)).await?;
        self.check_render(&mut tx, Scope::Site(site.id)).await?;
        commit(tx).await?;
        tracing::info!(site = %site.name, "site added");
        Ok(self.view_site(site, 0))
    }

    pub async fn site_update(&self, name: &str, u: SiteUpdate) -> Result<SiteView> {
        let mut tx = self.store.begin().await?;
        let site = self.site_named(&mut tx, name).await?;
        let transport: Transport = match &u.transport {
            Some(t) => t.parse().map_err(Error::Invalid)?,
            None => site.transport,
        };
        let (sip_server, sip_port) = match &u.sip_server {
            Some(s) => parse_server(s, transport)?,
            None if u.transport.is_some() && site.sip_port == site.transport.default_port() => {
                (site.sip_server.clone(), transport.default_port())
            }
            None => (site.sip_server.clone(), site.sip_port),
        };
        let time_zone = match &u.time_zone {
            Some(tz) if tz.is_empty() => None,
            Some(tz) => {
                parse_time_zone(tz).map_err(Error::Invalid)?;
                Some(tz.clone())
            }
            None => site.time_zone.clone(),
        };
        if let Some(ntp) = &u.ntp {
            check_ntp(ntp)?;
        }
        let fields = SiteFields {
            name: site.name.clone(),
            sip_server,
            sip_port,
            transport,
            time_zone,
            ntp: u.ntp.clone().unwrap_or(site.ntp.clone()),
            allow_keyless: u.allow_keyless.unwrap_or(site.allow_keyless),
        };
        store::update_site(&mut tx, site.id, &fields).await?;
        if u.rotate_key {
            store::set_site_key(&mut tx, site.id, &new_site_key()?).await?;
        }
        store::log_change(&mut tx, Scope::Site(site.id)).await?;
        self.check_render(&mut tx, Scope::Site(site.id)).await?;
        let site = store::site_by_id(&mut tx, site.id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no site named '{name}'")))?;
        let phones = store::count_phones(&mut tx, site.id).await?;
        commit(tx).await?;
        tracing::info!(site = %site.name, rotated = u.rotate_key, "site updated");
        Ok(self.view_site(site, phones))
    }

    pub async fn site_list(&self) -> Result<Vec<SiteView>> {
        let mut conn = self.store.conn().await?;
        let mut out = Vec::new();
        for site in store::list_sites(&mut conn).await? {
            let n = store::count_phones(&mut conn, site.id).await?;
            out.push(self.view_site(site, n));
        }
        Ok(out)
    }

    pub async fn site_show(&self, name: &str) -> Result<SiteView> {
        let mut conn = self.store.conn().await?;
        let site = self.site_named(&mut conn, name).await?;
        let n = store::count_phones(&mut conn, site.id).await?;
        Ok(self.view_site(site, n))
    }

    /// Removes a site. A site with phones is kept unless `force`, which removes its phones too.
    pub async fn site_rm(&self, name: &str, force: bool) -> Result<u64> {
        let mut tx = self.store.begin().await?;
        let site = self.site_named(&mut tx, name).await?;
        let n = store::count_phones(&mut tx, site.id).await?;
        if n > 0 && !force {
            return Err(Error::Conflict(format!(
                "site '{name}' still has {n} phone(s); remove them first, or pass --force to remove them with the site"
            )));
        }
        let removed = store::delete_site_phones(&mut tx, site.id).await?;
        store::delete_site(&mut tx, site.id).await?;
        store::log_change(&mut tx, Scope::Site(site.id)).await?;
        commit(tx).await?;
        tracing::info!(site = %name, phones = removed, "site removed");
        Ok(removed)
    }

    pub async fn phone_add(&self, input: PhoneInput) -> Result<PhoneView> {
        let mac = parse_mac(&input.mac)?;
        let model = model_name(&input.model)?;
        let label = input.label.clone().unwrap_or_default();
        check_text("label", &label, 200).map_err(Error::Invalid)?;
        let mut tx = self.store.begin().await?;
        let site = self.site_named(&mut tx, &input.site).await?;
        if let Some(existing) = store::phone(&mut tx, mac).await? {
            let other = store::site_by_id(&mut tx, existing.site_id)
                .await?
                .map(|s| s.name)
                .unwrap_or_default();
            return Err(Error::Conflict(format!(
                "phone {} is already enrolled in site '{other}' as a {}",
                mac.colon(),
                existing.model
            )));
        }
        let phone = Phone {
            mac,
            model,
            site_id: site.id,
            label,
        };
        store::insert_phone(&mut tx, &phone).await?;
        store::log_change(&mut tx, Scope::Phone(site.id, mac)).await?;
        self.check_render(&mut tx, Scope::Phone(site.id, mac))
            .await?;
        let view = self.view_phone(&mut tx, phone).await?;
        commit(tx).await?;
        tracing::info!(%mac, site = %site.name, "phone added");
        Ok(view)
    }

    async fn view_phone(&self, conn: &mut Conn, phone: Phone) -> Result<PhoneView> {
        let site = store::site_by_id(conn, phone.site_id)
            .await?
            .map(|s| s.name)
            .unwrap_or_default();
        let lines = store::lines(conn, phone.mac)
            .await?
            .into_iter()
            .map(|l| LineView {
                n: l.n,
                user: l.user,
                auth_user: l.auth_user,
                display_name: l.display_name,
                label: l.label,
                password_set: !l.password.is_empty(),
            })
            .collect();
        let last_seen = store::seen(conn, phone.mac).await?;
        let cat = Catalog::get();
        let vendor = cat
            .model(&phone.model)
            .map(|m| m.vendor.clone())
            .unwrap_or_default();
        let files = cat
            .vendor(&vendor)
            .map(|v| {
                v.files
                    .iter()
                    .filter(|f| f.scope == crate::catalog::Scope::Phone)
                    .map(|f| f.name.replace("{mac}", &phone.mac.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let firmware_denied = last_seen
            .as_ref()
            .and_then(|s| self.running_denied(&phone.model, s.firmware.as_deref()));
        Ok(PhoneView {
            firmware_denied,
            mac_colon: phone.mac.colon(),
            mac: phone.mac,
            model: phone.model,
            vendor,
            site,
            label: phone.label,
            lines,
            last_seen,
            files,
        })
    }

    pub async fn phone_list(&self, site: Option<&str>) -> Result<Vec<PhoneView>> {
        let mut conn = self.store.conn().await?;
        let site_id = match site {
            Some(name) => Some(self.site_named(&mut conn, name).await?.id),
            None => None,
        };
        let mut out = Vec::new();
        for p in store::list_phones(&mut conn, site_id).await? {
            out.push(self.view_phone(&mut conn, p).await?);
        }
        Ok(out)
    }

    pub async fn phone_show(&self, mac: &str) -> Result<PhoneView> {
        let mac = parse_mac(mac)?;
        let mut conn = self.store.conn().await?;
        let phone = self.phone_of(&mut conn, mac).await?;
        self.view_phone(&mut conn, phone).await
    }

    pub async fn phone_rm(&self, mac: &str) -> Result<()> {
        let mac = parse_mac(mac)?;
        let mut tx = self.store.begin().await?;
        let phone = self.phone_of(&mut tx, mac).await?;
        store::delete_phone(&mut tx, mac).await?;
        store::log_change(&mut tx, Scope::Phone(phone.site_id, mac)).await?;
        commit(tx).await?;
        tracing::info!(%mac, "phone removed");
        Ok(())
    }

    pub async fn line_set(&self, mac: &str, n: u32, input: LineInput) -> Result<LineView> {
        let mac = parse_mac(mac)?;
        let mut tx = self.store.begin().await?;
        let phone = self.phone_of(&mut tx, mac).await?;
        let accounts = Catalog::get()
            .model(&phone.model)
            .map(|m| m.accounts)
            .unwrap_or(0);
        if n == 0 || n > accounts as u32 {
            return Err(Error::Invalid(format!(
                "line {n} is out of range: a {} has lines 1 to {accounts}",
                phone.model
            )));
        }
        let opt = |s: &Option<String>| s.clone().filter(|v| !v.is_empty());
        let line = Line {
            n: n as u8,
            user: input.user.trim().to_string(),
            auth_user: opt(&input.auth_user),
            password: input.password.clone(),
            display_name: opt(&input.display_name),
            label: opt(&input.label),
        };
        if line.user.is_empty() {
            return Err(Error::Invalid("line user must not be empty".into()));
        }
        if line.password.is_empty() {
            return Err(Error::Invalid("line password must not be empty".into()));
        }
        for (field, v) in [
            ("user", Some(&line.user)),
            ("auth user", line.auth_user.as_ref()),
            ("password", Some(&line.password)),
            ("display name", line.display_name.as_ref()),
            ("label", line.label.as_ref()),
        ] {
            if let Some(v) = v {
                check_text(field, v, 200).map_err(Error::Invalid)?;
            }
        }
        store::upsert_line(&mut tx, mac, &line).await?;
        store::log_change(&mut tx, Scope::Phone(phone.site_id, mac)).await?;
        self.check_render(&mut tx, Scope::Phone(phone.site_id, mac))
            .await?;
        commit(tx).await?;
        tracing::info!(%mac, line = n, user = %line.user, "line set");
        Ok(LineView {
            n: line.n,
            user: line.user,
            auth_user: line.auth_user,
            display_name: line.display_name,
            label: line.label,
            password_set: true,
        })
    }

    pub async fn line_rm(&self, mac: &str, n: u32) -> Result<()> {
        let mac = parse_mac(mac)?;
        let mut tx = self.store.begin().await?;
        let phone = self.phone_of(&mut tx, mac).await?;
        let n8 = u8::try_from(n)
            .map_err(|_| Error::NotFound(format!("phone {} has no line {n}", mac.colon())))?;
        if !store::delete_line(&mut tx, mac, n8).await? {
            return Err(Error::NotFound(format!(
                "phone {} has no line {n}",
                mac.colon()
            )));
        }
        store::log_change(&mut tx, Scope::Phone(phone.site_id, mac)).await?;
        commit(tx).await?;
        tracing::info!(%mac, line = n, "line removed");
        Ok(())
    }

    /// Resolves a user's layer words to a layer, the change scope and a vendor.
    async fn layer(
        &self,
        conn: &mut Conn,
        l: &LayerInput,
    ) -> Result<(Layer, Scope, Option<String>)> {
        if let Some(v) = &l.vendor {
            if Catalog::get().vendor(v).is_none() {
                return Err(Error::Invalid(format!(
                    "unknown vendor '{v}' (yealink or polycom)"
                )));
            }
        }
        match (&l.site, &l.model, &l.phone) {
            (None, None, Some(mac)) if l.vendor.is_none() => {
                let phone = self.phone_of(conn, parse_mac(mac)?).await?;
                Ok((Layer::Phone { mac: phone.mac }, Scope::Phone(phone.site_id, phone.mac), None))
            }
            (Some(site), None, None) => {
                let site = self.site_named(conn, site).await?;
                Ok((Layer::Site { site_id: site.id }, Scope::Site(site.id), l.vendor.clone()))
            }
            (Some(site), Some(model), None) if l.vendor.is_none() => {
                let site = self.site_named(conn, site).await?;
                Ok((Layer::SiteModel { site_id: site.id, model: model_name(model)? }, Scope::Site(site.id), None))
            }
            (None, Some(model), None) if l.vendor.is_none() => {
                Ok((Layer::Model { model: model_name(model)? }, Scope::All, None))
            }
            _ => Err(Error::Invalid(
                "name one layer: --site NAME [--vendor V], --model MODEL [--site NAME], or --phone MAC".into(),
            )),
        }
    }

    pub async fn setting_set(&self, layer: &LayerInput, key: &str, value: &str) -> Result<bool> {
        check_setting(key, value).map_err(Error::Invalid)?;
        if let Some(v) = Catalog::get().reserved_by(key) {
            return Err(Error::Invalid(format!(
                "'{key}' is set by phoneprov for {} phones (firmware and provisioning server); use `phoneprov firmware assign` to choose firmware",
                v.display
            )));
        }
        if let Some(why) = self.policy.get().denied_in_text(value) {
            return Err(Error::Invalid(format!(
                "the value of '{key}' names a denied firmware image: {why}"
            )));
        }
        let mut tx = self.store.begin().await?;
        let (layer, scope, vendor) = self.layer(&mut tx, layer).await?;
        let s = Setting {
            layer,
            vendor,
            key: key.to_string(),
            value: value.to_string(),
        };
        let changed = store::put_setting(&mut tx, &s).await?;
        if changed {
            store::log_change(&mut tx, scope).await?;
            self.check_render(&mut tx, scope).await?;
        }
        commit(tx).await?;
        tracing::info!(key, layer = ?s.layer, changed, "setting set");
        Ok(changed)
    }

    pub async fn setting_rm(&self, layer: &LayerInput, key: &str) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let (layer, scope, vendor) = self.layer(&mut tx, layer).await?;
        if !store::delete_setting(&mut tx, &layer, vendor.as_deref(), key).await? {
            return Err(Error::NotFound(format!("'{key}' is not set at that layer")));
        }
        store::log_change(&mut tx, scope).await?;
        self.check_render(&mut tx, scope).await?;
        commit(tx).await?;
        tracing::info!(key, layer = ?layer, "setting removed");
        Ok(())
    }

    pub async fn setting_list(&self, layer: &LayerInput) -> Result<Vec<Setting>> {
        let mut conn = self.store.conn().await?;
        let (layer, _, _) = self.layer(&mut conn, layer).await?;
        Ok(store::layer_settings(&mut conn, &layer).await?)
    }

    /// Every file of the phone's own, rendered now from the database: what a phone would get.
    pub async fn render_phone(&self, mac: &str) -> Result<Vec<(String, bytes::Bytes)>> {
        let mac = parse_mac(mac)?;
        let mut conn = self.store.conn().await?;
        let phone = self.phone_of(&mut conn, mac).await?;
        let files = render_site(
            &mut conn,
            &self.renderer.get(),
            &self.policy.get(),
            phone.site_id,
            Some(mac),
        )
        .await?
        .ok_or_else(|| Error::NotFound(format!("phone {} is not enrolled", mac.colon())))?;
        let mut own: Vec<(String, bytes::Bytes)> = files
            .files
            .iter()
            .filter(|(_, f)| f.mac == Some(mac))
            .map(|(n, f)| (n.clone(), f.bytes.clone()))
            .collect();
        // The site files this phone's vendor fetches come after its own.
        let vendor = Catalog::get()
            .model(&phone.model)
            .and_then(|m| Catalog::get().vendor(&m.vendor));
        if let (Some(v), Some(model)) = (vendor, Catalog::get().model(&phone.model)) {
            for spec in v
                .files
                .iter()
                .filter(|f| f.scope != crate::catalog::Scope::Phone)
            {
                let name = spec
                    .name
                    .replace("{code}", model.code.as_deref().unwrap_or_default());
                if let Some(f) = files.files.get(&name) {
                    own.push((name, f.bytes.clone()));
                }
            }
        }
        own.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(own)
    }

    /// Stores a file a phone uploaded (already matched to a phone by the resolver).
    pub async fn store_upload(
        &self,
        site_id: i64,
        mac: Mac,
        name: &str,
        body: &[u8],
    ) -> Result<()> {
        let mut tx = self.store.begin().await?;
        store::put_upload(&mut tx, mac, name, body).await?;
        store::log_change(&mut tx, Scope::Phone(site_id, mac)).await?;
        commit(tx).await?;
        Ok(())
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
