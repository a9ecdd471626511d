//! Phone rows, their lines, and the files they upload.

use sqlx::Row;

use super::{Conn, Result, now_ms, parse_mac};
use crate::mac::Mac;
use crate::model::{Line, Phone};

fn row_to_phone(r: &sqlx::any::AnyRow) -> Result<Phone> {
    let mac: String = r.try_get("mac")?;
    Ok(Phone {
        mac: parse_mac("phones", &mac)?,
        model: r.try_get("model")?,
        site_id: r.try_get("site_id")?,
        label: r.try_get("label")?,
        sn: r.try_get("sn")?,
    })
}

pub async fn insert_phone(conn: &mut Conn, p: &Phone) -> Result<()> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO phones (mac, site_id, model, label, sn, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(p.mac.to_string())
    .bind(p.site_id)
    .bind(&p.model)
    .bind(&p.label)
    .bind(&p.sn)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn update_phone(conn: &mut Conn, p: &Phone) -> Result<()> {
    sqlx::query(
        "UPDATE phones SET site_id = $1, model = $2, label = $3, sn = $4, updated_at = $5 WHERE mac = $6",
    )
    .bind(p.site_id)
    .bind(&p.model)
    .bind(&p.label)
    .bind(&p.sn)
    .bind(now_ms())
    .bind(p.mac.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn phone(conn: &mut Conn, mac: Mac) -> Result<Option<Phone>> {
    sqlx::query("SELECT mac, site_id, model, label, sn FROM phones WHERE mac = $1")
        .bind(mac.to_string())
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(row_to_phone)
        .transpose()
}

/// Phones of one site, or of all sites, ordered by MAC.
pub async fn list_phones(conn: &mut Conn, site_id: Option<i64>) -> Result<Vec<Phone>> {
    sqlx::query(
        "SELECT mac, site_id, model, label, sn FROM phones
         WHERE $1 IS NULL OR site_id = $1 ORDER BY mac",
    )
    .bind(site_id)
    .fetch_all(conn)
    .await?
    .iter()
    .map(row_to_phone)
    .collect()
}

pub async fn delete_phone(conn: &mut Conn, mac: Mac) -> Result<()> {
    sqlx::query("DELETE FROM phones WHERE mac = $1")
        .bind(mac.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes every phone of a site (and, by cascade, their lines, settings and uploads).
pub async fn delete_site_phones(conn: &mut Conn, site_id: i64) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM phones WHERE site_id = $1")
        .bind(site_id)
        .execute(conn)
        .await?
        .rows_affected())
}

fn row_to_line(r: &sqlx::any::AnyRow) -> Result<(Mac, Line)> {
    let mac: String = r.try_get("mac")?;
    Ok((
        parse_mac("lines", &mac)?,
        Line {
            n: r.try_get::<i64, _>("n")? as u8,
            user: r.try_get("user")?,
            auth_user: r.try_get("auth_user")?,
            password: r.try_get("password")?,
            display_name: r.try_get("display_name")?,
            label: r.try_get("label")?,
            domain: r.try_get("domain")?,
        },
    ))
}

pub async fn lines(conn: &mut Conn, mac: Mac) -> Result<Vec<Line>> {
    sqlx::query("SELECT * FROM lines WHERE mac = $1 ORDER BY n")
        .bind(mac.to_string())
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| row_to_line(r).map(|(_, l)| l))
        .collect()
}

pub async fn upsert_line(conn: &mut Conn, mac: Mac, l: &Line) -> Result<()> {
    sqlx::query(
        "INSERT INTO lines (mac, n, \"user\", auth_user, password, display_name, label, domain)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (mac, n) DO UPDATE SET \"user\" = excluded.\"user\", auth_user = excluded.auth_user,
            password = excluded.password, display_name = excluded.display_name,
            label = excluded.label, domain = excluded.domain",
    )
    .bind(mac.to_string())
    .bind(l.n as i64)
    .bind(&l.user)
    .bind(&l.auth_user)
    .bind(&l.password)
    .bind(&l.display_name)
    .bind(&l.label)
    .bind(&l.domain)
    .execute(conn)
    .await?;
    Ok(())
}

/// Returns whether a line was there to delete.
pub async fn delete_line(conn: &mut Conn, mac: Mac, n: u8) -> Result<bool> {
    Ok(sqlx::query("DELETE FROM lines WHERE mac = $1 AND n = $2")
        .bind(mac.to_string())
        .bind(n as i64)
        .execute(conn)
        .await?
        .rows_affected()
        > 0)
}

/// Lines numbered above `max` (left over when a phone changes to a smaller model).
pub async fn delete_lines_above(conn: &mut Conn, mac: Mac, max: u8) -> Result<()> {
    sqlx::query("DELETE FROM lines WHERE mac = $1 AND n > $2")
        .bind(mac.to_string())
        .bind(max as i64)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn put_upload(conn: &mut Conn, mac: Mac, name: &str, body: &[u8]) -> Result<()> {
    sqlx::query(
        "INSERT INTO uploads (mac, name, body, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (mac, name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
    )
    .bind(mac.to_string())
    .bind(name)
    .bind(body)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// Every line of every phone, streamed to `each` (nothing is held but the current row).
pub async fn each_line(conn: &mut Conn, mut each: impl FnMut(Mac, Line)) -> Result<()> {
    use futures_util::TryStreamExt;
    let mut rows = sqlx::query("SELECT * FROM lines").fetch(conn);
    while let Some(r) = rows.try_next().await? {
        let (mac, line) = row_to_line(&r)?;
        each(mac, line);
    }
    Ok(())
}

/// Every phone, streamed to `each`.
pub async fn each_phone(conn: &mut Conn, mut each: impl FnMut(Phone)) -> Result<()> {
    use futures_util::TryStreamExt;
    let mut rows = sqlx::query("SELECT mac, site_id, model, label, sn FROM phones").fetch(conn);
    while let Some(r) = rows.try_next().await? {
        each(row_to_phone(&r)?);
    }
    Ok(())
}

/// Rows per multi-row statement: well under SQLite's (32,766) and PostgreSQL's (65,535)
/// bound-parameter limits.
const BATCH: usize = 400;

/// Inserts or updates phones in multi-row statements; `created_at` of existing rows is kept.
pub async fn upsert_phones(conn: &mut Conn, phones: &[Phone]) -> Result<()> {
    let now = now_ms();
    for chunk in phones.chunks(BATCH) {
        let sql = format!(
            "INSERT INTO phones (mac, site_id, model, label, sn, created_at, updated_at) VALUES {}
             ON CONFLICT (mac) DO UPDATE SET site_id = excluded.site_id, model = excluded.model,
               label = excluded.label, sn = excluded.sn, updated_at = excluded.updated_at",
            super::batch::values_list(conn, chunk.len(), 7)
        );
        let mut q = super::batch::query(sql);
        for p in chunk {
            q = q
                .bind(p.mac.to_string())
                .bind(p.site_id)
                .bind(p.model.clone())
                .bind(p.label.clone())
                .bind(p.sn.clone())
                .bind(now)
                .bind(now);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts or replaces lines in multi-row statements.
pub async fn upsert_lines(conn: &mut Conn, lines: &[(Mac, Line)]) -> Result<()> {
    for chunk in lines.chunks(BATCH) {
        let sql = format!(
            "INSERT INTO lines (mac, n, \"user\", auth_user, password, display_name, label, domain)
             VALUES {}
             ON CONFLICT (mac, n) DO UPDATE SET \"user\" = excluded.\"user\",
               auth_user = excluded.auth_user, password = excluded.password,
               display_name = excluded.display_name, label = excluded.label,
               domain = excluded.domain",
            super::batch::values_list(conn, chunk.len(), 8)
        );
        let mut q = super::batch::query(sql);
        for (mac, l) in chunk {
            q = q
                .bind(mac.to_string())
                .bind(l.n as i64)
                .bind(l.user.clone())
                .bind(l.auth_user.clone())
                .bind(l.password.clone())
                .bind(l.display_name.clone())
                .bind(l.label.clone())
                .bind(l.domain.clone());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Up to `limit` phones of a site after `after`, by MAC: the pages a large site renders in.
pub async fn phones_page(
    conn: &mut Conn,
    site_id: i64,
    after: Option<Mac>,
    limit: i64,
) -> Result<Vec<Phone>> {
    sqlx::query(
        // `mac > ''` for the first page: an `IS NULL OR` would keep SQLite from seeking the
        // index to the page, and every page would scan the site from its start.
        "SELECT mac, site_id, model, label, sn FROM phones
         WHERE site_id = $1 AND mac > $2 ORDER BY mac LIMIT $3",
    )
    .bind(site_id)
    .bind(after.map(|m| m.to_string()).unwrap_or_default())
    .bind(limit)
    .fetch_all(conn)
    .await?
    .iter()
    .map(row_to_phone)
    .collect()
}

/// The lines of phones whose MACs lie in `lo..=hi` (of any site: the caller filters), by
/// MAC then line number.
pub async fn lines_between(conn: &mut Conn, lo: Mac, hi: Mac) -> Result<Vec<(Mac, Line)>> {
    sqlx::query(
        // By the primary key's range; the caller keeps only its page's phones.
        "SELECT * FROM lines WHERE mac >= $1 AND mac <= $2 ORDER BY mac, n",
    )
    .bind(lo.to_string())
    .bind(hi.to_string())
    .fetch_all(conn)
    .await?
    .iter()
    .map(row_to_line)
    .collect()
}

/// The uploads of phones whose MACs lie in `lo..=hi` (of any site: the caller filters).
pub async fn uploads_between(
    conn: &mut Conn,
    lo: Mac,
    hi: Mac,
) -> Result<Vec<(Mac, String, Vec<u8>)>> {
    let rows: Vec<(String, String, Vec<u8>)> =
        sqlx::query_as("SELECT mac, name, body FROM uploads WHERE mac >= $1 AND mac <= $2")
            .bind(lo.to_string())
            .bind(hi.to_string())
            .fetch_all(conn)
            .await?;
    rows.into_iter()
        .map(|(m, n, b)| Ok((parse_mac("uploads", &m)?, n, b)))
        .collect()
}
