//! Multi-row statements: how many rows a statement takes, the `VALUES` list for them, and
//! the statement itself.
//!
//! A statement per row costs a round trip to the connection's worker thread (SQLite) or the
//! server (PostgreSQL) each; the server's background writers (last-seen, the fetch audit)
//! write thousands of rows a second in a boot storm, so they write up to [`MAX_ROWS`] per
//! statement.

use super::Conn;

/// Rows per statement: 11 columns × 128 rows stays far below both engines' limits on bound
/// parameters (32,766 for SQLite, 65,535 for PostgreSQL).
pub const MAX_ROWS: usize = 128;

/// A multi-row statement, prepared for this one run: kept in the connection's statement cache
/// as other queries are, each size of batch would hold its own program (hundreds of KiB for
/// 128 rows in SQLite) for the life of the connection.
pub fn query(sql: String) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false)
}

/// A multi-row `VALUES` list for `rows` rows of `cols` columns, in the parameter spelling of
/// `conn`'s engine: `($1, $2), ($3, $4)` for PostgreSQL, `(?, ?), (?, ?)` for SQLite. sqlx looks
/// each of SQLite's numbered parameters up by a walk of the statement's list, so `$N` there
/// costs time in the square of their number; anonymous ones are bound by position.
pub fn values_list(conn: &Conn, rows: usize, cols: usize) -> String {
    spelled(super::location::numbered_params(conn), rows, cols)
}

fn spelled(numbered: bool, rows: usize, cols: usize) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            if numbered {
                let _ = write!(out, "${}", r * cols + c + 1);
            } else {
                out.push('?');
            }
        }
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_number_parameters_row_by_row() {
        assert_eq!(spelled(true, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(spelled(true, 1, 1), "($1)");
        assert_eq!(spelled(false, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(spelled(true, 0, 4), "");
    }
}
