//! The fetch audit: rows written in batches by the audit buffer (`phoneprov::audit`), queried by operators.

use sqlx::Row;

use super::{Conn, Result};

/// One audited fetch (or several identical ones within a minute).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditRow {
    pub at: i64,
    pub last_at: i64,
    pub count: i64,
    pub peer: String,
    pub transport: String,
    pub site: Option<String>,
    pub mac: Option<String>,
    pub file: String,
    pub result: String,
    pub auth: String,
}

/// A new row's fields.
#[derive(Debug, Clone)]
pub struct AuditInsert<'a> {
    pub at: i64,
    pub last_at: i64,
    pub count: i64,
    pub peer: &'a str,
    pub transport: &'a str,
    pub site_id: Option<i64>,
    pub mac: Option<&'a str>,
    pub file: &'a str,
    pub result: &'a str,
    pub auth: &'a str,
    pub auth_generation: Option<i64>,
}

pub async fn insert_audit(conn: &mut Conn, a: &AuditInsert<'_>) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO fetch_audit (at, last_at, count, peer, transport, site_id, mac, file, result,
                                  auth, auth_generation)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(a.at)
    .bind(a.last_at)
    .bind(a.count)
    .bind(a.peer)
    .bind(a.transport)
    .bind(a.site_id)
    .bind(a.mac)
    .bind(a.file)
    .bind(a.result)
    .bind(a.auth)
    .bind(a.auth_generation)
    .fetch_one(conn)
    .await?)
}

/// Adds `count` more identical fetches to a row.
pub async fn bump_audit(conn: &mut Conn, id: i64, count: i64, last_at: i64) -> Result<()> {
    sqlx::query("UPDATE fetch_audit SET count = count + $1, last_at = CASE WHEN last_at > $2 THEN last_at ELSE $2 END WHERE id = $3")
        .bind(count)
        .bind(last_at)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets rows last touched before `before`.
pub async fn prune_audit(conn: &mut Conn, before: i64) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM fetch_audit WHERE last_at < $1")
        .bind(before)
        .execute(conn)
        .await?
        .rows_affected())
}

/// What to look for in the audit.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    pub site_id: Option<i64>,
    pub mac: Option<String>,
    pub peer: Option<String>,
    pub result: Option<String>,
    /// Unix ms.
    pub since: Option<i64>,
    pub limit: Option<i64>,
}

/// Newest first.
pub async fn query_audit(conn: &mut Conn, f: &AuditFilter) -> Result<Vec<AuditRow>> {
    let rows = sqlx::query(
        "SELECT a.at, a.last_at, a.count, a.peer, a.transport, s.name AS site, a.mac, a.file,
                a.result, a.auth
           FROM fetch_audit a LEFT JOIN sites s ON s.id = a.site_id
          WHERE ($1 IS NULL OR a.site_id = $1) AND ($2 IS NULL OR a.mac = $2)
            AND ($3 IS NULL OR a.peer = $3) AND ($4 IS NULL OR a.result = $4)
            AND ($5 IS NULL OR a.last_at >= $5)
          ORDER BY a.last_at DESC, a.id DESC LIMIT $6",
    )
    .bind(f.site_id)
    .bind(&f.mac)
    .bind(&f.peer)
    .bind(&f.result)
    .bind(f.since)
    .bind(f.limit.unwrap_or(100).clamp(1, 10_000))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditRow {
                at: r.try_get("at")?,
                last_at: r.try_get("last_at")?,
                count: r.try_get("count")?,
                peer: r.try_get("peer")?,
                transport: r.try_get("transport")?,
                site: r.try_get("site")?,
                mac: r.try_get("mac")?,
                file: r.try_get("file")?,
                result: r.try_get("result")?,
                auth: r.try_get("auth")?,
            })
        })
        .collect()
}

/// How many of a site's phones have fetched a file with the site's current credential of
/// `generation`.
pub async fn phones_on_generation(conn: &mut Conn, site_id: i64, generation: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(DISTINCT a.mac) FROM fetch_audit a
           JOIN phones p ON p.mac = a.mac AND p.site_id = a.site_id
          WHERE a.site_id = $1 AND a.auth_generation = $2 AND a.auth = 'current'
            AND a.result = 'served'",
    )
    .bind(site_id)
    .bind(generation)
    .fetch_one(conn)
    .await?)
}
