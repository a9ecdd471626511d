//! The one place that decides what a phone's request gets, whatever the transport.
//!
//! `RequestFacts` (path, peer, User-Agent, transport) → split the path into site key and file
//! name, refusing anything that is not a plain file name → find the site → find the rendered
//! file (or the alias that stands for the phone's own file), else the operator's static file
//! of that name in `<data-dir>/files/` → record last-seen → [`Resolution`].
//!
//! Firmware is judged by content, not name: a stored image is served only while the policy
//! allows it, only under a site that sends some phone to it and only to a model it fits (no
//! login needed: it holds no secret, and phones may not send one for it); a static file is
//! never served if its digest is denied, nor when its name looks like firmware (`.rom`, `.ld`,
//! `.bin`, `.rfs`, `.img`).
//! Every miss is the same `NotFound`: an unknown MAC, a wrong site key and a missing file look
//! alike to the caller. Transports map the resolution to their wire format and nothing else.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::audit::{self, AuditBuffer};
use crate::catalog::{Catalog, UserAgent};
use crate::lastseen::SeenBuffer;
use crate::mac::Mac;
use crate::render::{Asked, FileRef, Ready, SiteFiles};
use crate::store::now_ms;

mod answer;
mod files;
mod path;
use answer::Pending;
pub use answer::{Answer, PENDING_WAIT, Responder, answer};
use files::DigestCache;
pub use path::{Target, canonical_name, name_mac, split_path};
mod request;
pub use request::{DiskFile, RequestFacts, Resolution, TransferEnd, Transport};

/// Longest file name a request may carry.
pub const MAX_NAME: usize = 255;

impl Responder for Resolver {
    fn respond(&self, facts: &RequestFacts<'_>) -> Resolution {
        self.resolve(facts)
    }

    fn attempt(&self, facts: &RequestFacts<'_>) -> Answer {
        match self.decide(facts) {
            Ok((r, banned)) => {
                self.count(facts, &r, banned);
                Answer::Now(r)
            }
            Err(Pending) => {
                // Subscribed first, then asked again: a publish in between is not missed.
                let rx = self.ready.subscribe();
                match self.decide(facts) {
                    Ok((r, banned)) => {
                        self.count(facts, &r, banned);
                        Answer::Now(r)
                    }
                    Err(Pending) => Answer::Wait(rx),
                }
            }
        }
    }
}

/// Resolves requests against the ready snapshot and records last-seen.
#[derive(Debug, Clone)]
pub struct Resolver {
    ready: Arc<Ready>,
    seen: Arc<SeenBuffer>,
    /// Operators' static files (ring tones, language packs, images), served by name.
    files_dir: Option<Arc<PathBuf>>,
    /// sha256 of static files, by path, valid while size and modification time hold.
    digests: Arc<std::sync::Mutex<DigestCache>>,
    /// Repeated misses on per-MAC names, and bans.
    guard: Arc<crate::access::Guard>,
    /// Checks provisioning credentials.
    auth: Arc<crate::auth::Authenticator>,
    /// Fetches of sensitive files, for the audit.
    audit: Arc<AuditBuffer>,
    /// TFTP carries no User-Agent: which phone each address last fetched its own file as.
    by_peer: Arc<std::sync::Mutex<foldhash::HashMap<IpAddr, PeerPhone>>>,
    /// Request counters (no-ops unless `serve` installed the recorder first).
    meters: Arc<crate::telemetry::RequestMeters>,
}

/// The phone an address is known as; `None` once two phones were seen behind it.
#[derive(Debug, Clone, Copy)]
struct PeerPhone {
    mac: Option<Mac>,
    at: i64,
}

/// How long an address stays tied to a phone (a boot takes seconds; DHCP leases change).
const PEER_TTL_MS: i64 = 15 * 60 * 1000;

impl Resolver {
    pub fn new(ready: Arc<Ready>, seen: Arc<SeenBuffer>, files_dir: Option<PathBuf>) -> Resolver {
        Resolver {
            ready,
            seen,
            files_dir: files_dir.map(Arc::new),
            digests: Default::default(),
            by_peer: Default::default(),
            guard: Arc::new(crate::access::Guard::new(Default::default())),
            auth: Default::default(),
            audit: Default::default(),
            meters: Default::default(),
        }
    }

