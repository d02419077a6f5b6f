//! `aula faults`: the fault harness. Jepsen's standard on one machine: every acknowledged
//! write is present in the final read, exactly once, whatever faults happened meanwhile.
//!
//! It starts the six services as separate processes of their real binaries (on SQLite files
//! on small tmpfs mounts it can fill, or on a PostgreSQL cluster of its own it can restart),
//! runs concurrent writers of every kind of write while a seeded schedule injects faults
//! (kill -9, SIGSTOP/SIGCONT, notificacoes down, a full disk, PostgreSQL restarts), heals
//! everything, restarts every service, waits for the outboxes to drain, reads everything
//! back through the API and prints a verdict per kind of write. Exit status: 0 when nothing
//! acknowledged was lost or duplicated, 1 when something was, 2 when the harness itself could
//! not run or read back. `scripts/faults.sh` runs it in a private network and mount namespace
//! (its own loopback, standard ports, mounts that vanish with it).
//!
//! # Layout
//! - [`cluster`]: the system under test ([`procs`]: service processes, [`postgres`]: the
//!   harness's PostgreSQL, [`disk`]: fillable tmpfs data directories).
//! - [`nemesis`]: the fault schedule and how each fault is injected and healed.
//! - [`workload`]: the writers; [`history`]: what they did and what each call answered.
//! - [`readback`]: the final read; [`check`]: the verdict; [`report`]: table and JSON.

pub mod check;
pub mod cluster;
pub mod disk;
pub mod history;
pub mod nemesis;
pub mod postgres;
pub mod procs;
pub mod readback;
pub mod report;
pub mod workload;

use aula_runtime::config::duration_arg;
use clap::Args;
use cluster::{Backend, Cluster, Setup};
use history::{History, Outcome};
use nemesis::{Injected, Mode};
use rand::{rngs::StdRng, SeedableRng};
use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{atomic::Ordering, Arc},
    time::Duration,
};
use tokio::{sync::Mutex, time::Instant};
use workload::{Clients, Counters, Plan};

#[derive(Debug, Args)]
pub struct FaultsArgs {
    /// Storage of the services: sqlite (files on tmpfs) or postgres (a cluster of its own)
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// Seed of the writers and the fault schedule (random when absent; printed either way)
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long the writers run after the warm-up
    #[arg(long, default_value = "60s", value_parser = duration_arg)]
    pub duration: Duration,
    /// Writes without faults before the first fault
    #[arg(long, default_value = "3s", value_parser = duration_arg)]
    pub warmup: Duration,
    /// Concurrent writers
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// Faults to inject, comma-separated: kill, stop, notificacoes-down, disk-full,
    /// pg-restart-fast, pg-restart-immediate; "all" (every mode of the backend) or "none"
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub faults: Vec<String>,
    /// Deadline of each call (a call that runs out is indeterminate)
    #[arg(long, default_value = "5s", value_parser = duration_arg)]
    pub timeout: Duration,
    /// How long to wait for the outboxes to drain once every fault is healed
    #[arg(long, default_value = "60s", value_parser = duration_arg)]
    pub drain_timeout: Duration,
    /// Working directory for data, logs and the history [default: /tmp/aula-faults-<backend>-<seed>]
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Where the service binaries are [default: next to aula; `aula serve <name>` otherwise]
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// The first service's port; the six take consecutive ports in catalogue order
    #[arg(long, default_value_t = 50051)]
    pub port_base: u16,
    /// Port of the harness's own PostgreSQL
    #[arg(long, default_value_t = 56432)]
    pub pg_port: u16,
    /// Size in MiB of each tmpfs data directory (0: plain directories, no disk-full)
    #[arg(long, default_value_t = 64)]
    pub tmpfs_mb: u64,
    /// Write the verdict, the faults and the seed as JSON to this file
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// RUST_LOG of the services (their logs are in <work-dir>/logs)
    #[arg(long, default_value = "warn")]
    pub log: String,
}

/// The modes `--faults` names, for a backend.
pub fn parse_modes(names: &[String], backend: Backend) -> Result<Vec<Mode>, String> {
    use clap::ValueEnum;
    let mut modes = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        match name {
            "all" => modes.extend(Mode::all_for(backend)),
            "none" => {}
            _ => {
                let mode = Mode::from_str(name, true).map_err(|_| {
                    format!(
                        "unknown fault {name:?}; expected any of {}, all or none",
                        Mode::list(&Mode::all_for(Backend::Postgres))
                    )
                })?;
                if !Mode::all_for(backend).contains(&mode) {
                    return Err(format!("{name} needs --backend postgres"));
                }
                modes.push(mode);
            }
        }
    }
    modes.sort();
    modes.dedup();
    Ok(modes)
}

/// How many anomalies the report lists (all of them go to `<work-dir>/anomalies.txt`).
const ANOMALIES_SHOWN: usize = 20;

