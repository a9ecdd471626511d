//! Where the database is: an SQLite file (the embedded default) or a PostgreSQL URL, how each
//! is connected to, and which engine an error came from. The only place that knows there are
//! two backends; every query in `store/` is written once, in SQL both accept.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;

use super::{BUSY_WAIT_S, StoreError};

/// Which engine holds the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database to open.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file, created if missing.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://user:password@host:port/db?…`).
    Postgres(String),
}

impl Location {
    /// Reads `--database-url`: `postgres://…` / `postgresql://…`, or `sqlite:PATH` /
    /// `sqlite://PATH` for a file elsewhere than the data dir.
    pub fn parse(url: &str) -> Result<Location, String> {
        let u = url.trim();
        if u.starts_with("postgres://") || u.starts_with("postgresql://") {
            let parsed = AnyConnectOptions::from_str(u)
                .map_err(|e| format!("database URL is not a URL: {e}"))?;
            if parsed.database_url.host_str().is_none_or(str::is_empty) {
                return Err("a postgres:// database URL needs a host".into());
            }
            return Ok(Location::Postgres(u.to_string()));
        }
        if let Some(p) = u
            .strip_prefix("sqlite://")
            .or_else(|| u.strip_prefix("sqlite:"))
        {
            let p = p.split('?').next().unwrap_or(p);
            if p.is_empty() {
                return Err("a sqlite: database URL needs a file path".into());
            }
            return Ok(Location::Sqlite(PathBuf::from(p)));
        }
        Err(format!(
            "database URL '{}' must start with postgres:// (or sqlite: for a file)",
            redact(u)
        ))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Location::Sqlite(_) => Backend::Sqlite,
            Location::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite file, when that is what this is.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }

    /// What to connect with.
    fn connect_url(&self) -> Result<String, StoreError> {
        Ok(match self {
            Location::Sqlite(p) => SqliteConnectOptions::new()
                .filename(p)
                .create_if_missing(true)
                .to_url_lossy()
                .to_string(),
            Location::Postgres(u) => u.clone(),
        })
    }

    /// One connection made and closed, with no retries (a pool retries until its timeout):
    /// whether the server is there now. Nothing to do for an SQLite file.
    pub(super) async fn probe(&self) -> Result<(), StoreError> {
        use sqlx::Connection;
        if self.backend() == Backend::Postgres {
            sqlx::any::install_default_drivers();
            let opts = AnyConnectOptions::from_str(&self.connect_url()?).map_err(StoreError::Db)?;
            sqlx::AnyConnection::connect_with(&opts)
                .await?
                .close()
                .await?;
        }
        Ok(())
    }

    /// A pool on this database; SQLite's file is created if missing and put in WAL mode.
    pub(super) async fn pool(&self, max: u32) -> Result<sqlx::AnyPool, StoreError> {
        sqlx::any::install_default_drivers();
        // A writer waiting its turn for the lock is not a slow query worth a warning.
        let opts = AnyConnectOptions::from_str(&self.connect_url()?)
            .map_err(StoreError::Db)?
            .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
        let base = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(BUSY_WAIT_S + 5))
            // A commit that failed on a full disk leaves its connection marked as inside a
            // transaction (SQLite rolled it back itself, so the rollback sqlx sends fails),
            // and every later `begin` on it would fail too: such a connection is replaced.
            .before_acquire(|conn, _| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
            });
        let pool = match self.backend() {
            Backend::Sqlite => {
                base.after_connect(|conn, _| {
                    Box::pin(async move {
                        // Writers queue on the lock instead of failing; WAL makes NORMAL safe.
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "PRAGMA busy_timeout = {}",
                            BUSY_WAIT_S * 1000
                        )))
                        .execute(&mut *conn)
                        .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                        // 1 MiB of page cache per connection (SQLite's default is 2 MiB): the
                        // OS page cache holds the file anyway, and `serve` keeps four.
                        sqlx::query("PRAGMA cache_size = -1024")
                            .execute(&mut *conn)
                            .await?;
                        // A multi-row statement inside a transaction keeps a statement journal
                        // (to undo just that statement): in memory, not in a temporary file.
                        sqlx::query("PRAGMA temp_store = MEMORY")
                            .execute(&mut *conn)
                            .await?;
                        Ok(())
                    })
                })
                .connect_with(opts)
                .await?
            }
            Backend::Postgres => base.connect_with(opts).await?,
        };
        if self.backend() == Backend::Sqlite {
            // WAL lets a running server read while a CLI command writes; it is kept in the file.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        Ok(pool)
    }
}

