//! The binaries as users run them: separate processes, signals, exit codes, and one trace
//! across two services received by a real OTLP endpoint.

mod common;

use aula_api::midia_conteudo_service_client::MidiaConteudoServiceClient;
use aula_runtime::testing::channel;
use common::{closed_port, send_notification, spawn_platform};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        trace_service_server::{TraceService, TraceServiceServer},
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    },
    common::v1::any_value::Value,
};
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

const AULA: &str = env!("CARGO_BIN_EXE_aula");

/// A span as the collector received it.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent: Vec<u8>,
}

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    spans.push(Span {
                        service: service.clone(),
                        name: s.name,
                        trace_id: s.trace_id,
                        span_id: s.span_id,
                        parent: s.parent_span_id,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A service process and the address it reported when it started serving.
struct Proc {
    child: Child,
    addr: String,
    /// Every line the process logged (JSON).
    lines: Arc<Mutex<Vec<String>>>,
}

/// Starts `aula serve <name>` on an ephemeral port and waits for its "serving" log line.
fn serve(name: &str, data: &std::path::Path, env: &[(&str, String)]) -> Proc {
    let mut cmd = Command::new(AULA);
    cmd.args([
        "serve",
        name,
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "off",
        "--log-format",
        "json",
    ])
    .arg("--data-dir")
    .arg(data)
    .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
    .env("AULA_SHUTDOWN_GRACE", "5s")
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the aula binary runs");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let keep = lines.clone();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            keep.lock().unwrap().push(line.clone());
            if !sent {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["fields"]["message"] == "serving" {
                        let _ =
                            tx.send(v["fields"]["addr"].as_str().unwrap_or_default().to_string());
                        sent = true;
                    }
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{name} did not start serving"));
    Proc {
        child,
        addr: format!("http://{addr}"),
        lines,
    }
}

/// Sends SIGTERM and returns the exit status, failing if the process does not stop.
fn terminate(mut p: Proc) -> std::process::ExitStatus {
    let pid = p.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = p.child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = p.child.kill();
            panic!("process {pid} did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One `GetMedia` of course 1 answered by the midia process, then SIGTERM: how it exited.
async fn get_media_then_terminate(midia: Proc) -> std::process::ExitStatus {
    let course = aula_api::GetCourseMediaRequest {
        id_curso: "1".into(),
    };
    MidiaConteudoServiceClient::new(channel(&midia.addr))
        .get_media(course)
        .await
        .expect("GetMedia answers");
    tokio::task::spawn_blocking(move || terminate(midia))
        .await
        .unwrap()
}

// Multi-threaded: the in-test collector must keep answering while the test waits on processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_is_one_trace_across_two_processes_and_both_exit_cleanly() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = format!("http://{}", listener.local_addr().unwrap());
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(collector.clone()))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);

    let data = tempfile::tempdir().unwrap();
    let tracing_env = |name: &str| {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.clone()),
            ("OTEL_SERVICE_NAME", name.to_string()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200".to_string()),
        ]
    };
    let notificacoes = serve("notificacoes", data.path(), &tracing_env("notificacoes"));
    let mut env = tracing_env("cursos");
    env.push(("NOTIFICACOES_ADDR", notificacoes.addr.clone()));
    env.push(("MIDIA_ADDR", format!("http://127.0.0.1:{}", closed_port())));
    env.push((
        "CHATBOT_ADDR",
        format!("http://127.0.0.1:{}", closed_port()),
    ));
    let cursos = serve("cursos", data.path(), &env);

    let sent = send_notification(channel(&cursos.addr), "31", "rastreada").await;
    assert!(!sent.pendente, "{sent:?}");

    // Shutdown flushes the spans; both exit 0.
    let (c, n) = tokio::task::spawn_blocking(move || (terminate(cursos), terminate(notificacoes)))
        .await
        .unwrap();
    assert!(c.success(), "cursos exits 0 on SIGTERM");
    assert!(n.success(), "notificacoes exits 0 on SIGTERM");

    let spans = collector.0.lock().unwrap().clone();
    let server_cursos = spans
        .iter()
        .find(|s| s.service == "cursos" && s.name == "services.CursosService/SendNotification")
        .unwrap_or_else(|| panic!("no cursos server span in {spans:#?}"));
    let server_notif = spans
        .iter()
        .find(|s| {
            s.service == "notificacoes" && s.name == "services.NotificacoesService/SendNotification"
        })
        .unwrap_or_else(|| panic!("no notificacoes server span in {spans:#?}"));
    assert_eq!(
        server_cursos.trace_id, server_notif.trace_id,
        "one trace: {spans:#?}"
    );
    // notificacoes' server span is the child of a client span in cursos, itself inside the trace.
    let parent = spans
        .iter()
        .find(|s| s.span_id == server_notif.parent)
        .expect("the parent span was exported");
    assert_eq!(parent.service, "cursos");
    assert_eq!(parent.trace_id, server_cursos.trace_id);
}

#[tokio::test]
async fn status_exits_non_zero_unless_every_service_serves() {
    let closed = closed_port();
    let mut down = Command::new(AULA);
    down.arg("status").arg("--timeout").arg("1s");
    down.arg("--gateway")
        .arg(format!("http://127.0.0.1:{closed}"));
    for s in aula_runtime::spec::ALL {
        down.env(
            format!("{}_ADDR", s.env_prefix()),
            format!("http://127.0.0.1:{closed}"),
        );
    }
    let out = down.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.contains("DOWN")).count(),
        7,
        "the six and the gateway: {text}"
    );

    let p = spawn_platform().await;
    let metrics_off = common::pairs(&[("AULA_METRICS_LISTEN", "off")]);
    let gateway = p.start_gateway(&metrics_off, None).await;
    let mut up = tokio::process::Command::new(AULA);
    up.arg("status")
        .arg("--gateway")
        .arg(format!("http://{}", gateway.addr()));
    for s in p.all() {
        let (k, v) = s.addr_var();
        up.env(k, v);
    }
    let out = up.output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains("SERVING")).count(),
        7,
        "{text}"
    );
    gateway.stop().await.unwrap();
}

