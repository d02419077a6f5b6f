//! Reads from the embedded SQLite file on the request's own thread.
//!
//! sqlx's SQLite driver runs every statement on a worker thread per connection and hands rows
//! back through channels: two thread switches, a pool checkout and several allocations around
//! a query that SQLite itself answers from its page cache in microseconds. On the hot read paths
//! (a user's courses) that hand-off was most of the cost of a call (BENCHMARKS.md). [`Reads`]
//! keeps a few read-only connections to the same file and runs a query inline.
//!
//! Why inline is safe here: in WAL mode readers never wait for writers (each reads the last
//! committed snapshot), so a read does not block on locks; a committed write is visible to the
//! next read on any connection, so a client reads its own writes. The rare wait (WAL recovery
//! after a crash) is bounded by a short busy timeout. Writes stay on the sqlx pool; PostgreSQL
//! has no such path (its latency is the network's, and sqlx's driver is already async).

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

/// How long a read may wait for a lock; only WAL recovery after a crash makes readers wait.
const BUSY_TIMEOUT: Duration = Duration::from_millis(200);

/// Read-only connections to one SQLite file, opened on demand and kept for reuse.
pub struct Reads {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
    keep: usize,
}

impl std::fmt::Debug for Reads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reads").field("path", &self.path).finish()
    }
}

impl Reads {
    /// Reads from `path` (which must exist: the pool created and migrated it), keeping at most
    /// `keep` idle connections.
    pub fn new(path: &Path, keep: usize) -> Self {
        Self {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            keep: keep.max(1),
        }
    }

    fn open(&self) -> rusqlite::Result<rusqlite::Connection> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(conn)
    }

    /// Runs `f` on an idle connection (or a new one), on this thread. Statements prepared with
    /// `prepare_cached` are kept per connection, so a hot query is parsed once.
    pub fn run<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, sqlx::Error> {
        let conn = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => self.open().map_err(read_error)?,
        };
        let result = f(&conn).map_err(read_error);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.keep {
            idle.push(conn);
        }
        result
    }
}

/// A TEXT column as a `String`. rusqlite's `get::<String>` validates it as UTF-8 byte by byte
/// (std's check leaves its ASCII fast path at the first accent, and the catalogue is
/// Portuguese): on GetUserCourses that was ~3% of a call's instructions. simdutf8 checks the
/// same thing with vector instructions; nothing is taken on trust from the file.
pub fn text(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<String> {
    use rusqlite::types::{Type, ValueRef};
    match row.get_ref(idx)? {
        ValueRef::Text(bytes) => simdutf8::basic::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e))),
        other => Err(rusqlite::Error::InvalidColumnType(
            idx,
            row.as_ref().column_name(idx)?.to_string(),
            other.data_type(),
        )),
    }
}

/// How SQLite would run `sql`: the detail lines of `EXPLAIN QUERY PLAN`, parameters unbound.
/// Services' tests hold their per-call queries to plans that do not grow with the data.
pub fn query_plan(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let mut rows = stmt.raw_query();
    let mut plan = Vec::new();
    while let Some(row) = rows.next()? {
        plan.push(row.get::<_, String>(3)?);
    }
    Ok(plan)
}

/// The steps of a plan that read a whole table or index row by row (`SCAN t`, `SCAN t USING
/// COVERING INDEX i`): work that grows with the table. A `SEARCH` step reads only the rows it
/// looks up.
pub fn full_scans(plan: &[String]) -> Vec<&str> {
    plan.iter()
        .map(String::as_str)
        .filter(|step| step.starts_with("SCAN ") && *step != "SCAN CONSTANT ROW")
        .collect()
}

/// One error type for a service's storage, whichever path the query took.
fn read_error(e: rusqlite::Error) -> sqlx::Error {
    sqlx::Error::Protocol(format!("sqlite read: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with_rows() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2);",
        )
        .unwrap();
        (dir, path)
    }

    #[test]
    fn reads_rows_and_sees_later_commits() {
        let (_dir, path) = file_with_rows();
        let reads = Reads::new(&path, 2);
        let sum = |reads: &Reads| {
            reads
                .run(|c| {
                    c.prepare_cached("SELECT SUM(x) FROM t")?
                        .query_row([], |r| r.get::<_, i64>(0))
                })
                .unwrap()
        };
        assert_eq!(sum(&reads), 3);
        // A write committed on another connection is visible to the next read.
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute("INSERT INTO t VALUES (4)", [])
            .unwrap();
        assert_eq!(sum(&reads), 7);
    }

    #[test]
    fn text_columns_are_checked_utf8() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let read = |sql: &str| conn.query_row(sql, [], |r| text(r, 0));
        assert_eq!(read("SELECT 'Introdução'").unwrap(), "Introdução");
        // Bytes that are not UTF-8, stored as TEXT (a file written by anything): an error.
        assert!(read("SELECT CAST(x'ff41' AS TEXT)").is_err());
        // Not a text column at all.
        assert!(read("SELECT 42").is_err());
    }

    #[test]
    fn query_plans_tell_a_search_from_a_scan() {
        let (_dir, path) = file_with_rows();
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("CREATE INDEX t_x ON t (x)", []).unwrap();
        let search = query_plan(&conn, "SELECT x FROM t WHERE x = $1").unwrap();
        assert!(full_scans(&search).is_empty(), "{search:?}");
        let scan = query_plan(&conn, "SELECT COUNT(*) FROM t WHERE x + 1 = $1").unwrap();
        assert_eq!(full_scans(&scan).len(), 1, "{scan:?}");
    }

    #[test]
    fn refuses_writes_and_names_the_error() {
        let (_dir, path) = file_with_rows();
        let reads = Reads::new(&path, 1);
        let err = reads
            .run(|c| c.execute("INSERT INTO t VALUES (9)", []))
            .unwrap_err();
        assert!(err.to_string().contains("sqlite read"), "{err}");
        assert!(err.to_string().contains("readonly"), "{err}");
    }

    #[test]
    fn a_missing_file_is_an_error_not_a_new_database() {
        let dir = tempfile::tempdir().unwrap();
        let reads = Reads::new(&dir.path().join("absent.db"), 1);
        assert!(reads
            .run(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)))
            .is_err());
        assert!(!dir.path().join("absent.db").exists());
    }
}
