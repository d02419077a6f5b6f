//! Starting services in-process for tests: pre-bound ephemeral ports, a temporary data
//! directory, short timeouts. When `AULA_TEST_DATABASE_URL` is set the services run on that
//! PostgreSQL instead, each spawn in a schema of its own, so the same tests cover both backends.

use crate::{
    config::{Database, Env, Settings},
    server::{self, Running, ServiceDef},
};
use std::path::Path;

pub mod disk;
pub mod postgres;

/// A service running inside the test process.
pub struct TestService {
    pub running: Running,
    /// `http://127.0.0.1:<port>` (`https://` with mTLS on)
    pub url: String,
    /// `http://127.0.0.1:<port>/metrics`
    pub metrics_url: String,
    /// Where the service keeps its data, and its PostgreSQL schema.
    database: (Database, String),
}

impl TestService {
    /// A lazily connected channel to the service.
    pub fn channel(&self) -> tonic::transport::Channel {
        channel(&self.url)
    }

    /// The service's Prometheus page, as a scrape sees it.
    pub async fn metrics_text(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rest = self
            .metrics_url
            .strip_prefix("http://")
            .expect("an http URL");
        let (host, path) = rest.split_once('/').expect("a path");
        let mut s = tokio::net::TcpStream::connect(host)
            .await
            .expect("the metrics port answers");
        s.write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
            .await
            .expect("the request is sent");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("the page is read");
        out
    }

    /// Asserts the service's Prometheus page has each of `wanted` in it; returns the page.
    pub async fn assert_metrics(&self, wanted: &[&str]) -> String {
        let page = self.metrics_text().await;
        for w in wanted {
            assert!(page.contains(w), "{w} is not in {page}");
        }
        page
    }

    /// A connection of the test's own to the service's database (its SQLite file, or its
    /// schema on PostgreSQL), to set up what no RPC can (rows from before a limit existed).
    pub async fn sql(&self) -> sqlx::AnyConnection {
        use sqlx::{Connection as _, Executor as _};
        sqlx::any::install_default_drivers();
        match &self.database {
            (Database::Sqlite(path), _) => {
                sqlx::AnyConnection::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .expect("the service's SQLite file opens")
            }
            (Database::Postgres(url), schema) => {
                let mut c = sqlx::AnyConnection::connect(url)
                    .await
                    .expect("the test PostgreSQL answers");
                c.execute(format!("SET search_path TO {schema}").as_str())
                    .await
                    .expect("the service's schema exists");
                c
            }
        }
    }

    /// Asserts the service still answers: its health check says SERVING within 5 s (a probe's
    /// usual timeout).
    pub async fn assert_serving(&self) {
        use tonic_health::pb::{health_check_response::ServingStatus, health_client::HealthClient};
        let mut check = tonic::Request::new(tonic_health::pb::HealthCheckRequest {
            service: self.running.spec.grpc_service.to_string(),
        });
        check.set_timeout(std::time::Duration::from_secs(5));
        let status = HealthClient::new(self.channel())
            .check(check)
            .await
            .expect("the health check answers")
            .into_inner()
            .status;
        assert_eq!(
            status,
            ServingStatus::Serving as i32,
            "{} is not serving",
            self.running.spec.name
        );
    }

    /// Whether the service's health check answers SERVING now (NOT_SERVING, or no answer
    /// within 5 s, is `false`).
    pub async fn is_serving(&self) -> bool {
        use tonic_health::pb::{health_check_response::ServingStatus, health_client::HealthClient};
        let mut check = tonic::Request::new(tonic_health::pb::HealthCheckRequest {
            service: self.running.spec.grpc_service.to_string(),
        });
        check.set_timeout(std::time::Duration::from_secs(5));
        match HealthClient::new(self.channel()).check(check).await {
            Ok(r) => r.into_inner().status == ServingStatus::Serving as i32,
            Err(_) => false,
        }
    }

