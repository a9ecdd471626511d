//! Firmware in the snapshot: which assigned image a phone runs (only while the one judgement
//! allows it), the images each site sends its phones to, and which stored images may be served
//! by content.

use super::bundle::{Bundle, assigned_images};
use crate::firmware::judge::{Memory, judge_stored, remembered_verdict};
use crate::firmware::policy::{Facts, Policy, Verdict};
use crate::mac::Mac;
use crate::model::Phone;
use crate::render::{FirmwareIndex, SiteFiles};
use crate::store::firmware::{self as fw, Image, Target};
use crate::store::{self, Conn, StoreError};

/// What the policy in force says of a stored image now: the one judgement, from what was
/// recorded of its bytes and claims.
pub fn stored_verdict(policy: &Policy, memory: &Memory, i: &Image) -> Verdict {
    judge_stored(
        policy,
        memory,
        &i.content(),
        &i.file_name,
        &i.version,
        &i.models,
    )
}

/// Which assigned image a phone runs: its own assignment, else its model's in its site, else
/// its site's — only one that fits its model. The policy is not consulted here.
fn assigned_image<'a>(assigned: &'a [(Target, Image)], phone: &Phone) -> Option<&'a Image> {
    let pick = |want: &dyn Fn(&Target) -> bool| {
        assigned
            .iter()
            .find(|(t, i)| want(t) && i.models.contains(&phone.model))
            .map(|(_, i)| i)
    };
    pick(&|t| matches!(t, Target::Phone { mac } if *mac == phone.mac))
        .or_else(|| pick(&|t| matches!(t, Target::SiteModel { site_id, model } if *site_id == phone.site_id && *model == phone.model)))
        .or_else(|| pick(&|t| matches!(t, Target::Site { site_id } if *site_id == phone.site_id)))
}

/// The image a phone is to run, only if the policy allows it now.
pub(super) fn target_image<'a>(b: &'a Bundle, phone: &Phone, policy: &Policy) -> Option<&'a Image> {
    let image = assigned_image(&b.firmware, phone)?;
    let verdict = stored_verdict(policy, &b.memory, image);
    if !verdict.allowed() {
        tracing::error!(mac = %phone.mac, file = %image.file_name, refusals = ?verdict.refusals,
            "assigned firmware is denied by the policy: not rendered");
        return None;
    }
    Some(image)
}

/// How far each assigned image has rolled out: by sha256, (phones it is assigned to, of them
/// those that last reported running its version). Chosen by the same [`assigned_image`] the
/// renderer uses.
pub async fn rollout(
    conn: &mut Conn,
) -> Result<std::collections::HashMap<String, (u64, u64)>, StoreError> {
    let assigned = assigned_images(conn).await?;
    let seen = store::seen_firmware(conn).await?;
    let mut out: std::collections::HashMap<String, (u64, u64)> = Default::default();
    if assigned.is_empty() {
        return Ok(out);
    }
    store::each_phone(conn, |p| {
        if let Some(i) = assigned_image(&assigned, &p) {
            let e = out.entry(i.sha256.clone()).or_default();
            e.0 += 1;
            if seen.get(&p.mac).is_some_and(|v| *v == i.version) {
                e.1 += 1;
            }
        }
    })
    .await?;
    Ok(out)
}

/// Notes that `phone` is sent to its target image (if the policy allows it) in the site's
/// image index, replacing what it was sent to before.
pub(super) fn note_image(out: &mut SiteFiles, b: &Bundle, phone: &Phone, policy: &Policy) {
    for img in out.images.values_mut() {
        img.phones.remove(&phone.mac);
    }
    out.images.retain(|_, i| !i.phones.is_empty());
    if let Some(i) = assigned_image(&b.firmware, phone)
        && stored_verdict(policy, &b.memory, i).allowed()
    {
        let e = out.images.entry(i.file_name.clone()).or_insert_with(|| {
            crate::render::ready::SiteImage {
                sha256: i.sha256.clone(),
                models: i.models.clone(),
                phones: Default::default(),
            }
        });
        e.phones.insert(phone.mac);
    }
}

/// Phones whose assigned image the policy denies: (MAC, file name), chosen by the same
/// [`assigned_image`] the renderer uses.
pub async fn denied_assignments(
    conn: &mut Conn,
    policy: &Policy,
) -> Result<Vec<(Mac, String)>, StoreError> {
    let assigned = assigned_images(conn).await?;
    let memory = fw::refused(conn).await?;
    let mut out = Vec::new();
    for p in store::list_phones(conn, None).await? {
        if let Some(i) = assigned_image(&assigned, &p)
            && !stored_verdict(policy, &memory, i).allowed()
        {
            out.push((p.mac, i.file_name.clone()));
        }
    }
    Ok(out)
}

/// Which stored images may be served, by content, under `policy`.
pub(super) async fn firmware_index(
    conn: &mut Conn,
    policy: &Policy,
    dir: &std::path::Path,
) -> Result<FirmwareIndex, StoreError> {
    let mut idx = FirmwareIndex::default();
    let memory = fw::refused(conn).await?;
    for i in fw::images(conn).await? {
        if stored_verdict(policy, &memory, &i).allowed() {
            idx.allowed.insert(i.sha256.clone());
            idx.by_sha
                .insert(i.sha256.clone(), dir.join(format!("{}.img", i.sha256)));
        } else {
            idx.denied_sha1.extend(i.sha1.clone());
            idx.denied.insert(i.sha256);
        }
    }
    // Remembered bytes that are still denied as what they were refused as.
    for (sha, r) in &memory {
        let still = remembered_verdict(policy, r, sha, None).is_none_or(|v| !v.allowed());
        if still {
            idx.denied.insert(sha.clone());
        }
    }
    // Known builds whose identity the policy denies, and every digest a deny rule names.
    for k in &policy.known {
        let denied = !policy
            .check(&Facts {
                vendor: k.vendor.clone(),
                version: Some(k.version.clone()),
                models: k.models.clone(),
                sha256: k.sha256.clone(),
                sha1: k.sha1.clone(),
            })
            .allowed();
        if denied {
            idx.denied.extend(k.sha256.clone());
            idx.denied_sha1.extend(k.sha1.clone());
        }
    }
    for r in &policy.rules {
        if r.kind == crate::firmware::policy::Kind::Deny {
            idx.denied.extend(r.sha256.iter().cloned());
            idx.denied_sha1.extend(r.sha1.iter().cloned());
        }
    }
    Ok(idx)
}
