//! The operator's firmware verbs: store images (refusing what the policy denies, and
//! remembering refused digests), assign targets per site, model within site and phone (a staged
//! rollout), check a file against the policy, and audit phones that already run a denied build.

use std::io::Read;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::catalog::Catalog;
use crate::firmware::policy::{Facts, Verdict};
use crate::firmware::{Version, fitting_models, identify};
use crate::manage::{Error, Manager, Result, parse_mac};
use crate::store::firmware::{self as fw, Image, Target};
use crate::store::{self, Scope};

/// What a file is, as far as the policy is concerned.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    pub file_name: String,
    pub sha256: String,
    pub size: u64,
    pub vendor: String,
    pub version: String,
    pub models: Vec<String>,
    pub verdict: Verdict,
}

/// A stored image with what the policy says of it now.
#[derive(Debug, Serialize)]
pub struct ImageView {
    #[serde(flatten)]
    pub image: Image,
    pub verdict: Verdict,
    pub assigned: usize,
}

/// A phone whose running firmware the policy denies.
#[derive(Debug, Serialize)]
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

fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

impl Manager {
    /// Identifies a file and asks the policy about it; stores nothing.
    pub fn firmware_check(
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
        let id = identify(&file_name);
        let cat = Catalog::get();
        let mut listed = Vec::new();
        for m in models {
            listed.push(
                cat.model(m)
                    .map(|m| m.name.clone())
                    .ok_or_else(|| Error::Invalid(cat.unknown_model_message(m)))?,
            );
        }
        let vendor = match (&id, listed.first()) {
            (Some(id), _) => id.vendor.clone(),
            (None, Some(m)) => cat.model(m).map(|m| m.vendor.clone()).unwrap_or_default(),
            (None, None) => {
                return Err(Error::Invalid(format!(
                    "cannot tell what '{file_name}' is from its name: give --version and --models"
                )));
            }
        };
        if let Some(bad) = listed
            .iter()
            .find(|m| cat.model(m).is_some_and(|x| x.vendor != vendor))
        {
            return Err(Error::Invalid(format!("{bad} is not a {vendor} model")));
        }
        let version = match (version, id.as_ref().and_then(|i| i.version.clone())) {
            (Some(v), _) => Version::parse(v)
                .ok_or_else(|| Error::Invalid(format!("'{v}' is not a version")))?,
            (None, Some(v)) => v,
            (None, None) => {
                return Err(Error::Invalid(format!(
                    "the version of '{file_name}' cannot be read from its name: give --version"
                )));
            }
        };
        if vendor == "yealink"
            && let Some(m) = listed
                .iter()
                .filter_map(|m| cat.model(m))
                .find(|m| m.family != Some(version.family()))
        {
            return Err(Error::Invalid(format!(
                "{file_name} (version {version}, family {}) does not fit a {} (family {})",
                version.family(),
                m.name,
                m.family
                    .map(|f| f.to_string())
                    .unwrap_or_else(|| "?".into())
            )));
        }
        if listed.is_empty() {
            listed = id.map(|i| i.models).unwrap_or_default();
        }
        let fits = fitting_models(&vendor, &version, &listed);
        if fits.is_empty() {
            return Err(Error::Invalid(format!(
                "{file_name} (version {version}) fits no known {vendor} model"
            )));
        }
        let (sha256, size) = sha256_file(path)
            .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?;
        let verdict = self.policy.get().check(&Facts {
            vendor: vendor.clone(),
            version: Some(version.clone()),
            models: fits.clone(),
            sha256: Some(sha256.clone()),
        });
        Ok(Checked {
            file_name,
            sha256,
            size,
            vendor,
            version: version.to_string(),
            models: fits,
            verdict,
        })
    }

    /// Stores an image. A denied image is refused with the rule that denied it, nothing is
    /// stored, and its digest is remembered so a renamed copy is refused anywhere.
    pub async fn firmware_add(
        &self,
        path: &Path,
        version: Option<&str>,
        models: &[String],
    ) -> Result<Image> {
        let c = self.firmware_check(path, version, models)?;
        let mut conn = self.store.conn().await?;
        if !c.verdict.allowed() {
            let reason = c.verdict.refusals.join("; ");
            fw::remember_refused(&mut conn, &c.sha256, &c.file_name, &reason).await?;
            store::log_change(&mut conn, Scope::All).await?;
            tracing::warn!(file = %c.file_name, sha256 = %c.sha256, %reason, "firmware refused by policy");
            return Err(Error::Invalid(format!("{} refused: {reason}", c.file_name)));
        }
        if let Some(other) = fw::images(&mut conn)
            .await?
            .into_iter()
            .find(|i| i.sha256 == c.sha256 || i.file_name == c.file_name)
        {
            return Err(Error::Conflict(if other.sha256 == c.sha256 {
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
        let dest = self.firmware_dir.join(format!("{}.img", c.sha256));
        let tmp = self.firmware_dir.join(format!(".{}.tmp", c.sha256));
        std::fs::copy(path, &tmp)
            .and_then(|_| std::fs::rename(&tmp, &dest))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                Error::Invalid(format!("cannot store {}: {e}", c.file_name))
            })?;
        let image = Image {
            sha256: c.sha256,
            vendor: c.vendor,
            version: c.version,
            models: c.models,
            size: c.size,
            file_name: c.file_name,
            added_at: store::now_ms(),
        };
        let mut tx = self.store.begin().await?;
        fw::insert_image(&mut tx, &image).await?;
        store::log_change(&mut tx, Scope::All).await?;
        store::commit(tx).await?;
        tracing::info!(file = %image.file_name, version = %image.version, sha256 = %image.sha256, "firmware stored");
        Ok(image)
    }

    pub async fn firmware_list(&self) -> Result<Vec<ImageView>> {
        let mut conn = self.store.conn().await?;
        let assigned = fw::assignments(&mut conn).await?;
        let policy = self.policy.get();
        Ok(fw::images(&mut conn)
            .await?
            .into_iter()
            .map(|image| ImageView {
                verdict: policy.check(&facts_of(&image)),
                assigned: assigned.iter().filter(|(_, s)| *s == image.sha256).count(),
                image,
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
        let verdict = self.policy.get().check(&facts_of(&image));
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
        });
        (!v.allowed()).then_some(v.refusals)
    }
}

/// The policy's view of a stored image.
pub fn facts_of(i: &Image) -> Facts {
    Facts {
        vendor: i.vendor.clone(),
        version: Version::parse(&i.version),
        models: i.models.clone(),
        sha256: Some(i.sha256.clone()),
    }
}
