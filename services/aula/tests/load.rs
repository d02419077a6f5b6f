//! `aula load` against the six real services and the gateway, started in this process on
//! ephemeral ports: a short run at a modest rate must exercise every RPC of the mix, the streams
//! and (`--gateway`) the gateway's routes, and see no error.

use aula_runtime::testing::{spawn, TestService};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_mix_runs_against_the_real_services_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let start = |def: aula_runtime::ServiceDef, peers: Vec<(String, String)>| async move {
        spawn(def, data, &peers).await.expect("service starts")
    };
    let insights = start(insights::service(), vec![]).await;
    let midia = start(midia::service(), vec![]).await;
    let notificacoes = start(notificacoes::service(), vec![]).await;
    let chatbot = start(chatbot::service(), vec![insights.addr_var()]).await;
    let cpar = start(cpar::service(), vec![notificacoes.addr_var()]).await;
    let cursos = start(
        cursos::service(),
        vec![
            midia.addr_var(),
            chatbot.addr_var(),
            notificacoes.addr_var(),
        ],
    )
    .await;
    let all: [&TestService; 6] = [&cursos, &chatbot, &cpar, &notificacoes, &insights, &midia];
    let mut env = aula_runtime::Env::from_pairs([("GATEWAY_DRAIN_DELAY", "0s")]);
    for (k, v) in all.iter().map(|s| s.addr_var()) {
        env.set(k, v);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = gateway::start(&env, listener, None)
        .await
        .expect("gateway starts");

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_aula"))
        .args([
            "load",
            "--rate",
            "150",
            "--duration",
            "2s",
            "--warmup",
            "0s",
            "--gateway",
            "--gateway-url",
            &format!("http://{}", gw.addr()),
        ])
        // `--json -`: the summary on stdout, the table on stderr.
        .args([
            "--concurrency",
            "8",
            "--max-error-ratio",
            "0",
            "--json",
            "-",
        ])
        .envs(all.iter().map(|s| s.addr_var()))
        // Whatever chatbot's mode, the load generator never needs a key.
        .env_remove("GEMINI_API_KEY")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .expect("aula load finishes")
        .expect("aula load runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "aula load failed\n{stdout}\n{stderr}");

    eprintln!("{stderr}");
    assert!(
        !std::path::Path::new("-").exists(),
        "--json - wrote a file named -"
    );
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
            stdout.contains(name),
            "{name} missing from the table\n{stdout}"
        );
    }

    for s in all {
        s.running.drain();
    }
}

/// The gateway is checked before any load, like the services: nothing there is one line at
/// once naming it, not a run of failures.
#[tokio::test]
async fn a_gateway_that_does_not_answer_stops_the_run_at_once() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
