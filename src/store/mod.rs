//! The database: a cheap-to-clone handle on a pool of SQLite (the embedded default) or
//! PostgreSQL connections, their migrations, and every query.
//!
//! Nothing outside this module names sqlx, and nothing outside [`location`] knows which engine
//! it is talking to: every query is written once, in SQL both accept (`$N` parameters,
//! `coalesce`, `ON CONFLICT`, `RETURNING`), and reads integers as i64. Query functions take a
//! `&mut Conn`, so the same function runs on a pooled connection or inside a transaction
//! (`&mut *tx`). Every change that alters what phones receive appends to `changes` in the same
//! transaction ([`log_change`]); a running server follows that log to re-render.

mod audit;
mod batch;
pub mod copy;
pub mod firmware;
mod listen;
mod location;
mod pbx;
mod phones;
mod secrets;
mod seen;
mod settings;
mod sites;
pub mod snapshot;
mod users;

pub use audit::*;
pub use location::{Backend, Location, redact};
pub use pbx::*;
pub use phones::*;
pub use secrets::*;
pub use seen::*;
pub use settings::*;
pub use sites::*;
pub use users::*;

use std::path::Path;

use crate::mac::Mac;

/// A connection, pooled or in a transaction.
pub type Conn = sqlx::AnyConnection;
/// An open transaction; commit it or drop it to roll back.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;
/// A connection taken from the pool.
pub type PooledConn = sqlx::pool::PoolConnection<sqlx::Any>;

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(sqlx::Error),
    /// SQLITE_FULL, or PostgreSQL's disk_full: the disk holding the database has no room.
    #[error(
        "the disk holding the database is full: free some space and try again; nothing was changed ({0})"
    )]
    Full(sqlx::Error),
    /// The write lock was not had within the wait: another process holds it.
    #[error(
        "the database is locked by another writer (waited {BUSY_WAIT_S} s): another phoneprov command, or a tool with the database open for writing; try again when it is done ({0})"
    )]
    Busy(sqlx::Error),
    #[error("could not migrate the database at {path}: {source}")]
    Migrate {
        path: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("corrupt row in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
    /// What this engine cannot do (e.g. an SQLite file copy of a PostgreSQL database).
    #[error("{0}")]
    Unsupported(String),
    /// Work that the runtime shut down before it ran.
    #[error("{0}")]
    Stopped(String),
}

/// How long a writer waits for another to finish before giving up.
pub const BUSY_WAIT_S: u64 = 10;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match location::classify(&e) {
            location::Class::Full => StoreError::Full(e),
            location::Class::Busy => StoreError::Busy(e),
            location::Class::Other => StoreError::Db(e),
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
    pool: sqlx::AnyPool,
    location: std::sync::Arc<Location>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A 0/1 integer column as a flag.
fn flag(r: &sqlx::any::AnyRow, col: &str) -> Result<bool> {
    use sqlx::Row;
    Ok(r.try_get::<i64, _>(col)? != 0)
}

/// Key for the advisory lock PostgreSQL writers take, as SQLite's `BEGIN IMMEDIATE` does.
const WRITE_LOCK: i64 = 0x7068_6f6e_6570_7276; // "phoneprv"

impl Store {
    /// Opens (creating if needed) an SQLite file and applies pending migrations; stored
    /// firmware images are looked for beside it.
    pub async fn open(path: &Path) -> Result<Store> {
        Store::connect(&Location::Sqlite(path.to_path_buf()), path.parent()).await
    }

    /// Opens a database and applies pending migrations. `data_dir` holds the firmware images
    /// whose SHA-1s an older store did not record (they are filled in).
    pub async fn connect(location: &Location, data_dir: Option<&Path>) -> Result<Store> {
        Store::connect_waiting(location, data_dir, Some(std::time::Duration::ZERO)).await
    }

    /// [`Store::connect`], waiting while a database server cannot be reached (down, starting,
    /// restarting) and saying so every few seconds: up to `wait`, or for as long as it takes
    /// when `None` (a server that starts before its database does).
    pub async fn connect_waiting(
        location: &Location,
        data_dir: Option<&Path>,
        wait: Option<std::time::Duration>,
    ) -> Result<Store> {
        let max = match location.backend() {
            Backend::Sqlite => 4,
            Backend::Postgres => 8,
        };
        let started = std::time::Instant::now();
        let mut said = None::<std::time::Instant>;
        loop {
            match location.probe().await {
                Ok(()) => break,
                Err(e)
                    if location::unreachable(&e) && wait.is_none_or(|w| started.elapsed() < w) =>
                {
                    if said.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(5)) {
                        said = Some(std::time::Instant::now());
                        tracing::warn!(database = %location, error = %e,
                            waited_s = started.elapsed().as_secs(),
                            "waiting for the database to accept connections");
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
        let pool = location.pool(max).await?;
        if said.is_some() {
            tracing::info!(database = %location, waited_s = started.elapsed().as_secs(),
                "the database accepts connections");
        }
        let migrated = match location.backend() {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await,
        };
        migrated.map_err(|source| StoreError::Migrate {
            path: location.to_string(),
            source,
        })?;
        // Data that migration 0007 could not compute in SQL: SHA-1s of stored images.
        if let Some(dir) = data_dir {
            let mut conn = pool.acquire().await?;
            firmware::fill_missing_sha1(&mut conn, &dir.join("firmware")).await?;
        }
        Ok(Store {
            pool,
            location: std::sync::Arc::new(location.clone()),
        })
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn backend(&self) -> Backend {
        self.location.backend()
    }

    /// SQLite's `PRAGMA quick_check`: `Ok(())` when the file is sound, else what it found.
    /// PostgreSQL keeps its own files whole (WAL replay): a round trip is all there is to check.
    pub async fn quick_check(&self) -> Result<Result<(), String>> {
        let mut conn = self.pool.acquire().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT 1").execute(&mut *conn).await?;
            return Ok(Ok(()));
        }
        let rows: Vec<(String,)> = sqlx::query_as("PRAGMA quick_check")
            .fetch_all(&mut *conn)
            .await?;
        let found: Vec<String> = rows.into_iter().map(|(r,)| r).collect();
        Ok(match found.as_slice() {
            [ok] if ok == "ok" => Ok(()),
            _ => Err(found.join("; ")),
        })
    }

    pub async fn conn(&self) -> Result<PooledConn> {
        Ok(self.pool.acquire().await?)
    }

    /// Starts a write transaction holding the database's one write lock, so two writers
    /// queue (for up to [`BUSY_WAIT_S`]) instead of failing half-way: SQLite's
    /// `BEGIN IMMEDIATE`, PostgreSQL's transaction-scoped advisory lock.
    pub async fn begin(&self) -> Result<Tx> {
        match self.backend() {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SET LOCAL lock_timeout = '{BUSY_WAIT_S}s'"
                )))
                .execute(&mut *tx)
                .await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
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
    sqlx::query("INSERT INTO changes (site_id, mac, at) VALUES ($1, $2, $3)")
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
        sqlx::query_as("SELECT seq, site_id, mac FROM changes WHERE seq > $1 ORDER BY seq")
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
    sqlx::query("DELETE FROM changes WHERE at < $1 AND seq < (SELECT max(seq) FROM changes)")
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
