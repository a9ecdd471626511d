//! The database: a cheap-to-clone handle on an SQLite pool, its migrations, and every query.
//!
//! Nothing outside this module names sqlx. Query functions take a `&mut Conn`, so the same
//! function runs on a pooled connection or inside a transaction (`&mut *tx`). Every change that
//! alters what phones receive appends to `changes` in the same transaction ([`log_change`]);
//! a running server follows that log to re-render.

mod audit;
pub mod firmware;
mod pbx;
mod phones;
mod seen;
mod settings;
mod sites;
pub mod snapshot;

pub use audit::*;
pub use pbx::*;
pub use phones::*;
pub use seen::*;
pub use settings::*;
pub use sites::*;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::mac::Mac;

/// A connection, pooled or in a transaction.
pub type Conn = sqlx::SqliteConnection;
/// An open transaction; commit it or drop it to roll back.
pub type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(sqlx::Error),
    /// SQLITE_FULL: the disk (or quota) holding the database has no room.
    #[error(
        "the disk holding the database is full: free some space and try again; nothing was changed ({0})"
    )]
    Full(sqlx::Error),
    /// SQLITE_BUSY after the busy timeout: another process holds the write lock.
    #[error(
        "the database is locked by another writer (waited {BUSY_WAIT_S} s): another phoneprov command, or a tool with the file open for writing; try again when it is done ({0})"
    )]
    Busy(sqlx::Error),
    #[error("could not migrate the database at {path}: {source}")]
    Migrate {
        path: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("corrupt row in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
}

/// How long a writer waits for another to finish before giving up.
pub const BUSY_WAIT_S: u64 = 10;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let code = match &e {
            sqlx::Error::Database(d) => d.code().and_then(|c| c.parse::<i64>().ok()),
            _ => None,
        };
        // SQLite's primary result code is the low byte of an extended one.
        match code.map(|c| c & 0xff) {
            Some(13) => StoreError::Full(e),
            Some(5) | Some(6) => StoreError::Busy(e),
            _ => StoreError::Db(e),
        }
    }
}

impl StoreError {
    /// Whether the write failed for want of room or of the lock: the caller may retry later.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Full(_) | StoreError::Busy(_))
    }

    /// Whether the error is a UNIQUE constraint on the given index or column list.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Handle on the database; clone freely.
#[derive(Clone, Debug)]
pub struct Store {
    pool: sqlx::SqlitePool,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating if needed) the SQLite file and applies pending migrations. WAL mode lets
    /// a running server read while a CLI command writes; `busy_timeout` makes writers queue.
    pub async fn open(path: &Path) -> Result<Store> {
        let opts = SqliteConnectOptions::from_str("sqlite:")
            .map_err(StoreError::Db)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(BUSY_WAIT_S));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            // A commit that failed on a full disk leaves its connection marked as inside a
            // transaction (SQLite rolled it back itself, so the rollback sqlx sends fails),
            // and every later `begin` on it would fail too: such a connection is replaced.
            .before_acquire(|conn, _| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
            })
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                path: path.display().to_string(),
                source,
            })?;
        // Data that migration 0007 could not compute in SQL: SHA-1s of stored images.
        if let Some(dir) = path.parent() {
            let mut conn = pool.acquire().await?;
            firmware::fill_missing_sha1(&mut conn, &dir.join("firmware")).await?;
        }
        Ok(Store { pool })
    }

    /// `PRAGMA quick_check`: `Ok(())` when SQLite finds the file sound, else what it found.
    pub async fn quick_check(&self) -> Result<Result<(), String>> {
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<(String,)> = sqlx::query_as("PRAGMA quick_check")
            .fetch_all(&mut *conn)
            .await?;
        let found: Vec<String> = rows.into_iter().map(|(r,)| r).collect();
        Ok(match found.as_slice() {
            [ok] if ok == "ok" => Ok(()),
            _ => Err(found.join("; ")),
        })
    }

    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        Ok(self.pool.acquire().await?)
    }

    /// Starts a write transaction. `BEGIN IMMEDIATE` takes the write lock up front, so two
    /// writers queue on `busy_timeout` instead of failing half-way.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Commits a transaction.
pub async fn commit(tx: Tx) -> Result<()> {
    Ok(tx.commit().await?)
}

/// What a logged change touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every site (templates, model-wide settings).
    All,
    Site(i64),
    Phone(i64, Mac),
}

/// Records that what phones receive changed; call inside the transaction that made the change.
pub async fn log_change(conn: &mut Conn, scope: Scope) -> Result<()> {
    let (site, mac) = match scope {
        Scope::All => (None, None),
        Scope::Site(s) => (Some(s), None),
        Scope::Phone(s, m) => (Some(s), Some(m.to_string())),
    };
    sqlx::query("INSERT INTO changes (site_id, mac, at) VALUES (?, ?, ?)")
        .bind(site)
        .bind(mac)
        .bind(now_ms())
        .execute(conn)
        .await?;
    Ok(())
}

/// The newest change's sequence number (0 when none).
pub async fn last_change(conn: &mut Conn) -> Result<i64> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT max(seq) FROM changes")
        .fetch_one(conn)
        .await?;
    Ok(seq.unwrap_or(0))
}

/// The oldest change still in the log (older ones are pruned after a day).
pub async fn oldest_change(conn: &mut Conn) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT min(seq) FROM changes")
        .fetch_one(conn)
        .await?)
}

/// Changes after `seq`, oldest first.
pub async fn changes_since(conn: &mut Conn, seq: i64) -> Result<Vec<(i64, Scope)>> {
    let rows: Vec<(i64, Option<i64>, Option<String>)> =
        sqlx::query_as("SELECT seq, site_id, mac FROM changes WHERE seq > ? ORDER BY seq")
            .bind(seq)
            .fetch_all(conn)
            .await?;
    rows.into_iter()
        .map(|(seq, site, mac)| {
            let scope = match (site, mac) {
                (None, _) => Scope::All,
                (Some(s), None) => Scope::Site(s),
                (Some(s), Some(m)) => Scope::Phone(s, parse_mac("changes", &m)?),
            };
            Ok((seq, scope))
        })
        .collect()
}

/// Forgets changes older than `before_ms` (a server that was down re-renders everything).
pub async fn prune_changes(conn: &mut Conn, before_ms: i64) -> Result<()> {
    sqlx::query("DELETE FROM changes WHERE at < ? AND seq < (SELECT max(seq) FROM changes)")
        .bind(before_ms)
        .execute(conn)
        .await?;
    Ok(())
}

fn parse_mac(table: &'static str, s: &str) -> Result<Mac> {
    Mac::from_bare(s).ok_or_else(|| StoreError::Corrupt {
        table,
        reason: format!("'{s}' is not a MAC"),
    })
}
