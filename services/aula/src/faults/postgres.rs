//! A PostgreSQL cluster of the harness's own (its port, its data directory), so it can be
//! restarted and its disk filled without touching anybody else's database.

use anyhow::{bail, Context as _};
use std::{
    path::{Path, PathBuf},
    process::Stdio,
};
use tokio::process::Command;

pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    log: PathBuf,
    /// Run the server's tools as `postgres` (initdb refuses to run as root).
    as_postgres: bool,
}

/// The newest `/usr/lib/postgresql/<version>/bin` (Debian's layout).
pub fn find_bin() -> anyhow::Result<PathBuf> {
    aula_runtime::harness::newest_postgres_bin()
        .context("PostgreSQL is not installed (/usr/lib/postgresql): apt-get install postgresql")?
        .context("no pg_ctl under /usr/lib/postgresql/*/bin")
}

/// The uid and gid of the `postgres` user, when the harness runs as root.
pub async fn postgres_owner() -> anyhow::Result<Option<(u32, u32)>> {
    if !is_root().await {
        return Ok(None);
    }
    let id = |flag: &'static str| async move {
        let out = Command::new("id").args([flag, "postgres"]).output().await?;
        if !out.status.success() {
            bail!("there is no postgres user (apt-get install postgresql creates it)");
        }
        Ok::<u32, anyhow::Error>(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    Ok(Some((id("-u").await?, id("-g").await?)))
}

pub async fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .await
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Postgres {
    /// Creates a cluster in `dir/data` (which must be empty or absent), starts it on `port`
    /// logging to `log`, and creates the database `aula`.
    pub async fn create(dir: &Path, log: PathBuf, port: u16, bin: PathBuf) -> anyhow::Result<Self> {
        let owner = postgres_owner().await?;
        let data = dir.join("data");
        std::fs::create_dir_all(&data)?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        if let Some((uid, gid)) = owner {
            for path in [dir, &data, &log] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
            }
        }
        let pg = Self {
            bin,
            log,
            data,
            port,
            as_postgres: owner.is_some(),
        };
        pg.tool(
            "initdb",
            &[
                "-D",
                &pg.data.display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        )
        .await?;
        pg.start().await?;
        let create = aula_runtime::harness::create_database_args(port);
        let create: Vec<&str> = create.iter().map(String::as_str).collect();
        pg.tool("psql", &create).await?;
        Ok(pg)
    }

    pub fn url(&self) -> String {
        aula_runtime::harness::database_url(self.port)
    }

    async fn tool(&self, name: &str, args: &[&str]) -> anyhow::Result<String> {
        let program = self.bin.join(name);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("running {}", program.display()))?;
        if !out.status.success() {
            bail!(
                "{name} {}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn ctl_args<'a>(&'a self, data: &'a str, log: &'a str, opts: &'a str) -> Vec<&'a str> {
        vec!["-D", data, "-l", log, "-o", opts, "-w", "-t", "60"]
    }

    fn options(&self) -> String {
        // Small WAL so a filled disk is reached by the ballast, not by the WAL growing; the
        // socket goes in the data directory (no shared /var/run/postgresql needed).
        format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 \
             -c shared_buffers=32MB -c max_wal_size=96MB -c min_wal_size=32MB",
            self.port,
            self.data.display()
        )
    }

    pub async fn start(&self) -> anyhow::Result<()> {
        let (data, log, opts) = (
            self.data.display().to_string(),
            self.log.display().to_string(),
            self.options(),
        );
        let mut args = self.ctl_args(&data, &log, &opts);
        args.push("start");
        self.tool("pg_ctl", &args).await.map(drop)
    }

    /// `pg_ctl restart -m fast|immediate`.
    pub async fn restart(&self, mode: &str) -> anyhow::Result<()> {
        let (data, log, opts) = (
            self.data.display().to_string(),
            self.log.display().to_string(),
            self.options(),
        );
        let mut args = self.ctl_args(&data, &log, &opts);
        args.extend(["-m", mode, "restart"]);
        self.tool("pg_ctl", &args).await.map(drop)
    }

    pub async fn running(&self) -> bool {
        self.tool(
            "pg_ctl",
            &["-D", &self.data.display().to_string(), "status"],
        )
        .await
        .is_ok()
    }

    pub async fn stop(&self, mode: &str) -> anyhow::Result<()> {
        self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data.display().to_string(),
                "-m",
                mode,
                "-w",
                "stop",
            ],
        )
        .await
        .map(drop)
    }
}
