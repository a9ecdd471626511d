//! Firmware images, their assignments, and refused digests.

use sqlx::Row;

use super::{Conn, Result, now_ms, parse_mac};
use crate::mac::Mac;

/// A stored image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Image {
    pub sha256: String,
    pub vendor: String,
    pub version: String,
    pub models: Vec<String>,
    pub size: u64,
    pub file_name: String,
    pub added_at: i64,
}

/// Where a target image is assigned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "layer", rename_all = "snake_case")]
pub enum Target {
    Site { site_id: i64 },
    SiteModel { site_id: i64, model: String },
    Phone { mac: Mac },
}

fn row_to_image(r: &sqlx::sqlite::SqliteRow) -> Result<Image> {
    let models: String = r.try_get("models")?;
    Ok(Image {
        sha256: r.try_get("sha256")?,
        vendor: r.try_get("vendor")?,
        version: r.try_get("version")?,
        models: models.split_whitespace().map(str::to_string).collect(),
        size: r.try_get::<i64, _>("size")? as u64,
        file_name: r.try_get("file_name")?,
        added_at: r.try_get("added_at")?,
    })
}

pub async fn insert_image(conn: &mut Conn, i: &Image) -> Result<()> {
    sqlx::query("INSERT INTO firmware (sha256, vendor, version, models, size, file_name, added_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .bind(&i.sha256)
        .bind(&i.vendor)
        .bind(&i.version)
        .bind(i.models.join(" "))
        .bind(i.size as i64)
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
    sqlx::query("DELETE FROM firmware WHERE sha256 = ?")
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
        "INSERT INTO firmware_assign (site_id, model, mac, sha256) VALUES (?, ?, ?, ?)
         ON CONFLICT (ifnull(site_id, 0), ifnull(model, ''), ifnull(mac, ''))
         DO UPDATE SET sha256 = excluded.sha256 WHERE sha256 IS NOT excluded.sha256",
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
        "DELETE FROM firmware_assign WHERE ifnull(site_id, 0) = ifnull(?, 0)
           AND ifnull(model, '') = ifnull(?, '') AND ifnull(mac, '') = ifnull(?, '')",
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

pub async fn remember_refused(
    conn: &mut Conn,
    sha256: &str,
    file_name: &str,
    reason: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO firmware_refused (sha256, file_name, reason, at) VALUES (?, ?, ?, ?)
         ON CONFLICT (sha256) DO UPDATE SET file_name = excluded.file_name, reason = excluded.reason, at = excluded.at",
    )
    .bind(sha256)
    .bind(file_name)
    .bind(reason)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// Digests refused at import, with the file name and reason.
pub async fn refused(conn: &mut Conn) -> Result<Vec<(String, String, String)>> {
    Ok(
        sqlx::query_as("SELECT sha256, file_name, reason FROM firmware_refused")
            .fetch_all(conn)
            .await?,
    )
}
