//! Keeps the ready snapshot in step with the database: renders everything at start, then
//! follows the change log (and the template override directory) and re-renders only what
//! changed. A phone or site whose render fails keeps its last good files and the error is
//! logged with the template's file and line.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::catalog::Catalog;
use crate::firmware::judge::Memory;
use crate::firmware::policy::{Policy, SharedPolicy};
use crate::mac::Mac;
use crate::model::{Line, Phone, Setting, Site};
use crate::render::{Ready, ReadyFile, RenderError, Renderer, SharedRenderer, SiteFiles};
use crate::store::firmware::{self as fw, Image, Target};
use crate::store::{self, Conn, Scope, Store, StoreError};

mod firmware;
use firmware::{assigned_images, firmware_index, note_image, target_image};
pub use firmware::{denied_assignments, stored_verdict};

/// Size and modification time of a file, to notice edits.
fn file_print(p: &std::path::Path) -> Option<(u64, Option<std::time::SystemTime>)> {
    std::fs::metadata(p)
        .ok()
        .map(|m| (m.len(), m.modified().ok()))
}

/// Why publishing failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("firmware policy: {0}")]
    Policy(#[from] crate::firmware::policy::PolicyError),
}

/// Everything needed to render one site.
struct Bundle {
    site: Site,
    phones: Vec<Phone>,
    lines: Vec<(Mac, Line)>,
    settings: Vec<Setting>,
    uploads: Vec<(Mac, String, Vec<u8>)>,
    /// Firmware assignments that can reach this site's phones, with their images.
    firmware: Vec<(Target, Image)>,
    /// Refused digests, for judging those images.
    memory: Memory,
}

/// Loads what rendering a site needs; with `only`, just that phone of the site (the site's
/// shared files are then not rendered from it).
async fn load_bundle(
    conn: &mut Conn,
    site_id: i64,
    only: Option<Mac>,
) -> Result<Option<Bundle>, StoreError> {
    let Some(site) = store::site_by_id(conn, site_id).await? else {
        return Ok(None);
    };
    let (phones, lines, uploads) = match only {
        None => (
            store::list_phones(conn, Some(site_id)).await?,
            store::site_lines(conn, site_id).await?,
            store::site_uploads(conn, site_id).await?,
        ),
        Some(mac) => {
            let phone = store::phone(conn, mac)
                .await?
                .filter(|p| p.site_id == site_id);
            let lines = match &phone {
                Some(_) => store::lines(conn, mac)
                    .await?
                    .into_iter()
                    .map(|l| (mac, l))
                    .collect(),
                None => Vec::new(),
            };
            let uploads = match &phone {
                Some(_) => store::phone_uploads(conn, mac).await?,
                None => Vec::new(),
            };
            (phone.into_iter().collect(), lines, uploads)
        }
    };
    let firmware = assigned_images(conn)
        .await?
        .into_iter()
        .filter(|(t, _)| match t {
            Target::Site { site_id: s } | Target::SiteModel { site_id: s, .. } => *s == site_id,
            Target::Phone { mac } => phones.iter().any(|p| p.mac == *mac),
        })
        .collect();
    Ok(Some(Bundle {
        phones,
        lines,
        settings: store::site_settings(conn, site_id).await?,
        uploads,
        firmware,
        memory: fw::refused(conn).await?,
        site,
    }))
}