    /// Opens a health `Watch` stream on the service; returns a receiver of each status it
    /// sends (`true` for SERVING), closed when the stream ends.
    pub async fn watch_health(&self) -> tokio::sync::mpsc::UnboundedReceiver<bool> {
        use tonic_health::pb::{health_check_response::ServingStatus, health_client::HealthClient};
        let mut stream = HealthClient::new(self.channel())
            .watch(tonic_health::pb::HealthCheckRequest {
                service: self.running.spec.grpc_service.to_string(),
            })
            .await
            .expect("the health watch opens")
            .into_inner();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(r)) = stream.message().await {
                if tx.send(r.status == ServingStatus::Serving as i32).is_err() {
                    return;
                }
            }
        });
        rx
    }

    /// A raw TCP connection to the service's gRPC port.
    pub async fn tcp(&self) -> tokio::net::TcpStream {
        tokio::net::TcpStream::connect(self.running.addr)
            .await
            .expect("the service accepts connections")
    }

    /// The environment variable pointing peers at this service (`MIDIA_ADDR=...`).
    pub fn addr_var(&self) -> (String, String) {
        (
            format!("{}_ADDR", self.running.spec.env_prefix()),
            self.url.clone(),
        )
    }
}

/// An address where nothing listens (a port bound, then released): where a test points the
/// peers it does not start, so a service running on the machine's default ports is never
/// reached.
pub fn closed_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("an ephemeral port");
    format!("http://{}", l.local_addr().expect("a bound address"))
}

/// Whether the server closes `tcp` (EOF or a reset) within `within`, whatever it sends first:
/// for tests holding a server to its timeouts.
pub async fn closed_within(tcp: &mut tokio::net::TcpStream, within: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    let closed = async {
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
    };
    tokio::time::timeout(within, closed).await.is_ok()
}

pub fn channel(url: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(url.to_string())
        .expect("a valid URL")
        .connect_lazy()
}

/// The environment a test service starts with.
pub fn env(def: &ServiceDef, data_dir: &Path, extra: &[(String, String)]) -> Env {
    let mut env = Env::from_pairs([
        ("AULA_DATA_DIR", data_dir.display().to_string()),
        ("AULA_SHUTDOWN_GRACE", "3s".into()),
        ("AULA_PEER_TIMEOUT", "3s".into()),
        ("AULA_DNS_REFRESH", "1s".into()),
        // The tests read the demo rows, as a user of `aula up` does (a test sets 0 to do without).
        ("AULA_DEMO_DATA", "1".into()),
    ]);
    if let Ok(url) = std::env::var("AULA_TEST_DATABASE_URL") {
        if !url.is_empty() {
            env.set("DATABASE_URL", url);
            // Many services start in parallel tests: keep each pool small.
            env.set("AULA_DB_MAX_CONNECTIONS", "4");
            // A schema per spawn keeps parallel tests apart; restarting with the same data
            // directory reuses it (persistence tests).
            let marker = data_dir.join(format!("{}.schema", def.spec.name));
            let schema = std::fs::read_to_string(&marker).unwrap_or_else(|_| {
                let s = format!("t_{}_{:08x}", def.spec.name, rand::random::<u32>());
                let _ = std::fs::create_dir_all(data_dir);
                let _ = std::fs::write(&marker, &s);
                s
            });
            env.set("AULA_DB_SCHEMA", schema);
        }
    }
    for (k, v) in extra {
        env.set(k.clone(), v.clone());
    }
    env
}

/// Starts `def` on 127.0.0.1 ephemeral ports with its data under `data_dir`.
pub async fn spawn(
    def: ServiceDef,
    data_dir: &Path,
    extra: &[(String, String)],
) -> anyhow::Result<TestService> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    spawn_on(def, data_dir, extra, listener).await
}

/// `def` alone for one test: started with `settings` in a temporary directory of its own
/// (removed when the returned directory is dropped), with a client made by `new` (the
/// generated client's constructor, e.g. `FooServiceClient::new`).
pub async fn start_alone<C>(
    def: ServiceDef,
    settings: &[(&str, &str)],
    new: impl FnOnce(tonic::transport::Channel) -> C,
) -> (tempfile::TempDir, TestService, C) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (svc, client) = start_in(def, dir.path(), settings, new).await;
    (dir, svc, client)
}

/// [`start_alone`] in `dir` (the directory of an earlier start, to restart on its data).
pub async fn start_in<C>(
    def: ServiceDef,
    dir: &Path,
    settings: &[(&str, &str)],
    new: impl FnOnce(tonic::transport::Channel) -> C,
) -> (TestService, C) {
    let name = def.spec.name;
    let svc = spawn(def, dir, &vars(settings))
        .await
        .unwrap_or_else(|e| panic!("{name} starts: {e:#}"));
    let client = new(svc.channel());
    (svc, client)
}

