//! Consistent copies of the database for backups: `VACUUM INTO` (one read transaction, so a
//! running server and CLI writers go on), and what a copy holds (rows per table, the firmware
//! images it names) so a backup and its restore can be checked against each other.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};

use super::{Result, Store, StoreError};

/// Rows per table (SQLite's own and sqlx's bookkeeping left out), and stored images' sha256.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Contents {
    pub tables: BTreeMap<String, i64>,
    pub images: Vec<String>,
}

impl Store {
    /// Writes a consistent copy of the database to `dest` (which must not exist) as an
    /// SQLite file: `VACUUM INTO` from SQLite; from PostgreSQL every row, read in one snapshot,
    /// into a new file (so one archive format restores either, and `migrate-db` moves it on).
    pub async fn snapshot_into(&self, dest: &Path) -> Result<()> {
        if self.backend() == super::Backend::Postgres {
            let copy = Store::connect(&super::Location::Sqlite(dest.to_path_buf()), None).await?;
            let done = self.copy_into(&copy).await;
            copy.close().await;
            return done.map(|_| ());
        }
        let mut conn = self.pool.acquire().await?;
        sqlx::query("VACUUM INTO ?")
            .bind(dest.to_string_lossy().to_string())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

/// Opens a database copy read-only, checks it, and says what it holds.
pub async fn contents_of(path: &Path) -> Result<Contents> {
    let mut conn: SqliteConnection = SqliteConnectOptions::from_str("sqlite:")
        .map_err(StoreError::Db)?
        .filename(path)
        .read_only(true)
        .connect()
        .await?;
    let check: Vec<(String,)> = sqlx::query_as("PRAGMA quick_check")
        .fetch_all(&mut conn)
        .await?;
    if check.len() != 1 || check[0].0 != "ok" {
        return Err(StoreError::Corrupt {
            table: "(database)",
            reason: check
                .into_iter()
                .map(|(r,)| r)
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await?;
    let mut tables = BTreeMap::new();
    for (name,) in names {
        // Names come from the database's own catalogue; quoted as identifiers.
        let q = format!("SELECT COUNT(*) FROM \"{}\"", name.replace('"', "\"\""));
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(q))
            .fetch_one(&mut conn)
            .await?;
        tables.insert(name, n);
    }
    let images: Vec<(String,)> = sqlx::query_as("SELECT sha256 FROM firmware ORDER BY sha256")
        .fetch_all(&mut conn)
        .await?;
    conn.close().await?;
    Ok(Contents {
        tables,
        images: images.into_iter().map(|(s,)| s).collect(),
    })
}