/// Whether `conn`'s engine numbers a statement's parameters (`$1`: PostgreSQL) rather than
/// taking them by position (`?`: SQLite).
pub(super) fn numbered_params(conn: &super::Conn) -> bool {
    conn.backend_name() != <sqlx::Sqlite as sqlx::Database>::NAME
}

/// Never prints a password.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(u) => f.write_str(&redact(u)),
        }
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Location({self})")
    }
}

/// A URL with its password (and any `password=` parameter) replaced by `***`.
pub fn redact(url: &str) -> String {
    let mut out = match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => url.to_string(),
    };
    if let Some(i) = out.find("password=") {
        let end = out[i..].find('&').map(|e| i + e).unwrap_or(out.len());
        out.replace_range(i + "password=".len()..end, "***");
    }
    out
}

/// Whether connecting failed because the server is not there (yet): worth waiting for.
pub(super) fn unreachable(e: &StoreError) -> bool {
    let (StoreError::Db(e) | StoreError::Busy(e)) = e else {
        return false;
    };
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
        // cannot_connect_now: starting up, shutting down, in recovery.
        sqlx::Error::Database(d) => d
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|p| p.code() == "57P03"),
        _ => false,
    }
}

/// What an engine's error code means to us.
pub(super) enum Class {
    Full,
    Busy,
    Other,
}

/// Classifies a database error by the engine that raised it.
pub(super) fn classify(e: &sqlx::Error) -> Class {
    let sqlx::Error::Database(d) = e else {
        return Class::Other;
    };
    if let Some(pg) = d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        // SQLSTATE: disk_full, lock_not_available (lock_timeout), deadlock_detected. A new
        // session on a full disk fails before any code is set ("could not write init file",
        // XX000): a write that failed in the data directory, which is the disk filling up.
        return match pg.code() {
            "53100" => Class::Full,
            _ if pg.message().starts_with("could not write init file") => Class::Full,
            "55P03" | "40P01" => Class::Busy,
            _ => Class::Other,
        };
    }
    // SQLite's primary result code is the low byte of an extended one.
    match d
        .code()
        .and_then(|c| c.parse::<i64>().ok())
        .map(|c| c & 0xff)
    {
        Some(13) => Class::Full,
        Some(5) | Some(6) => Class::Busy,
        _ => Class::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_and_passwords_never_shown() {
        let l = Location::parse("postgres://pp:s3cret@db.example:5433/prov").unwrap();
        assert_eq!(l.backend(), Backend::Postgres);
        assert!(!l.to_string().contains("s3cret"), "{l}");
        assert!(!format!("{l:?}").contains("s3cret"));
        assert!(redact("postgres://h/db?user=a&password=hunter2&x=1").contains("password=***&x=1"));
        assert_eq!(
            Location::parse("sqlite:/var/lib/pp/db.sqlite").unwrap(),
            Location::Sqlite("/var/lib/pp/db.sqlite".into())
        );
        assert_eq!(
            Location::parse("sqlite:///tmp/x.sqlite?mode=rwc").unwrap(),
            Location::Sqlite("/tmp/x.sqlite".into())
        );
        let e = Location::parse("mysql://root:pw@h/db").unwrap_err();
        assert!(e.contains("postgres://") && !e.contains("pw@"), "{e}");
        assert!(Location::parse("postgres:///db").is_err());
        assert!(Location::parse("sqlite:").is_err());
    }
}
