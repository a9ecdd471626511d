//! PBX connections and the pairs kept in sync.

use sqlx::Row;

use super::{Conn, Result, now_ms};

/// A PBX phoneprov reads from (credentials live outside the database).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PbxRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub base_url: String,
    pub api_version: String,
}

/// A (PBX, domain, site) pair and how its last sync went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncPair {
    pub pbx: String,
    pub domain: String,
    pub site: String,
    pub prune: bool,
    pub last_ok_at: Option<i64>,
    pub last_error: Option<String>,
}

fn to_pbx(r: &sqlx::any::AnyRow) -> Result<PbxRow> {
    Ok(PbxRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        base_url: r.try_get("base_url")?,
        api_version: r.try_get("api_version")?,
    })
}

pub async fn insert_pbx(
    conn: &mut Conn,
    name: &str,
    kind: &str,
    base_url: &str,
    api_version: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO pbx (name, kind, base_url, api_version, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(name)
    .bind(kind)
    .bind(base_url)
    .bind(api_version)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn pbx_named(conn: &mut Conn, name: &str) -> Result<Option<PbxRow>> {
    sqlx::query("SELECT id, name, kind, base_url, api_version FROM pbx WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(to_pbx)
        .transpose()
}

pub async fn list_pbx(conn: &mut Conn) -> Result<Vec<PbxRow>> {
    sqlx::query("SELECT id, name, kind, base_url, api_version FROM pbx ORDER BY name")
        .fetch_all(conn)
        .await?
        .iter()
        .map(to_pbx)
        .collect()
}

pub async fn delete_pbx(conn: &mut Conn, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM pbx_syncs WHERE pbx_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM pbx WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records how a sync of a pair went (creating the pair on its first success).
pub async fn record_sync(
    conn: &mut Conn,
    pbx_id: i64,
    domain: &str,
    site_id: i64,
    prune: bool,
    error: Option<&str>,
) -> Result<()> {
    match error {
        None => {
            sqlx::query(
                "INSERT INTO pbx_syncs (pbx_id, domain, site_id, prune, last_ok_at, last_error)
                 VALUES ($1, $2, $3, $4, $5, NULL)
                 ON CONFLICT (pbx_id, domain, site_id) DO UPDATE SET prune = excluded.prune,
                   last_ok_at = excluded.last_ok_at, last_error = NULL",
            )
            .bind(pbx_id)
            .bind(domain)
            .bind(site_id)
            .bind(i64::from(prune))
            .bind(now_ms())
            .execute(conn)
            .await?;
        }
        Some(e) => {
            sqlx::query("UPDATE pbx_syncs SET last_error = $1 WHERE pbx_id = $2 AND domain = $3 AND site_id = $4")
                .bind(e)
                .bind(pbx_id)
                .bind(domain)
                .bind(site_id)
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}

pub async fn sync_pairs(conn: &mut Conn, pbx_id: Option<i64>) -> Result<Vec<SyncPair>> {
    let rows = sqlx::query(
        "SELECT p.name AS pbx, y.domain, s.name AS site, y.prune, y.last_ok_at, y.last_error
           FROM pbx_syncs y JOIN pbx p ON p.id = y.pbx_id JOIN sites s ON s.id = y.site_id
          WHERE ($1 IS NULL OR y.pbx_id = $1) ORDER BY p.name, y.domain",
    )
    .bind(pbx_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SyncPair {
                pbx: r.try_get("pbx")?,
                domain: r.try_get("domain")?,
                site: r.try_get("site")?,
                prune: super::flag(r, "prune")?,
                last_ok_at: r.try_get("last_ok_at")?,
                last_error: r.try_get("last_error")?,
            })
        })
        .collect()
}
