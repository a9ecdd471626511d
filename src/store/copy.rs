//! Moving an install between databases: every table copied row for row from one store into an
//! empty other (SQLite to PostgreSQL or back), read in one snapshot, and checked afterwards by
//! row counts and a digest of every value on both sides.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use sqlx::{Row, ValueRef};

use super::{Backend, Conn, Result, Store, StoreError};

/// Our tables, parents before children (foreign keys hold at every step).
pub const TABLES: &[&str] = &[
    "firmware",
    "firmware_refused",
    "sites",
    "phones",
    "phone_seen",
    "lines",
    "settings",
    "uploads",
    "changes",
    "firmware_assign",
    "fetch_audit",
    "pbx",
    "pbx_syncs",
    "server_secrets",
    "users",
    "sessions",
    "operator_log",
];

/// Columns a database numbers itself (PostgreSQL identities; SQLite row ids).
const IDENTITIES: &[(&str, &str)] = &[
    ("sites", "id"),
    ("settings", "id"),
    ("changes", "seq"),
    ("firmware_assign", "id"),
    ("fetch_audit", "id"),
    ("pbx", "id"),
    ("users", "id"),
    ("operator_log", "id"),
];

/// Rows written per statement.
const BATCH: usize = 200;

/// What a column holds, as both engines store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Blob,
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// Rows per table and a digest of every value, in key order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub rows: BTreeMap<String, i64>,
    pub sha256: String,
}

