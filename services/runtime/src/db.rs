//! Storage: SQLite embedded by default, PostgreSQL when a `postgres://` URL is configured.
//! Both through sqlx's `Any` driver, so each service's SQL lives once in its `store.rs`
//! (written in the dialect both accept: `$1` parameters, `ON CONFLICT`, `RETURNING`,
//! times as epoch milliseconds). Migrations are embedded per dialect.
//!
//! On PostgreSQL every service keeps its tables in a schema named after it, so one database
//! can hold all six (`aula up` with one `DATABASE_URL`).

use crate::{
    config::{Database, Settings},
    reads::Reads,
};
use anyhow::Context as _;
use sqlx::{any::AnyPoolOptions, migrate::Migrator, AnyPool, Executor};
use std::{sync::Arc, time::Duration};

/// A service's migrations, embedded from its `migrations/sqlite` and `migrations/postgres`
/// folders: `migrations: Some(aula_runtime::migrations!())` in its `ServiceDef`.
#[macro_export]
macro_rules! migrations {
    () => {{
        static SQLITE: ::sqlx::migrate::Migrator = ::sqlx::migrate!("./migrations/sqlite");
        static POSTGRES: ::sqlx::migrate::Migrator = ::sqlx::migrate!("./migrations/postgres");
        $crate::db::Migrations {
            sqlite: &SQLITE,
            postgres: &POSTGRES,
        }
    }};
}

/// A service's embedded migrations, one set per dialect.
#[derive(Clone, Copy)]
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
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
}

impl Db {
    /// Connects and applies the migrations.
    pub async fn connect(settings: &Settings, migrations: Migrations) -> anyhow::Result<Self> {
        static DRIVERS: std::sync::Once = std::sync::Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let name = settings.spec.name;
        let options = AnyPoolOptions::new()
            .max_connections(settings.db_max_connections)
            .acquire_timeout(settings.db_acquire_timeout);
        let db = match &settings.database {
            Database::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| {
                        format!("creating the data directory {}", dir.display())
                    })?;
                }
                let url = format!("sqlite://{}?mode=rwc", path.display());
                let pool = options
                    // A local file cannot go away under us: skip the ping on every checkout.
                    .test_before_acquire(false)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;").await?;
                            Ok(())
                        })
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
                }
            }
            Database::Postgres(url) => {
                let schema = settings.db_schema.clone();
                create_schema(url, &schema).await?;
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
                }
            }
        };
        let migrator = match db.dialect {
            Dialect::Sqlite => migrations.sqlite,
            Dialect::Postgres => migrations.postgres,
        };
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
        Ok(db)
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
        metrics::gauge!("aula_db_pool_connections", "state" => "idle").set(idle);
        metrics::gauge!("aula_db_pool_connections", "state" => "in_use")
            .set((size - idle).max(0.0));
        metrics::gauge!("aula_db_pool_max_connections")
            .set(self.pool.options().get_max_connections() as f64);
    }
}

async fn create_schema(url: &str, schema: &str) -> anyhow::Result<()> {
    let mut attempt = 0;
    loop {
        let result = async {
            let pool = AnyPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await?;
            pool.execute(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"").as_str())
                .await?;
            pool.close().await;
            Ok::<_, sqlx::Error>(())
        }
        .await;
        match result {
            Ok(()) => return Ok(()),
            // Two replicas creating the schema at once: one loses with a unique violation.
            Err(e) if attempt < 10 => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "PostgreSQL not ready; retrying");
                tokio::time::sleep(Duration::from_millis(300 * attempt)).await;
            }
            Err(e) => return Err(e).context("connecting to PostgreSQL (DATABASE_URL)"),
        }
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
