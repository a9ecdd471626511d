//! Turning data into the exact bytes a phone receives.
//!
//! [`Renderer`] holds the Tera environment (see [`templates`] for the lookup chain) and renders
//! a site's shared files or one phone's files from plain records; [`ready`] holds the
//! published snapshot, [`stored`] the phones' files on disk (each phone's a [`record`]) and
//! [`cache`] the hot ones in memory, so a phone's request is a lookup that yields a
//! [`file::FileRef`]. Rendering happens when data changes, never on a
//! phone's request.

pub mod cache;
pub mod context;
pub mod file;
pub mod format;
pub mod ready;
pub mod record;
pub mod stored;
pub mod templates;
pub mod timezone;

use std::path::Path;
use std::sync::Arc;

pub use cache::Asked;
use context::{PhoneCtx, PhoneFileCtx, SiteCtx, SiteFileCtx, merge_settings, parse_time_zone};
pub use file::{Etag, FileRef, ReadyFile};
pub use ready::{FirmwareIndex, Ready, SiteFiles, Snapshot};

use crate::catalog::{Catalog, Scope, Vendor};
use crate::model::{Line, Phone, Setting, Site};

/// Why a file could not be rendered. Nothing is served from a failed render.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RenderError {
    #[error("template {file}: {reason}")]
    Template { file: String, reason: String },
    #[error("phone {mac}: model '{model}' is not in the catalogue")]
    UnknownModel { mac: String, model: String },
    #[error("site {site}: {reason}")]
    Site { site: String, reason: String },
}

/// A rendered file with its name.
pub type Rendered = (String, Arc<ReadyFile>);

/// The site's provisioning URL: `<public-url>/p/<site-key>/`.
pub fn site_url(public_url: &str, key: &str) -> String {
    format!("{}/p/{key}/", public_url.trim_end_matches('/'))
}

/// The base URLs phones reach this server at: plain HTTP, and HTTPS if configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urls {
    pub http: String,
    pub https: Option<String>,
}

impl Urls {
    /// The base URLs the settings name.
    pub fn of(s: &crate::config::Settings) -> Urls {
        Urls::new(&s.public_url, s.public_https_url.as_deref())
    }

    pub fn new(http: &str, https: Option<&str>) -> Urls {
        Urls {
            http: http.trim_end_matches('/').to_string(),
            https: https.map(|u| u.trim_end_matches('/').to_string()),
        }
    }

    /// The base URL for a site: HTTPS when the site requires it.
    pub fn base_for(&self, site: &Site) -> Result<&str, String> {
        match (site.access.require_https, &self.https) {
            (false, _) => Ok(&self.http),
            (true, Some(u)) => Ok(u),
            (true, None) => Err(
                "the site requires HTTPS but no public HTTPS URL is configured (set public_https_url in phoneprov.toml, or --public-https-url)"
                    .to_string(),
            ),
        }
    }

    /// The site's provisioning URL (HTTPS when it requires it).
    pub fn site_url(&self, site: &Site) -> Result<String, String> {
        Ok(site_url(self.base_for(site)?, &site.key))
    }
}

impl From<&str> for Urls {
    fn from(http: &str) -> Urls {
        Urls::new(http, None)
    }
}

/// The renderer in use, replaced whole when templates change; readers take a cheap clone.
#[derive(Debug, Clone)]
pub struct SharedRenderer(Arc<std::sync::RwLock<Arc<Renderer>>>);

impl SharedRenderer {
    pub fn new(r: Renderer) -> SharedRenderer {
        SharedRenderer(Arc::new(std::sync::RwLock::new(Arc::new(r))))
    }

    pub fn get(&self) -> Arc<Renderer> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn set(&self, r: Renderer) {
        match self.0.write() {
            Ok(mut g) => *g = Arc::new(r),
            Err(p) => *p.into_inner() = Arc::new(r),
        }
    }
}

/// Renders files from templates. Cheap to share behind an `Arc`.
pub struct Renderer {
    tera: tera::Tera,
    origins: templates::Origins,
    urls: Urls,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("urls", &self.urls)
            .finish()
    }
}

impl Renderer {
    /// Loads the shipped templates and any overrides under `override_dir`.
    pub fn new(urls: &Urls, override_dir: Option<&Path>) -> Result<Renderer, RenderError> {
        let (tera, origins) = templates::load(override_dir)?;
        Ok(Renderer {
            tera,
            origins,
            urls: urls.clone(),
        })
    }

    pub fn urls(&self) -> &Urls {
        &self.urls
    }

