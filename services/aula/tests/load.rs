//! `aula load` against the six real services and the gateway, started in this process on
//! ephemeral ports: a short run at a modest rate must exercise every RPC of the mix, the streams
//! and (`--gateway`) the gateway's routes, and see no error. With end-user auth on
//! (`AULA_AUTH=jwt`, tokens from `aula token`), a staff `--token` runs the same mix without an
//! error, and no token, a bad one or a student's stops the run at once naming `--token`.

mod common;

use common::Platform;
use std::{
    path::Path,
    process::Output,
    time::{Duration, Instant},
};

/// The six services with `all` (auth settings, or nothing) and the gateway in front of them.
async fn stack(
    dir: tempfile::TempDir,
    all: &[(String, String)],
) -> (Platform, gateway::RunningGateway) {
    let p = common::spawn_with(dir, all).await;
    let mut env = aula_runtime::Env::from_pairs([("GATEWAY_DRAIN_DELAY", "0s")]);
    for (k, v) in all
        .iter()
        .cloned()
        .chain(p.all().iter().map(|s| s.addr_var()))
    {
        env.set(k, v);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = gateway::start(&env, listener, None)
        .await
        .expect("gateway starts");
    (p, gw)
}

/// Runs `aula load` with `args` against `p` and `gw` (the gRPC mix plus the gateway's routes);
/// `token` is AULA_TOKEN's value, unset when `None`. Returns the output and how long it took.
async fn load(
    p: &Platform,
    gw: &gateway::RunningGateway,
    args: &[&str],
    token: Option<&str>,
) -> (Output, Duration) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aula"));
    cmd.args(["load", "--gateway", "--gateway-url"])
        .arg(format!("http://{}", gw.addr()))
        .args(args)
        .envs(p.all().iter().map(|s| s.addr_var()))
        // Whatever chatbot's mode, the load generator never needs a key.
        .env_remove("GEMINI_API_KEY")
        .env_remove("AULA_TOKEN")
        .kill_on_drop(true);
    if let Some(t) = token {
        cmd.env("AULA_TOKEN", t);
    }
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("aula load finishes")
        .expect("aula load runs");
    (out, started.elapsed())
}

/// A short open-loop run of the whole mix, allowing no error; `--json -` puts the summary on
/// stdout and the table on stderr.
const WHOLE_MIX: &[&str] = &[
    "--rate",
    "150",
    "--duration",
    "2s",
    "--warmup",
    "0s",
    "--concurrency",
    "8",
    "--max-error-ratio",
    "0",
    "--json",
    "-",
];

