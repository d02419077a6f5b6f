//! The faults: a schedule drawn from the seed (which fault, on what, when, for how long),
//! applied one at a time while the writers run, each healed before the next.

use super::cluster::{Backend, Cluster};
use rand::{rngs::StdRng, Rng};
use serde::Serialize;
use std::{collections::BTreeMap, time::Duration};
use tokio::time::Instant;

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// kill -9 of a random service, restarted after a moment.
    Kill,
    /// SIGSTOP of a random service, SIGCONT a few seconds later.
    Stop,
    /// notificacoes stopped (SIGTERM) for several seconds: the outboxes must queue.
    NotificacoesDown,
    /// A data directory filled to the last byte, then freed.
    DiskFull,
    /// `pg_ctl restart -m fast` (PostgreSQL backend).
    PgRestartFast,
    /// `pg_ctl restart -m immediate`: PostgreSQL crashes and recovers (PostgreSQL backend).
    PgRestartImmediate,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Kill => "kill",
            Mode::Stop => "stop",
            Mode::NotificacoesDown => "notificacoes-down",
            Mode::DiskFull => "disk-full",
            Mode::PgRestartFast => "pg-restart-fast",
            Mode::PgRestartImmediate => "pg-restart-immediate",
        }
    }

    /// Every mode that makes sense on a backend.
    pub fn all_for(backend: Backend) -> Vec<Mode> {
        let mut modes = vec![
            Mode::Kill,
            Mode::Stop,
            Mode::NotificacoesDown,
            Mode::DiskFull,
        ];
        if backend == Backend::Postgres {
            modes.extend([Mode::PgRestartFast, Mode::PgRestartImmediate]);
        }
        modes
    }

    pub fn list(modes: &[Mode]) -> String {
        modes.iter().map(|m| m.name()).collect::<Vec<_>>().join(",")
    }
}

/// One planned fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// When to inject it, from the start of the run.
    pub at: Duration,
    pub mode: Mode,
    /// The service or data directory it hits ("" for PostgreSQL restarts).
    pub target: String,
    /// How long it lasts before it is healed.
    pub hold: Duration,
}

fn between(rng: &mut StdRng, lo_ms: u64, hi_ms: u64) -> Duration {
    Duration::from_millis(rng.random_range(lo_ms..=hi_ms))
}

/// The schedule: faults one after another from `from` until `until`, with pauses between.
pub fn plan(
    rng: &mut StdRng,
    modes: &[Mode],
    services: &[&str],
    disks: &[String],
    from: Duration,
    until: Duration,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut t = from;
    let modes: Vec<Mode> = modes
        .iter()
        .copied()
        .filter(|&m| m != Mode::DiskFull || !disks.is_empty())
        .collect();
    if modes.is_empty() {
        return steps;
    }
    loop {
        t += between(rng, 500, 2500);
        let mode = modes[rng.random_range(0..modes.len())];
        let (target, hold) = match mode {
            Mode::Kill => (pick(rng, services), between(rng, 0, 2000)),
            Mode::Stop => (pick(rng, services), between(rng, 1000, 4000)),
            Mode::NotificacoesDown => ("notificacoes".to_string(), between(rng, 3000, 8000)),
            Mode::DiskFull => (pick(rng, disks), between(rng, 2000, 6000)),
            Mode::PgRestartFast | Mode::PgRestartImmediate => (String::new(), Duration::ZERO),
        };
        if t + hold >= until {
            return steps;
        }
        steps.push(Step {
            at: t,
            mode,
            target,
            hold,
        });
        t += hold;
    }
}

fn pick<S: AsRef<str>>(rng: &mut StdRng, from: &[S]) -> String {
    from[rng.random_range(0..from.len())].as_ref().to_string()
}

/// What was injected, for the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Injected {
    /// mode -> target -> times.
    pub counts: BTreeMap<String, BTreeMap<String, u32>>,
    /// One line per event, with its time.
    pub log: Vec<String>,
    /// Services that died on their own, PostgreSQL stopping by itself, restarts that failed.
    pub incidents: Vec<String>,
}

impl Injected {
    pub fn total(&self) -> u32 {
        self.counts.values().flat_map(|t| t.values()).sum()
    }

