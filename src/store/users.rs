//! Console users, their sessions (by the SHA-256 of the cookie's token) and the log of changes
//! made through the console.

use sqlx::Row;

use super::{Conn, Result, StoreError};
use crate::model::{Action, Role, User};

fn row_to_user(r: &sqlx::any::AnyRow) -> Result<User> {
    let role: String = r.try_get("role")?;
    Ok(User {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: role.parse().map_err(|reason| StoreError::Corrupt {
            table: "users",
            reason,
        })?,
        password_hash: r.try_get("password_hash")?,
        created_at: r.try_get("created_at")?,
    })
}

/// Adds a user; a name in use is a unique violation.
pub async fn insert_user(
    conn: &mut Conn,
    name: &str,
    role: Role,
    hash: &str,
    at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(name)
    .bind(role.as_str())
    .bind(hash)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn user_named(conn: &mut Conn, name: &str) -> Result<Option<User>> {
    sqlx::query("SELECT id, name, role, password_hash, created_at FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(row_to_user)
        .transpose()
}

pub async fn users(conn: &mut Conn) -> Result<Vec<User>> {
    sqlx::query("SELECT id, name, role, password_hash, created_at FROM users ORDER BY name")
        .fetch_all(conn)
        .await?
        .iter()
        .map(row_to_user)
        .collect()
}

/// How many admins there are (the last one may not be removed).
pub async fn admin_count(conn: &mut Conn) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'")
            .fetch_one(conn)
            .await?,
    )
}

/// Removes a user and (by cascade, and explicitly for engines that skip it) every session.
pub async fn delete_user(conn: &mut Conn, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets a user's password hash and ends their sessions.
pub async fn set_password(conn: &mut Conn, id: i64, hash: &str) -> Result<()> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A stored session: whose, since when, last used when.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user: User,
    pub created_at: i64,
    pub last_used_at: i64,
}

pub async fn insert_session(
    conn: &mut Conn,
    token_sha256: &str,
    user_id: i64,
    peer: &str,
    at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (token_sha256, user_id, peer, created_at, last_used_at)
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(token_sha256)
    .bind(user_id)
    .bind(peer)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The session of a token's hash, with its user (none once the user is removed).
pub async fn session(conn: &mut Conn, token_sha256: &str) -> Result<Option<SessionRow>> {
    let Some(r) = sqlx::query(
        "SELECT u.id, u.name, u.role, u.password_hash, u.created_at,
                s.created_at AS s_created, s.last_used_at
           FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE s.token_sha256 = $1",
    )
    .bind(token_sha256)
    .fetch_optional(conn)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(SessionRow {
        user: row_to_user(&r)?,
        created_at: r.try_get("s_created")?,
        last_used_at: r.try_get("last_used_at")?,
    }))
}

pub async fn touch_session(conn: &mut Conn, token_sha256: &str, at: i64) -> Result<()> {
    sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE token_sha256 = $2")
        .bind(at)
        .bind(token_sha256)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_session(conn: &mut Conn, token_sha256: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE token_sha256 = $1")
        .bind(token_sha256)
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes sessions idle since before `idle_before` or opened before `opened_before`.
pub async fn delete_stale_sessions(
    conn: &mut Conn,
    idle_before: i64,
    opened_before: i64,
) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM sessions WHERE last_used_at < $1 OR created_at < $2")
            .bind(idle_before)
            .bind(opened_before)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// Records a change made through the console.
pub async fn log_action(conn: &mut Conn, a: &Action) -> Result<()> {
    sqlx::query(
        "INSERT INTO operator_log (at, user_name, role, peer, action, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(a.at)
    .bind(&a.user)
    .bind(&a.role)
    .bind(&a.peer)
    .bind(&a.action)
    .bind(&a.detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// The newest changes first; `user`: only that user's.
pub async fn actions(conn: &mut Conn, user: Option<&str>, limit: i64) -> Result<Vec<Action>> {
    sqlx::query(
        "SELECT at, user_name, role, peer, action, detail FROM operator_log
          WHERE ($1 IS NULL OR user_name = $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(user)
    .bind(limit)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(Action {
            at: r.try_get("at")?,
            user: r.try_get("user_name")?,
            role: r.try_get("role")?,
            peer: r.try_get("peer")?,
            action: r.try_get("action")?,
            detail: r.try_get("detail")?,
        })
    })
    .collect()
}