/// Every RPC and route of the mix was called, none failed, and the table names each.
fn assert_the_whole_mix_ran_without_errors(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "aula load failed\n{stdout}\n{stderr}");
    eprintln!("{stderr}");
    assert!(!Path::new("-").exists(), "--json - wrote a file named -");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not the JSON summary ({e}):\n{stdout}"));
    assert_eq!(summary["mode"], "open");
    let rows = summary["rpcs"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["rpc"].as_str().unwrap()).collect();
    for expected in [
        "cursos.ListCourses",
        "cursos.GetCourse",
        "cursos.GetUserCourses",
        "cursos.Enroll",
        "cursos.Unenroll",
        "cursos.GetCourseMedia",
        "midia.GetMedia",
        "cursos.AskQuestion",
        "cursos.SendNotification",
        "notificacoes.ListNotifications",
        "cpar.CreateSchedule",
        "cpar.ListSchedules",
        "cpar.NotifySchedule",
        "cursos.GetStatus",
        "chatbot.GetStatus",
        "cpar.GetStatus",
        "notificacoes.GetStatus",
        "insights.GetStatus",
        "midia.GetStatus",
        "notificacoes.SubscribeNotifications",
        "chatbot.ResolveDuvidaStream",
        "gateway GET /cursos",
        "gateway GET /cursos/ver_inscricoes_do_usuario/{id}",
        "gateway GET /cursos/consumir_midia_curso/{id}",
        "gateway GET /midia_conteudo/{id}",
        "gateway POST /chatbot/duvida",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for row in rows {
        assert!(
            row["count"].as_u64().unwrap() > 0,
            "{} was never called: {row}",
            row["rpc"]
        );
        assert_eq!(row["errors"], 0, "{} failed: {row}\n{stdout}", row["rpc"]);
        assert!(row["latency_ms"]["p99"].as_f64().unwrap() > 0.0, "{row}");
    }
    // The final table names every RPC too.
    for name in &names {
        assert!(
            stderr.contains(name),
            "{name} missing from the table\n{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_mix_runs_against_the_real_services_without_errors() {
    let (p, gw) = stack(tempfile::tempdir().unwrap(), &[]).await;
    let (out, _) = load(&p, &gw, WHOLE_MIX, None).await;
    assert_the_whole_mix_ran_without_errors(&out);
    for s in p.all() {
        s.running.drain();
    }
}

/// A token from `aula token` with the development key it generates in `dir`.
fn token(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aula"))
        .arg("token")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("aula token runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The platform with `AULA_AUTH=jwt`, verifying against the key set `aula token` wrote (as
/// `aula up --auth` and docker-compose.auth.yml do), and a staff and a student token.
async fn stack_with_auth() -> (Platform, gateway::RunningGateway, String, String) {
    use aula_runtime::auth::dev::DevKeys;
    let dir = tempfile::tempdir().unwrap();
    let staff = token(dir.path(), &["--user", "1", "--role", "staff"]);
    let student = token(dir.path(), &["--user", "1"]);
    let auth = common::jwt_env(&DevKeys::in_data_dir(dir.path()).jwks_path());
    let (p, gw) = stack(dir, &auth).await;
    (p, gw, staff, student)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_on_a_staff_token_runs_the_whole_mix_without_errors() {
    let (p, gw, staff, _) = stack_with_auth().await;
    let args = [WHOLE_MIX, &["--token", staff.as_str()][..]].concat();
    let (out, _) = load(&p, &gw, &args, None).await;
    assert_the_whole_mix_ran_without_errors(&out);
    for s in p.all() {
        s.running.drain();
    }
}

/// Without a token, with one that proves nothing, and with a student's (the mix acts on other
/// users), the run stops before any load with one line naming --token, instead of running its
/// 35 s (the default warm-up and duration) of failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_on_a_missing_bad_or_student_token_stops_at_once_naming_token() {
    let (p, gw, _, student) = stack_with_auth().await;
    /// A run: its name, its arguments, AULA_TOKEN, what its one line must say.
    struct Case<'a> {
        name: &'a str,
        args: Vec<&'a str>,
        env_token: Option<&'a str>,
        says: &'a [&'a str],
    }
    let cases = [
        Case {
            name: "no token",
            args: vec![],
            env_token: None,
            says: &["AULA_AUTH=jwt", "AULA_TOKEN", "--role staff"],
        },
        Case {
            name: "a token that is not a JWT (AULA_TOKEN)",
            args: vec![],
            env_token: Some("not-a-jwt-secret"),
            says: &["refused the --token", "authentication failed"],
        },
        Case {
            name: "a student's token",
            args: vec!["--token", student.as_str()],
            env_token: None,
            says: &["1000-1999", "staff role", "permission denied"],
        },
    ];
    for Case {
        name: case,
        args,
        env_token,
        says,
    } in cases
    {
        let (out, took) = load(&p, &gw, &args, env_token).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{case}: {stderr}");
        assert!(
            took < Duration::from_secs(10),
            "{case}: took {took:?}\n{stderr}"
        );
        assert!(
            stdout.is_empty(),
            "{case}: no table, nothing measured\n{stdout}"
        );
        // One line, the last, names the option; no progress line came before it.
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("--token")).collect();
        assert_eq!(lines.len(), 1, "{case}: {stderr}");
        assert_eq!(stderr.lines().last(), Some(lines[0]), "{case}: {stderr}");
        assert!(lines[0].starts_with("aula load: "), "{case}: {stderr}");
        eprintln!("{case} ({took:?}): {}", lines[0]);
        for s in says {
            assert!(lines[0].contains(s), "{case}: {s:?} missing from {stderr}");
        }
        assert!(
            !stderr.contains("warmup"),
            "{case}: the load started\n{stderr}"
        );
        // Tokens never appear in messages.
        assert!(
            !stderr.contains("secret") && !stderr.contains(&student),
            "{case}: {stderr}"
        );
    }
    for s in p.all() {
        s.running.drain();
    }
}

/// The gateway is checked before any load, like the services: nothing there is one line at
/// once naming it, not a run of failures.
#[tokio::test]
async fn a_gateway_that_does_not_answer_stops_the_run_at_once() {
    let port = common::closed_port();
    let started = std::time::Instant::now();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(["load", "--only", "gateway", "--gateway-url"])
        .arg(format!("http://127.0.0.1:{port}"))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("aula load gives up at once")
        .expect("aula load runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("gateway") && stderr.contains(&port.to_string()),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{stderr}");
}
