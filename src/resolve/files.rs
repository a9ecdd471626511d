//! Files on disk the resolver may serve: stored firmware images (only to phones of a site
//! sent to them, of a model they fit, verified against the digest the policy passed),
//! operators' static files (judged by content: a denied image is never served under any name;
//! a firmware-looking name never), and per-site recovery images. Digests
//! are cached by path while size and modification time hold.

use std::path::PathBuf;

use super::{DiskFile, RequestFacts, Resolver};
use crate::firmware::content::Content;

/// A file's modification time in nanoseconds (0 when unknown), for caches and entity tags.
pub(super) fn mtime_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Digests by path, with the size and modification time they were computed for.
pub(super) type DigestCache = std::collections::HashMap<PathBuf, (u64, u128, Content)>;

/// Names that firmware images go by.
fn looks_like_firmware(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [".rom", ".ld", ".bin", ".rfs", ".img"]
        .iter()
        .any(|e| n.ends_with(e))
}

impl Resolver {
    /// The digests of a file, from the cache while the file is unchanged.
    fn digest(&self, path: &std::path::Path, len: u64, mtime: u128) -> Option<Content> {
        if let Ok(g) = self.digests.lock()
            && let Some((l, m, d)) = g.get(path)
            && *l == len
            && *m == mtime
        {
            return Some(d.clone());
        }
        let d = Content::of_file(path).ok()?;
        if let Ok(mut g) = self.digests.lock() {
            g.insert(path.to_path_buf(), (len, mtime, d.clone()));
        }
        Some(d)
    }

    /// For a phone in recovery mode: an image request (`.rom`, `.bin`, `.rfs`) that matched
    /// nothing else gets the site's recovery image — the keyed site's, or at the bare root the
    /// one site that has recovery switched on. Only an image the policy allows now.
    pub(super) fn recovery_image(
        &self,
        snap: &crate::render::Snapshot,
        key: Option<&str>,
        name: &str,
        facts: &RequestFacts<'_>,
    ) -> Option<DiskFile> {
        let n = name.to_ascii_lowercase();
        if ![".rom", ".bin", ".rfs"].iter().any(|e| n.ends_with(e)) {
            return None;
        }
        let sha = match key {
            Some(k) => snap.site_by_key(k)?.recovery.clone()?,
            None => {
                let mut on = snap.sites().filter_map(|s| s.recovery.clone());
                let first = on.next()?;
                if on.next().is_some() {
                    return None; // several sites: refuse to guess
                }
                first
            }
        };
        let fw = self.ready.firmware();
        let d = self.verified(fw.by_sha.get(&sha)?, &sha)?;
        tracing::info!(peer = %facts.peer, file = name, sha256 = %sha, "recovery request answered");
        Some(d)
    }

    /// A stored firmware image some phone of the site is sent to, by the name it fetches, if
    /// the policy allows it — refused when the User-Agent shows a model it does not fit (one
    /// image name serving several models is how the wrong image reaches a phone).
    pub(super) fn site_image(
        &self,
        site: &crate::render::SiteFiles,
        name: &str,
        facts: &RequestFacts<'_>,
    ) -> Option<DiskFile> {
        let img = site.images.get(name)?;
        let ua = facts.user_agent.map(crate::catalog::UserAgent::parse);
        // A phone that says who it is (Yealink's User-Agent carries its MAC) gets only an image
        // it is sent to; one that says only its model (Polycom), only one that fits it.
        if let Some(mac) = ua.as_ref().and_then(|u| u.mac)
            && !img.phones.contains(&mac)
        {
            tracing::warn!(peer = %facts.peer, file = name, %mac,
                "firmware image refused: not assigned to the phone asking");
            return None;
        }
        if let Some(model) = ua.and_then(|u| u.model) {
            let fits = crate::catalog::Catalog::get()
                .model(&model)
                .is_some_and(|m| img.models.contains(&m.name));
            if !fits {
                tracing::warn!(peer = %facts.peer, file = name, %model,
                    "firmware image refused: it does not fit the model the phone reports");
                return None;
            }
        }
        let fw = self.ready.firmware();
        self.verified(fw.by_sha.get(&img.sha256)?, &img.sha256)
    }

    /// A stored image, if the bytes on disk are still the image the policy passed.
    fn verified(&self, path: &std::path::Path, sha: &str) -> Option<DiskFile> {
        let meta = std::fs::metadata(path).ok()?;
        let digest = self.digest(path, meta.len(), mtime_ns(&meta))?.sha256;
        if digest != sha {
            tracing::error!(file = %path.display(), expected = %sha, found = %digest,
                "stored firmware image altered on disk: not served");
            return None;
        }
        Some(DiskFile {
            path: path.to_path_buf(),
            len: meta.len(),
            etag: format!("\"{}\"", &sha[..32]),
        })
    }

    /// A regular file of that name directly in the files directory. Hidden names are not
    /// served; the name is already a single path segment. A firmware-looking name is never
    /// served from here: images reach phones only from the firmware store, under the name the
    /// phones they are assigned to are sent to.
    pub(super) fn disk(&self, name: &str) -> Option<DiskFile> {
        if name.starts_with('.') {
            return None;
        }
        let path = self.files_dir.as_ref()?.join(name);
        let meta = std::fs::metadata(&path).ok().filter(|m| m.is_file())?;
        let mtime = mtime_ns(&meta);
        // By content: a denied image is never served, whatever it is called; an unknown image
        // is not served either, since nothing vouches for it.
        let fw = self.ready.firmware();
        let c = self.digest(&path, meta.len(), mtime)?;
        if fw.denied.contains(&c.sha256) || fw.denied_sha1.contains(&c.sha1) {
            tracing::warn!(file = %path.display(), sha256 = %c.sha256, sha1 = %c.sha1, "refused to serve a denied firmware image");
            return None;
        }
        if looks_like_firmware(name) {
            tracing::warn!(file = %path.display(), sha256 = %c.sha256,
                "refused to serve a firmware-looking static file: images are served from the firmware store only (`phoneprov firmware add` and `firmware assign`)");
            return None;
        }
        Some(DiskFile {
            etag: format!("\"{:x}-{:x}\"", meta.len(), mtime),
            len: meta.len(),
            path,
        })
    }
}
