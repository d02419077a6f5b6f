//! The system under test: six service processes, their storage (SQLite files on small tmpfs
//! mounts, or a PostgreSQL cluster of the harness's own) and the means to heal every fault.

use super::{
    disk::Disk,
    postgres::{self, Postgres},
    procs::{command_for, Service, State},
};
use anyhow::Context as _;
use aula_runtime::spec;
use std::{path::PathBuf, time::Duration};

/// Which storage the services use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// How to set the cluster up.
pub struct Setup {
    pub backend: Backend,
    pub work: PathBuf,
    pub bin_dir: PathBuf,
    /// The first service's port; the six take consecutive ports in catalogue order.
    pub port_base: u16,
    pub pg_port: u16,
    /// Put the data directories on tmpfs mounts of this size (needed for disk-full).
    pub tmpfs_mb: Option<u64>,
    pub log_filter: String,
}

pub struct Cluster {
    pub services: Vec<Service>,
    pub pg: Option<Postgres>,
    /// Fillable data directories: one per stateful service on SQLite, PostgreSQL's otherwise.
    pub disks: Vec<(String, Disk)>,
    /// How long a service may take to (re)start.
    pub start_within: Duration,
}

impl Cluster {
    /// Mounts the data directories, starts PostgreSQL if asked, then the six services; on
    /// any failure, undoes what was done.
    pub async fn start(setup: &Setup) -> anyhow::Result<Self> {
        let mut cluster = Self {
            services: Vec::new(),
            pg: None,
            disks: Vec::new(),
            start_within: Duration::from_secs(60),
        };
        if let Err(e) = cluster.bring_up(setup).await {
            cluster.shutdown().await;
            return Err(e);
        }
        Ok(cluster)
    }

    async fn bring_up(&mut self, setup: &Setup) -> anyhow::Result<()> {
        std::fs::create_dir_all(setup.work.join("logs"))?;
        let data = setup.work.join("data");
        match setup.backend {
            Backend::Sqlite => {
                // Stateless services keep no files: only the catalogue's stateful ones get a data
                // directory worth filling.
                for name in spec::ALL.iter().filter(|s| s.stateful).map(|s| s.name) {
                    if let Some(mb) = setup.tmpfs_mb {
                        let disk = Disk::mount(&data.join(name), mb, None).await?;
                        self.disks.push((name.to_string(), disk));
                    }
                }
            }
            Backend::Postgres => {
                let dir = setup.work.join("pg");
                if let Some(mb) = setup.tmpfs_mb {
                    let owner = postgres::postgres_owner().await?;
                    // PostgreSQL needs room for its WAL segments besides the ballast.
                    let disk = Disk::mount(&dir, mb.max(256), owner).await?;
                    self.disks.push(("postgresql".to_string(), disk));
                }
                let bin = postgres::find_bin()?;
                self.pg = Some(
                    Postgres::create(
                        &dir,
                        setup.work.join("logs").join("postgresql.log"),
                        setup.pg_port,
                        bin,
                    )
                    .await
                    .context("starting the harness's PostgreSQL")?,
                );
            }
        }
        let port = |i: usize| setup.port_base + i as u16;
        let peers: Vec<(String, String)> = spec::ALL
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    format!("{}_ADDR", s.env_prefix()),
                    format!("http://127.0.0.1:{}", port(i)),
                )
            })
            .collect();
        for (i, s) in spec::ALL.iter().enumerate() {
            let mut env = peers.clone();
            env.extend([
                ("AULA_LISTEN".to_string(), format!("127.0.0.1:{}", port(i))),
                ("AULA_METRICS_LISTEN".into(), "off".into()),
                ("AULA_SHUTDOWN_GRACE".into(), "3s".into()),
                // The writers enrol in and ask about the demo catalogue, which is seeded at
                // start-up (never by the migrations) when a start creates the database.
                ("AULA_DEMO_DATA".into(), "1".into()),
                ("RUST_LOG".into(), setup.log_filter.clone()),
                (
                    "AULA_DATA_DIR".into(),
                    data.join(s.name).display().to_string(),
                ),
            ]);
            if let Some(pg) = &self.pg {
                env.push(("DATABASE_URL".into(), pg.url()));
            }
            self.services.push(Service::new(
                s.name,
                port(i),
                command_for(&setup.bin_dir, s.name)?,
                env,
                setup.work.join("logs").join(format!("{}.log", s.name)),
            ));
        }
        self.start_all().await
    }

    async fn start_all(&mut self) -> anyhow::Result<()> {
        let within = self.start_within;
        futures::future::try_join_all(self.services.iter_mut().map(|s| s.start(within))).await?;
        Ok(())
    }

    pub fn service(&mut self, name: &str) -> &mut Service {
        self.services
            .iter_mut()
            .find(|s| s.name == name)
            .expect("one of the six")
    }

    /// Services that died without the harness killing them (each a crash worth reporting).
    pub fn crashed(&mut self) -> Vec<String> {
        self.services
            .iter_mut()
            .filter_map(|s| {
                s.exited()
                    .map(|status| format!("{} exited by itself ({status})", s.name))
            })
            .collect()
    }

    /// Ends every fault: frees the disks, brings PostgreSQL back, thaws frozen services and
    /// starts the ones that are down. Returns what it had to do.
    pub async fn heal(&mut self) -> anyhow::Result<Vec<String>> {
        let mut done = Vec::new();
        for (name, disk) in &mut self.disks {
            if disk.is_full() {
                disk.free();
                done.push(format!("freed {name}'s disk"));
            }
        }
        if let Some(pg) = &self.pg {
            if !pg.running().await {
                pg.start().await?;
                done.push("started PostgreSQL (it had stopped)".into());
            }
        }
        done.extend(self.crashed());
        for s in &mut self.services {
            match s.state() {
                State::Running => {}
                State::Stopped => {
                    s.resume().await;
                    done.push(format!("resumed {}", s.name));
                }
                State::Down => {
                    s.start(self.start_within).await?;
                    done.push(format!("started {}", s.name));
                }
            }
        }
        Ok(done)
    }

    /// SIGTERM to every service, then starts them again: the final read comes from fresh
    /// processes, so it sees only what reached storage.
    pub async fn restart_all(&mut self) -> anyhow::Result<()> {
        self.terminate_all().await;
        self.start_all().await
    }

    async fn terminate_all(&mut self) {
        let grace = Duration::from_secs(6);
        futures::future::join_all(self.services.iter_mut().map(|s| s.terminate(grace))).await;
    }

    pub async fn shutdown(&mut self) {
        self.terminate_all().await;
        if let Some(pg) = &self.pg {
            if let Err(e) = pg.stop("fast").await {
                eprintln!("  stopping PostgreSQL: {e:#}");
            }
        }
        for (_, disk) in &mut self.disks {
            disk.unmount().await;
        }
    }
}