/// `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf` with only the per-signal endpoint set: the spans
/// arrive as OTLP/HTTP POSTs on exactly that URL (a plain HTTP/1.1 receiver in the test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_export_over_otlp_http_protobuf_to_the_per_signal_endpoint() {
    use prost::Message as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/custom/traces", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::<(String, Vec<String>)>::new()));
    let sink = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Vec<u8> = buf.drain(..end + 4 + len).skip(end + 4).collect();
                    let path = head
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or_default()
                        .to_string();
                    let req =
                        ExportTraceServiceRequest::decode(body.as_slice()).unwrap_or_default();
                    let names = req
                        .resource_spans
                        .iter()
                        .flat_map(|rs| &rs.scope_spans)
                        .flat_map(|ss| &ss.spans)
                        .map(|s| s.name.clone())
                        .collect();
                    sink.lock().unwrap().push((path, names));
                    let ok = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    if sock.write_all(ok.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });

    let data = tempfile::tempdir().unwrap();
    let midia = serve(
        "midia",
        data.path(),
        &[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200".into()),
        ],
    );
    let status = get_media_then_terminate(midia).await;
    assert!(status.success());
    let got = received.lock().unwrap().clone();
    assert!(
        got.iter().any(|(path, names)| path == "/custom/traces"
            && names
                .iter()
                .any(|n| n == "services.MidiaConteudoService/GetMedia")),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_inside_a_request_carry_its_trace_without_an_exporter() {
    let data = tempfile::tempdir().unwrap();
    let midia = serve(
        "midia",
        data.path(),
        &[("RUST_LOG", "info,sqlx=debug".to_string())],
    );
    let lines = midia.lines.clone();
    let status = get_media_then_terminate(midia).await;
    assert!(status.success());
    let lines = lines.lock().unwrap().clone();
    let in_request: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["spans"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["name"] == "grpc.server"))
        })
        .collect();
    assert!(
        !in_request.is_empty(),
        "no log line inside a request: {lines:#?}"
    );
    for v in &in_request {
        let server = v["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "grpc.server")
            .unwrap();
        let trace_id = server["trace_id"].as_str().unwrap_or_default();
        assert_eq!(trace_id.len(), 32, "{v}");
        assert_eq!(
            server["span_id"].as_str().unwrap_or_default().len(),
            16,
            "{v}"
        );
    }
}