/// The settings that may reach a file: a raw setting whose value names an image the policy
/// denies is left out (and logged), whatever its layer. The verbs refuse such values; this
/// catches rows that predate the policy, for every file, per phone or per site.
fn allowed_settings(settings: &[Setting], policy: &Policy) -> Vec<Setting> {
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

/// Renders one phone's files, with its served-back uploads.
fn phone_files(
    renderer: &Renderer,
    policy: &Policy,
    b: &Bundle,
    phone: &Phone,
) -> Result<Vec<(String, Arc<ReadyFile>)>, RenderError> {
    let lines: Vec<Line> = b
        .lines
        .iter()
        .filter(|(m, _)| *m == phone.mac)
        .map(|(_, l)| l.clone())
        .collect();
    let image = target_image(b, phone, policy);
    let settings = allowed_settings(&b.settings, policy);
    let firmware = image.map(|i| (i.file_name.as_str(), i.version.as_str()));
    let mut files = renderer.phone_files(&b.site, phone, &lines, &settings, firmware)?;
    if let Some(vendor) = Catalog::get()
        .model(&phone.model)
        .and_then(|m| Catalog::get().vendor(&m.vendor))
    {
        for (mac, name, body) in b.uploads.iter().filter(|(m, _, _)| *m == phone.mac) {
            let served = vendor
                .uploads
                .iter()
                .any(|u| u.serve_back && u.name.replace("{mac}", &mac.to_string()) == *name);
            if served {
                let f = ReadyFile::new(body.clone(), "text/plain; charset=utf-8").with_mac(*mac);
                files.push((name.clone(), Arc::new(f)));
            }
        }
    }
    Ok(files)
}

fn vendor_of(phone: &Phone) -> String {
    Catalog::get()
        .model(&phone.model)
        .map(|m| m.vendor.clone())
        .unwrap_or_default()
}

/// Renders a whole site. With `strict`, the first error fails the build (trial renders before
/// a change commits); otherwise a failing part keeps its files from `previous` and is logged.
fn build(
    renderer: &Renderer,
    policy: &Policy,
    b: &Bundle,
    previous: Option<&SiteFiles>,
    strict: bool,
) -> Result<SiteFiles, RenderError> {
    let mut out = SiteFiles {
        site_id: b.site.id,
        name: b.site.name.clone(),
        key: b.site.key.clone(),
        allow_keyless: b.site.allow_keyless,
        recovery: b.site.recovery_sha256.clone(),
        access: b.site.access.clone(),
        ..Default::default()
    };
    match renderer.site_files(&b.site, &allowed_settings(&b.settings, policy)) {
        Ok(files) => out.files.extend(files),
        Err(e) if !strict => {
            tracing::error!(site = %b.site.name, error = %e, "site files not re-rendered; serving the last good ones");
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
    for phone in &b.phones {
        out.phones.insert(phone.mac, vendor_of(phone));
        note_image(&mut out, b, phone, policy);
        match phone_files(renderer, policy, b, phone) {
            Ok(files) => out.files.extend(files),
            Err(e) if !strict => {
                tracing::error!(mac = %phone.mac, site = %b.site.name, error = %e, "phone files not re-rendered; serving the last good ones");
                if let Some(prev) = previous {
                    out.files.extend(
                        prev.files
                            .iter()
                            .filter(|(_, f)| f.mac == Some(phone.mac))
                            .map(|(n, f)| (n.clone(), f.clone())),
                    );
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Renders what a change touches, from inside its transaction, failing on the first error:
/// the check every change passes before it commits, so a change that cannot render changes
/// nothing. A phone's change renders that phone only; a site's, the whole site.
pub async fn trial_render(
    conn: &mut Conn,
    renderer: &Renderer,
    policy: &Policy,
    scope: Scope,
) -> Result<(), PublishError> {
    match scope {
        Scope::Phone(site_id, mac) => {
            if let Some(b) = load_bundle(conn, site_id, Some(mac)).await? {
                for phone in &b.phones {
                    phone_files(renderer, policy, &b, phone)?;
                }
            }
        }
        Scope::Site(site_id) => {
            if let Some(b) = load_bundle(conn, site_id, None).await? {
                build(renderer, policy, &b, None, true)?;
            }
        }
        Scope::All => {
            for site in store::list_sites(conn).await? {
                if let Some(b) = load_bundle(conn, site.id, None).await? {
                    build(renderer, policy, &b, None, true)?;
                }
            }
        }
    }
    Ok(())
}

/// Renders a site's shared files and its phones (or only the phone `only`) now, failing on
/// the first error: previews and the CLI's `render`.
pub async fn render_site(
    conn: &mut Conn,
    renderer: &Renderer,
    policy: &Policy,
    site_id: i64,
    only: Option<Mac>,
) -> Result<Option<SiteFiles>, PublishError> {
    let Some(b) = load_bundle(conn, site_id, only).await? else {
        return Ok(None);
    };
    Ok(Some(build(renderer, policy, &b, None, true)?))
}

/// Re-renders one phone inside a site's files.
fn rebuild_phone(
    renderer: &Renderer,
    policy: &Policy,
    b: &Bundle,
    prev: &SiteFiles,
    mac: Mac,
) -> SiteFiles {
    let mut out = prev.clone();
    out.files.retain(|_, f| f.mac != Some(mac));
    out.phones.remove(&mac);
    for img in out.images.values_mut() {
        img.phones.remove(&mac);
    }
    out.images.retain(|_, i| !i.phones.is_empty());
    if let Some(phone) = b.phones.iter().find(|p| p.mac == mac) {
        out.phones.insert(mac, vendor_of(phone));
        note_image(&mut out, b, phone, policy);
        match phone_files(renderer, policy, b, phone) {
            Ok(files) => out.files.extend(files),
            Err(e) => {
                tracing::error!(%mac, site = %b.site.name, error = %e, "phone files not re-rendered; serving the last good ones");
                out.files.extend(
                    prev.files
                        .iter()
                        .filter(|(_, f)| f.mac == Some(mac))
                        .map(|(n, f)| (n.clone(), f.clone())),
                );
            }
        }
    }
    out
}

/// What a running publisher can be told.
#[derive(Debug, Clone)]
pub enum Control {
    /// Look for changes now (templates, policy, data).
    Poll,
    /// Render with these base URLs from now on.
    Urls(crate::render::Urls),
}

/// Follows the database and the template directory, keeping `ready` current.
pub struct Publisher {
    store: Store,
    ready: Arc<Ready>,
    renderer: SharedRenderer,
    policy: SharedPolicy,
    policy_path: PathBuf,
    policy_print: Option<(u64, Option<std::time::SystemTime>)>,
    firmware_dir: PathBuf,
    urls: crate::render::Urls,
    template_dir: PathBuf,
    template_print: Vec<(String, u64, Option<std::time::SystemTime>)>,
    seq: i64,
}

impl Publisher {
    /// Renders every site; fails if the templates are broken (the server does not start on a
    /// broken template).
    pub async fn start(
        store: Store,
        ready: Arc<Ready>,
        urls: &crate::render::Urls,
        template_dir: PathBuf,
        data_dir: PathBuf,
    ) -> Result<Publisher, PublishError> {
        let template_print = crate::render::templates::fingerprint(&template_dir);
        let policy_path = data_dir.join(crate::firmware::policy::OPERATOR_FILE);
        let policy_print = file_print(&policy_path);
        let policy = SharedPolicy::new(Policy::load(&policy_path)?);
        let renderer = SharedRenderer::new(Renderer::new(urls, Some(&template_dir))?);
        let mut p = Publisher {
            store,
            ready,
            renderer,
            policy,
            policy_path,
            policy_print,
            firmware_dir: data_dir.join("firmware"),
            urls: urls.clone(),
            template_dir,
            template_print,
            seq: 0,
        };
        p.rebuild_all().await?;
        Ok(p)
    }

    /// The firmware policy this publisher enforces, to share with the verbs.
    pub fn policy(&self) -> SharedPolicy {
        self.policy.clone()
    }

    /// The renderer this publisher uses, to share with the verbs that change data.
    pub fn renderer(&self) -> SharedRenderer {
        self.renderer.clone()
    }

    async fn rebuild_all(&mut self) -> Result<(), PublishError> {
        let renderer = self.renderer.get();
        let policy = self.policy.get();
        let mut conn = self.store.conn().await?;
        // Read the sequence first: a change landing during the build is seen again next time.
        self.seq = store::last_change(&mut conn).await?;
        let old = self.ready.load();
        let mut sites = Vec::new();
        for site in store::list_sites(&mut conn).await? {
            if let Some(b) = load_bundle(&mut conn, site.id, None).await? {
                sites.push(build(
                    &renderer,
                    &policy,
                    &b,
                    old.site_by_id(site.id).map(|s| s.as_ref()),
                    false,
                )?);
            }
        }
        self.ready
            .set_firmware(firmware_index(&mut conn, &policy, &self.firmware_dir).await?);
        let n: usize = sites.iter().map(|s| s.files.len()).sum();
        tracing::info!(sites = sites.len(), files = n, "rendered all sites");
        self.ready.replace_all(sites);
        Ok(())
    }

    /// One pass: reload the policy and templates if their files changed, then apply new changes.
    pub async fn poll(&mut self) -> Result<(), PublishError> {
        let pp = file_print(&self.policy_path);
        if pp != self.policy_print {
            self.policy_print = pp;
            match Policy::load(&self.policy_path) {
                Ok(p) => {
                    let mut conn = self.store.conn().await?;
                    let before = denied_assignments(&mut conn, &self.policy.get()).await?;
                    let after = denied_assignments(&mut conn, &p).await?;
                    drop(conn);
                    self.policy.set(p);
                    let newly: Vec<String> = after
                        .iter()
                        .filter(|a| !before.contains(a))
                        .map(|(m, f)| format!("{} ({f})", m.colon()))
                        .collect();
                    if newly.is_empty() {
                        tracing::info!(path = %self.policy_path.display(), "firmware policy reloaded");
                    } else {
                        tracing::warn!(path = %self.policy_path.display(), phones = ?newly,
                            "firmware policy reloaded: it denies images assigned to these phones; their files no longer reference them");
                    }
                    return self.rebuild_all().await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "firmware policy refused; the previous policy stays in force")
                }
            }
        }
        let print = crate::render::templates::fingerprint(&self.template_dir);
        if print != self.template_print {
            self.template_print = print;
            match Renderer::new(&self.urls, Some(&self.template_dir)) {
                Ok(r) => {
                    tracing::info!(dir = %self.template_dir.display(), "templates changed; re-rendering");
                    self.renderer.set(r);
                    return self.rebuild_all().await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "template override refused; serving the last good files");
                }
            }
        }
        let mut conn = self.store.conn().await?;
        let changes = store::changes_since(&mut conn, self.seq).await?;
        let Some(&(last, _)) = changes.last() else {
            return Ok(());
        };
        if changes.iter().any(|(_, s)| *s == Scope::All) {
            drop(conn);
            return self.rebuild_all().await;
        }
        let renderer = self.renderer.get();
        let policy = self.policy.get();
        let mut whole: HashSet<i64> = HashSet::new();
        let mut phones: Vec<(i64, Mac)> = Vec::new();
        for (_, scope) in &changes {
            match *scope {
                Scope::Site(s) => {
                    whole.insert(s);
                }
                Scope::Phone(s, m) => phones.push((s, m)),
                Scope::All => {}
            }
        }
        phones.retain(|(s, _)| !whole.contains(s));
        let touched: HashSet<i64> = whole
            .iter()
            .copied()
            .chain(phones.iter().map(|(s, _)| *s))
            .collect();
        for site_id in touched {
            let old = self.ready.load();
            let prev = old.site_by_id(site_id).map(|s| s.as_ref().clone());
            let macs: Vec<Mac> = phones
                .iter()
                .filter(|(s, _)| *s == site_id)
                .map(|(_, m)| *m)
                .collect();
            let files = match prev {
                // A few phones changed: load and render just them.
                Some(prev) if !whole.contains(&site_id) && macs.len() <= 64 => {
                    let mut cur = prev;
                    for mac in macs {
                        match load_bundle(&mut conn, site_id, Some(mac)).await? {
                            Some(b) => cur = rebuild_phone(&renderer, &policy, &b, &cur, mac),
                            None => break,
                        }
                    }
                    cur
                }
                prev => match load_bundle(&mut conn, site_id, None).await? {
                    Some(b) => match (prev, whole.contains(&site_id)) {
                        (Some(prev), false) => macs.iter().fold(prev, |cur, mac| {
                            rebuild_phone(&renderer, &policy, &b, &cur, *mac)
                        }),
                        (prev, _) => build(&renderer, &policy, &b, prev.as_ref(), false)?,
                    },
                    None => {
                        self.ready.remove_site(site_id);
                        continue;
                    }
                },
            };
            // The site may have gone meanwhile.
            if store::site_by_id(&mut conn, site_id).await?.is_none() {
                self.ready.remove_site(site_id);
                continue;
            }
            tracing::debug!(site_id, files = files.files.len(), "site re-rendered");
            self.ready.put_site(files);
        }
        self.seq = last;
        Ok(())
    }

    /// Renders with other base URLs from now on (a reload changed the public URLs): every site
    /// again; on failure the previous URLs and files stay.
    pub async fn set_urls(&mut self, urls: crate::render::Urls) -> Result<(), PublishError> {
        let r = Renderer::new(&urls, Some(&self.template_dir))?;
        self.renderer.set(r);
        self.urls = urls;
        self.rebuild_all().await
    }

    /// Polls every `every`, and at once when told to, until `shutdown` resolves.
    pub async fn run(
        mut self,
        every: Duration,
        mut control: tokio::sync::mpsc::Receiver<Control>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(every);
        let mut last_prune = std::time::Instant::now();
        let (files, bytes) = self.ready.load().size();
        crate::telemetry::snapshot(files, bytes);
        // Once every sender is gone, an idle channel (held here) so `recv` never spins.
        let mut _idle = None;
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tick.tick() => {}
                c = control.recv() => match c {
                    Some(Control::Urls(u)) if u != self.urls => {
                        let (http, https) = (u.http.clone(), u.https.clone());
                        match self.set_urls(u).await {
                            Ok(()) => tracing::warn!(public_url = %http, public_https_url = ?https,
                                "public URLs changed: every site re-rendered"),
                            Err(e) => tracing::error!(error = %e,
                                "the new public URLs could not be rendered; the previous ones stay"),
                        }
                    }
                    Some(_) => {}
                    None => {
                        let (tx, rx) = tokio::sync::mpsc::channel(1);
                        _idle = Some(tx);
                        control = rx;
                    }
                },
            }
            let (before, started) = (self.ready.load(), std::time::Instant::now());
            if let Err(e) = self.poll().await {
                tracing::error!(error = %e, "could not apply changes; will retry");
            }
            let after = self.ready.load();
            if !Arc::ptr_eq(&before, &after) {
                let (files, bytes) = after.size();
                crate::telemetry::published(started.elapsed().as_secs_f64(), files, bytes);
            }
            if last_prune.elapsed() > Duration::from_secs(3600) {
                last_prune = std::time::Instant::now();
                if let Ok(mut c) = self.store.conn().await {
                    let _ = store::prune_changes(&mut c, store::now_ms() - 24 * 3600 * 1000).await;
                }
            }
        }
    }
}
