//! Rendering loaded bundles: a site's shared files, a page of phones (their files, and what
//! the published site records of them: vendor and firmware image), in linear time. A phone
//! whose render fails keeps its last good files and the error is logged with the template's
//! file and line.

use std::sync::Arc;

use super::bundle::{Bundle, Head};
use super::firmware::{note_image, target_image};
use crate::catalog::Catalog;
use crate::firmware::policy::Policy;
use crate::mac::Mac;
use crate::model::{Phone, Setting, Site};
use crate::render::stored::PackWriter;
use crate::render::{ReadyFile, RenderError, Rendered, Renderer, SiteFiles};

/// The settings that may reach a file: a raw setting whose value names an image the policy
/// denies is left out (and logged), whatever its layer. The verbs refuse such values; this
/// catches rows that predate the policy, for every file, per phone or per site.
pub(super) fn allowed_settings(settings: &[Setting], policy: &Policy) -> Vec<Setting> {
    settings
        .iter()
        .filter(|s| match policy.denied_in_text(&s.value) {
            Some(why) => {
                tracing::warn!(key = %s.key, layer = ?s.layer, %why, "setting names a denied image: left out");
                false
            }
            None => true,
        })
        .cloned()
        .collect()
}

/// The head with its shared settings passed through the policy (once per site render).
pub(super) fn admit(mut head: Head, policy: &Policy) -> Head {
    head.shared = allowed_settings(&head.shared, policy);
    head
}

pub(super) fn vendor_of(phone: &Phone) -> &'static str {
    Catalog::get()
        .model(&phone.model)
        .map(|m| m.vendor.as_str())
        .unwrap_or_default()
}

/// Renders one phone's files, with its served-back uploads. Its own settings pass the policy
/// here; the shared ones did in [`admit`].
pub(super) fn phone_files(
    renderer: &Renderer,
    policy: &Policy,
    b: &Bundle,
    phone: &Phone,
) -> Result<Vec<Rendered>, RenderError> {
    let none = Vec::new();
    let lines = b.lines.get(&phone.mac).unwrap_or(&none);
    let image = target_image(b, phone, policy);
    let mut settings = b.shared.clone();
    if let Some(own) = b.own.get(&phone.mac) {
        settings.extend(allowed_settings(own, policy));
    }
    let firmware = image.map(|i| (i.file_name.as_str(), i.version.as_str()));
    let mut files = renderer.phone_files(&b.site, phone, lines, &settings, firmware)?;
    if let Some(vendor) = Catalog::get().vendor(vendor_of(phone)) {
        let mac = phone.mac.to_string();
        for (name, body) in b.uploads.get(&phone.mac).into_iter().flatten() {
            let served = vendor
                .uploads
                .iter()
                .any(|u| u.serve_back && u.name.replace("{mac}", &mac) == *name);
            if served {
                let f =
                    ReadyFile::new(body.clone(), "text/plain; charset=utf-8").with_mac(phone.mac);
                files.push((name.clone(), Arc::new(f)));
            }
        }
    }
    Ok(files)
}

/// A site as published, before any file: its access rules and identity.
pub(super) fn shell(site: &Site) -> SiteFiles {
    SiteFiles {
        site_id: site.id,
        name: site.name.clone(),
        key: site.key.clone(),
        allow_keyless: site.allow_keyless,
        recovery: site.recovery_sha256.clone(),
        access: site.access.clone(),
        ..Default::default()
    }
}

/// Renders the site's shared files into `out`. With `strict`, an error fails; otherwise the
/// previous site's shared files stay and the error is logged.
pub(super) fn shared_into(
    renderer: &Renderer,
    head: &Head,
    out: &mut SiteFiles,
    previous: Option<&SiteFiles>,
    strict: bool,
) -> Result<(), RenderError> {
    match renderer.site_files(&head.site, &head.shared) {
        Ok(files) => out.files.extend(files),
        Err(e) if !strict => {
            tracing::error!(site = %head.site.name, error = %e, "site files not re-rendered; serving the last good ones");
            if let Some(prev) = previous {
                out.files.extend(
                    prev.files
                        .iter()
                        .filter(|(_, f)| f.mac.is_none())
                        .map(|(n, f)| (n.clone(), f.clone())),
                );
            }
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// What a page of phones contributed to its site.
#[derive(Debug, Default)]
pub(super) struct PageOut {
    /// The phones, their vendor, and the images they are sent to (as a site's index).
    pub meta: SiteFiles,
    /// Phones whose render failed (their previous files stay).
    pub failed: Vec<Mac>,
    /// Files rendered.
    pub files: usize,
}

/// Where a page's files go.
pub(super) enum Sink<'a> {
    /// Written to the site's pack on disk.
    Pack(&'a mut PackWriter),
    /// Kept in the page's `meta.files` (previews).
    Memory,
    /// Rendered only to see that they render (trial before a change commits).
    Discard,
}

/// Renders a page of phones. With `strict`, the first error fails the page.
pub(super) fn page(
    renderer: &Renderer,
    policy: &Policy,
    b: &Bundle,
    sink: Sink<'_>,
    strict: bool,
) -> Result<PageOut, PageError> {
    let mut out = PageOut::default();
    let mut sink = sink;
    for phone in &b.phones {
        out.meta.phones.insert(phone.mac, vendor_of(phone));
        note_image(&mut out.meta, b, phone, policy);
        let files = match phone_files(renderer, policy, b, phone) {
            Ok(f) => f,
            Err(e) if !strict => {
                tracing::error!(mac = %phone.mac, site = %b.site.name, error = %e, "phone files not re-rendered; serving the last good ones");
                out.failed.push(phone.mac);
                continue;
            }
            Err(e) => return Err(PageError::Render(e)),
        };
        out.files += files.len();
        match &mut sink {
            Sink::Pack(w) => w.put(phone.mac, &files)?,
            Sink::Memory => out.meta.files.extend(files),
            Sink::Discard => {}
        }
    }
    Ok(out)
}

/// Why a page failed as a whole.
#[derive(Debug, thiserror::Error)]
pub(super) enum PageError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("writing rendered files: {0}")]
    Io(#[from] std::io::Error),
}

/// Adds a page's phones and images to its site.
pub(super) fn merge(into: &mut SiteFiles, page: SiteFiles) {
    into.phones.extend(page.phones);
    into.files.extend(page.files);
    for (name, img) in page.images {
        match into.images.get_mut(&name) {
            Some(have) => have.phones.extend(img.phones),
            None => {
                into.images.insert(name, img);
            }
        }
    }
}
