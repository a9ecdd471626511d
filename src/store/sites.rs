//! Site rows.

use sqlx::Row;

use super::{Conn, Result, StoreError, now_ms};
use crate::model::{Credential, Site, SiteAccess};

/// Fields of a new or updated site (the id and key are the store's).
#[derive(Debug, Clone)]
pub struct SiteFields {
    pub name: String,
    pub sip_server: String,
    pub sip_port: u16,
    pub transport: crate::model::Transport,
    pub time_zone: Option<String>,
    pub ntp: Vec<String>,
    pub allow_keyless: bool,
    pub recovery_sha256: Option<String>,
}

const SITE_COLS: &str = "id, name, key, sip_server, sip_port, transport, time_zone, ntp, allow_keyless, recovery_sha256,
    auth_user, auth_password, prev_auth_user, prev_auth_password, prev_auth_until, auth_generation,
    allow_nets, require_https, tftp_sensitive, ymcs_site, outbound_proxy, outbound_proxy_2, recheck, transport_dns";

fn credential(user: Option<String>, password: Option<String>) -> Option<Credential> {
    Some(Credential {
        user: user?,
        password: password?,
    })
}

fn row_to_access(r: &sqlx::any::AnyRow) -> Result<SiteAccess> {
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "sites",
        reason,
    };
    let nets: String = r.try_get("allow_nets")?;
    let tftp: String = r.try_get("tftp_sensitive")?;
    Ok(SiteAccess {
        auth: credential(r.try_get("auth_user")?, r.try_get("auth_password")?),
        previous_auth: credential(
            r.try_get("prev_auth_user")?,
            r.try_get("prev_auth_password")?,
        ),
        previous_until: r.try_get("prev_auth_until")?,
        auth_generation: r.try_get("auth_generation")?,
        allow_nets: nets
            .split_whitespace()
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()
            .map_err(corrupt)?,
        require_https: super::flag(r, "require_https")?,
        tftp_sensitive: tftp.parse().map_err(corrupt)?,
    })
}

