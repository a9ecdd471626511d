//! The fetch audit: rows written in batches by the audit buffer (`phoneprov::audit`), queried by operators.

use sqlx::Row;

use super::{Conn, Result, StoreError};

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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

/// Inserts rows, a chunk per statement ([`super::batch`]); returns their ids in `rows`' order.
pub async fn insert_audits(conn: &mut Conn, rows: &[AuditInsert<'_>]) -> Result<Vec<i64>> {
    use std::collections::HashMap;
    let mut ids = vec![0i64; rows.len()];
    let mut at = 0;
    for chunk in rows.chunks(super::batch::MAX_ROWS) {
        // Neither engine promises RETURNING's order, so each id is matched to its row by
        // content; rows alike in every column are interchangeable.
        let mut by_content: HashMap<&AuditInsert<'_>, usize> = HashMap::new();
        let mut alike: Vec<Vec<usize>> = Vec::new();
        for (i, row) in chunk.iter().enumerate() {
            let g = *by_content.entry(row).or_insert_with(|| {
                alike.push(Vec::new());
                alike.len() - 1
            });
            alike[g].push(at + i);
        }
        let sql = format!(
            "INSERT INTO fetch_audit (at, last_at, count, peer, transport, site_id, mac, file,
                                      result, auth, auth_generation)
             VALUES {}
             RETURNING id, at, last_at, count, peer, transport, site_id, mac, file, result, auth,
                       auth_generation",
            super::batch::values_list(conn, chunk.len(), 11)
        );
        let mut q = super::batch::query(sql);
        for a in chunk {
            q = q
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
                .bind(a.auth_generation);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let (peer, transport, mac, file, result, auth): (
                String,
                String,
                Option<String>,
                String,
                String,
                String,
            ) = (
                r.try_get("peer")?,
                r.try_get("transport")?,
                r.try_get("mac")?,
                r.try_get("file")?,
                r.try_get("result")?,
                r.try_get("auth")?,
            );
            let key = AuditInsert {
                at: r.try_get("at")?,
                last_at: r.try_get("last_at")?,
                count: r.try_get("count")?,
                peer: &peer,
                transport: &transport,
                site_id: r.try_get("site_id")?,
                mac: mac.as_deref(),
                file: &file,
                result: &result,
                auth: &auth,
                auth_generation: r.try_get("auth_generation")?,
            };
            let i = by_content
                .get(&&key)
                .and_then(|g| alike[*g].pop())
                .ok_or_else(|| StoreError::Corrupt {
                    table: "fetch_audit",
                    reason: format!("an inserted row came back unlike any sent: {key:?}"),
                })?;
            ids[i] = r.try_get("id")?;
        }
        if let Some(v) = alike.iter().find(|v| !v.is_empty()) {
            return Err(StoreError::Corrupt {
                table: "fetch_audit",
                reason: format!("{} inserted rows came back without an id", v.len()),
            });
        }
        at += chunk.len();
    }
    Ok(ids)
}

/// Adds more identical fetches to rows: (id, further fetches, the last one's time), a chunk
/// per statement.
pub async fn bump_audits(conn: &mut Conn, bumps: &[(i64, i64, i64)]) -> Result<()> {
    for chunk in bumps.chunks(super::batch::MAX_ROWS) {
        // VALUES columns are column1..column3 on both engines.
        let sql = format!(
            "UPDATE fetch_audit SET count = count + v.column2,
                    last_at = CASE WHEN last_at > v.column3 THEN last_at ELSE v.column3 END
               FROM (VALUES {}) AS v
              WHERE fetch_audit.id = v.column1",
            super::batch::values_list(conn, chunk.len(), 3)
        );
        let mut q = super::batch::query(sql);
        for (id, count, last_at) in chunk {
            q = q.bind(*id).bind(*count).bind(*last_at);
        }
        q.execute(&mut *conn).await?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn row(file: &str, count: i64) -> AuditInsert<'_> {
        AuditInsert {
            at: 1,
            last_at: 1,
            count,
            peer: "192.0.2.1",
            transport: "http",
            site_id: None,
            mac: None,
            file,
            result: "served",
            auth: "none",
            auth_generation: None,
        }
    }

    /// Ids come back in the order rows went in, across several statements, and rows alike in
    /// every column each get one of their own.
    #[tokio::test]
    async fn each_row_gets_its_own_id_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.sqlite")).await.unwrap();
        let mut c = store.conn().await.unwrap();
        let files: Vec<String> = (0..200).map(|i| format!("f{i}")).collect();
        let mut rows: Vec<AuditInsert<'_>> = files.iter().map(|f| row(f, 1)).collect();
        rows.push(row("same", 1));
        rows.push(row("same", 1));
        let ids = insert_audits(&mut c, &rows).await.unwrap();
        assert_eq!(ids.len(), rows.len());
        assert_eq!(
            ids.iter().collect::<std::collections::HashSet<_>>().len(),
            ids.len()
        );
        // Each row's id names that row: bump row i by i, then read the counts back.
        let bumps: Vec<(i64, i64, i64)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i as i64, 5))
            .collect();
        bump_audits(&mut c, &bumps).await.unwrap();
        let got = query_audit(
            &mut c,
            &AuditFilter {
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(got.len(), rows.len());
        for r in &got {
            assert_eq!(r.last_at, 5);
            if let Some(i) = r.file.strip_prefix('f') {
                assert_eq!(r.count, 1 + i.parse::<i64>().unwrap(), "{r:?}");
            }
        }
        let mut same: Vec<i64> = got
            .iter()
            .filter(|r| r.file == "same")
            .map(|r| r.count)
            .collect();
        same.sort();
        assert_eq!(same, vec![201, 202]);
    }
}
