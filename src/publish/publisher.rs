//! The publishing loop: at start, the sites and their phones from the database and the
//! phones' files as they are on disk, so `serve` answers within a second or two whatever the
//! fleet's size; then it catches up (a full re-render in the background when the templates,
//! the policy, the public URLs or the binary changed while it was down, else the change log
//! since the files were written) and follows changes from then on.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use sha2::{Digest, Sha256};

use super::PublishError;
use super::build::{PageOut, Sink, admit, merge, page, shared_into, shell, vendor_of};
use super::bundle::{Bundle, Head, PAGE, load_head, load_page};
use super::firmware::{denied_assignments, firmware_index, note_image};
use crate::firmware::policy::{Policy, SharedPolicy};
use crate::render::stored::{DiskFiles, State};
use crate::render::{Ready, Renderer, SharedRenderer, SiteFiles};
use crate::store::{self, Conn, Store};

/// Size and modification time of a file, to notice edits.
fn file_print(p: &std::path::Path) -> Option<(u64, Option<SystemTime>)> {
    std::fs::metadata(p)
        .ok()
        .map(|m| (m.len(), m.modified().ok()))
}

/// Everything besides the data that shapes the rendered bytes: this binary, the templates
/// (shipped and overridden, by content), the policy file and the public URLs.
fn epoch(
    urls: &crate::render::Urls,
    template_dir: &std::path::Path,
    policy: &std::path::Path,
) -> String {
    let mut h = Sha256::new();
    h.update(b"phoneprov rendered files, layout 1\n");
    h.update(env!("CARGO_PKG_VERSION"));
    if let Ok(m) = std::env::current_exe().and_then(std::fs::metadata) {
        h.update(format!("{}:{:?}", m.len(), m.modified().ok()));
    }
    for (name, text) in crate::render::templates::SHIPPED {
        h.update(name);
        h.update(text);
        h.update(std::fs::read(template_dir.join(name)).unwrap_or_default());
    }
    h.update(std::fs::read(policy).unwrap_or_default());
    h.update(format!("{urls:?}"));
    hex::encode(h.finalize())
}

/// What a running publisher can be told.
#[derive(Debug, Clone)]
pub enum Control {
    /// Look for changes now (templates, policy, data).
    Poll,
    /// Render with these base URLs from now on.
    Urls(crate::render::Urls),
}

/// Follows the database and the template directory, keeping `ready` and the files on disk
/// current.
pub struct Publisher {
    store: Store,
    ready: Arc<Ready>,
    disk: Arc<DiskFiles>,
    renderer: SharedRenderer,
    policy: SharedPolicy,
    policy_path: PathBuf,
    policy_print: Option<(u64, Option<SystemTime>)>,
    firmware_dir: PathBuf,
    urls: crate::render::Urls,
    template_dir: PathBuf,
    template_print: Vec<(String, u64, Option<SystemTime>)>,
    seq: i64,
    /// A full re-render is owed (the files on disk are stale or absent).
    owed_full: bool,
    /// Woken when the database says a change committed (PostgreSQL); the poll is the floor.
    wake: Arc<tokio::sync::Notify>,
}