/// A table's columns and kinds, in the order the schema declares them.
async fn columns(conn: &mut Conn, backend: Backend, table: &str) -> Result<Vec<(String, Kind)>> {
    let rows: Vec<(String, String)> = match backend {
        Backend::Sqlite => {
            sqlx::query_as("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
                .bind(table)
                .fetch_all(&mut *conn)
                .await?
        }
        Backend::Postgres => {
            sqlx::query_as(
                "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT)
                   FROM information_schema.columns
                  WHERE table_schema = current_schema() AND table_name = $1
                  ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    if rows.is_empty() {
        return Err(StoreError::Corrupt {
            table: "(schema)",
            reason: format!("table {table} is missing"),
        });
    }
    rows.into_iter()
        .map(|(name, ty)| {
            let kind = match ty.to_ascii_lowercase().as_str() {
                "integer" | "bigint" => Kind::Int,
                "text" => Kind::Text,
                "blob" | "bytea" => Kind::Blob,
                other => {
                    return Err(StoreError::Corrupt {
                        table: "(schema)",
                        reason: format!(
                            "{table}.{name} has type {other}, which no migration makes"
                        ),
                    });
                }
            };
            Ok((name, kind))
        })
        .collect()
}

/// The database's own tables (not the engine's, not sqlx's migration record).
async fn tables(conn: &mut Conn, backend: Backend) -> Result<Vec<String>> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
               AND name <> '_sqlx_migrations' ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables
              WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
                AND table_name <> '_sqlx_migrations' ORDER BY table_name"
        }
    };
    Ok(sqlx::query_scalar(sql).fetch_all(conn).await?)
}

/// `"a", "b"` for a column list.
fn quoted(cols: &[(String, Kind)]) -> String {
    cols.iter()
        .map(|(c, _)| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_row(r: &sqlx::any::AnyRow, cols: &[(String, Kind)]) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(cols.len());
    for (i, (_, kind)) in cols.iter().enumerate() {
        if r.try_get_raw(i)?.is_null() {
            out.push(Value::Null);
            continue;
        }
        out.push(match kind {
            Kind::Int => Value::Int(r.try_get(i)?),
            Kind::Text => Value::Text(r.try_get(i)?),
            Kind::Blob => Value::Blob(r.try_get(i)?),
        });
    }
    Ok(out)
}

/// A digest of a table's rows that does not depend on their order (the engines sort text by
/// different collations): the sum, lane by lane, of every row's SHA-256.
#[derive(Default)]
struct RowSum([u64; 4]);

impl RowSum {
    fn add(&mut self, row: &[Value]) {
        let mut h = Sha256::new();
        digest_row(&mut h, row);
        let d = h.finalize();
        for (lane, chunk) in self.0.iter_mut().zip(d.chunks(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *lane = lane.wrapping_add(u64::from_be_bytes(b));
        }
    }
}

fn digest_row(h: &mut Sha256, row: &[Value]) {
    for v in row {
        match v {
            Value::Null => h.update([0u8]),
            Value::Int(i) => {
                h.update([1u8]);
                h.update(i.to_be_bytes());
            }
            Value::Text(s) => {
                h.update([2u8]);
                h.update((s.len() as u64).to_be_bytes());
                h.update(s.as_bytes());
            }
            Value::Blob(b) => {
                h.update([3u8]);
                h.update((b.len() as u64).to_be_bytes());
                h.update(b);
            }
        }
    }
}

/// Begins the one read snapshot a copy or a tally is taken in.
async fn snapshot(store: &Store) -> Result<super::Tx> {
    Ok(match store.backend() {
        Backend::Sqlite => store.pool.begin_with("BEGIN").await?,
        Backend::Postgres => {
            store
                .pool
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await?
        }
    })
}

impl Store {
    /// Rows per table and a digest of every value, read in one snapshot.
    pub async fn tally(&self) -> Result<Tally> {
        use futures_util::TryStreamExt;
        let mut tx = snapshot(self).await?;
        let mut rows = BTreeMap::new();
        let mut h = Sha256::new();
        for t in TABLES {
            let cols = columns(&mut tx, self.backend(), t).await?;
            let (mut n, mut sum) = (0i64, RowSum::default());
            let sql = format!("SELECT {} FROM \"{t}\"", quoted(&cols));
            let mut stream = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut *tx);
            while let Some(r) = stream.try_next().await? {
                sum.add(&read_row(&r, &cols)?);
                n += 1;
            }
            drop(stream);
            h.update(t.as_bytes());
            h.update(n.to_be_bytes());
            for lane in sum.0 {
                h.update(lane.to_be_bytes());
            }
            rows.insert(t.to_string(), n);
        }
        tx.rollback().await?;
        Ok(Tally {
            rows,
            sha256: hex::encode(h.finalize()),
        })
    }

    /// Tables of ours that hold rows (an empty database has none).
    pub async fn non_empty_tables(&self) -> Result<Vec<(String, i64)>> {
        let mut conn = self.conn().await?;
        let mut out = Vec::new();
        for t in TABLES {
            let q = format!("SELECT count(*) FROM \"{t}\"");
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(q))
                .fetch_one(&mut *conn)
                .await?;
            if n > 0 {
                out.push((t.to_string(), n));
            }
        }
        Ok(out)
    }

    /// Copies every row of this database into `to`, which must hold none, in one transaction
    /// there (a failure leaves it empty); then checks both by counts and digest.
    pub async fn copy_into(&self, to: &Store) -> Result<Tally> {
        let busy = to.non_empty_tables().await?;
        if !busy.is_empty() {
            let list: Vec<String> = busy.iter().map(|(t, n)| format!("{n} {t}")).collect();
            return Err(StoreError::Unsupported(format!(
                "the target database is not empty ({}): copy into a new, empty database",
                list.join(", ")
            )));
        }
        use futures_util::TryStreamExt;
        let mut from = snapshot(self).await?;
        // A table this build does not know would be left behind without a word: refuse.
        let unknown: Vec<String> = tables(&mut from, self.backend())
            .await?
            .into_iter()
            .filter(|t| !TABLES.contains(&t.as_str()))
            .collect();
        if !unknown.is_empty() {
            return Err(StoreError::Unsupported(format!(
                "the database has tables this phoneprov does not copy ({}): use the phoneprov that made them",
                unknown.join(", ")
            )));
        }
        let mut dst = to.begin().await?;
        for t in TABLES {
            let cols = columns(&mut from, self.backend(), t).await?;
            let theirs = columns(&mut dst, to.backend(), t).await?;
            if cols.iter().map(|c| &c.0).ne(theirs.iter().map(|c| &c.0)) {
                return Err(StoreError::Corrupt {
                    table: "(schema)",
                    reason: format!("{t} has different columns in the two databases"),
                });
            }
            let sql = format!("SELECT {} FROM \"{t}\"", quoted(&cols));
            let mut stream = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut *from);
            let mut page = Vec::with_capacity(BATCH);
            loop {
                let next = stream.try_next().await?;
                if let Some(r) = &next {
                    page.push(read_row(r, &cols)?);
                }
                if page.len() == BATCH || (next.is_none() && !page.is_empty()) {
                    insert_page(&mut dst, t, &cols, std::mem::take(&mut page)).await?;
                }
                if next.is_none() {
                    break;
                }
            }
        }
        from.rollback().await?;
        if to.backend() == Backend::Postgres {
            // Identities go on after the copied rows, not from 1.
            for (t, col) in IDENTITIES {
                let q = format!(
                    "SELECT setval(pg_get_serial_sequence('{t}', '{col}'),
                                   coalesce((SELECT max(\"{col}\") FROM \"{t}\"), 0) + 1, false)"
                );
                sqlx::query(sqlx::AssertSqlSafe(q))
                    .execute(&mut *dst)
                    .await?;
            }
        }
        super::commit(dst).await?;
        let (a, b) = (self.tally().await?, to.tally().await?);
        if a != b {
            return Err(StoreError::Corrupt {
                table: "(copy)",
                reason: format!(
                    "the copy does not match its source (rows {:?} against {:?}; digest {} against {})",
                    b.rows, a.rows, b.sha256, a.sha256
                ),
            });
        }
        Ok(b)
    }
}

/// Writes one page of rows.
async fn insert_page(
    dst: &mut Conn,
    t: &str,
    cols: &[(String, Kind)],
    page: Vec<Vec<Value>>,
) -> Result<()> {
    let sql = format!(
        "INSERT INTO \"{t}\" ({}) VALUES {}",
        quoted(cols),
        super::batch::values_list(dst, page.len(), cols.len())
    );
    let mut q = super::batch::query(sql);
    for row in page {
        for (v, (_, kind)) in row.into_iter().zip(cols) {
            q = match (v, kind) {
                (Value::Null, Kind::Int) => q.bind(None::<i64>),
                (Value::Null, Kind::Text) => q.bind(None::<String>),
                (Value::Null, Kind::Blob) => q.bind(None::<Vec<u8>>),
                (Value::Int(i), _) => q.bind(i),
                (Value::Text(s), _) => q.bind(s),
                (Value::Blob(b), _) => q.bind(b),
            };
        }
    }
    q.execute(dst).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migration that adds a table must add it to `TABLES` too, or `migrate-db` and backups
    /// of PostgreSQL installs would refuse it.
    #[tokio::test]
    async fn every_table_the_migrations_make_is_copied() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.sqlite")).await.unwrap();
        let mut conn = store.conn().await.unwrap();
        let mut want: Vec<String> = TABLES.iter().map(|t| t.to_string()).collect();
        want.sort();
        assert_eq!(tables(&mut conn, Backend::Sqlite).await.unwrap(), want);
    }
}
