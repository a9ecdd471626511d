//! The operator's firmware verbs: store images (refusing what the policy denies, and
//! remembering refused digests), assign targets per site, model within site and phone (a staged
//! rollout), check a file against the policy, and audit phones that already run a denied build.

use std::path::Path;

use serde::Serialize;

use crate::catalog::Catalog;
use crate::firmware::Version;
use crate::firmware::content::Content;
use crate::firmware::judge::{Claims, Judgement, judge};
use crate::firmware::policy::{Facts, Verdict};
use crate::manage::{Error, Manager, Result, parse_mac};
use crate::publish::stored_verdict;
use crate::store::firmware::{self as fw, Image, Target};
use crate::store::{self, Scope};

/// What a file is, as far as the policy is concerned: the one [`judge`]ment.
pub type Checked = Judgement;

/// A stored image with what the policy says of it now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImageView {
    #[serde(flatten)]
    pub image: Image,
    pub verdict: Verdict,
    pub assigned: usize,
    /// Phones this image is the target of.
    #[serde(skip)]
    pub targeted: u64,
    /// Of those, the phones that last reported running its version.
    #[serde(skip)]
    pub running: u64,
}

/// A phone whose running firmware the policy denies.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AtRisk {
    pub mac: String,
    pub model: String,
    pub site: String,
    pub firmware: String,
    pub seen_at: i64,
    pub refusals: Vec<String>,
}

/// Where an assignment goes, as the user names it.
#[derive(Debug, Clone, Default)]
pub struct TargetInput {
    pub site: Option<String>,
    pub model: Option<String>,
    pub phone: Option<String>,
}

