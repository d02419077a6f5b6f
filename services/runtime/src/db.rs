//! Storage: SQLite embedded by default, PostgreSQL when a `postgres://` URL is configured.
//! Both through sqlx's `Any` driver, so each service's SQL lives once in its `store.rs`
//! (written in the dialect both accept: `$1` parameters, `ON CONFLICT`, `RETURNING`,
//! times as epoch milliseconds). Migrations are embedded per dialect.
//!
//! On PostgreSQL every service keeps its tables in a schema named after it, so one database
//! can hold all six (`aula up` with one `DATABASE_URL`).

use crate::{
    config::{Database, Settings},
    metrics::{Counter, Gauge, Label, Metrics},
    reads::Reads,
};
use anyhow::Context as _;
use sqlx::{any::AnyPoolOptions, migrate::Migrator, AnyPool, Executor};
use std::{sync::Arc, time::Duration};

/// A service's migrations, embedded from its `migrations/sqlite` and `migrations/postgres`
/// folders: `migrations: Some(aula_runtime::migrations!())` in its `ServiceDef`;
/// `aula_runtime::migrations!(outbox)` for a service that uses the [`crate::outbox`], whose
/// table's migrations (the runtime's `migrations/outbox`, versions from 900001) run with the
/// service's own; `released = &[...]` after either names migrations whose file changed since
/// databases applied it ([`Released`]).
#[macro_export]
macro_rules! migrations {
    () => {
        $crate::migrations!(@ false, &[])
    };
    (outbox) => {
        $crate::migrations!(@ true, &[])
    };
    (released = $released:expr) => {
        $crate::migrations!(@ false, $released)
    };
    (outbox, released = $released:expr) => {
        $crate::migrations!(@ true, $released)
    };
    (@ $outbox:literal, $released:expr) => {{
        static SQLITE: ::sqlx::migrate::Migrator = ::sqlx::migrate!("./migrations/sqlite");
        static POSTGRES: ::sqlx::migrate::Migrator = ::sqlx::migrate!("./migrations/postgres");
        $crate::db::Migrations {
            sqlite: &SQLITE,
            postgres: &POSTGRES,
            outbox: $outbox,
            released: $released,
        }
    }};
}

/// A service's store, the type its SQL (`store.rs`) hangs on: a clone of the service's [`Db`],
/// made with `Store::new(ctx.db().clone())`.
///
/// ```ignore
/// aula_runtime::store! {
///     /// The media table.
///     pub struct Store;
/// }
/// ```
#[macro_export]
macro_rules! store {
    ($(#[$attr:meta])* $vis:vis struct $name:ident;) => {
        $(#[$attr])*
        #[derive(Clone)]
        $vis struct $name {
            db: $crate::db::Db,
        }

        impl $name {
            pub fn new(db: $crate::db::Db) -> Self {
                Self { db }
            }
        }
    };
}

/// A service's embedded migrations, one set per dialect.
#[derive(Clone, Copy)]
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
    /// The service uses the outbox: its table's migrations run too.
    pub outbox: bool,
    /// Migrations whose file changed after databases applied it (see [`Released`]).
    pub released: &'static [Released],
}

/// A migration whose file changed, after databases applied it, in a way that leaves the schema
/// it creates the same: version 1 of cursos, cpar, midia and notificacoes also inserted the
/// demo rows, which are now seeded by [`crate::demo`] only where asked for.
///
/// sqlx refuses to start when the checksum (SHA-384 of the file) recorded for an applied
/// migration differs from the file's, which is right: a migration already applied cannot be
/// edited to change the schema. Editing the file was the only way to keep the demo rows out of
/// new databases without touching existing ones (a later migration deleting them would delete
/// rows that a running installation may use: enrolments in a demo course). So the migrator
/// presents the checksum of the first release for this version, which is what databases
/// created then recorded and what new ones record. The file's present checksum is pinned too:
/// the file cannot change again unnoticed (start-up fails naming it, in every test).
#[derive(Debug, Clone, Copy)]
pub struct Released {
    pub version: i64,
    /// SHA-384 in hex of the file as first released and as it is now, SQLite's.
    pub sqlite: (&'static str, &'static str),
    /// The same for PostgreSQL's file.
    pub postgres: (&'static str, &'static str),
}

impl Released {
    /// Gives `m` the checksum of its first release, after checking the file is as pinned.
    fn apply(&self, m: &mut sqlx::migrate::Migration, dialect: Dialect) -> anyhow::Result<()> {
        let (first, now) = match dialect {
            Dialect::Sqlite => self.sqlite,
            Dialect::Postgres => self.postgres,
        };
        let actual = hex(&m.checksum);
        anyhow::ensure!(
            actual == now,
            "migration {} ({}) changed again after its release (checksum {actual}):              add a new migration instead",
            m.version,
            m.description,
        );
        m.checksum = unhex(first)?.into();
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(
        s.len().is_multiple_of(2) && s.is_ascii(),
        "not a hex checksum: {s}"
    );
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).context("not a hex checksum"))
        .collect()
}