/// Sets (or clears) the YMCS site a site maps to.
pub async fn set_site_ymcs(conn: &mut Conn, id: i64, ymcs_site: Option<&str>) -> Result<()> {
    sqlx::query("UPDATE sites SET ymcs_site = $1, updated_at = $2 WHERE id = $3")
        .bind(ymcs_site)
        .bind(now_ms())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces a site's fetch rules.
pub async fn set_site_access(conn: &mut Conn, id: i64, a: &SiteAccess) -> Result<()> {
    let nets: Vec<String> = a.allow_nets.iter().map(|c| c.to_string()).collect();
    sqlx::query(
        "UPDATE sites SET auth_user = $1, auth_password = $2, prev_auth_user = $3,
                prev_auth_password = $4, prev_auth_until = $5, auth_generation = $6, allow_nets = $7,
                require_https = $8, tftp_sensitive = $9, updated_at = $10 WHERE id = $11",
    )
    .bind(a.auth.as_ref().map(|c| &c.user))
    .bind(a.auth.as_ref().map(|c| &c.password))
    .bind(a.previous_auth.as_ref().map(|c| &c.user))
    .bind(a.previous_auth.as_ref().map(|c| &c.password))
    .bind(a.previous_until)
    .bind(a.auth_generation)
    .bind(nets.join(" "))
    .bind(i64::from(a.require_https))
    .bind(a.tftp_sensitive.as_str())
    .bind(now_ms())
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

fn row_to_site(r: &sqlx::any::AnyRow) -> Result<Site> {
    let transport: String = r.try_get("transport")?;
    let dns = super::flag(r, "transport_dns")?;
    let ntp: String = r.try_get("ntp")?;
    Ok(Site {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        key: r.try_get("key")?,
        sip_server: r.try_get("sip_server")?,
        sip_port: r.try_get::<i64, _>("sip_port")? as u16,
        transport: match dns {
            true => crate::model::Transport::Dns,
            false => transport.parse().map_err(|reason| StoreError::Corrupt {
                table: "sites",
                reason,
            })?,
        },
        time_zone: r.try_get("time_zone")?,
        ntp: ntp.split_whitespace().map(str::to_string).collect(),
        allow_keyless: super::flag(r, "allow_keyless")?,
        recovery_sha256: r.try_get("recovery_sha256")?,
        access: row_to_access(r)?,
        ymcs_site: r.try_get("ymcs_site")?,
        sip: row_to_sip(r)?,
    })
}

fn row_to_sip(r: &sqlx::any::AnyRow) -> Result<crate::model::SiteSip> {
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "sites",
        reason,
    };
    let endpoint = |col: &str| -> Result<Option<crate::model::Endpoint>> {
        let v: Option<String> = r.try_get(col)?;
        v.map(|v| {
            let (h, p) = v
                .rsplit_once(':')
                .ok_or_else(|| corrupt(format!("{col} '{v}' has no port")))?;
            let port = p
                .parse()
                .map_err(|_| corrupt(format!("{col} '{v}' has no port")))?;
            Ok(crate::model::Endpoint {
                host: h.trim_start_matches('[').trim_end_matches(']').to_string(),
                port,
            })
        })
        .transpose()
    };
    let recheck: String = r.try_get("recheck")?;
    Ok(crate::model::SiteSip {
        outbound_proxy: endpoint("outbound_proxy")?,
        outbound_proxy_2: endpoint("outbound_proxy_2")?,
        recheck: recheck.parse().map_err(corrupt)?,
    })
}

/// Replaces a site's outbound proxies and re-check schedule.
pub async fn set_site_sip(conn: &mut Conn, id: i64, s: &crate::model::SiteSip) -> Result<()> {
    sqlx::query(
        "UPDATE sites SET outbound_proxy = $1, outbound_proxy_2 = $2, recheck = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(s.outbound_proxy.as_ref().map(|e| e.to_string()))
    .bind(s.outbound_proxy_2.as_ref().map(|e| e.to_string()))
    .bind(s.recheck.to_string())
    .bind(now_ms())
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_site(conn: &mut Conn, f: &SiteFields, key: &str) -> Result<Site> {
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO sites (name, key, sip_server, sip_port, transport, transport_dns, time_zone, ntp,
                            allow_keyless, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(&f.name)
    .bind(key)
    .bind(&f.sip_server)
    .bind(f.sip_port as i64)
    .bind(transport_col(f.transport))
    .bind(i64::from(f.transport == crate::model::Transport::Dns))
    .bind(&f.time_zone)
    .bind(f.ntp.join(" "))
    .bind(i64::from(f.allow_keyless))
    .bind(now)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    site_by_id(conn, id)
        .await?
        .ok_or(StoreError::Db(sqlx::Error::RowNotFound))
}

/// What `sites.transport` holds (its CHECK predates DNS: see migration 0008).
fn transport_col(t: crate::model::Transport) -> &'static str {
    match t {
        crate::model::Transport::Dns => "udp",
        t => t.as_str(),
    }
}

pub async fn update_site(conn: &mut Conn, id: i64, f: &SiteFields) -> Result<()> {
    sqlx::query(
        "UPDATE sites SET name = $1, sip_server = $2, sip_port = $3, transport = $4, transport_dns = $5,
                time_zone = $6, ntp = $7, allow_keyless = $8, recovery_sha256 = $9, updated_at = $10 WHERE id = $11",
    )
    .bind(&f.name)
    .bind(&f.sip_server)
    .bind(f.sip_port as i64)
    .bind(transport_col(f.transport))
    .bind(i64::from(f.transport == crate::model::Transport::Dns))
    .bind(&f.time_zone)
    .bind(f.ntp.join(" "))
    .bind(i64::from(f.allow_keyless))
    .bind(&f.recovery_sha256)
    .bind(now_ms())
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_site_key(conn: &mut Conn, id: i64, key: &str) -> Result<()> {
    sqlx::query("UPDATE sites SET key = $1, updated_at = $2 WHERE id = $3")
        .bind(key)
        .bind(now_ms())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn site_by_name(conn: &mut Conn, name: &str) -> Result<Option<Site>> {
    let q = format!("SELECT {SITE_COLS} FROM sites WHERE name = $1");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(name)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(row_to_site)
        .transpose()
}

pub async fn site_by_id(conn: &mut Conn, id: i64) -> Result<Option<Site>> {
    let q = format!("SELECT {SITE_COLS} FROM sites WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(row_to_site)
        .transpose()
}

pub async fn list_sites(conn: &mut Conn) -> Result<Vec<Site>> {
    let q = format!("SELECT {SITE_COLS} FROM sites ORDER BY name");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .fetch_all(conn)
        .await?
        .iter()
        .map(row_to_site)
        .collect()
}

pub async fn delete_site(conn: &mut Conn, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM sites WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn count_phones(conn: &mut Conn, site_id: i64) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM phones WHERE site_id = $1")
            .bind(site_id)
            .fetch_one(conn)
            .await?,
    )
}