/// [`start_alone`] without a client.
pub async fn spawn_alone(
    def: ServiceDef,
    settings: &[(&str, &str)],
) -> (tempfile::TempDir, TestService) {
    let (dir, svc, ()) = start_alone(def, settings, |_| ()).await;
    (dir, svc)
}

/// [`spawn`] on a listener the test bound (a port a peer was already pointed at).
pub async fn spawn_on(
    def: ServiceDef,
    data_dir: &Path,
    extra: &[(String, String)],
    listener: tokio::net::TcpListener,
) -> anyhow::Result<TestService> {
    let settings = Settings::load(def.spec, &env(&def, data_dir, extra))?;
    let database = (settings.database.clone(), settings.db_schema.clone());
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let running = server::start_on(def, settings, listener, Some(metrics)).await?;
    let url = format!("{scheme}://{}", running.addr);
    let metrics_url = format!(
        "http://{}/metrics",
        running.metrics_addr.expect("bound above")
    );
    Ok(TestService {
        running,
        url,
        metrics_url,
        database,
    })
}

/// How SQLite plans a service's queries: its migrations applied to a fresh file in `dir`,
/// no server. Tests hold every per-call query to plans that do not grow with the data.
pub struct SqlitePlans {
    db: crate::db::Db,
    /// The file's directory, removed when the plans are dropped.
    _dir: tempfile::TempDir,
}

impl SqlitePlans {
    pub async fn new(def: &ServiceDef) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let env = Env::from_pairs([("AULA_DATA_DIR", dir.path().display().to_string())]);
        let settings = Settings::load(def.spec, &env).expect("the default settings load");
        let migrations = def.migrations.expect("a service with storage");
        let metrics = crate::metrics::Metrics::new();
        let db = crate::db::Db::connect(&settings, migrations, &metrics)
            .await
            .expect("the SQLite file opens and migrates");
        Self { db, _dir: dir }
    }

    /// The detail lines of `EXPLAIN QUERY PLAN sql`.
    pub fn plan(&self, sql: &str) -> Vec<String> {
        let reads = self.db.sqlite_reads().expect("SQLite");
        reads
            .run(|c| crate::reads::query_plan(c, sql))
            .expect("the query is planned")
    }

    /// [`Self::assert_indexed`] for the calls of `def`, whose GetStatus `counts` query reads
    /// only the one-row table of counts its writes keep (`contagens`), never what it counts.
    pub async fn assert_service<S: AsRef<str>>(
        def: &ServiceDef,
        calls: &[(&str, S)],
        counts: &str,
    ) {
        let plans = Self::new(def).await;
        plans.assert_indexed(calls);
        let steps = plans.plan(counts);
        assert_eq!(
            crate::reads::full_scans(&steps),
            ["SCAN contagens"],
            "the counts read their own table of one row, never what they count: {steps:?}"
        );
    }

    /// Asserts that each call's query finds its rows through an index (no full scan) and
    /// sorts nothing per call (no temporary B-tree).
    pub fn assert_indexed<S: AsRef<str>>(&self, calls: &[(&str, S)]) {
        for (call, sql) in calls {
            let steps = self.plan(sql.as_ref());
            let scans = crate::reads::full_scans(&steps);
            assert!(scans.is_empty(), "{call} scans: {steps:?}");
            assert!(
                !steps.iter().any(|s| s.contains("TEMP B-TREE")),
                "{call} sorts per call: {steps:?}"
            );
        }
    }
}

/// How long a test waits for what settles in the background (a delivery, a drain, a reload)
/// before it fails: far beyond what it takes, so a busy machine never fails a test.
pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(20);

/// Polls `check` every 50 ms until it returns `Some`, failing the test (naming `what`) after
/// `within`: a condition awaited, never a fixed sleep.
pub async fn eventually<T, F, Fut>(within: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Everything the process logs, spans included, at TRACE level: for tests proving a secret
/// never reaches a log line. [`capture_all_logs`] installs it as the global subscriber, so such
/// a test is its own test binary.
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }
}

/// Captures every log line and span (opened and closed) of the process from now on.
pub fn capture_all_logs() -> CapturedLogs {
    use tracing_subscriber::fmt::format::FmtSpan;
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the only subscriber of this test binary");
    logs
}

