//! Last-seen records, written by the server in batches.

use super::{Conn, Result};
use crate::mac::Mac;
use crate::model::Seen;

/// Writes a batch of last-seen records; MACs deleted meanwhile are skipped.
pub async fn record_seen(conn: &mut Conn, batch: &[(Mac, Seen)]) -> Result<()> {
    for (mac, s) in batch {
        sqlx::query(
            "INSERT INTO phone_seen (mac, at, peer, transport, file, user_agent, model, firmware)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM phones WHERE mac = $1)
             ON CONFLICT (mac) DO UPDATE SET at = excluded.at, peer = excluded.peer,
               transport = excluded.transport, file = excluded.file,
               user_agent = excluded.user_agent, model = excluded.model, firmware = excluded.firmware",
        )
        .bind(mac.to_string())
        .bind(s.at)
        .bind(&s.peer)
        .bind(&s.transport)
        .bind(&s.file)
        .bind(&s.user_agent)
        .bind(&s.model)
        .bind(&s.firmware)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn seen(conn: &mut Conn, mac: Mac) -> Result<Option<Seen>> {
    use sqlx::Row;
    let row = sqlx::query(
        "SELECT at, peer, transport, file, user_agent, model, firmware FROM phone_seen WHERE mac = $1",
    )
    .bind(mac.to_string())
    .fetch_optional(conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(Seen {
        at: r.try_get("at")?,
        peer: r.try_get("peer")?,
        transport: r.try_get("transport")?,
        file: r.try_get("file")?,
        user_agent: r.try_get("user_agent")?,
        model: r.try_get("model")?,
        firmware: r.try_get("firmware")?,
    }))
}

/// The firmware each phone last reported, for those that did.
pub async fn seen_firmware(conn: &mut Conn) -> Result<std::collections::HashMap<Mac, String>> {
    use sqlx::Row;
    let mut out = std::collections::HashMap::new();
    for r in sqlx::query("SELECT mac, firmware FROM phone_seen WHERE firmware IS NOT NULL")
        .fetch_all(conn)
        .await?
    {
        let mac: String = r.try_get("mac")?;
        if let Some(m) = Mac::from_bare(&mac) {
            out.insert(m, r.try_get("firmware")?);
        }
    }
    Ok(out)
}
