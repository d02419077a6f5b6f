//! Fault flags (docs/FLAGS.md) on a running cursos: each flag switched on in the file takes
//! effect without a restart, is labelled as injected, and goes away when switched off; a
//! malformed file keeps the last good flags. The layer is the runtime's, so what holds here
//! holds for every service.

mod common;

use aula_api::{Empty, GetUserCoursesRequest};
use aula_runtime::flags::file::{write_atomically, FlagsFile};
use common::*;
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};
use tonic::Code;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

fn user() -> GetUserCoursesRequest {
    GetUserCoursesRequest {
        id_usuario: "1".into(),
    }
}

fn edit(path: &Path, f: impl FnOnce(&mut FlagsFile)) {
    let mut file = FlagsFile::open(path).unwrap();
    f(&mut file);
    file.save().unwrap();
}

/// Sets each flag to its variant in the file.
fn set(path: &Path, flags: &[(&str, &str)]) {
    edit(path, |f| {
        for (name, variant) in flags {
            f.set(name, variant).unwrap();
        }
    });
}

/// Switches every flag off.
fn clear(path: &Path) {
    edit(path, |f| {
        f.clear();
    });
}

/// cursos reading its flags from an empty file in a temporary directory.
async fn start() -> (
    tempfile::TempDir,
    aula_runtime::testing::TestService,
    Client,
    PathBuf,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    edit(&path, |_| {});
    let file = path.display().to_string();
    let env = vars(&[("AULA_FLAGS_FILE", &file)]);
    let (svc, client) = start_cursos(dir.path(), &env).await;
    (dir, svc, client, path)
}

type Client = aula_api::cursos_service_client::CursosServiceClient<tonic::transport::Channel>;

/// Calls GetUserCourses `n` times; the failures' statuses.
async fn failures(client: &mut Client, n: usize) -> Vec<tonic::Status> {
    let mut out = Vec::new();
    for _ in 0..n {
        if let Err(s) = client.get_user_courses(user()).await {
            out.push(s);
        }
    }
    out
}