    /// The same resolver checking Digest answers against nonces keyed by `secret`.
    pub fn with_nonce_secret(mut self, secret: [u8; 32]) -> Resolver {
        self.auth = Arc::new(crate::auth::Authenticator::with_secret(secret));
        self
    }

    /// The same resolver noting audited fetches into `audit`.
    pub fn with_audit(mut self, audit: Arc<AuditBuffer>) -> Resolver {
        self.audit = audit;
        self
    }

    /// A fresh challenge, for answering [`Resolution::Unauthorized`] over HTTP.
    pub fn challenge(&self) -> [String; 2] {
        self.auth.challenge(now_ms())
    }

    /// The same resolver with other ban limits.
    pub fn with_guard(mut self, cfg: crate::access::GuardConfig) -> Resolver {
        self.guard = Arc::new(crate::access::Guard::new(cfg));
        self
    }

    /// Notes that `peer` fetched a file of `mac` (TFTP only).
    fn note_peer(&self, peer: IpAddr, mac: Mac, now: i64) {
        let Ok(mut g) = self.by_peer.lock() else {
            return;
        };
        let e = g.entry(peer).or_insert(PeerPhone {
            mac: Some(mac),
            at: now,
        });
        if e.mac != Some(mac) && now - e.at < PEER_TTL_MS {
            e.mac = None; // two phones behind one address: refuse to guess
        } else if now - e.at >= PEER_TTL_MS {
            e.mac = Some(mac);
        }
        e.at = now;
        if g.len() > 100_000 {
            g.retain(|_, p| now - p.at < PEER_TTL_MS);
        }
    }

    /// The one phone `peer` is known as, if there is exactly one and it is recent.
    fn peer_phone(&self, peer: IpAddr, now: i64) -> Option<Mac> {
        let g = self.by_peer.lock().ok()?;
        g.get(&peer)
            .filter(|p| now - p.at < PEER_TTL_MS)
            .and_then(|p| p.mac)
    }

    /// The answer now; a known phone whose files are still being rendered after a start is
    /// answered as a miss (transports use [`answer`], which waits for them).
    pub fn resolve(&self, facts: &RequestFacts<'_>) -> Resolution {
        let (r, banned) = self.decide(facts).unwrap_or((Resolution::NotFound, false));
        self.count(facts, &r, banned);
        r
    }

    /// Counts a request by transport, what it asked for and how it ended.
    fn count(&self, facts: &RequestFacts<'_>, r: &Resolution, banned: bool) {
        use crate::telemetry::{Kind, Result as R};
        let name = facts.path.rsplit('/').next().unwrap_or("");
        let kind = match r {
            Resolution::Disk(_) if crate::firmware::identify(name).is_some() => Kind::Firmware,
            Resolution::Disk(_) => Kind::Static,
            _ if name.ends_with(".boot") => Kind::Boot,
            _ if name_mac(name).is_some() => Kind::PerMac,
            _ => Kind::Common,
        };
        let result = match (r, banned) {
            (_, true) => R::Banned,
            (Resolution::Found(_) | Resolution::Disk(_), _) => R::Served,
            (Resolution::NotFound, _) => R::NotFound,
            (Resolution::Unauthorized, _) => R::Unauthorized,
        };
        let t = match facts.transport {
            Transport::Http => 0,
            Transport::Https => 1,
            Transport::Tftp => 2,
        };
        self.meters.count(t, kind, result);
    }