/// The outbox table's migrations, one set per dialect (versions 900001 and up, after any
/// service's own).
static OUTBOX_SQLITE: Migrator = sqlx::migrate!("./migrations/outbox/sqlite");
static OUTBOX_POSTGRES: Migrator = sqlx::migrate!("./migrations/outbox/postgres");

impl Migrations {
    /// The migrator for `dialect`: the service's migrations, then the runtime's it uses.
    fn migrator(&self, dialect: Dialect) -> anyhow::Result<Migrator> {
        let (own, outbox) = match dialect {
            Dialect::Sqlite => (self.sqlite, &OUTBOX_SQLITE),
            Dialect::Postgres => (self.postgres, &OUTBOX_POSTGRES),
        };
        let mut all: Vec<_> = own.migrations.to_vec();
        if self.outbox {
            all.extend(outbox.migrations.iter().cloned());
        }
        all.sort_by_key(|m| m.version);
        for m in &mut all {
            if let Some(r) = self.released.iter().find(|r| r.version == m.version) {
                r.apply(m, dialect)?;
            }
        }
        Ok(Migrator {
            migrations: all.into(),
            ignore_missing: own.ignore_missing,
            locking: own.locking,
            no_tx: own.no_tx,
        })
    }
}

/// Which engine a pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connected, migrated database.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub dialect: Dialect,
    /// The PostgreSQL URL and schema, for features that need a dedicated connection (LISTEN).
    postgres: Option<(String, String)>,
    /// Inline read-only connections to the SQLite file (hot read paths; see [`crate::reads`]).
    reads: Option<Arc<Reads>>,
    /// The SQLite file's directory.
    sqlite_dir: Option<std::path::PathBuf>,
    /// The pool's gauges in the service's registry.
    gauges: Arc<PoolGauges>,
    /// No migration had been applied before this start: the database is new.
    created: bool,
}

/// `aula_db_pool_connections{state}` and `aula_db_pool_max_connections`.
struct PoolGauges {
    idle: Gauge,
    in_use: Gauge,
    max: Gauge,
}

impl std::fmt::Debug for PoolGauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PoolGauges")
    }
}

impl PoolGauges {
    fn register(metrics: &Metrics) -> Self {
        let state = |s| vec![Label::new("state", s)];
        Self {
            idle: metrics.gauge("aula_db_pool_connections", state("idle")),
            in_use: metrics.gauge("aula_db_pool_connections", state("in_use")),
            max: metrics.gauge("aula_db_pool_max_connections", vec![]),
        }
    }
}

impl Db {
    /// The row `sql` finds by its one parameter, `id`, read by `read`; `None` when none does.
    pub async fn by_id<T>(
        &self,
        sql: &str,
        id: i64,
        read: impl Fn(&sqlx::any::AnyRow) -> sqlx::Result<T>,
    ) -> sqlx::Result<Option<T>> {
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(read).transpose()
    }