pub async fn run(args: FaultsArgs) -> ExitCode {
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut modes = match parse_modes(&args.faults, args.backend) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("aula faults: {e}");
            return ExitCode::from(2);
        }
    };
    if args.tmpfs_mb == 0 && modes.contains(&Mode::DiskFull) {
        eprintln!("aula faults: --tmpfs-mb 0: no disk to fill, disk-full left out");
        modes.retain(|&m| m != Mode::DiskFull);
    }
    let repeat =
        format!(
        "scripts/faults.sh --backend {} --seed {seed} --duration {}s --concurrency {} --faults {}",
        args.backend.name(),
        args.duration.as_secs(),
        args.concurrency,
        if modes.is_empty() { "none".to_string() } else { Mode::list(&modes) }
    );
    println!(
        "aula faults: seed {seed}, {} backend, {}s of writes by {} writers, faults: {}",
        args.backend.name(),
        args.duration.as_secs(),
        args.concurrency,
        if modes.is_empty() {
            "none".to_string()
        } else {
            Mode::list(&modes)
        }
    );
    println!("repeat with: {repeat}");
    let work = args.work_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("aula-faults-{}-{seed}", args.backend.name()))
    });
    if work.exists() {
        if let Err(e) = std::fs::remove_dir_all(&work) {
            eprintln!("aula faults: clearing {}: {e}", work.display());
            return ExitCode::from(2);
        }
    }
    let bin_dir = match args.bin_dir.clone().or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(PathBuf::from))
    }) {
        Some(d) => d,
        None => {
            eprintln!("aula faults: cannot tell where the service binaries are: pass --bin-dir");
            return ExitCode::from(2);
        }
    };
    let setup = Setup {
        backend: args.backend,
        work: work.clone(),
        bin_dir,
        port_base: args.port_base,
        pg_port: args.pg_port,
        tmpfs_mb: (args.tmpfs_mb > 0).then_some(args.tmpfs_mb),
        log_filter: args.log.clone(),
    };
    eprintln!("  starting the services (data, logs: {})", work.display());
    let began = Instant::now();
    let cluster = match Cluster::start(&setup).await {
        Ok(c) => {
            eprintln!("  serving after {:.1}s", began.elapsed().as_secs_f64());
            Arc::new(Mutex::new(c))
        }
        Err(e) => {
            eprintln!("aula faults: {e:#}");
            return ExitCode::from(2);
        }
    };
    let outcome = tokio::select! {
        r = exercise(&args, seed, &modes, cluster.clone(), &repeat, &work) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    cluster.lock().await.shutdown().await;
    match outcome {
        Some(Ok(true)) => ExitCode::SUCCESS,
        Some(Ok(false)) => ExitCode::FAILURE,
        Some(Err(e)) => {
            eprintln!("aula faults: {e:#}");
            ExitCode::from(2)
        }
        None => {
            eprintln!("aula faults: interrupted");
            ExitCode::from(130)
        }
    }
}