impl Publisher {
    /// What to wake to follow the change log at once rather than at the next poll.
    pub fn waker(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    /// Publishes every site from the database with its phones' files as they are on disk;
    /// fails if the templates are broken (the server does not start on a broken template).
    /// `cache_bytes` bounds the memory cache of phones' files.
    pub async fn start(
        store: Store,
        ready: Arc<Ready>,
        urls: &crate::render::Urls,
        template_dir: PathBuf,
        data_dir: PathBuf,
        cache_bytes: usize,
    ) -> Result<Publisher, PublishError> {
        let template_print = crate::render::templates::fingerprint(&template_dir);
        let policy_path = data_dir.join(crate::firmware::policy::OPERATOR_FILE);
        let policy_print = file_print(&policy_path);
        let policy = SharedPolicy::new(Policy::load(&policy_path)?);
        let renderer = SharedRenderer::new(Renderer::new(urls, Some(&template_dir))?);
        let disk = Arc::new(DiskFiles::open(&data_dir, cache_bytes)?);
        let mut p = Publisher {
            store,
            ready,
            disk,
            renderer,
            policy,
            policy_path,
            policy_print,
            firmware_dir: data_dir.join("firmware"),
            urls: urls.clone(),
            template_dir,
            template_print,
            seq: 0,
            owed_full: true,
            wake: Default::default(),
        };
        p.publish_from_disk().await?;
        give_back_memory();
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

    /// The files of phones, on disk and in memory.
    pub fn disk(&self) -> Arc<DiskFiles> {
        self.disk.clone()
    }

    fn epoch(&self) -> String {
        epoch(&self.urls, &self.template_dir, &self.policy_path)
    }

    /// The start: every site's shared files rendered now (a few per site), its phones and
    /// their images from the database, their files from disk.
    async fn publish_from_disk(&mut self) -> Result<(), PublishError> {
        let started = Instant::now();
        let renderer = self.renderer.get();
        let policy = self.policy.get();
        let mut conn = self.store.conn().await?;
        let last = store::last_change(&mut conn).await?;
        let state = self.disk.state();
        let epoch = self.epoch();
        let mut fresh = match &state {
            Some(s) if s.epoch == epoch && s.seq <= last => {
                // Every change since the files were written must still be in the log.
                s.seq == last || store::oldest_change(&mut conn).await? <= Some(s.seq + 1)
            }
            _ => false,
        };
        let mut sites = Vec::new();
        let mut phones = 0usize;
        for site in store::list_sites(&mut conn).await? {
            let Some(head) = load_head(&mut conn, site.id).await? else {
                continue;
            };
            let head = admit(head, &policy);
            let mut out = self.shell(&head);
            shared_into(&renderer, &head, &mut out, None, false)?;
            out.pack = self.disk.load(site.id);
            let mut b = Bundle::of_head(&head);
            b.firmware = head.firmware.clone();
            // A page at a time, so a large site's phone records are never all in memory.
            let mut after = None;
            loop {
                b.phones = store::phones_page(&mut conn, site.id, after, PAGE).await?;
                let Some(last) = b.phones.last().map(|p| p.mac) else {
                    break;
                };
                after = Some(last);
                for phone in &b.phones {
                    out.phones.insert(phone.mac, vendor_of(phone));
                    note_image(&mut out, &b, phone, &policy);
                }
            }
            phones += out.phones.len();
            // Phones without files on disk (none at all, or a pack lost): render everything.
            if !out.phones.is_empty() && out.pack.is_none() {
                fresh = false;
            }
            sites.push(out);
        }
        self.ready
            .set_firmware(firmware_index(&mut conn, &policy, &self.firmware_dir).await?);
        let n = sites.len();
        self.ready.replace_all(sites, true);
        self.owed_full = !fresh;
        self.seq = match (&state, fresh) {
            (Some(s), true) => s.seq,
            _ => last,
        };
        let ms = started.elapsed().as_millis() as u64;
        match (fresh, &state) {
            (true, _) => tracing::info!(
                sites = n,
                phones,
                ms,
                since = self.seq,
                "serving the rendered files on disk; changes since they were written follow"
            ),
            (false, Some(_)) => tracing::warn!(
                sites = n,
                phones,
                ms,
                "the rendered files on disk are from other templates, policy, public URLs or build: every site is re-rendered in the background; phones get the previous files meanwhile"
            ),
            (false, None) => tracing::info!(
                sites = n,
                phones,
                ms,
                "no rendered files on disk yet: rendering every site; a phone asking meanwhile waits for its files"
            ),
        }
        Ok(())
    }

    fn shell(&self, head: &Head) -> SiteFiles {
        let mut out = shell(&head.site);
        out.disk = Some(self.disk.clone());
        out
    }

    /// Renders a whole site into a new generation of its pack, a page at a time (in the
    /// blocking pool, so serving goes on). Phones that left the site are not in it.
    async fn render_site(
        &self,
        conn: &mut Conn,
        head: Head,
        previous: Option<&SiteFiles>,
    ) -> Result<(SiteFiles, usize), PublishError> {
        let renderer = self.renderer.get();
        let policy = self.policy.get();
        let head = admit(head, &policy);
        let mut out = self.shell(&head);
        shared_into(&renderer, &head, &mut out, previous, false)?;
        let prev_pack = previous.and_then(|p| p.pack.clone());
        let mut writer = self.disk.new_pack(head.site.id, prev_pack.as_deref())?;
        let (mut failed, mut files) = (Vec::new(), 0usize);
        let mut next_report = 20_000usize;
        // The next page loads (the database's thread) while this one renders (the blocking
        // pool's): two cores, both busy.
        let mut next = load_page(conn, &head, None).await?;
        while let Some(last) = next.phones.last().map(|p| p.mac) {
            let b = next;
            let (r, p) = (renderer.clone(), policy.clone());
            let job = tokio::task::spawn_blocking(move || {
                let pg = page(&r, &p, &b, Sink::Pack(&mut writer), false);
                (writer, pg)
            });
            next = load_page(conn, &head, Some(last)).await?;
            let (w, pg) = job.await.map_err(std::io::Error::other)?;
            writer = w;
            let pg: PageOut = pg?;
            files += pg.files;
            failed.extend(pg.failed);
            merge(&mut out, pg.meta);
            if out.phones.len() >= next_report {
                next_report += 20_000;
                tracing::info!(site = %head.site.name, phones = out.phones.len(), "rendering");
            }
        }
        if let Some(prev) = &prev_pack {
            for mac in failed {
                writer.carry(prev, mac)?;
            }
        }
        out.pack = Some(
            tokio::task::spawn_blocking(move || writer.finish())
                .await
                .map_err(std::io::Error::other)??,
        );
        Ok((out, files))
    }

    async fn rebuild_all(&mut self) -> Result<(), PublishError> {
        let started = Instant::now();
        let mut conn = self.store.conn().await?;
        // Read the sequence first: a change landing during the build is seen again next time.
        self.seq = store::last_change(&mut conn).await?;
        // Marked unfinished until it is: a crash midway re-renders everything on restart.
        self.disk.set_state(&State {
            epoch: String::new(),
            seq: self.seq,
        })?;
        let old = self.ready.load();
        let (mut sites, mut files, mut ids) = (Vec::new(), 0, HashSet::new());
        for site in store::list_sites(&mut conn).await? {
            if let Some(head) = load_head(&mut conn, site.id).await? {
                let prev = old.site_by_id(site.id).map(|s| s.as_ref());
                let (s, n) = self.render_site(&mut conn, head, prev).await?;
                files += n;
                ids.insert(site.id);
                sites.push(s);
            }
        }
        for gone in self
            .disk
            .site_ids()
            .into_iter()
            .filter(|i| !ids.contains(i))
        {
            self.disk.remove_site(gone);
        }
        let policy = self.policy.get();
        self.ready
            .set_firmware(firmware_index(&mut conn, &policy, &self.firmware_dir).await?);
        let phones: usize = sites.iter().map(|s| s.phones.len()).sum();
        // The packs are complete on disk: mark them so before any phone is served from them,
        // or a crash in between would re-render every phone on restart for nothing.
        let marked = self.disk.set_state(&State {
            epoch: self.epoch(),
            seq: self.seq,
        });
        self.ready.replace_all(sites, old.settling());
        marked?;
        self.owed_full = false;
        give_back_memory();
        tracing::info!(
            sites = ids.len(),
            phones,
            files,
            ms = started.elapsed().as_millis() as u64,
            "rendered all sites"
        );
        Ok(())
    }
}

/// Returns freed heap to the system after a big load or render (glibc keeps it otherwise, and
/// the fleet's size would show in RSS for good): glibc's heap (SQLite allocates there) and
/// mimalloc's pages of the calling thread that hold no block, at once rather than after its
/// purge delay (an idle thread's would wait for its next allocation).
pub(crate) fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
    // SAFETY: a plain call; it frees only memory no block is in.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

mod follow;