impl Manager {
    /// Judges a file by its bytes and the claims made for it; stores nothing.
    pub async fn firmware_check(
        &self,
        path: &Path,
        version: Option<&str>,
        models: &[String],
    ) -> Result<Checked> {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::Invalid(format!("'{}' has no usable file name", path.display())))?
            .to_string();
        let owned = path.to_path_buf();
        let content = tokio::task::spawn_blocking(move || Content::of_file(&owned))
            .await
            .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?
            .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?;
        let memory = fw::refused(&mut *self.store.conn().await?).await?;
        let claims = Claims {
            file_name: &file_name,
            version,
            models,
        };
        judge(&self.policy.get(), &memory, &content, &claims).map_err(|e| Error::Invalid(e.0))
    }

    /// Stores an image. A denied image is refused with the rule that denied it, nothing is
    /// stored, and its digest is remembered so a renamed copy is refused anywhere.
    pub async fn firmware_add(
        &self,
        path: &Path,
        version: Option<&str>,
        models: &[String],
    ) -> Result<Image> {
        let c = self.firmware_check(path, version, models).await?;
        let mut conn = self.store.conn().await?;
        if !c.verdict.allowed() {
            let reason = c.verdict.refusals.join("; ");
            // Bytes a deny rule or their own digest condemns are remembered as what they claimed
            // to be, so a renamed or re-declared copy is judged as this one. Bytes merely not
            // approved (allow list, minimum) are not: a corrected claim may pass.
            if c.verdict.denied {
                let r = crate::model::RefusedImage {
                    file_name: c.file_name.clone(),
                    vendor: Some(c.vendor.clone()),
                    version: Some(c.version.to_string()),
                    models: c.models.clone(),
                    reason: reason.clone(),
                };
                // In a write transaction like every change: the change log's numbers are
                // handed out in commit order only under the write lock.
                let mut tx = self.store.begin().await?;
                fw::remember_refused(&mut tx, &c.content, &r).await?;
                store::log_change(&mut tx, Scope::All).await?;
                store::commit(tx).await?;
            }
            tracing::warn!(file = %c.file_name, sha256 = %c.content.sha256, sha1 = %c.content.sha1,
                %reason, "firmware refused by policy");
            return Err(Error::Invalid(format!("{} refused: {reason}", c.file_name)));
        }
        if let Some(other) = fw::images(&mut conn)
            .await?
            .into_iter()
            .find(|i| i.sha256 == c.content.sha256 || i.file_name == c.file_name)
        {
            return Err(Error::Conflict(if other.sha256 == c.content.sha256 {
                format!(
                    "this image is already stored as {} (version {})",
                    other.file_name, other.version
                )
            } else {
                format!(
                    "another image named {} is stored (sha256 {}); rename the file",
                    other.file_name,
                    &other.sha256[..16]
                )
            }));
        }
        std::fs::create_dir_all(&self.firmware_dir).map_err(|e| {
            Error::Invalid(format!(
                "cannot create {}: {e}",
                self.firmware_dir.display()
            ))
        })?;
        let dest = self.firmware_dir.join(format!("{}.img", c.content.sha256));
        let tmp = self.firmware_dir.join(format!(".{}.tmp", c.content.sha256));
        std::fs::copy(path, &tmp)
            .and_then(|_| std::fs::rename(&tmp, &dest))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                Error::Invalid(format!("cannot store {}: {e}", c.file_name))
            })?;
        // The copy is what phones get: it must be the bytes that were judged.
        let stored = Content::of_file(&dest)
            .map_err(|e| Error::Invalid(format!("cannot read back {}: {e}", dest.display())))?;
        if stored != c.content {
            let _ = std::fs::remove_file(&dest);
            return Err(Error::Invalid(format!(
                "{} changed while it was being stored; try again",
                c.file_name
            )));
        }
        let image = Image {
            sha256: c.content.sha256,
            vendor: c.vendor,
            version: c.version.to_string(),
            models: c.models,
            size: c.content.size,
            sha1: Some(c.content.sha1),
            file_name: c.file_name,
            added_at: store::now_ms(),
        };
        let recorded = async {
            let mut tx = self.store.begin().await?;
            fw::insert_image(&mut tx, &image).await?;
            store::log_change(&mut tx, Scope::All).await?;
            store::commit(tx).await
        };
        if let Err(e) = recorded.await {
            // Not recorded, so not stored: no image file without its row (unless another
            // add of the same bytes won the race and the file is its).
            if !e.is_unique_violation() {
                let _ = std::fs::remove_file(&dest);
            }
            return Err(e.into());
        }
        tracing::info!(file = %image.file_name, version = %image.version, sha256 = %image.sha256, "firmware stored");
        Ok(image)
    }

    pub async fn firmware_list(&self) -> Result<Vec<ImageView>> {
        let mut conn = self.store.conn().await?;
        let assigned = fw::assignments(&mut conn).await?;
        let memory = fw::refused(&mut conn).await?;
        let policy = self.policy.get();
        let rolled = crate::publish::rollout(&mut conn).await?;
        Ok(fw::images(&mut conn)
            .await?
            .into_iter()
            .map(|image| {
                let (targeted, running) = rolled.get(&image.sha256).copied().unwrap_or_default();
                ImageView {
                    verdict: stored_verdict(&policy, &memory, &image),
                    assigned: assigned.iter().filter(|(_, s)| *s == image.sha256).count(),
                    targeted,
                    running,
                    image,
                }
            })
            .collect())
    }

    /// Finds a stored image by version or by (a prefix of at least 8 digits of) its sha256.
    pub(crate) async fn image_named(&self, conn: &mut store::Conn, what: &str) -> Result<Image> {
        let w = what.trim().to_ascii_lowercase();
        let all = fw::images(conn).await?;
        let hits: Vec<Image> = all
            .into_iter()
            .filter(|i| i.version == w || (w.len() >= 8 && i.sha256.starts_with(&w)))
            .collect();
        match hits.len() {
            1 => Ok(hits.into_iter().next().expect("one hit")),
            0 => Err(Error::NotFound(format!(
                "no stored image with version or sha256 '{what}'"
            ))),
            _ => Err(Error::Invalid(format!(
                "'{what}' names {} images ({}); give the sha256",
                hits.len(),
                hits.iter()
                    .map(|i| i.file_name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    pub async fn firmware_rm(&self, what: &str) -> Result<Image> {
        let mut tx = self.store.begin().await?;
        let image = self.image_named(&mut tx, what).await?;
        let n = fw::assignments(&mut tx)
            .await?
            .iter()
            .filter(|(_, s)| *s == image.sha256)
            .count();
        if n > 0 {
            return Err(Error::Conflict(format!(
                "{} is assigned {n} time(s); unassign it first",
                image.file_name
            )));
        }
        fw::delete_image(&mut tx, &image.sha256).await?;
        store::log_change(&mut tx, Scope::All).await?;
        store::commit(tx).await?;
        let _ = std::fs::remove_file(self.firmware_dir.join(format!("{}.img", image.sha256)));
        Ok(image)
    }

    async fn target(
        &self,
        conn: &mut store::Conn,
        t: &TargetInput,
    ) -> Result<(Target, Scope, Vec<String>)> {
        let cat = Catalog::get();
        match (&t.site, &t.model, &t.phone) {
            (None, None, Some(mac)) => {
                let mac = parse_mac(mac)?;
                let p = store::phone(conn, mac).await?.ok_or_else(|| {
                    Error::NotFound(format!("phone {} is not enrolled", mac.colon()))
                })?;
                Ok((
                    Target::Phone { mac },
                    Scope::Phone(p.site_id, mac),
                    vec![p.model],
                ))
            }
            (Some(site), model, None) => {
                let s = store::site_by_name(conn, site)
                    .await?
                    .ok_or_else(|| Error::NotFound(format!("no site named '{site}'")))?;
                match model {
                    None => Ok((
                        Target::Site { site_id: s.id },
                        Scope::Site(s.id),
                        Vec::new(),
                    )),
                    Some(m) => {
                        let name = cat
                            .model(m)
                            .map(|x| x.name.clone())
                            .ok_or_else(|| Error::Invalid(cat.unknown_model_message(m)))?;
                        Ok((
                            Target::SiteModel {
                                site_id: s.id,
                                model: name.clone(),
                            },
                            Scope::Site(s.id),
                            vec![name],
                        ))
                    }
                }
            }
            _ => Err(Error::Invalid(
                "name one target: --site NAME [--model MODEL], or --phone MAC".into(),
            )),
        }
    }

    /// Assigns a stored image; refused if the policy denies it or it does not fit.
    pub async fn firmware_assign(&self, what: &str, t: &TargetInput) -> Result<Image> {
        let mut tx = self.store.begin().await?;
        let image = self.image_named(&mut tx, what).await?;
        let memory = fw::refused(&mut tx).await?;
        let verdict = stored_verdict(&self.policy.get(), &memory, &image);
        if !verdict.allowed() {
            return Err(Error::Invalid(format!(
                "{} refused: {}",
                image.file_name,
                verdict.refusals.join("; ")
            )));
        }
        let (target, scope, models) = self.target(&mut tx, t).await?;
        if let Some(m) = models.iter().find(|m| !image.models.contains(m)) {
            return Err(Error::Invalid(format!(
                "{} does not fit a {m}; it fits {}",
                image.file_name,
                image.models.join(", ")
            )));
        }
        if fw::assign(&mut tx, &target, &image.sha256).await? {
            store::log_change(&mut tx, scope).await?;
            crate::publish::trial_render(&mut tx, &self.renderer.get(), &self.policy.get(), scope)
                .await?;
        }
        store::commit(tx).await?;
        tracing::info!(file = %image.file_name, target = ?target, "firmware assigned");
        Ok(image)
    }

    pub async fn firmware_unassign(&self, t: &TargetInput) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let (target, scope, _) = self.target(&mut tx, t).await?;
        if !fw::unassign(&mut tx, &target).await? {
            return Err(Error::NotFound("no image is assigned there".into()));
        }
        store::log_change(&mut tx, scope).await?;
        store::commit(tx).await?;
        Ok(())
    }

    /// Phones whose last-seen User-Agent reports firmware the policy denies.
    pub async fn firmware_audit(&self) -> Result<Vec<AtRisk>> {
        let mut conn = self.store.conn().await?;
        let sites: std::collections::HashMap<i64, String> = store::list_sites(&mut conn)
            .await?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect();
        let mut out = Vec::new();
        for p in store::list_phones(&mut conn, None).await? {
            let Some(seen) = store::seen(&mut conn, p.mac).await? else {
                continue;
            };
            if let Some(refusals) = self.running_denied(&p.model, seen.firmware.as_deref()) {
                out.push(AtRisk {
                    mac: p.mac.colon(),
                    model: p.model,
                    site: sites.get(&p.site_id).cloned().unwrap_or_default(),
                    firmware: seen.firmware.unwrap_or_default(),
                    seen_at: seen.at,
                    refusals,
                });
            }
        }
        Ok(out)
    }

    /// What the policy says of a phone of `model` running `firmware`: the refusals, if denied.
    pub fn running_denied(&self, model: &str, firmware: Option<&str>) -> Option<Vec<String>> {
        let version = Version::parse(firmware?)?;
        let m = Catalog::get().model(model)?;
        let v = self.policy.get().check(&Facts {
            vendor: m.vendor.clone(),
            version: Some(version),
            models: vec![m.name.clone()],
            sha256: None,
            sha1: None,
        });
        (!v.allowed()).then_some(v.refusals)
    }
}