    /// Connects and applies the migrations; the pool's metrics go to `metrics`.
    pub async fn connect(
        settings: &Settings,
        migrations: Migrations,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        static DRIVERS: std::sync::Once = std::sync::Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let name = settings.spec.name;
        let options = AnyPoolOptions::new()
            .max_connections(settings.db_max_connections)
            .acquire_timeout(settings.db_acquire_timeout);
        let mut db = match &settings.database {
            Database::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| {
                        format!("creating the data directory {}", dir.display())
                    })?;
                }
                let url = format!("sqlite://{}?mode=rwc", path.display());
                let discarded = metrics.counter("aula_db_connections_discarded_total", vec![]);
                let pool = options
                    // A local file cannot go away under us: skip the ping on every checkout.
                    .test_before_acquire(false)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;").await?;
                            Ok(())
                        })
                    })
                    // A connection must never go back to the pool inside a transaction: after
                    // a failed COMMIT ("database or disk is full") SQLite may have rolled back
                    // on its own while sqlx still counts one open, so the next `begin` becomes
                    // a SAVEPOINT inside a transaction nobody commits, and every later write on
                    // that connection is acknowledged and lost. See [`clean_after_release`].
                    //
                    // The hook runs in a task sqlx spawns, hence a handle, not a macro.
                    .after_release(move |conn, _| {
                        let discarded = discarded.clone();
                        Box::pin(async move { clean_after_release(conn, &discarded).await })
                    })
                    .connect(&url)
                    .await
                    .with_context(|| format!("opening the SQLite database {}", path.display()))?;
                Self {
                    pool,
                    dialect: Dialect::Sqlite,
                    postgres: None,
                    reads: Some(Arc::new(Reads::new(
                        path,
                        settings.db_max_connections as usize,
                    ))),
                    sqlite_dir: Some(
                        path.parent()
                            .filter(|d| !d.as_os_str().is_empty())
                            .unwrap_or(std::path::Path::new("."))
                            .to_path_buf(),
                    ),
                    gauges: Arc::new(PoolGauges::register(metrics)),
                    created: false,
                }
            }
            Database::Postgres(url) => {
                let schema = settings.db_schema.clone();
                create_schema(url, &schema, settings.db_acquire_timeout).await?;
                let set_path = format!("SET search_path TO \"{schema}\"");
                let pool = options
                    .after_connect(move |conn, _| {
                        let set_path = set_path.clone();
                        Box::pin(async move {
                            conn.execute(set_path.as_str()).await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await
                    .context("connecting to PostgreSQL (DATABASE_URL)")?;
                Self {
                    pool,
                    dialect: Dialect::Postgres,
                    postgres: Some((url.clone(), schema)),
                    reads: None,
                    sqlite_dir: None,
                    gauges: Arc::new(PoolGauges::register(metrics)),
                    created: false,
                }
            }
        };
        // Before any migration runs: no table of sqlx's, or none applied (an error other
        // than a missing table would stop the migrations below anyway).
        let applied = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&db.pool)
            .await;
        db.created = !matches!(applied, Ok(n) if n > 0);
        let migrator = migrations.migrator(db.dialect)?;
        // Replicas starting together race on the first migration; sqlx locks on PostgreSQL,
        // and a lost race is retried.
        let mut attempt = 0;
        loop {
            match migrator.run(&db.pool).await {
                Ok(()) => break,
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "migration failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => return Err(e).context(format!("applying {name}'s migrations")),
            }
        }
        create_probe_table(&db.pool).await?;
        Ok(db)
    }

    /// One small write transaction, committed: what the health probe
    /// ([`crate::storage_health`]) asks of the database.
    pub async fn probe_write(&self) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO aula_probe (id, at_ms) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms",
        )
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Whether this start created the database (no migration had been applied to it).
    pub fn created(&self) -> bool {
        self.created
    }

    /// The directory holding the SQLite file (whose free space the health probe watches);
    /// `None` on PostgreSQL.
    pub fn sqlite_dir(&self) -> Option<&std::path::Path> {
        self.sqlite_dir.as_deref()
    }

    /// The PostgreSQL URL and this service's schema, when on PostgreSQL.
    pub fn postgres(&self) -> Option<(&str, &str)> {
        self.postgres
            .as_ref()
            .map(|(u, s)| (u.as_str(), s.as_str()))
    }

    /// Read-only connections that run a query on the caller's thread, on SQLite; `None` on
    /// PostgreSQL, where the same query goes through [`Db::pool`].
    pub fn sqlite_reads(&self) -> Option<&Reads> {
        self.reads.as_deref()
    }

    /// Publishes pool usage as `aula_db_pool_connections{state}` and `aula_db_pool_max_connections`.
    pub fn record_pool_metrics(&self) {
        let size = self.pool.size() as f64;
        let idle = self.pool.num_idle() as f64;
        let g = &self.gauges;
        g.idle.set(idle);
        g.in_use.set((size - idle).max(0.0));
        g.max.set(self.pool.options().get_max_connections() as f64);
    }
}

