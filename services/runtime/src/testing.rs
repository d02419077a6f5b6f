//! Starting services in-process for tests: pre-bound ephemeral ports, a temporary data
//! directory, short timeouts. When `AULA_TEST_DATABASE_URL` is set the services run on that
//! PostgreSQL instead, each spawn in a schema of its own, so the same tests cover both backends.

use crate::{
    config::{Env, Settings},
    server::{self, Running, ServiceDef},
};
use std::path::Path;

/// A service running inside the test process.
pub struct TestService {
    pub running: Running,
    /// `http://127.0.0.1:<port>`
    pub url: String,
    /// `http://127.0.0.1:<port>/metrics`
    pub metrics_url: String,
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

    /// The environment variable pointing peers at this service (`MIDIA_ADDR=...`).
    pub fn addr_var(&self) -> (String, String) {
        (
            format!("{}_ADDR", self.running.spec.env_prefix()),
            self.url.clone(),
        )
    }
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
    let settings = Settings::load(def.spec, &env(&def, data_dir, extra))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let running = server::start_on(def, settings, listener, Some(metrics)).await?;
    let url = format!("http://{}", running.addr);
    let metrics_url = format!(
        "http://{}/metrics",
        running.metrics_addr.expect("bound above")
    );
    Ok(TestService {
        running,
        url,
        metrics_url,
    })
}