    /// The answer, and whether the address was banned.
    fn decide(&self, facts: &RequestFacts<'_>) -> Result<(Resolution, bool), Pending> {
        let now = now_ms();
        let snap = self.ready.load();
        let generic_miss = || miss_for(None, &snap);
        if self.guard.banned(facts.peer, now) {
            tracing::debug!(peer = %facts.peer, path = facts.path, "banned address refused");
            if let Some(t) = split_path(facts.path).filter(|t| name_mac(&t.name).is_some()) {
                self.audit.note(
                    audit::Event {
                        peer: facts.peer,
                        transport: facts.transport.as_str(),
                        site_id: None,
                        mac: name_mac(&t.name),
                        file: t.name.into(),
                        result: audit::FetchResult::Banned,
                        auth: "none",
                        auth_generation: None,
                    },
                    now,
                );
            }
            return Ok((generic_miss(), true));
        }
        let Some(target) = split_path(facts.path) else {
            return Ok((generic_miss(), false));
        };
        let (r, count_miss) = self.resolve_target(facts, &target, &snap, now)?;
        if count_miss {
            // The phones this address stands for: those seen fetching their own files from
            // it, or those of sites whose allowed networks hold it, whichever is more.
            let phones = || {
                self.seen
                    .phones_from(facts.peer, now)
                    .max(snap.phones_in_site_networks(facts.peer))
            };
            if let Some(ban) = self.guard.miss(facts.peer, now, phones) {
                crate::telemetry::banned(self.guard.active());
                if ban.phones > 0 {
                    tracing::warn!(target: "phoneprov::audit", peer = %facts.peer, misses = ban.misses,
                        phones = ban.phones, until_ms = ban.until, transport = facts.transport.as_str(),
                        "address banned: repeated misses on per-MAC files beyond its phones' allowance; its phones are refused too until the ban ends (raise --ban-after, or fix what they ask for)");
                } else {
                    tracing::warn!(target: "phoneprov::audit", peer = %facts.peer, misses = ban.misses,
                        until_ms = ban.until, transport = facts.transport.as_str(),
                        "address banned: repeated misses on per-MAC files");
                }
            }
        }
        Ok((r, false))
    }

    /// Whether the caller may have the site's files, and what its credentials proved. The
    /// credential check runs for every HTTP request that names a site, with or without one,
    /// and costs the same whatever it finds.
    fn gate(&self, site: Option<&SiteFiles>, facts: &RequestFacts<'_>, now: i64) -> Gate {
        let a = site.map(|s| &s.access);
        let auth = match facts.transport {
            Transport::Tftp => None,
            _ => {
                let cur = a.and_then(|a| a.auth.as_ref());
                let prev = a
                    .filter(|a| a.previous_until.is_some_and(|u| now < u))
                    .and_then(|a| a.previous_auth.as_ref());
                let o = *facts.auth_checked.get_or_init(|| {
                    self.auth
                        .check(facts.authorization, facts.method, facts.uri, cur, prev, now)
                });
                cur.is_some().then_some(o)
            }
        };
        let Some(a) = a else {
            return Gate::NoSite;
        };
        if !a.allow_nets.is_empty() && !a.allow_nets.iter().any(|n| n.contains(facts.peer)) {
            return Gate::Network;
        }
        if a.require_https && facts.transport != Transport::Https {
            return Gate::Transport;
        }
        match (facts.transport, a.auth.is_some()) {
            (Transport::Tftp, _) => Gate::Open {
                tftp_sensitive: a.tftp_allowed(),
            },
            (_, false) => Gate::Open {
                tftp_sensitive: true,
            },
            (_, true) => Gate::Auth(auth.unwrap_or(crate::auth::Outcome::Missing)),
        }
    }