/// Creates the service's schema, retrying (PostgreSQL may still be starting, or two replicas
/// race to create it) for at most `within` (`AULA_DB_ACQUIRE_TIMEOUT`): a URL pointing at
/// nothing fails in seconds, naming the host and the OS error, rather than retrying for minutes.
async fn create_schema(url: &str, schema: &str, within: Duration) -> anyhow::Result<()> {
    let backoff = crate::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    let start = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        let left = within.saturating_sub(start.elapsed());
        // One plain connection, not a pool: a pool reports every failure as "timed out",
        // while the connection's own error says "Connection refused" or names the bad host.
        let attempt_once = async {
            use sqlx::Connection as _;
            let mut conn = sqlx::AnyConnection::connect(url).await?;
            conn.execute(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"").as_str())
                .await?;
            conn.close().await
        };
        let e = match tokio::time::timeout(left, attempt_once).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => crate::error::chain(&e),
            Err(_) => format!("no answer within {left:?}"),
        };
        let delay = backoff.delay(attempt);
        if start.elapsed() + delay >= within {
            anyhow::bail!(
                "DATABASE_URL: cannot reach PostgreSQL at {} within {within:?} \
                 (AULA_DB_ACQUIRE_TIMEOUT): {e}",
                host_port(url),
            );
        }
        attempt += 1;
        tracing::warn!(error = %e, attempt, "PostgreSQL not ready; retrying");
        tokio::time::sleep(delay).await;
    }
}

/// Checks a SQLite connection on its way back to the pool: it is kept only when it is outside
/// any transaction, both as SQLite sees it and as sqlx counts it; otherwise it is closed
/// (closing rolls back whatever it held) and the pool opens a fresh one.
///
/// The statement also runs the rollback a dropped `Transaction` queued, before the check.
async fn clean_after_release(
    conn: &mut sqlx::AnyConnection,
    discarded: &Counter,
) -> sqlx::Result<bool> {
    use sqlx::Connection as _;
    // `BEGIN` fails inside a transaction; outside one, this pair touches nothing.
    let outside = conn.execute("BEGIN; ROLLBACK").await.is_ok();
    if outside && !conn.is_in_transaction() {
        return Ok(true);
    }
    tracing::warn!(
        sqlite_in_transaction = !outside,
        "a SQLite connection came back from a failed transaction; closing it"
    );
    discarded.increment(1);
    Ok(false)
}

/// The table the health probe writes to: one row, rewritten.
async fn create_probe_table(pool: &AnyPool) -> anyhow::Result<()> {
    let ddl =
        "CREATE TABLE IF NOT EXISTS aula_probe (id INTEGER PRIMARY KEY, at_ms BIGINT NOT NULL)";
    match pool.execute(ddl).await {
        Ok(_) => Ok(()),
        // Replicas starting together on PostgreSQL race on CREATE TABLE IF NOT EXISTS.
        Err(e) if is_unique_violation(&e) => Ok(()),
        Err(e) => Err(e).context("creating the health probe's table"),
    }
}

/// What kind of storage failure an error is, for the status the caller gets and for health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// No space left (SQLITE_FULL, PostgreSQL 53100): nothing was written.
    Full,
    /// The database or its file system is read-only.
    ReadOnly,
    /// The database is locked or busy beyond the wait allowed, or no connection was free.
    Busy,
    /// The database could not be reached or the connection broke (an I/O error, a restart).
    Unreachable,
    /// A conflict with a concurrent transaction (serialization failure, deadlock): retry.
    Conflict,
}