/// The longest status message a refusal of bad input may carry: it names the field and the
/// rule and quotes at most a short prefix of the input, however large the input was.
pub const SHORT_MESSAGE: usize = 200;

/// Asserts a refusal of bad input as every service gives it: INVALID_ARGUMENT, the message
/// starting with `field`, saying `says` (e.g. "at most 200 characters"), and short.
pub fn assert_invalid<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    field: &str,
    says: &str,
) {
    let status = result.expect_err("bad input is refused");
    assert_eq!(
        status.code(),
        tonic::Code::InvalidArgument,
        "{field}: {status:?}"
    );
    let message = status.message();
    assert!(
        message.starts_with(&format!("{field}: ")),
        "the message names {field}: {message}"
    );
    assert!(
        message.contains(says),
        "the message says {says:?}: {message}"
    );
    assert!(
        message.len() <= SHORT_MESSAGE,
        "the message is short ({} bytes): {}",
        message.len(),
        crate::fields::quote(message)
    );
}

/// A text of `chars` characters that take 4 bytes each in UTF-8: the most bytes a text within
/// a character limit can carry.
pub fn wide_text(chars: usize) -> String {
    "𝄞".repeat(chars)
}

/// `n` distinct words of letters, separated by spaces and no sentence punctuation: one long
/// sentence whose every word is a term of its own (what made the offline answerer quadratic).
/// Distinct in their first four letters, so no stemming folds two of them together.
pub fn distinct_words(n: usize) -> String {
    let mut out = String::with_capacity(n * 5);
    for i in 0..n {
        let mut k = i;
        for _ in 0..4 {
            out.push(char::from(b'a' + (k % 26) as u8));
            k /= 26;
        }
        out.push(if k > 0 { 'z' } else { 'q' });
        out.push(' ');
    }
    out
}

/// What a test takes from a unary call: the answer of a call that must succeed, or the refusal
/// of one that must fail; otherwise the test fails at the caller's line. One line instead of
/// `.await.unwrap().into_inner()` spelled out at every call.
pub trait Reply<T> {
    /// The message of a call that must succeed.
    fn answer(self) -> T;
    /// The status of a call that must fail.
    fn refusal(self) -> tonic::Status;
}

impl<T: std::fmt::Debug> Reply<T> for Result<tonic::Response<T>, tonic::Status> {
    #[track_caller]
    fn answer(self) -> T {
        self.expect("the call is answered").into_inner()
    }

    #[track_caller]
    fn refusal(self) -> tonic::Status {
        self.expect_err("the call is refused")
    }
}

/// Serves `routes` (a fake peer: a stand-in chatbot, a scripted notificacoes) on an ephemeral
/// port of 127.0.0.1 until the test's runtime ends; returns its URL.
pub async fn serve_fake(routes: tonic::service::Routes) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    url
}

/// What `load` gives with no variable set, which must be `T::default()`.
pub fn assert_defaults<T: std::fmt::Debug + Default + PartialEq>(
    load: impl Fn(&Env) -> Result<T, crate::config::ConfigError>,
) -> T {
    let loaded = load(&Env::default()).unwrap();
    assert_eq!(loaded, T::default());
    loaded
}

/// What `load` gives with `pairs` set, which it must accept.
pub fn loaded<T>(
    load: impl Fn(&Env) -> Result<T, crate::config::ConfigError>,
    pairs: &[(&str, &str)],
) -> T {
    let env = Env::from_pairs(pairs.iter().copied());
    load(&env).unwrap_or_else(|e| panic!("{pairs:?}: {e}"))
}

/// Each `(variable, value)`, set alone, makes `load` refuse the settings naming `variable`.
pub fn assert_each_refused<T: std::fmt::Debug>(
    load: impl Fn(&Env) -> Result<T, crate::config::ConfigError>,
    cases: &[(&str, &str)],
) {
    for (var, value) in cases {
        let err = load(&Env::from_pairs([(*var, *value)])).unwrap_err();
        assert_eq!(err.var, *var, "{var}={value}");
    }
}

