//! The six services as separate processes of their real binaries: started, killed, frozen,
//! thawed and restarted by the harness, each logging to a file of its own.

use anyhow::{bail, Context as _};
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};
use tokio::{
    process::{Child, Command},
    time::Instant,
};
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

/// How to run a service: its own binary next to `aula`, or `aula serve <name>`.
pub fn command_for(bin_dir: &Path, name: &str) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let own = bin_dir.join(name);
    if own.is_file() {
        return Ok((own, Vec::new()));
    }
    let aula = std::env::current_exe().context("locating the aula binary")?;
    Ok((aula, vec!["serve".into(), name.into()]))
}

/// Whether the process runs, is frozen (SIGSTOP) or is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    Stopped,
    Down,
}

/// One service process.
pub struct Service {
    pub name: &'static str,
    pub port: u16,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    state: State,
    /// How many times it was started (the first start included).
    pub starts: u32,
}

impl Service {
    pub fn new(
        name: &'static str,
        port: u16,
        (program, args): (PathBuf, Vec<String>),
        env: Vec<(String, String)>,
        log: PathBuf,
    ) -> Self {
        Self {
            name,
            port,
            program,
            args,
            env,
            log,
            child: None,
            state: State::Down,
            starts: 0,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn state(&self) -> State {
        self.state
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        self.child = Some(child);
        self.state = State::Running;
        self.starts += 1;
        Ok(())
    }

    /// Starts the process and waits until it answers SERVING. A start that fails (the port
    /// still held by a socket of the killed process, a database that is not back yet) is
    /// retried with a pause, for up to `within`.
    pub async fn start(&mut self, within: Duration) -> anyhow::Result<Duration> {
        let began = Instant::now();
        let deadline = began + within;
        let mut last = String::new();
        while Instant::now() < deadline {
            self.spawn()?;
            match self.wait_serving(deadline).await {
                Ok(()) => return Ok(began.elapsed()),
                Err(e) => {
                    last = format!("{e:#}");
                    self.kill().await;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        bail!(
            "{} did not start serving within {within:?} ({last}); see {}",
            self.name,
            self.log.display()
        )
    }

    async fn wait_serving(&mut self, deadline: Instant) -> anyhow::Result<()> {
        let channel = tonic::transport::Endpoint::from_shared(self.url())?
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(1))
            .connect_lazy();
        let mut health = HealthClient::new(channel);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("{} exited at start ({status})", self.name);
            }
            let answer = health
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await;
            if matches!(answer, Ok(r) if r.get_ref().status == ServingStatus::Serving as i32) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("{} not serving yet", self.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// kill -9, and reaps the process.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        self.state = State::Down;
    }

    /// SIGTERM, then waits for the drain (kill -9 after `grace`).
    pub async fn terminate(&mut self, grace: Duration) {
        if self.state == State::Stopped {
            self.resume().await;
        }
        if let (Some(pid), Some(child)) = (self.pid(), self.child.as_mut()) {
            signal(pid, "TERM").await;
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                eprintln!(
                    "  {} did not stop on SIGTERM within {grace:?}; killing it",
                    self.name
                );
            }
        }
        self.kill().await;
    }

    /// SIGSTOP: the process holds its sockets and answers nothing.
    pub async fn freeze(&mut self) {
        if let Some(pid) = self.pid().filter(|_| self.state == State::Running) {
            signal(pid, "STOP").await;
            self.state = State::Stopped;
        }
    }

    /// SIGCONT.
    pub async fn resume(&mut self) {
        if let Some(pid) = self.pid().filter(|_| self.state == State::Stopped) {
            signal(pid, "CONT").await;
            self.state = State::Running;
        }
    }

    /// Whether the process died on its own (a crash the harness did not cause).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        self.state = State::Down;
        Some(status)
    }
}

/// Sends a signal with kill(1): no unsafe code for three signals.
pub async fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("  kill -{name} {pid} failed");
    }
}
