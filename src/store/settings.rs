//! Raw vendor settings at their layers.

use sqlx::Row;

use super::{Conn, Result, StoreError, parse_mac};
use crate::model::{Layer, Setting};

fn layer_cols(layer: &Layer) -> (Option<i64>, Option<String>, Option<String>) {
    match layer {
        Layer::Model { model } => (None, Some(model.clone()), None),
        Layer::Site { site_id } => (Some(*site_id), None, None),
        Layer::SiteModel { site_id, model } => (Some(*site_id), Some(model.clone()), None),
        Layer::Phone { mac } => (None, None, Some(mac.to_string())),
    }
}

fn row_to_setting(r: &sqlx::any::AnyRow) -> Result<Setting> {
    let site_id: Option<i64> = r.try_get("site_id")?;
    let model: Option<String> = r.try_get("model")?;
    let mac: Option<String> = r.try_get("mac")?;
    let layer = match (site_id, model, mac) {
        (None, Some(model), None) => Layer::Model { model },
        (Some(site_id), None, None) => Layer::Site { site_id },
        (Some(site_id), Some(model), None) => Layer::SiteModel { site_id, model },
        (None, None, Some(mac)) => Layer::Phone {
            mac: parse_mac("settings", &mac)?,
        },
        _ => {
            return Err(StoreError::Corrupt {
                table: "settings",
                reason: "row names no layer".into(),
            });
        }
    };
    Ok(Setting {
        layer,
        vendor: r.try_get("vendor")?,
        key: r.try_get("key")?,
        value: r.try_get("value")?,
    })
}

/// Sets a key at a layer; returns whether anything changed.
pub async fn put_setting(conn: &mut Conn, s: &Setting) -> Result<bool> {
    let (site_id, model, mac) = layer_cols(&s.layer);
    let changed = sqlx::query(
        "INSERT INTO settings (site_id, model, mac, vendor, key, value) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT ((coalesce(site_id, 0)), (coalesce(model, '')), (coalesce(mac, '')), (coalesce(vendor, '')), key)
         DO UPDATE SET value = excluded.value WHERE settings.value IS DISTINCT FROM excluded.value",
    )
    .bind(site_id)
    .bind(model)
    .bind(mac)
    .bind(&s.vendor)
    .bind(&s.key)
    .bind(&s.value)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

/// Removes a key at a layer; returns whether it was there.
pub async fn delete_setting(
    conn: &mut Conn,
    layer: &Layer,
    vendor: Option<&str>,
    key: &str,
) -> Result<bool> {
    let (site_id, model, mac) = layer_cols(layer);
    Ok(sqlx::query(
        "DELETE FROM settings WHERE coalesce(site_id, 0) = coalesce($1, 0) AND coalesce(model, '') = coalesce($2, '')
           AND coalesce(mac, '') = coalesce($3, '') AND coalesce(vendor, '') = coalesce($4, '') AND key = $5",
    )
    .bind(site_id)
    .bind(model)
    .bind(mac)
    .bind(vendor)
    .bind(key)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// Settings at exactly this layer.
pub async fn layer_settings(conn: &mut Conn, layer: &Layer) -> Result<Vec<Setting>> {
    let (site_id, model, mac) = layer_cols(layer);
    sqlx::query(
        "SELECT * FROM settings WHERE coalesce(site_id, 0) = coalesce($1, 0)
           AND coalesce(model, '') = coalesce($2, '') AND coalesce(mac, '') = coalesce($3, '') ORDER BY key",
    )
    .bind(site_id)
    .bind(model)
    .bind(mac)
    .fetch_all(conn)
    .await?
    .iter()
    .map(row_to_setting)
    .collect()
}

/// The settings that reach every phone of a site alike: global, model, site and site-model
/// layers (not the per-phone ones).
pub async fn shared_settings(conn: &mut Conn, site_id: i64) -> Result<Vec<Setting>> {
    sqlx::query(
        "SELECT * FROM settings
         WHERE mac IS NULL AND (site_id IS NULL OR site_id = $1)
         ORDER BY id",
    )
    .bind(site_id)
    .fetch_all(conn)
    .await?
    .iter()
    .map(row_to_setting)
    .collect()
}

/// Per-phone settings of phones whose MACs lie in `lo..=hi` (of any site: the caller
/// filters).
pub async fn phone_settings_between(
    conn: &mut Conn,
    lo: crate::mac::Mac,
    hi: crate::mac::Mac,
) -> Result<Vec<Setting>> {
    sqlx::query("SELECT * FROM settings WHERE mac >= $1 AND mac <= $2 ORDER BY id")
        .bind(lo.to_string())
        .bind(hi.to_string())
        .fetch_all(conn)
        .await?
        .iter()
        .map(row_to_setting)
        .collect()
}
