//! Firmware images, their assignments, and refused digests.

use sqlx::Row;

use std::collections::HashMap;

use super::{Conn, Result, now_ms, parse_mac};
use crate::mac::Mac;
use crate::model::RefusedImage;

/// A stored image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Image {
    pub sha256: String,
    pub vendor: String,
    pub version: String,
    pub models: Vec<String>,
    pub size: u64,
    /// Absent only for an image stored before SHA-1s were kept whose file is missing.
    pub sha1: Option<String>,
    pub file_name: String,
    pub added_at: i64,
}

impl Image {
    /// What is recorded of its bytes.
    pub fn content(&self) -> crate::firmware::content::Content {
        crate::firmware::content::Content {
            size: self.size,
            sha256: self.sha256.clone(),
            sha1: self.sha1.clone().unwrap_or_default(),
        }
    }
}

/// Where a target image is assigned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "layer", rename_all = "snake_case")]
pub enum Target {
    Site { site_id: i64 },
    SiteModel { site_id: i64, model: String },
    Phone { mac: Mac },
}

fn row_to_image(r: &sqlx::any::AnyRow) -> Result<Image> {
    let models: String = r.try_get("models")?;
    Ok(Image {
        sha256: r.try_get("sha256")?,
        vendor: r.try_get("vendor")?,
        version: r.try_get("version")?,
        models: models.split_whitespace().map(str::to_string).collect(),
        size: r.try_get::<i64, _>("size")? as u64,
        sha1: r.try_get("sha1")?,
        file_name: r.try_get("file_name")?,
        added_at: r.try_get("added_at")?,
    })
}

pub async fn insert_image(conn: &mut Conn, i: &Image) -> Result<()> {
    sqlx::query("INSERT INTO firmware (sha256, vendor, version, models, size, sha1, file_name, added_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(&i.sha256)
        .bind(&i.vendor)
        .bind(&i.version)
        .bind(i.models.join(" "))
        .bind(i.size as i64)
        .bind(&i.sha1)
        .bind(&i.file_name)
        .bind(now_ms())
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn images(conn: &mut Conn) -> Result<Vec<Image>> {
    sqlx::query("SELECT * FROM firmware ORDER BY vendor, version, file_name")
        .fetch_all(conn)
        .await?
        .iter()
        .map(row_to_image)
        .collect()
}

pub async fn delete_image(conn: &mut Conn, sha256: &str) -> Result<()> {
    sqlx::query("DELETE FROM firmware WHERE sha256 = $1")
        .bind(sha256)
        .execute(conn)
        .await?;
    Ok(())
}

fn target_cols(t: &Target) -> (Option<i64>, Option<String>, Option<String>) {
    match t {
        Target::Site { site_id } => (Some(*site_id), None, None),
        Target::SiteModel { site_id, model } => (Some(*site_id), Some(model.clone()), None),
        Target::Phone { mac } => (None, None, Some(mac.to_string())),
    }
}

/// Sets the image at a layer; returns whether anything changed.
pub async fn assign(conn: &mut Conn, t: &Target, sha256: &str) -> Result<bool> {
    let (site_id, model, mac) = target_cols(t);
    Ok(sqlx::query(
        "INSERT INTO firmware_assign (site_id, model, mac, sha256) VALUES ($1, $2, $3, $4)
         ON CONFLICT ((coalesce(site_id, 0)), (coalesce(model, '')), (coalesce(mac, '')))
         DO UPDATE SET sha256 = excluded.sha256 WHERE firmware_assign.sha256 IS DISTINCT FROM excluded.sha256",
    )
    .bind(site_id)
    .bind(model)
    .bind(mac)
    .bind(sha256)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

pub async fn unassign(conn: &mut Conn, t: &Target) -> Result<bool> {
    let (site_id, model, mac) = target_cols(t);
    Ok(sqlx::query(
        "DELETE FROM firmware_assign WHERE coalesce(site_id, 0) = coalesce($1, 0)
           AND coalesce(model, '') = coalesce($2, '') AND coalesce(mac, '') = coalesce($3, '')",
    )
    .bind(site_id)
    .bind(model)
    .bind(mac)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// Every assignment, with its image's digest.
pub async fn assignments(conn: &mut Conn) -> Result<Vec<(Target, String)>> {
    type Row = (Option<i64>, Option<String>, Option<String>, String);
    let rows: Vec<Row> =
        sqlx::query_as("SELECT site_id, model, mac, sha256 FROM firmware_assign ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
    let mut out = Vec::new();
    for (site, model, mac, sha) in rows {
        let t = match (site, model, mac) {
            (Some(site_id), None, None) => Target::Site { site_id },
            (Some(site_id), Some(model), None) => Target::SiteModel { site_id, model },
            (None, None, Some(m)) => Target::Phone {
                mac: parse_mac("firmware_assign", &m)?,
            },
            _ => continue,
        };
        out.push((t, sha));
    }
    Ok(out)
}

/// Remembers refused bytes with what they claimed to be. The first refusal stands: a later
/// copy under another claim (which the memory refused) must not replace what they were.
pub async fn remember_refused(
    conn: &mut Conn,
    content: &crate::firmware::content::Content,
    r: &RefusedImage,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO firmware_refused (sha256, sha1, file_name, vendor, version, models, reason, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(&content.sha256)
    .bind(&content.sha1)
    .bind(&r.file_name)
    .bind(&r.vendor)
    .bind(&r.version)
    .bind(r.models.join(" "))
    .bind(&r.reason)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// Every refused digest (sha256) with what the bytes claimed to be.
pub async fn refused(conn: &mut Conn) -> Result<HashMap<String, RefusedImage>> {
    type Row = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT sha256, file_name, vendor, version, models, reason FROM firmware_refused",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(sha, file_name, vendor, version, models, reason)| {
            (
                sha,
                RefusedImage {
                    file_name,
                    vendor,
                    version,
                    models: models
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(str::to_string)
                        .collect(),
                    reason,
                },
            )
        })
        .collect())
}

/// Fills in the SHA-1 of images stored before SHA-1s were kept, from their files in `dir`
/// (checked against the recorded SHA-256 first). A missing or altered file is left as it is:
/// the resolver will not serve it anyway.
pub async fn fill_missing_sha1(conn: &mut Conn, dir: &std::path::Path) -> Result<()> {
    let missing: Vec<String> = sqlx::query_scalar("SELECT sha256 FROM firmware WHERE sha1 IS NULL")
        .fetch_all(&mut *conn)
        .await?;
    for sha in missing {
        let path = dir.join(format!("{sha}.img"));
        let c = match tokio::task::spawn_blocking(move || {
            crate::firmware::content::Content::of_file(&path)
        })
        .await
        {
            Ok(Ok(c)) if c.sha256 == sha => c,
            _ => {
                tracing::warn!(sha256 = %sha, "stored firmware image missing or altered: its sha1 is unknown");
                continue;
            }
        };
        sqlx::query("UPDATE firmware SET sha1 = $1 WHERE sha256 = $2")
            .bind(&c.sha1)
            .bind(&sha)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