/// Writes under faults, heals, reads back and prints the verdict; `Ok(true)` when it passed.
async fn exercise(
    args: &FaultsArgs,
    seed: u64,
    modes: &[Mode],
    cluster: Arc<Mutex<Cluster>>,
    repeat: &str,
    work: &std::path::Path,
) -> anyhow::Result<bool> {
    let (clients, names, disks) = {
        let c = cluster.lock().await;
        let urls: Vec<(String, String)> = c
            .services
            .iter()
            .map(|s| (s.name.to_string(), s.url()))
            .collect();
        let clients = Clients::new(|name| {
            urls.iter()
                .find(|(n, _)| n == name)
                .map(|(_, u)| u.clone())
                .unwrap_or_default()
        })?;
        let names: Vec<&'static str> = c.services.iter().map(|s| s.name).collect();
        let disks: Vec<String> = c.disks.iter().map(|(n, _)| n.clone()).collect();
        (clients, names, disks)
    };
    let courses = readback::courses(&clients).await?;
    if courses.is_empty() {
        anyhow::bail!("the catalogue is empty: Enroll and AskQuestion need at least one course");
    }
    let plan = Arc::new(Plan {
        seed,
        courses: courses.clone(),
        timeout: args.timeout,
        counters: Counters::default(),
    });

    let start = Instant::now();
    let until = start + args.warmup + args.duration;
    let steps = nemesis::plan(
        &mut StdRng::seed_from_u64(seed),
        modes,
        &names,
        &disks,
        args.warmup,
        args.warmup + args.duration,
    );
    eprintln!("  {} faults planned; writing", steps.len());
    let writers: Vec<_> = (0..args.concurrency as usize)
        .map(|w| tokio::spawn(workload::run(w, clients.clone(), plan.clone(), until)))
        .collect();
    let injected = Arc::new(Mutex::new(Injected::default()));
    let nemesis = {
        let (cluster, injected) = (cluster.clone(), injected.clone());
        tokio::spawn(async move { nemesis::run(&cluster, steps, start, until, &injected).await })
    };
    let progress = tokio::spawn(progress(plan.clone(), start));
    let mut history = History::default();
    for w in writers {
        history.merge(w.await?);
    }
    nemesis.await?;
    progress.abort();

    let phase = Instant::now();
    eprintln!(
        "  writers done at {:.1}s; healing, then restarting every service for the final read",
        start.elapsed().as_secs_f64()
    );
    {
        let mut c = cluster.lock().await;
        for line in c.heal().await? {
            eprintln!("    {line}");
        }
        c.restart_all().await?;
    }
    eprintln!(
        "  restarted in {:.1}s; waiting for the outboxes",
        phase.elapsed().as_secs_f64()
    );
    let phase = Instant::now();
    let pending = readback::drain(&clients, args.drain_timeout).await?;
    let drain_s = phase.elapsed().as_secs_f64();
    eprintln!("  outboxes drained in {drain_s:.1}s");
    if pending > 0 {
        eprintln!(
            "  {pending} outbox rows still pending after {:?}: their notifications count as lost",
            args.drain_timeout
        );
    }
    let answered = history
        .questions
        .iter()
        .filter(|q| q.outcome == Outcome::Acked)
        .count() as i64;
    let course_ids: Vec<i64> = courses.iter().map(|(id, _)| *id).collect();
    readback::settle_records(&clients, &course_ids, answered, Duration::from_secs(20)).await?;
    eprintln!("  reading back the writes of {} calls", history.calls());
    let phase = Instant::now();
    let seen = readback::read(&clients, &history, &courses).await?;
    eprintln!("  read back in {:.1}s", phase.elapsed().as_secs_f64());
    let verdict = check::verdict(&history, &seen);

    let injected = injected.lock().await.clone();
    let violations = verdict.violations();
    let pass = violations == 0 && injected.incidents.is_empty();
    println!();
    print!("{}", report::table(&verdict));
    println!(
        "faults injected: {} ({})",
        injected.total(),
        injected.summary()
    );
    println!("outboxes drained {drain_s:.1}s after the last restart ({pending} still pending)");
    for line in &injected.incidents {
        println!("incident: {line}");
    }
    for line in verdict.anomalies.iter().take(ANOMALIES_SHOWN) {
        println!("  {line}");
    }
    if verdict.anomalies.len() > ANOMALIES_SHOWN {
        println!(
            "  ... {} more in {}",
            verdict.anomalies.len() - ANOMALIES_SHOWN,
            work.join("anomalies.txt").display()
        );
    }
    let _ = std::fs::write(
        work.join("anomalies.txt"),
        [&verdict.anomalies[..], &verdict.best_effort_losses[..]]
            .concat()
            .join("\n"),
    );

    let total = verdict.total(true);
    if pass {
        println!(
            "PASS: {} acknowledged writes, every one present exactly once (seed {seed})",
            total.acked
        );
    } else {
        println!(
            "FAIL: {} lost, {} duplicated, {} failed-but-present, {} incidents (seed {seed})",
            total.lost,
            total.duplicated,
            total.failed_present,
            injected.incidents.len()
        );
    }
    println!("repeat with: {repeat}");
    let _ = std::fs::write(
        work.join("history.json"),
        serde_json::to_vec(&history).unwrap_or_default(),
    );
    if let Some(path) = &args.json {
        let summary = report::Summary {
            seed,
            backend: args.backend.name(),
            duration_s: args.duration.as_secs_f64(),
            concurrency: args.concurrency,
            modes: modes.iter().map(|m| m.name()).collect(),
            repeat: repeat.to_string(),
            injected: &injected,
            kinds: report::Summary::kinds(&verdict),
            total,
            pending_after_drain: pending,
            drain_s,
            violations,
            pass,
        };
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)?;
    }
    Ok(pass)
}

/// A line every 5 s: the calls so far.
async fn progress(plan: Arc<Plan>, start: Instant) {
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(5), Duration::from_secs(5));
    loop {
        tick.tick().await;
        let c = &plan.counters;
        eprintln!(
            "  [{:6.1}s] calls: {} acked, {} failed, {} indeterminate",
            start.elapsed().as_secs_f64(),
            c.acked.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed),
            c.indeterminate.load(Ordering::Relaxed)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names() {
        let all = parse_modes(&["all".into()], Backend::Sqlite).unwrap();
        assert_eq!(
            all,
            [
                Mode::Kill,
                Mode::Stop,
                Mode::NotificacoesDown,
                Mode::DiskFull
            ]
        );
        assert_eq!(
            parse_modes(
                &["kill".into(), "stop".into(), "kill".into()],
                Backend::Sqlite
            )
            .unwrap(),
            [Mode::Kill, Mode::Stop]
        );
        assert!(parse_modes(&["none".into()], Backend::Sqlite)
            .unwrap()
            .is_empty());
        assert!(parse_modes(&["pg-restart-fast".into()], Backend::Sqlite)
            .unwrap_err()
            .contains("--backend postgres"));
        assert!(parse_modes(&["reboot".into()], Backend::Postgres)
            .unwrap_err()
            .contains("unknown fault"));
        assert_eq!(
            parse_modes(&["all".into()], Backend::Postgres)
                .unwrap()
                .len(),
            6
        );
    }
}
