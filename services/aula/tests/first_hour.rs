//! A newcomer's mistakes, made with the real binary: each is answered at once, in one line
//! that names what to change, with the exit code of its kind (2 for usage, 1 for settings).

use std::{
    io::{BufRead, BufReader},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

const AULA: &str = env!("CARGO_BIN_EXE_aula");

/// Runs `aula` with `args` in an empty directory, no inherited Aula/OTEL settings.
fn aula(args: &[&str], env: &[(&str, &str)]) -> (Output, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(AULA);
    cmd.args(args).current_dir(dir.path()).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("AULA_") || k.starts_with("OTEL_") || k.ends_with("DATABASE_URL") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let start = Instant::now();
    let out = cmd.output().expect("the aula binary runs");
    (out, start.elapsed())
}

/// `aula serve cursos` on an ephemeral port, metrics off.
const SERVE_CURSOS: &[&str] = &[
    "serve",
    "cursos",
    "--listen",
    "127.0.0.1:0",
    "--metrics-listen",
    "off",
];

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn usage_errors_exit_2_and_suggest_the_right_name() {
    for args in [&["up", "curso"][..], &["serve", "curso"][..]] {
        let (out, _) = aula(args, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("'cursos'"), "{args:?} suggests nothing: {err}");
    }
    let (out, _) = aula(&["up", "--no-gateway", "gateway"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--no-gateway"), "{}", stderr(&out));
}

#[test]
fn a_bad_setting_is_one_line_naming_the_variable() {
    for (var, value) in [
        ("AULA_PEER_TIMEOUT", "0s"),
        ("AULA_PEER_TIMEOUT", "5"),
        ("AULA_SHUTDOWN_GRACE", "soon"),
        ("AULA_DB_ACQUIRE_TIMEOUT", "0ms"),
        ("OTEL_TRACES_SAMPLER", "bogus"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "otel-collector:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
    ] {
        let (out, took) = aula(SERVE_CURSOS, &[(var, value)]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{var}={value}: {err}");
        assert_eq!(err.lines().count(), 1, "{var}={value}: {err}");
        assert!(
            err.starts_with(&format!("cursos: {var}: ")),
            "{var}={value}: {err}"
        );
        assert!(took < Duration::from_secs(5), "{var}={value} took {took:?}");
    }
}

#[test]
fn a_database_url_with_nothing_listening_fails_in_seconds_naming_the_host() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://aula:secret@127.0.0.1:{port}/aula");
    let (out, took) = aula(
        SERVE_CURSOS,
        &[("DATABASE_URL", &url), ("AULA_DB_ACQUIRE_TIMEOUT", "2s")],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}: {err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
    assert!(!err.contains("secret"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_taken_port_names_the_variable_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (out, _) = aula(
        &[
            "serve",
            "midia",
            "--listen",
            &addr,
            "--metrics-listen",
            "off",
        ],
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "printed more than once: {err}");
    assert!(err.contains(&format!("AULA_LISTEN={addr}")), "{err}");
    assert!(err.to_lowercase().contains("in use"), "{err}");
}

/// The start is quiet: no OpenTelemetry chatter, no Rust `Debug` syntax in the serving line.
#[test]
fn the_start_says_only_what_a_user_needs() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(AULA)
        .args(["serve", "midia", "--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("RUST_LOG")
        .env("AULA_LOG_FORMAT", "text")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        lines.push(line.clone());
        if line.contains("serving") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = lines.join("\n");
    assert!(text.contains("serving"), "{text}");
    assert!(!text.contains("Global tracer provider"), "{text}");
    assert!(!text.contains("Some("), "{text}");
}

/// Ports nobody should be using: the stack moved far away.
const NOWHERE: &str = "13000";

#[tokio::test]
async fn status_lists_the_gateway_and_speaks_json() {
    let (_dir, midia) = aula_runtime::testing::spawn_alone(midia::service(), &[]).await;
    let (var, value) = midia.addr_var();
    let out = tokio::process::Command::new(AULA)
        .args(["status", "--json", "--port-offset", NOWHERE])
        .env(var, value)
        .env_remove("AULA_TLS_CERT")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["all_serving"], false);
    let rows = v["services"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    // The catalogue's order, the gateway last.
    let catalogue = aula_runtime::spec::ALL.iter().map(|s| s.name);
    assert_eq!(names, catalogue.chain(["gateway"]).collect::<Vec<_>>());
    for r in rows {
        let expected = if r["name"] == "midia" {
            "SERVING"
        } else {
            "DOWN"
        };
        assert_eq!(r["state"], expected, "{r}");
    }
    assert!(
        rows[6]["address"].as_str().unwrap().ends_with(":21080"),
        "{v}"
    );
}

#[test]
fn load_with_nothing_running_fails_at_once_naming_what_to_start() {
    let (out, took) = aula(
        &["load", "--duration", "30s", "--port-offset", NOWHERE],
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {err}");
    assert!(err.contains("aula up"), "{err}");
    assert!(err.contains("127.0.0.1:63051"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "a table of nothing: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