    fn site_ctx(&self, site: &Site, vendor: &Vendor) -> Result<SiteCtx, RenderError> {
        let url = self
            .urls
            .site_url(site)
            .map_err(|reason| RenderError::Site {
                site: site.name.clone(),
                reason,
            })?;
        let time_zone = site
            .time_zone
            .as_deref()
            .map(parse_time_zone)
            .transpose()
            .map_err(|reason| RenderError::Site {
                site: site.name.clone(),
                reason,
            })?;
        Ok(SiteCtx {
            name: site.name.clone(),
            url_scheme: url.split("://").next().unwrap_or("http").to_string(),
            url,
            sip_server: site.sip_server.clone(),
            sip_port: site.sip_port,
            has_port: site.transport.has_port(),
            transport: site.transport.to_string(),
            outbound_proxy: site.sip.outbound_proxy.clone(),
            outbound_proxy_2: site.sip.outbound_proxy_2.clone(),
            recheck: site.sip.recheck.into(),
            transport_value: vendor
                .transport
                .get(site.transport.as_str())
                .cloned()
                .unwrap_or_default(),
            time_zone,
            ntp: site.ntp.clone(),
            auth_user: site.access.auth.as_ref().map(|c| c.user.clone()),
            auth_password: site.access.auth.as_ref().map(|c| c.password.clone()),
        })
    }

    fn render(
        &self,
        vendor: &str,
        template: &str,
        ctx: &impl serde::Serialize,
    ) -> Result<Arc<ReadyFile>, RenderError> {
        let name = format!("{vendor}/{template}");
        let ctx = tera::Context::from_serialize(ctx).map_err(|e| RenderError::Template {
            file: self.origins.describe(&name),
            reason: templates::error_chain(&e),
        })?;
        let text = self
            .tera
            .render(&name, &ctx)
            .map_err(|e| RenderError::Template {
                file: self.origins.describe(&name),
                reason: templates::error_chain(&e),
            })?;
        let fmt = Catalog::get()
            .vendor(vendor)
            .map(|v| v.format)
            .unwrap_or_default();
        format::check(fmt, &text).map_err(|reason| RenderError::Template {
            file: self.origins.describe(&name),
            reason,
        })?;
        Ok(Arc::new(ReadyFile::new(
            text.into_bytes(),
            "text/plain; charset=utf-8",
        )))
    }

    /// Files of a site that name no phone, for every vendor: per-site ones and one per
    /// common-file code.
    pub fn site_files(
        &self,
        site: &Site,
        settings: &[Setting],
    ) -> Result<Vec<Rendered>, RenderError> {
        let mut out = Vec::new();
        for vendor in &Catalog::get().vendors {
            let site_ctx = self.site_ctx(site, vendor)?;
            let settings = merge_settings(settings, site, &vendor.vendor, None);
            for spec in &vendor.files {
                let codes: Vec<Option<&str>> = match spec.scope {
                    Scope::Phone => continue,
                    Scope::Site => vec![None],
                    Scope::Code => {
                        let mut c: Vec<Option<&str>> = vendor
                            .models
                            .iter()
                            .filter_map(|m| m.code.as_deref())
                            .map(Some)
                            .collect();
                        c.sort();
                        c.dedup();
                        c
                    }
                };
                for code in codes {
                    let ctx = SiteFileCtx {
                        site: &site_ctx,
                        code,
                        settings: settings
                            .iter()
                            .map(|s| context::SettingCtx {
                                key: s.key.clone(),
                                value: s.value.clone(),
                            })
                            .collect(),
                    };
                    let name = spec.name.replace("{code}", code.unwrap_or_default());
                    out.push((name, self.render(&vendor.vendor, &spec.template, &ctx)?));
                }
            }
        }
        Ok(out)
    }

    /// The files of one phone; `firmware` is the (file name, version) of its target image,
    /// which the caller has already passed through the policy.
    pub fn phone_files(
        &self,
        site: &Site,
        phone: &Phone,
        lines: &[Line],
        settings: &[Setting],
        firmware: Option<(&str, &str)>,
    ) -> Result<Vec<Rendered>, RenderError> {
        let catalog = Catalog::get();
        let model = catalog
            .model(&phone.model)
            .ok_or_else(|| RenderError::UnknownModel {
                mac: phone.mac.to_string(),
                model: phone.model.clone(),
            })?;
        let vendor = catalog
            .vendor(&model.vendor)
            .ok_or_else(|| RenderError::UnknownModel {
                mac: phone.mac.to_string(),
                model: phone.model.clone(),
            })?;
        let site_ctx = self.site_ctx(site, vendor)?;
        let mut out = Vec::new();
        for spec in vendor.files.iter().filter(|f| f.scope == Scope::Phone) {
            let ctx = PhoneFileCtx {
                site: &site_ctx,
                phone: PhoneCtx::new(phone, site),
                model,
                lines: lines
                    .iter()
                    .filter(|l| l.n <= model.accounts)
                    .map(|l| context::LineCtx::new(l, &site.sip_server))
                    .collect(),
                settings: merge_settings(settings, site, &vendor.vendor, Some(phone)),
                firmware: firmware.map(|(name, version)| context::FirmwareCtx {
                    url: format!("{}{name}", site_ctx.url),
                    file_name: name.to_string(),
                    version: version.to_string(),
                }),
            };
            let name = spec.name.replace("{mac}", &phone.mac.to_string());
            let file = self.render(&vendor.vendor, &spec.template, &ctx)?;
            out.push((name, Arc::new(file.with_mac(phone.mac))));
        }
        Ok(out)
    }
}
