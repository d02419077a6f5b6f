//! A PostgreSQL server of the test's own (a fresh cluster on a free port), for tests that
//! restart or crash the server: they must not touch the shared test database other tests use.
//! Needs Debian's PostgreSQL (`scripts/start-postgres.sh` installs it); as root its tools run
//! as the `postgres` user. Stopped (immediately) and removed when dropped.

use std::{path::PathBuf, process::Command};

/// A running cluster of the test's own.
pub struct OwnPostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    options: String,
}

impl OwnPostgres {
    /// Creates and starts a cluster; `settings` are extra `-c name=value` server settings.
    /// Panics when PostgreSQL is not installed or does not start.
    pub fn start(settings: &[&str]) -> Self {
        let bin = newest_bin();
        let dir = std::env::temp_dir().join(format!("aula-own-pg-{:08x}", rand::random::<u32>()));
        std::fs::create_dir_all(dir.join("data")).expect("the cluster's directory is created");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=100",
            dir.display()
        );
        for s in settings {
            options.push_str(&format!(" -c {s}"));
        }
        let pg = Self {
            bin,
            dir,
            port,
            options,
        };
        if is_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&pg.dir));
        }
        let data = pg.data();
        run(pg
            .tool("initdb")
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(&data));
        pg.ctl(&["start"]);
        run(pg
            .tool("psql")
            .args(crate::harness::create_database_args(port)));
        pg
    }

    pub fn url(&self) -> String {
        crate::harness::database_url(self.port)
    }

    /// `pg_ctl restart -m <mode>` (fast, immediate), waiting until it accepts connections.
    pub fn restart(&self, mode: &str) {
        self.ctl(&["-m", mode, "restart"]);
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn ctl(&self, args: &[&str]) {
        let log = self.dir.join("server.log");
        run(self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(log)
            .args(["-o", &self.options, "-w", "-t", "60"])
            .args(args));
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn newest_bin() -> PathBuf {
    crate::harness::newest_postgres_bin()
        .expect("PostgreSQL is installed (scripts/start-postgres.sh installs it)")
        .expect("a pg_ctl under /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
