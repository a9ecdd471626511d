//! Secrets every server process on one database shares: made once by whichever comes first.

use super::{Conn, Result, StoreError, now_ms};

/// The secret called `name`: the stored one, or `fresh` stored now if there is none yet (two
/// processes racing both end with the one that won).
pub async fn shared_secret(conn: &mut Conn, name: &str, fresh: &[u8]) -> Result<Vec<u8>> {
    sqlx::query(
        "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(fresh)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    let v: Vec<u8> = sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(conn)
        .await?;
    if v.len() != fresh.len() {
        return Err(StoreError::Corrupt {
            table: "server_secrets",
            reason: format!("'{name}' is {} bytes, not {}", v.len(), fresh.len()),
        });
    }
    Ok(v)
}