    /// The answer, and whether it counts as a miss toward a ban.
    fn resolve_target(
        &self,
        facts: &RequestFacts<'_>,
        target: &Target,
        snap: &crate::render::Snapshot,
        now: i64,
    ) -> Result<(Resolution, bool), Pending> {
        // The User-Agent is parsed only when the answer depends on it: a name without a MAC.
        // Over TFTP, which has none, the phone is known by its address instead.
        let tftp = facts.transport == Transport::Tftp;
        let mut ua_mac: Option<Option<Mac>> = None;
        let mut ua_mac = || {
            *ua_mac.get_or_insert_with(|| match tftp {
                true => self.peer_phone(facts.peer, now),
                false => facts.user_agent.and_then(|u| UserAgent::parse(u).mac),
            })
        };
        let site = match &target.key {
            Some(key) => snap.site_by_key(key).cloned(),
            None => keyless_site(snap.keyless(), &target.name, &mut ua_mac),
        };
        let gate = self.gate(site.as_deref(), facts, now);
        let asked = match gate {
            Gate::Auth(o) if !o.ok() => Asked::Refused,
            _ => Asked::Granted,
        };
        let per_mac = name_mac(&target.name);
        let file = site
            .as_ref()
            .and_then(|s| lookup(s, &target.name, per_mac, &mut ua_mac, asked));
        // A key that names no site does a site's lookup all the same (in any site, the result
        // thrown away): otherwise a wrong key answers measurably sooner than a right one, and
        // a scanner could tell keys apart by time (tests/timing.rs).
        if site.is_none()
            && target.key.is_some()
            && let Some(decoy) = snap.sites().next()
        {
            std::hint::black_box(lookup(decoy, &target.name, per_mac, &mut ua_mac, asked));
        }
        // A known phone whose files are still being rendered after a start: it waits.
        let pending = file.is_none()
            && snap.settling()
            && per_mac.is_some_and(|m| site.as_ref().is_some_and(|s| s.phones.contains_key(&m)));
        let sensitive = file.is_some() || per_mac.is_some();
        let (auth_word, generation) = match (&gate, &site) {
            (Gate::Auth(o), Some(s)) => (o.as_str(), Some(s.access.auth_generation)),
            _ => ("none", None),
        };
        let site_id = site.as_ref().map(|s| s.site_id);
        let audit_mac = file.as_ref().and_then(|f| f.mac()).or(per_mac);
        let note = |result: audit::FetchResult| {
            if sensitive {
                self.audit.note(
                    audit::Event {
                        peer: facts.peer,
                        transport: facts.transport.as_str(),
                        site_id,
                        mac: audit_mac,
                        file: target.name.as_str().into(),
                        result,
                        auth: auth_word,
                        auth_generation: generation,
                    },
                    now,
                );
            }
        };
        let site_miss = miss_for(site.as_deref(), snap);
        let miss = || site_miss.clone();
        // Anything that ends in a miss does the same work first: a look in the files
        // directory, so a miss takes as long whatever caused it.
        let static_file = || self.disk(&target.name);
        // A firmware image needs no login (phones may not send one for it, and it holds no
        // secret), but only a phone of a site sent to it gets it, from where the site allows.
        if let (Some(s), Gate::Open { .. } | Gate::Auth(_)) = (&site, &gate)
            && let Some(d) = self.site_image(s, &target.name, facts)
        {
            return Ok((Resolution::Disk(d), false));
        }
        let recovery = || self.recovery_image(snap, target.key.as_deref(), &target.name, facts);
        let refused = |result: audit::FetchResult| {
            let _ = static_file();
            note(result);
            (miss(), per_mac.is_some())
        };
        let authorized = match gate {
            Gate::NoSite => {
                // Static files at the root when some site serves there; recovery images.
                let keyless_root = target.key.is_none() && !snap.keyless().is_empty();
                let found = static_file().filter(|_| keyless_root).or_else(recovery);
                return Ok(match found {
                    Some(d) => (Resolution::Disk(d), false),
                    None => refused(audit::FetchResult::NotFound),
                });
            }
            Gate::Network => return Ok(refused(audit::FetchResult::RefusedNetwork)),
            Gate::Transport => return Ok(refused(audit::FetchResult::RefusedTransport)),
            Gate::Open { tftp_sensitive } => {
                if sensitive && !tftp_sensitive {
                    return Ok(refused(audit::FetchResult::RefusedTransport));
                }
                true
            }
            Gate::Auth(o) => o.ok(),
        };
        let (Some(site), true) = (site, authorized) else {
            // A site that wants credentials the caller did not prove. A phone's first try
            // carries none; only a wrong answer, or a name we do not have, counts toward a ban.
            let _ = static_file();
            note(audit::FetchResult::Unauthorized);
            let counts = per_mac.is_some()
                && ((file.is_none() && !pending)
                    || !matches!(gate, Gate::Auth(crate::auth::Outcome::Missing)));
            return Ok((Resolution::Unauthorized, counts));
        };
        let Some(file) = file else {
            if pending {
                return Err(Pending);
            }
            // A caller that passed the gate learns that the file is not there.
            return Ok(match static_file().or_else(recovery) {
                Some(d) => (Resolution::Disk(d), false),
                None => {
                    note(audit::FetchResult::NotFound);
                    (Resolution::NotFound, per_mac.is_some())
                }
            });
        };
        // Last-seen: the file's phone, or a phone of this site named by its User-Agent.
        let mac = file
            .mac()
            .or_else(|| ua_mac().filter(|m| site.phones.contains_key(m)));
        if let (true, Some(m)) = (tftp, file.mac()) {
            self.note_peer(facts.peer, m, now);
        }
        if let Some(mac) = mac {
            self.seen.record(
                mac,
                now,
                facts.peer,
                facts.transport.as_str(),
                &target.name,
                facts.user_agent,
            );
        }
        note(audit::FetchResult::Served);
        Ok((Resolution::Found(file), false))
    }

