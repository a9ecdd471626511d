//! Following changes once started: the policy file, the template overrides and the change
//! log, each applied with the least re-rendering that is right, and the loop that polls.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::super::PublishError;
use super::super::build::{admit, phone_files, vendor_of};
use super::super::bundle::{Bundle, load_head, load_one};
use super::super::firmware::note_image;
use super::{Control, Publisher, file_print};
use crate::firmware::policy::Policy;
use crate::mac::Mac;
use crate::render::stored::{PackWriter, State};
use crate::render::{Renderer, SiteFiles};
use crate::store::{self, Scope};

/// A site with more changed phones than this is re-rendered whole.
const FEW_PHONES: usize = 64;

impl Publisher {
    /// One pass: reload the policy and templates if their files changed, then apply new changes.
    pub async fn poll(&mut self) -> Result<(), PublishError> {
        if self.owed_full {
            return self.rebuild_all().await;
        }
        let pp = file_print(&self.policy_path);
        if pp != self.policy_print {
            self.policy_print = pp;
            match Policy::load(&self.policy_path) {
                Ok(p) => {
                    let mut conn = self.store.conn().await?;
                    let before = super::denied_assignments(&mut conn, &self.policy.get()).await?;
                    let after = super::denied_assignments(&mut conn, &p).await?;
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
            let mut macs: Vec<Mac> = phones
                .iter()
                .filter(|(s, _)| *s == site_id)
                .map(|(_, m)| *m)
                .collect();
            macs.sort();
            macs.dedup();
            let Some(head) = load_head(&mut conn, site_id).await? else {
                self.ready.remove_site(site_id);
                self.disk.remove_site(site_id);
                continue;
            };
            let few = !whole.contains(&site_id) && macs.len() <= FEW_PHONES;
            let files = match prev {
                // A few phones changed: load and render just them, appended to the pack.
                Some(prev) if few && prev.pack.as_ref().is_some_and(|p| !p.mostly_dead()) => {
                    let head = admit(head, &policy);
                    let mut w = match &prev.pack {
                        Some(p) => self.disk.append(p)?,
                        None => self.disk.new_pack(site_id, None)?,
                    };
                    let mut cur = prev;
                    for mac in macs {
                        let b = load_one(&mut conn, &head, mac).await?;
                        cur = self.rebuild_phone(&policy, &b, cur, mac, &mut w)?;
                    }
                    cur.pack = Some(w.finish()?);
                    cur
                }
                prev => self.render_site(&mut conn, head, prev.as_ref()).await?.0,
            };
            tracing::debug!(site_id, phones = files.phones.len(), "site re-rendered");
            self.ready.put_site(files);
        }
        self.seq = last;
        self.disk.set_state(&State {
            epoch: self.epoch(),
            seq: self.seq,
        })?;
        Ok(())
    }

    /// Re-renders one phone of a site: its record in the pack, its entry in the site.
    fn rebuild_phone(
        &self,
        policy: &Policy,
        b: &Bundle,
        prev: SiteFiles,
        mac: Mac,
        w: &mut PackWriter,
    ) -> Result<SiteFiles, PublishError> {
        let renderer = self.renderer.get();
        let mut out = prev;
        out.phones.remove(&mac);
        for img in out.images.values_mut() {
            img.phones.remove(&mac);
        }
        out.images.retain(|_, i| !i.phones.is_empty());
        let Some(phone) = b.phones.iter().find(|p| p.mac == mac) else {
            // It left the site.
            w.remove(mac);
            return Ok(out);
        };
        out.phones.insert(mac, vendor_of(phone));
        note_image(&mut out, b, phone, policy);
        match phone_files(&renderer, policy, b, phone) {
            Ok(files) => w.put(mac, &files)?,
            Err(e) => {
                tracing::error!(%mac, site = %b.site.name, error = %e, "phone files not re-rendered; serving the last good ones");
            }
        }
        Ok(out)
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
        let mut last_trim = std::time::Instant::now();
        let (files, bytes) = self.ready.load().size();
        crate::telemetry::snapshot(files, bytes);
        // Once every sender is gone, an idle channel (held here) so `recv` never spins.
        let mut _idle = None;
        let wake = self.wake.clone();
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tick.tick() => {}
                _ = wake.notified() => {}
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
            match self.poll().await {
                // Caught up: from now on a file that is not there is a miss.
                Ok(()) if before.settling() => self.ready.settled(),
                Ok(()) => {}
                Err(e) => tracing::error!(error = %e, "could not apply changes; will retry"),
            }
            let cache = self.disk.cache();
            let ((bytes, entries), (hits, misses)) = (cache.size(), cache.hits_misses());
            crate::telemetry::file_cache(bytes, entries, hits, misses);
            let after = self.ready.load();
            if !Arc::ptr_eq(&before, &after) {
                let (files, bytes) = after.size();
                crate::telemetry::published(started.elapsed().as_secs_f64(), files, bytes);
            }
            // Connection buffers of a boot storm are freed when it ends, but glibc keeps them.
            if last_trim.elapsed() > Duration::from_secs(10) {
                last_trim = std::time::Instant::now();
                super::give_back_memory();
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