    pub fn summary(&self) -> String {
        if self.counts.is_empty() {
            return "none".into();
        }
        self.counts
            .iter()
            .map(|(mode, targets)| {
                let n: u32 = targets.values().sum();
                let on: Vec<String> = targets
                    .iter()
                    .filter(|(t, _)| !t.is_empty())
                    .map(|(t, k)| format!("{t} {k}"))
                    .collect();
                if on.is_empty() {
                    format!("{mode} {n}")
                } else {
                    format!("{mode} {n} ({})", on.join(", "))
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn note(&mut self, start: Instant, line: String) {
        let line = format!("[{:6.1}s] {line}", start.elapsed().as_secs_f64());
        eprintln!("  {line}");
        self.log.push(line);
    }
}

/// Runs the schedule against the cluster, recording what it injected; each fault is healed
/// before the next. Services that died by themselves meanwhile are reported and restarted.
pub async fn run(
    cluster: &tokio::sync::Mutex<Cluster>,
    steps: Vec<Step>,
    start: Instant,
    until: Instant,
    injected: &tokio::sync::Mutex<Injected>,
) {
    for step in steps {
        tokio::time::sleep_until(start + step.at).await;
        // Injecting and healing take time the plan does not know of: a fault that would
        // outlast the writers is left out.
        if Instant::now() + step.hold >= until {
            return;
        }
        {
            let mut c = cluster.lock().await;
            let crashed = c.crashed();
            if !crashed.is_empty() {
                let mut inj = injected.lock().await;
                for line in crashed {
                    inj.note(start, format!("INCIDENT: {line}"));
                    inj.incidents.push(line);
                }
                drop(inj);
                if let Err(e) = c.heal().await {
                    let mut inj = injected.lock().await;
                    inj.note(start, format!("INCIDENT: healing failed: {e:#}"));
                    inj.incidents.push(format!("healing failed: {e:#}"));
                }
            }
        }
        let what = inject(cluster, &step).await;
        {
            let mut inj = injected.lock().await;
            inj.note(start, what);
            *inj.counts
                .entry(step.mode.name().to_string())
                .or_default()
                .entry(step.target.clone())
                .or_default() += 1;
        }
        tokio::time::sleep(step.hold).await;
        let healed = recover(cluster, &step).await;
        let mut inj = injected.lock().await;
        match healed {
            Ok(Some(line)) => inj.note(start, line),
            Ok(None) => {}
            Err(e) => {
                let line = format!(
                    "INCIDENT: recovering from {} failed: {e:#}",
                    step.mode.name()
                );
                inj.note(start, line.clone());
                inj.incidents.push(line);
            }
        }
    }
}

async fn inject(cluster: &tokio::sync::Mutex<Cluster>, step: &Step) -> String {
    let mut c = cluster.lock().await;
    let hold = format!("{:.1}s", step.hold.as_secs_f64());
    match step.mode {
        Mode::Kill => {
            c.service(&step.target).kill().await;
            format!("kill -9 {} (down for {hold})", step.target)
        }
        Mode::Stop => {
            c.service(&step.target).freeze().await;
            format!("SIGSTOP {} for {hold}", step.target)
        }
        Mode::NotificacoesDown => {
            c.service("notificacoes")
                .terminate(Duration::from_secs(6))
                .await;
            format!("notificacoes stopped for {hold}")
        }
        Mode::DiskFull => {
            let Some((_, disk)) = c.disks.iter_mut().find(|(n, _)| *n == step.target) else {
                return format!("disk-full: no disk named {}", step.target);
            };
            match disk.fill() {
                Ok(bytes) => format!(
                    "{}'s disk filled ({} KiB of ballast) for {hold}",
                    step.target,
                    bytes / 1024
                ),
                Err(e) => format!("filling {}'s disk failed: {e:#}", step.target),
            }
        }
        Mode::PgRestartFast | Mode::PgRestartImmediate => {
            let mode = if step.mode == Mode::PgRestartFast {
                "fast"
            } else {
                "immediate"
            };
            let began = Instant::now();
            let result = match &c.pg {
                Some(pg) => pg.restart(mode).await,
                None => Err(anyhow::anyhow!("no PostgreSQL in this run")),
            };
            match result {
                Ok(()) => format!(
                    "pg_ctl restart -m {mode} (back in {:.1}s)",
                    began.elapsed().as_secs_f64()
                ),
                Err(e) => format!("INCIDENT: pg_ctl restart -m {mode} failed: {e:#}"),
            }
        }
    }
}

async fn recover(
    cluster: &tokio::sync::Mutex<Cluster>,
    step: &Step,
) -> anyhow::Result<Option<String>> {
    let mut c = cluster.lock().await;
    let within = c.start_within;
    match step.mode {
        Mode::Kill | Mode::NotificacoesDown => {
            let took = c.service(&step.target).start(within).await?;
            Ok(Some(format!(
                "{} restarted (serving after {:.1}s)",
                step.target,
                took.as_secs_f64()
            )))
        }
        Mode::Stop => {
            c.service(&step.target).resume().await;
            Ok(Some(format!("SIGCONT {}", step.target)))
        }
        Mode::DiskFull => {
            if let Some((_, disk)) = c.disks.iter_mut().find(|(n, _)| *n == step.target) {
                disk.free();
            }
            let mut line = format!("{}'s disk freed", step.target);
            if let Some(pg) = &c.pg {
                if !pg.running().await {
                    pg.start().await?;
                    line.push_str("; PostgreSQL had stopped and was started again");
                }
            }
            Ok(Some(line))
        }
        Mode::PgRestartFast | Mode::PgRestartImmediate => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let modes = Mode::all_for(Backend::Postgres);
        let services = ["cursos", "cpar"];
        let disks = vec!["postgresql".to_string()];
        let mk = |seed| {
            plan(
                &mut StdRng::seed_from_u64(seed),
                &modes,
                &services,
                &disks,
                Duration::from_secs(3),
                Duration::from_secs(60),
            )
        };
        assert_eq!(mk(7), mk(7));
        assert_ne!(mk(7), mk(8));
        let steps = mk(7);
        assert!(steps.len() >= 5, "{steps:?}");
        for w in steps.windows(2) {
            assert!(w[0].at + w[0].hold < w[1].at, "faults do not overlap");
        }
        assert!(steps
            .iter()
            .all(|s| s.at + s.hold < Duration::from_secs(60)));
    }

    #[test]
    fn disk_full_needs_a_disk() {
        let steps = plan(
            &mut StdRng::seed_from_u64(1),
            &[Mode::DiskFull, Mode::Kill],
            &["cursos"],
            &[],
            Duration::ZERO,
            Duration::from_secs(30),
        );
        assert!(steps.iter().all(|s| s.mode == Mode::Kill));
    }
}