    /// Where a phone's upload goes: its site and MAC, if the path names a file the phone's
    /// vendor uploads, the phone is in the site, and the caller passes the site's gate.
    /// `None` is answered like any other miss.
    pub fn upload_target(
        &self,
        facts: &RequestFacts<'_>,
    ) -> Result<(i64, Mac, String), Resolution> {
        let snap = self.ready.load();
        let generic = miss_for(None, &snap);
        let now = now_ms();
        if self.guard.banned(facts.peer, now) {
            return Err(generic);
        }
        let target = split_path(facts.path).ok_or(generic.clone())?;
        let site = match &target.key {
            Some(key) => snap.site_by_key(key).cloned(),
            None => keyless_site(snap.keyless(), &target.name, &mut || None),
        };
        let gate = self.gate(site.as_deref(), facts, now);
        let site = site.ok_or(generic)?;
        let miss = miss_for(Some(&site), &snap);
        match gate {
            Gate::Open { .. } => {}
            Gate::Auth(o) if o.ok() => {}
            _ => return Err(miss),
        }
        let found = (|| {
            let mac = name_mac(&target.name)?;
            let vendor = Catalog::get().vendor(site.phones.get(&mac)?)?;
            let pattern_ok = vendor
                .uploads
                .iter()
                .any(|u| u.name.replace("{mac}", &mac.to_string()) == target.name);
            pattern_ok.then(|| (site.site_id, mac, target.name.clone()))
        })();
        found.ok_or(miss)
    }
}

/// The answer to a miss: a site's own misses are 404 unless it has a login; a request that
/// names no site is answered like a login site's miss while any site has a login, so the two
/// cannot be told apart.
fn miss_for(site: Option<&SiteFiles>, snap: &crate::render::Snapshot) -> Resolution {
    let challenge = match site {
        Some(s) => s.access.auth.is_some(),
        None => snap.any_auth(),
    };
    match challenge {
        true => Resolution::Unauthorized,
        false => Resolution::NotFound,
    }
}

/// What a site's rules say of a request, before any file is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    /// The request names no site.
    NoSite,
    /// From outside the site's allowed networks.
    Network,
    /// Over a transport the site refuses (plain HTTP or TFTP when it requires HTTPS).
    Transport,
    /// No credentials needed; whether rendered files may go out over TFTP.
    Open { tftp_sensitive: bool },
    /// Credentials needed; what the request proved.
    Auth(crate::auth::Outcome),
}

/// At the key-less root: the site whose phone the name (or the User-Agent) names; for a name
/// without a MAC, the only key-less site. More than one candidate is no answer.
fn keyless_site(
    sites: &[Arc<SiteFiles>],
    name: &str,
    ua_mac: &mut impl FnMut() -> Option<Mac>,
) -> Option<Arc<SiteFiles>> {
    if sites.is_empty() {
        return None;
    }
    if let Some(mac) = name_mac(name).or_else(&mut *ua_mac) {
        if let Some(s) = sites.iter().find(|s| s.phones.contains_key(&mac)) {
            return Some(s.clone());
        }
        if name_mac(name).is_some() {
            return None;
        }
    }
    match sites {
        [only] => Some(only.clone()),
        _ => None,
    }
}

/// The file `name` (whose MAC, if it names one, is `mac`) of the site, or the phone's own
/// file an alias stands for.
fn lookup(
    site: &SiteFiles,
    name: &str,
    mac: Option<Mac>,
    ua_mac: &mut impl FnMut() -> Option<Mac>,
    asked: Asked,
) -> Option<FileRef> {
    if let Some(f) = site.get(name, mac, asked) {
        return Some(f);
    }
    // Aliases name no MAC; a per-MAC name that missed is a miss, decided without parsing the
    // User-Agent, so a known and an unknown MAC take as long.
    if mac.is_some() {
        return None;
    }
    let mac = ua_mac()?;
    let vendor = Catalog::get().vendor(site.phones.get(&mac)?)?;
    let alias = vendor.aliases.iter().find(|a| a.name == name)?;
    site.get(
        &alias.serves.replace("{mac}", &mac.to_string()),
        Some(mac),
        asked,
    )
}
