//! Last-seen records, written by the server in batches.

use super::{Conn, Result};
use crate::mac::Mac;
use crate::model::Seen;

/// Writes a batch of last-seen records, a chunk per statement ([`super::batch`]); MACs deleted
/// meanwhile are skipped. Where a MAC appears twice, its later record is written.
pub async fn record_seen(conn: &mut Conn, batch: &[(Mac, Seen)]) -> Result<()> {
    // One row per MAC: PostgreSQL refuses an upsert that touches a row twice.
    let mut last = std::collections::HashMap::with_capacity(batch.len());
    for (i, (mac, _)) in batch.iter().enumerate() {
        last.insert(*mac, i);
    }
    let rows: Vec<(String, &Seen)> = batch
        .iter()
        .enumerate()
        .filter(|(i, (mac, _))| last.get(mac) == Some(i))
        .map(|(_, (mac, s))| (mac.to_string(), s))
        .collect();
    for chunk in rows.chunks(super::batch::MAX_ROWS) {
        // VALUES columns are column1..column8 on both engines.
        let sql = format!(
            "INSERT INTO phone_seen (mac, at, peer, transport, file, user_agent, model, firmware)
             SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7,
                    v.column8
               FROM (VALUES {}) AS v
              WHERE EXISTS (SELECT 1 FROM phones WHERE mac = v.column1)
             ON CONFLICT (mac) DO UPDATE SET at = excluded.at, peer = excluded.peer,
               transport = excluded.transport, file = excluded.file,
               user_agent = excluded.user_agent, model = excluded.model, firmware = excluded.firmware",
            super::batch::values_list(conn, chunk.len(), 8)
        );
        let mut q = super::batch::query(sql);
        for (mac, s) in chunk {
            q = q
                .bind(mac.as_str())
                .bind(s.at)
                .bind(s.peer.as_str())
                .bind(s.transport.as_str())
                .bind(s.file.as_str())
                .bind(s.user_agent.as_deref())
                .bind(s.model.as_deref())
                .bind(s.firmware.as_deref());
        }
        q.execute(&mut *conn).await?;
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