/// Environment pairs for [`spawn`] from string slices: `vars(&[("AULA_MAX_IN_FLIGHT", "2")])`.
pub fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Whether this run puts the services on PostgreSQL (`AULA_TEST_DATABASE_URL` set).
pub fn on_postgres() -> bool {
    std::env::var("AULA_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty())
}

/// For a test of SQLite's own files: `true` (and a line saying why it is skipped) on the
/// PostgreSQL run, where the test has nothing to test.
pub fn sqlite_only(what: &str) -> bool {
    let skip = on_postgres();
    if skip {
        eprintln!("a SQLite test: {what} (the PostgreSQL run skips it)");
    }
    skip
}

/// Runs one statement of the test's own on a service's database (see [`TestService::sql`]):
/// rows written or removed behind the service's back.
pub async fn execute(sql: &mut sqlx::AnyConnection, statement: &str) {
    sqlx::query(statement)
        .execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// The end of a durability test: says how many acknowledged writes were found again, and fails
/// naming the first few `lost` ones (`what`: "acknowledged enrolments lost").
pub fn assert_none_lost<T: std::fmt::Debug>(acked: usize, lost: &[T], what: &str) {
    eprintln!(
        "acknowledged {acked}, present {}, lost {}",
        acked - lost.len(),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "{} {what}, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
}

/// The notifications of `user` in notificacoes (the first 100, newest first; only the unread
/// ones when `unread_only`): what notificacoes' tests and those of the services that notify
/// read back.
pub async fn notifications_of(
    inbox: &mut aula_api::notificacoes_service_client::NotificacoesServiceClient<
        tonic::transport::Channel,
    >,
    user: &str,
    unread_only: bool,
) -> Vec<aula_api::Notification> {
    let request = aula_api::ListNotificationsRequest {
        id_usuario: user.into(),
        unread_only,
        page_size: 100,
        page_token: String::new(),
    };
    let page = inbox.list_notifications(request).await;
    page.expect("ListNotifications").into_inner().notificacoes
}

/// A text one character over a limit of `limit` characters, and what a refusal of it says.
pub fn over_limit(limit: usize) -> (String, String) {
    ("a".repeat(limit + 1), format!("at most {limit} characters"))
}

/// What a refusal of a malformed id says (`assert_invalid(r, "id_curso", NOT_AN_ID)`).
pub const NOT_AN_ID: &str = "must be a positive integer";

/// Asserts a call was refused with `code` and a message starting with `starts`; returns the
/// status for what else the test checks.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(
    r: Result<T, tonic::Status>,
    code: tonic::Code,
    starts: &str,
) -> tonic::Status {
    let e = r.expect_err("the request is refused");
    assert_eq!(e.code(), code, "{e:?}");
    assert!(e.message().starts_with(starts), "{starts}: {e:?}");
    e
}

/// The line of metric `name` (a sample with labels: `name{...} value`) that has each of
/// `labels` (`r#"outcome="ok""#`) on a Prometheus page; fails the test when there is none.
#[track_caller]
pub fn metric_line<'a>(page: &'a str, name: &str, labels: &[&str]) -> &'a str {
    let start = format!("{name}{{");
    page.lines()
        .find(|l| l.starts_with(&start) && labels.iter().all(|w| l.contains(w)))
        .unwrap_or_else(|| panic!("no {name} with {labels:?} in\n{page}"))
}

/// How a limits test sets one text field of a request: `|r, text| r.titulo = text`.
pub type SetText<R> = fn(&mut R, String);

/// The cases of a limits test for text fields: for each `(field, limit, set)`, `base` with the
/// field set one character over its limit, the field's name, and what the refusal says.
pub fn over_limit_cases<R: Clone>(
    base: R,
    fields: &[(&'static str, usize, SetText<R>)],
) -> Vec<(R, &'static str, String)> {
    fields
        .iter()
        .map(|&(field, limit, set)| {
            let (text, says) = over_limit(limit);
            let mut request = base.clone();
            set(&mut request, text);
            (request, field, says)
        })
        .collect()
}

/// Asserts what a GetStatus answer says of itself: the service's name, a version, and each of
/// `counts` (`("cursos", 5)`).
#[track_caller]
pub fn assert_status(status: &aula_api::StatusResponse, servico: &str, counts: &[(&str, i64)]) {
    assert_eq!(status.servico, servico);
    assert!(!status.versao.is_empty(), "{status:?}");
    for (name, count) in counts {
        assert_eq!(status.contagens[*name], *count, "{name}");
    }
}
