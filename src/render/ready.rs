//! The ready snapshot: every site's shared files and its phones, swapped whole so a phone's
//! request takes one short read lock and a hash lookup. Per-phone files live on disk
//! ([`super::stored`]) behind a bounded memory cache; a site rendered for a preview holds
//! them in `files` instead.

use foldhash::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use super::cache::Asked;
use super::file::{FileRef, ReadyFile};
use crate::mac::Mac;

/// One site's files.
#[derive(Debug, Clone, Default)]
pub struct SiteFiles {
    pub site_id: i64,
    pub name: String,
    pub key: String,
    pub allow_keyless: bool,
    /// File name (per-MAC names with lowercase MAC) to bytes: the site's shared files, and
    /// for a preview its phones' files too.
    pub files: HashMap<String, Arc<ReadyFile>>,
    /// Phones of the site and their vendor.
    pub phones: PhoneVendors,
    /// Where the phones' files are, for a published site: the store (for its memory cache)
    /// and the site's pack.
    pub disk: Option<Arc<super::stored::DiskFiles>>,
    pub pack: Option<Arc<super::stored::SitePack>>,
    /// Set when the site is published; names its entries in the memory cache.
    pub version: u64,
    /// sha256 of the image for phones in recovery mode, if switched on.
    pub recovery: Option<String>,
    /// Who may fetch the site's files.
    pub access: crate::model::SiteAccess,
    /// Firmware images this site's phones are sent to, by the name they fetch: an image is
    /// served only under a site that sends some phone to it, and only to models it fits.
    pub images: HashMap<String, SiteImage>,
}

impl SiteFiles {
    /// The file `name` of the site; `mac` is the phone it names, if any. A phone's file is
    /// looked for only if the phone is in the site; `asked` says whether the request is
    /// refused for its login (it counts toward keeping the phone in memory differently).
    pub fn get(&self, name: &str, mac: Option<Mac>, asked: Asked) -> Option<FileRef> {
        if let Some(f) = self.files.get(name) {
            return Some(FileRef::from(f.clone()));
        }
        let (disk, pack) = (self.disk.as_ref()?, self.pack.as_ref()?);
        let mac = mac?;
        if !self.phones.contains_key(&mac) {
            disk.decoy(pack, self.version, name, mac);
            return None;
        }
        disk.read(pack, self.version, name, mac, asked)
    }
}

/// A site's phones and each one's vendor, held as a byte (the vendor's place in the catalog)
/// rather than a name: 8 bytes a phone in the table instead of 24, 2 MiB less at 100,000.
#[derive(Debug, Clone, Default)]
pub struct PhoneVendors(HashMap<Mac, u8>);

/// Stands for a vendor the catalog does not know.
const NO_VENDOR: u8 = u8::MAX;

impl PhoneVendors {
    pub fn insert(&mut self, mac: Mac, vendor: &str) {
        let i = crate::catalog::Catalog::get()
            .vendors
            .iter()
            .position(|v| v.vendor == vendor)
            .and_then(|i| u8::try_from(i).ok())
            .unwrap_or(NO_VENDOR);
        self.0.insert(mac, i);
    }

    /// The phone's vendor (empty if the catalog does not know it), if the phone is here.
    pub fn get(&self, mac: &Mac) -> Option<&'static str> {
        let i = *self.0.get(mac)?;
        Some(
            crate::catalog::Catalog::get()
                .vendors
                .get(usize::from(i))
                .map_or("", |v| v.vendor.as_str()),
        )
    }

    pub fn contains_key(&self, mac: &Mac) -> bool {
        self.0.contains_key(mac)
    }

    pub fn remove(&mut self, mac: &Mac) {
        self.0.remove(mac);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn extend(&mut self, other: PhoneVendors) {
        self.0.extend(other.0);
    }
}

/// An image some phones of a site are sent to.
#[derive(Debug, Clone, Default)]
pub struct SiteImage {
    pub sha256: String,
    /// Catalogue models it fits.
    pub models: Vec<String>,
    /// The phones sent to it.
    pub phones: HashSet<Mac>,
}

/// Every site's files, immutable once built.
#[derive(Debug, Default)]
pub struct Snapshot {
    by_key: HashMap<String, Arc<SiteFiles>>,
    by_id: HashMap<i64, Arc<SiteFiles>>,
    /// Sites that serve at `/` without a key.
    keyless: Vec<Arc<SiteFiles>>,
    /// Whether any site asks for credentials: then a miss that names no site without them is
    /// answered with a challenge, like a fetch without credentials.
    any_auth: bool,
    /// Every site's allowed networks: their addresses are never banned.
    /// Each site's allowed networks, with the site's phone count.
    site_nets: Vec<(crate::net::Cidr, u32)>,
    /// The publisher has not yet caught up since start: a known phone's file that is not
    /// there yet is coming, so a request for it waits instead of missing.
    settling: bool,
}

impl Snapshot {
    pub fn site_by_key(&self, key: &str) -> Option<&Arc<SiteFiles>> {
        self.by_key.get(key)
    }

    pub fn site_by_id(&self, id: i64) -> Option<&Arc<SiteFiles>> {
        self.by_id.get(&id)
    }

    pub fn keyless(&self) -> &[Arc<SiteFiles>] {
        &self.keyless
    }

