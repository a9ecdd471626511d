//! What rendering needs, loaded from the database: a site's head (the site, the settings its
//! phones share, firmware assignments) once, then its phones a page at a time with their
//! lines, own settings and uploads, indexed by MAC so a page renders in linear time and a
//! site of any size renders in bounded memory.

use std::collections::{HashMap, HashSet};

use crate::firmware::judge::Memory;
use crate::mac::Mac;
use crate::model::{Line, Phone, Setting, Site};
use crate::store::firmware::{self as fw, Image, Target};
use crate::store::{self, Conn, StoreError};

/// Phones rendered per page.
pub(super) const PAGE: i64 = 2000;

/// A site without its phones.
#[derive(Debug, Clone)]
pub(super) struct Head {
    pub site: Site,
    /// Global, model, site and site-model settings (raw: the policy filters them).
    pub shared: Vec<Setting>,
    /// Every firmware assignment with its image.
    pub firmware: Vec<(Target, Image)>,
    /// Refused digests, for judging those images.
    pub memory: Memory,
}

/// A site's head and some of its phones.
#[derive(Debug, Clone)]
pub(super) struct Bundle {
    pub site: Site,
    pub shared: Vec<Setting>,
    pub phones: Vec<Phone>,
    pub lines: HashMap<Mac, Vec<Line>>,
    /// Per-phone settings, by phone.
    pub own: HashMap<Mac, Vec<Setting>>,
    pub uploads: HashMap<Mac, Vec<(String, Vec<u8>)>>,
    /// Assignments that can reach these phones: the site's, and those naming one of them.
    pub firmware: Vec<(Target, Image)>,
    pub memory: Memory,
}

impl Bundle {
    /// The head alone, with no phones yet.
    pub fn of_head(head: &Head) -> Bundle {
        Bundle {
            site: head.site.clone(),
            shared: head.shared.clone(),
            phones: Vec::new(),
            lines: HashMap::new(),
            own: HashMap::new(),
            uploads: HashMap::new(),
            firmware: Vec::new(),
            memory: head.memory.clone(),
        }
    }
}

/// Every assignment with its image.
pub(super) async fn assigned_images(conn: &mut Conn) -> Result<Vec<(Target, Image)>, StoreError> {
    let images = fw::images(conn).await?;
    Ok(fw::assignments(conn)
        .await?
        .into_iter()
        .filter_map(|(t, sha)| {
            images
                .iter()
                .find(|i| i.sha256 == sha)
                .map(|i| (t, i.clone()))
        })
        .collect())
}

/// The head of a site, if it exists.
pub(super) async fn load_head(conn: &mut Conn, site_id: i64) -> Result<Option<Head>, StoreError> {
    let Some(site) = store::site_by_id(conn, site_id).await? else {
        return Ok(None);
    };
    Ok(Some(Head {
        shared: store::shared_settings(conn, site_id).await?,
        firmware: assigned_images(conn).await?,
        memory: fw::refused(conn).await?,
        site,
    }))
}

/// The given phones (all of one site, in MAC order) with what they need.
pub(super) async fn load_phones(
    conn: &mut Conn,
    head: &Head,
    phones: Vec<Phone>,
) -> Result<Bundle, StoreError> {
    let site_id = head.site.id;
    let mut b = Bundle::of_head(head);
    let (Some(lo), Some(hi)) = (phones.first().map(|p| p.mac), phones.last().map(|p| p.mac)) else {
        return Ok(b);
    };
    let macs: HashSet<Mac> = phones.iter().map(|p| p.mac).collect();
    for (mac, line) in store::lines_between(conn, lo, hi).await? {
        if macs.contains(&mac) {
            b.lines.entry(mac).or_default().push(line);
        }
    }
    for s in store::phone_settings_between(conn, lo, hi).await? {
        if let crate::model::Layer::Phone { mac } = s.layer
            && macs.contains(&mac)
        {
            b.own.entry(mac).or_default().push(s);
        }
    }
    for (mac, name, body) in store::uploads_between(conn, lo, hi).await? {
        if macs.contains(&mac) {
            b.uploads.entry(mac).or_default().push((name, body));
        }
    }
    b.firmware = head
        .firmware
        .iter()
        .filter(|(t, _)| match t {
            Target::Site { site_id: s } | Target::SiteModel { site_id: s, .. } => *s == site_id,
            Target::Phone { mac } => macs.contains(mac),
        })
        .cloned()
        .collect();
    b.phones = phones;
    Ok(b)
}

/// A page of a site's phones after `after`, loaded; empty phones at the end.
pub(super) async fn load_page(
    conn: &mut Conn,
    head: &Head,
    after: Option<Mac>,
) -> Result<Bundle, StoreError> {
    let phones = store::phones_page(conn, head.site.id, after, PAGE).await?;
    load_phones(conn, head, phones).await
}

/// One phone of the site (none if it is not, or no longer, in the site).
pub(super) async fn load_one(conn: &mut Conn, head: &Head, mac: Mac) -> Result<Bundle, StoreError> {
    let phone = store::phone(conn, mac)
        .await?
        .filter(|p| p.site_id == head.site.id);
    load_phones(conn, head, phone.into_iter().collect()).await
}