/// Waits (at most 2 s: the promise of docs/FLAGS.md) until every one of 20 calls fails or
/// every one succeeds.
async fn until_all(client: &mut Client, fail: bool) {
    let start = Instant::now();
    loop {
        let failed = failures(client, 20).await.len();
        if failed == if fail { 20 } else { 0 } {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the change did not apply within 2 s ({failed}/20 failed)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn error_ratio_fails_that_share_of_calls_labelled_then_stops() {
    let (_dir, svc, mut client, path) = start().await;
    assert_eq!(failures(&mut client, 50).await.len(), 0);

    set(&path, &[("fault.cursos.error_ratio", "all")]);
    until_all(&mut client, true).await;
    set(&path, &[("fault.cursos.error_ratio", "50%")]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let failed = failures(&mut client, 400).await;
    // 400 draws at 0.5: the standard deviation is 10 calls; 60 is six of them.
    assert!(
        (140..=260).contains(&failed.len()),
        "{} of 400 failed",
        failed.len()
    );
    for s in &failed {
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(s.message(), "injected fault (fault.cursos.error_ratio)");
    }
    let metrics = svc.metrics_text().await;
    assert!(
        metrics.contains("# HELP aula_fault_injected_total"),
        "{metrics}"
    );
    assert!(metrics.contains("aula_fault_injected_total{flag=\"fault.cursos.error_ratio\"}"));
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("grpc_server_handled_total{")
                && l.contains("grpc_method=\"GetUserCourses\"")
                && l.contains("grpc_code=\"Unavailable\"")),
        "injected failures are counted like real ones"
    );

    // The code named by error_code.
    set(
        &path,
        &[
            ("fault.cursos.error_ratio", "all"),
            ("fault.cursos.error_code", "INTERNAL"),
        ],
    );
    eventually(SETTLE, "INTERNAL", || {
        let mut c = client.clone();
        async move { (c.get_user_courses(user()).await.err()?.code() == Code::Internal).then_some(()) }
    })
    .await;
    // Health is never failed by error_ratio.
    svc.assert_serving().await;

    clear(&path);
    until_all(&mut client, false).await;
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_method_flag_fails_only_that_method() {
    let (_dir, svc, mut client, path) = start().await;
    let mut doc = FlagsFile::open(&path).unwrap();
    let flags = doc.doc["flags"].as_object_mut().unwrap();
    flags.insert(
        "fault.cursos.GetUserCourses.error_ratio".into(),
        serde_json::json!({"state": "ENABLED", "variants": {"on": 1}, "defaultVariant": "on"}),
    );
    doc.save().unwrap();
    until_all(&mut client, true).await;
    let s = client.get_user_courses(user()).await.refusal();
    assert_eq!(
        s.message(),
        "injected fault (fault.cursos.GetUserCourses.error_ratio)"
    );
    // Other methods answer.
    client.get_status(Empty {}).await.answer();
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn latency_is_added_within_the_calls_deadline_then_removed() {
    let (_dir, svc, mut client, path) = start().await;
    set(&path, &[("fault.cursos.latency_ms", "500ms")]);
    let slow = eventually(SETTLE, "latency added", || {
        let mut c = client.clone();
        async move {
            let t = Instant::now();
            c.get_user_courses(user()).await.unwrap();
            let took = t.elapsed();
            (took >= Duration::from_millis(450)).then_some(took)
        }
    })
    .await;
    assert!(slow < Duration::from_secs(2), "{slow:?}");

    // A deadline shorter than the added latency: the caller's deadline wins (the server
    // answers DEADLINE_EXCEEDED at the deadline; tonic's client may give up first, CANCELLED).
    let mut call = tonic::Request::new(user());
    call.set_timeout(Duration::from_millis(150));
    let t = Instant::now();
    let s = client.get_user_courses(call).await.refusal();
    assert!(
        matches!(s.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{s:?}"
    );
    assert!(
        t.elapsed() < Duration::from_millis(450),
        "{:?}",
        t.elapsed()
    );

    // Health is never delayed.
    let t = Instant::now();
    svc.assert_serving().await;
    assert!(t.elapsed() < Duration::from_millis(300));
    let metrics = svc.metrics_text().await;
    assert!(metrics.contains("aula_fault_injected_total{flag=\"fault.cursos.latency_ms\"}"));

    clear(&path);
    eventually(SETTLE, "latency removed", || {
        let mut c = client.clone();
        async move {
            let t = Instant::now();
            c.get_user_courses(user()).await.unwrap();
            (t.elapsed() < Duration::from_millis(100)).then_some(())
        }
    })
    .await;
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn unavailable_turns_health_not_serving_and_every_call_unavailable() {
    let (_dir, svc, mut client, path) = start().await;
    let mut watch = HealthClient::new(svc.channel())
        .watch(HealthCheckRequest {
            service: "services.CursosService".into(),
        })
        .await
        .answer();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );

    set(&path, &[("fault.cursos.unavailable", "on")]);
    let t = Instant::now();
    let next = watch.message().await.unwrap().unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(!svc.is_serving().await);
    // The server's overall status (liveness probes) stays SERVING: no pod is restarted.
    let overall = HealthClient::new(svc.channel())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .answer()
        .status;
    assert_eq!(overall, ServingStatus::Serving as i32);
    let s = client.get_status(Empty {}).await.refusal();
    assert_eq!(s.code(), Code::Unavailable);
    assert_eq!(s.message(), "injected fault (fault.cursos.unavailable)");

    clear(&path);
    let next = watch.message().await.unwrap().unwrap();
    assert_eq!(next.status, ServingStatus::Serving as i32);
    client.get_status(Empty {}).await.expect("answers again");
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_malformed_file_keeps_the_last_good_flags() {
    let (_dir, svc, mut client, path) = start().await;
    set(&path, &[("fault.cursos.error_ratio", "all")]);
    until_all(&mut client, true).await;
    write_atomically(&path, "{\"flags\": {\"fault.cursos.error_ratio\": ").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(failures(&mut client, 20).await.len(), 20, "still failing");
    // A value out of range is malformed too.
    let mut bad = aula_runtime::flags::file::template();
    bad["flags"]["fault.cursos.error_ratio"] =
        serde_json::json!({"state": "DISABLED", "variants": {"off": 2}, "defaultVariant": "off"});
    write_atomically(&path, &bad.to_string()).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(failures(&mut client, 20).await.len(), 20, "still failing");
    // A good file again: applied.
    write_atomically(&path, &aula_runtime::flags::file::template().to_string()).unwrap();
    until_all(&mut client, false).await;
    // A deleted file: every flag off (it stays off).
    std::fs::remove_file(&path).unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(failures(&mut client, 20).await.len(), 0);
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn without_a_file_the_layer_is_inert() {
    let (_dir, svc, mut client) = cursos_alone().await;
    assert_eq!(failures(&mut client, 20).await.len(), 0);
    let metrics = svc.metrics_text().await;
    assert!(!metrics.contains("aula_fault_injected_total{"));
    svc.running.stop().await.unwrap();
}