    pub fn any_auth(&self) -> bool {
        self.any_auth
    }

    /// Whether files of known phones may still be on their way (see [`Ready::settled`]).
    pub fn settling(&self) -> bool {
        self.settling
    }

    /// Whether `ip` is in some site's allowed networks.
    /// How many phones belong to sites whose allowed networks hold `ip` (0: none does).
    pub fn phones_in_site_networks(&self, ip: std::net::IpAddr) -> u32 {
        self.site_nets
            .iter()
            .filter(|(n, _)| n.contains(ip))
            .fold(0u32, |sum, (_, phones)| sum.saturating_add(*phones))
    }

    /// How many rendered files the snapshot holds in memory, and their bytes (phones' files
    /// on disk are not counted).
    pub fn size(&self) -> (usize, usize) {
        self.by_id.values().fold((0, 0), |(n, b), s| {
            (
                n + s.files.len(),
                b + s.files.values().map(|f| f.bytes.len()).sum::<usize>(),
            )
        })
    }

    pub fn sites(&self) -> impl Iterator<Item = &Arc<SiteFiles>> {
        self.by_id.values()
    }

    fn from_sites(sites: impl IntoIterator<Item = Arc<SiteFiles>>, settling: bool) -> Snapshot {
        let mut s = Snapshot {
            settling,
            ..Default::default()
        };
        for site in sites {
            s.by_key.insert(site.key.clone(), site.clone());
            if site.allow_keyless {
                s.keyless.push(site.clone());
            }
            s.any_auth |= site.access.auth.is_some();
            let phones = u32::try_from(site.phones.len()).unwrap_or(u32::MAX);
            s.site_nets
                .extend(site.access.allow_nets.iter().map(|n| (*n, phones)));
            s.by_id.insert(site.site_id, site);
        }
        s.keyless.sort_by_key(|x| x.site_id);
        s
    }
}

/// Which firmware images may be served, by content.
#[derive(Debug, Default)]
pub struct FirmwareIndex {
    /// Digests of stored images the policy allows.
    pub allowed: HashSet<String>,
    /// Where each allowed image is, by digest.
    pub by_sha: HashMap<String, std::path::PathBuf>,
    /// SHA-256 digests known to be denied: refused at import, stored but now denied, known
    /// builds the policy denies, or named by a policy rule.
    pub denied: HashSet<String>,
    /// The same by SHA-1 (the digest vendor builds are published with).
    pub denied_sha1: HashSet<String>,
}

/// The current snapshot, replaced site by site as data changes.
#[derive(Debug)]
pub struct Ready {
    current: RwLock<Arc<Snapshot>>,
    firmware: RwLock<Arc<FirmwareIndex>>,
    /// Counts publishes: a request waiting for a phone's files watches it.
    published: tokio::sync::watch::Sender<u64>,
    versions: std::sync::atomic::AtomicU64,
}

impl Default for Ready {
    fn default() -> Ready {
        Ready {
            current: Default::default(),
            firmware: Default::default(),
            published: tokio::sync::watch::Sender::new(0),
            versions: std::sync::atomic::AtomicU64::new(1),
        }
    }
}

impl Ready {
    /// The snapshot now; hold it for one request.
    pub fn load(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn firmware(&self) -> Arc<FirmwareIndex> {
        match self.firmware.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn set_firmware(&self, f: FirmwareIndex) {
        match self.firmware.write() {
            Ok(mut g) => *g = Arc::new(f),
            Err(p) => *p.into_inner() = Arc::new(f),
        }
    }

    fn versioned(&self, mut site: SiteFiles) -> Arc<SiteFiles> {
        site.version = self
            .versions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Arc::new(site)
    }

    /// Replaces all sites at once; `settling` while the publisher is still catching up.
    pub fn replace_all(&self, sites: Vec<SiteFiles>, settling: bool) {
        let sites: Vec<_> = sites.into_iter().map(|s| self.versioned(s)).collect();
        self.store(Arc::new(Snapshot::from_sites(sites, settling)));
    }

    /// Puts (or replaces) one site, keeping the others.
    pub fn put_site(&self, site: SiteFiles) {
        let cur = self.load();
        let id = site.site_id;
        let others = cur.by_id.values().filter(|s| s.site_id != id).cloned();
        let site = self.versioned(site);
        let snap = Snapshot::from_sites(others.chain(std::iter::once(site)), cur.settling);
        self.store(Arc::new(snap));
    }

    /// Drops a site that no longer exists.
    pub fn remove_site(&self, site_id: i64) {
        let cur = self.load();
        let kept = cur.by_id.values().filter(|s| s.site_id != site_id).cloned();
        self.store(Arc::new(Snapshot::from_sites(kept, cur.settling)));
    }

    /// The publisher has caught up: from now on a missing file is a miss.
    pub fn settled(&self) {
        let cur = self.load();
        if cur.settling {
            let sites = cur.by_id.values().cloned();
            self.store(Arc::new(Snapshot::from_sites(sites, false)));
        }
    }

    /// Resolves at the next publish.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.published.subscribe()
    }

    fn store(&self, snap: Arc<Snapshot>) {
        match self.current.write() {
            Ok(mut g) => *g = snap,
            Err(poisoned) => *poisoned.into_inner() = snap,
        }
        self.published.send_modify(|n| *n += 1);
    }
}