impl StorageFault {
    /// What the caller is told (after the service's name, by the error module).
    pub fn describe(self) -> &'static str {
        match self {
            Self::Full => "the database's disk is full; the write was not stored",
            Self::ReadOnly => "the database is read-only; the write was not stored",
            Self::Busy => "the database is busy (locked or out of connections)",
            Self::Unreachable => "the database is unreachable",
            Self::Conflict => "the write conflicted with a concurrent one",
        }
    }
}

/// Classifies a database error; `None` for errors that are not about the storage's state
/// (a constraint, a bad row: bugs or the caller's to handle).
pub fn classify(error: &sqlx::Error) -> Option<StorageFault> {
    use sqlx::Error as E;
    match error {
        E::Database(d) => {
            if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                classify_sqlite(d.code()?.parse::<i32>().ok()?)
            } else {
                classify_sqlstate(&d.code()?)
            }
        }
        E::Io(_) | E::Tls(_) | E::Protocol(_) | E::WorkerCrashed | E::PoolClosed => {
            Some(StorageFault::Unreachable)
        }
        E::PoolTimedOut => Some(StorageFault::Busy),
        _ => None,
    }
}

/// SQLite's (extended) result codes: the primary code is the low byte.
fn classify_sqlite(code: i32) -> Option<StorageFault> {
    match code & 0xff {
        13 => Some(StorageFault::Full),                  // SQLITE_FULL
        8 => Some(StorageFault::ReadOnly),               // SQLITE_READONLY
        5 | 6 => Some(StorageFault::Busy),               // SQLITE_BUSY, SQLITE_LOCKED
        10 | 14 | 15 => Some(StorageFault::Unreachable), // SQLITE_IOERR, _CANTOPEN, _PROTOCOL
        _ => None,
    }
}

/// PostgreSQL's SQLSTATE codes.
fn classify_sqlstate(state: &str) -> Option<StorageFault> {
    match state {
        "53100" => Some(StorageFault::Full),     // disk_full
        "25006" => Some(StorageFault::ReadOnly), // read_only_sql_transaction
        "55P03" | "57014" | "53300" => Some(StorageFault::Busy), // lock, canceled, connections
        "40001" | "40P01" => Some(StorageFault::Conflict),
        s if s.starts_with("08") || s.starts_with("57P") => Some(StorageFault::Unreachable),
        _ => None,
    }
}

/// `host:port` of a PostgreSQL URL, without the credentials.
fn host_port(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}:{}",
            u.host_str().unwrap_or("localhost"),
            u.port().unwrap_or(5432)
        ),
        Err(_) => "<an unparsable URL>".to_string(),
    }
}

/// Milliseconds since the Unix epoch: how every time is stored.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Whether an error is a unique-constraint violation (both dialects).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::{classify_sqlite, classify_sqlstate, StorageFault as F};

    #[test]
    fn storage_faults_are_classified() {
        assert_eq!(classify_sqlite(13), Some(F::Full));
        assert_eq!(classify_sqlite(5), Some(F::Busy));
        assert_eq!(classify_sqlite(517), Some(F::Busy)); // SQLITE_BUSY_SNAPSHOT
        assert_eq!(classify_sqlite(1032), Some(F::ReadOnly)); // SQLITE_READONLY_DBMOVED
        assert_eq!(classify_sqlite(778), Some(F::Unreachable)); // SQLITE_IOERR_WRITE
        assert_eq!(classify_sqlite(2067), None); // SQLITE_CONSTRAINT_UNIQUE
        assert_eq!(classify_sqlstate("53100"), Some(F::Full));
        assert_eq!(classify_sqlstate("57P01"), Some(F::Unreachable)); // admin shutdown
        assert_eq!(classify_sqlstate("08006"), Some(F::Unreachable));
        assert_eq!(classify_sqlstate("25006"), Some(F::ReadOnly));
        assert_eq!(classify_sqlstate("40001"), Some(F::Conflict));
        assert_eq!(classify_sqlstate("23505"), None); // unique violation
    }
}
