//! Configuration from the environment (12-factor). The environment is a parameter, so tests
//! configure a service without touching the process's variables. Every setting has one spelling,
//! listed in docs/CONFIG.md; a bad value fails start-up with a message naming the variable.

use crate::spec::ServiceSpec;
use std::{collections::HashMap, net::SocketAddr, path::PathBuf, time::Duration};

/// A snapshot of environment variables.
#[derive(Debug, Clone, Default)]
pub struct Env(HashMap<String, String>);

/// A setting that could not be understood, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason} (got {value:?})")]
pub struct ConfigError {
    pub var: String,
    pub value: String,
    pub reason: String,
}

impl Env {
    /// The process's environment.
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    /// A variable's value; empty counts as unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn parse<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|e: T::Err| bad(key, v, e.to_string())),
        }
    }

    /// A count of at least one (connections, calls in flight, streams): zero would refuse
    /// everything, so it is surely a mistake, named at start-up.
    pub fn count<T>(&self, key: &str, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + From<u8> + PartialEq,
        T::Err: std::fmt::Display,
    {
        let n = self.parse(key, default)?;
        if n == T::from(0) {
            return Err(bad(key, "0", "must be at least 1"));
        }
        Ok(n)
    }

    /// A positive duration (`500ms`, `10s`, `5m`, `1h`): zero is refused, because every
    /// duration here is a deadline, a period or a grace, and zero of those means "fail always".
    pub fn duration(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        let d = self.duration_or_zero(key, default)?;
        if d.is_zero() {
            return Err(bad(key, self.get(key).unwrap_or(""), "must be more than 0"));
        }
        Ok(d)
    }

    /// A duration where zero means "none" (`GATEWAY_DRAIN_DELAY=0s`: close at once).
    pub fn duration_or_zero(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_duration(v).ok_or_else(|| bad(key, v, DURATION_SPELLING)),
        }
    }

    pub fn addr(&self, key: &str, default: SocketAddr) -> Result<SocketAddr, ConfigError> {
        self.parse(key, default)
    }
}

fn bad(var: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// How every duration is written, for error messages.
pub const DURATION_SPELLING: &str = "expected a number and a unit: 500ms, 10s, 5m or 1h";

/// `500ms`, `10s`, `5m`, `1h`, `1.5s`: the one duration syntax of every variable and flag. The
/// unit is required, so `AULA_PEER_TIMEOUT=5` cannot be misread as milliseconds (or seconds).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

/// [`parse_duration`] for clap's `value_parser` (flags such as `--timeout 3s`).
pub fn duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s).ok_or_else(|| format!("{s:?}: {DURATION_SPELLING}"))
}

/// Where a service keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// An embedded SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL; the service keeps its tables in a schema named after it.
    Postgres(String),
}

/// What every server the runtime hosts reads alike, gRPC service or HTTP gateway: each of
/// these variables is parsed here only (the gateway once had copies that could drift).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// The variable naming the listen address: `AULA_LISTEN` for the gRPC services, the
    /// gateway's own `GATEWAY_LISTEN` (CONFIG.md: one spelling per setting, and the two
    /// listen on different protocols).
    pub listen_var: &'static str,
    pub listen: SocketAddr,
    /// `None` when metrics are switched off (`AULA_METRICS_LISTEN=off`).
    pub metrics_listen: Option<SocketAddr>,
    /// `AULA_PEER_TIMEOUT`: the deadline of a call to another service.
    pub peer_timeout: Duration,
    /// `AULA_DNS_REFRESH`: how often peers' names are resolved again.
    pub dns_refresh: Duration,
    /// `AULA_SHUTDOWN_GRACE`: how long the whole drain may take, from the signal to the stop.
    pub shutdown_grace: Duration,
}

impl ServerSettings {
    /// Reads them for a server listening by default on `port` and `metrics_port`.
    pub fn load(
        env: &Env,
        listen_var: &'static str,
        port: u16,
        metrics_port: u16,
    ) -> Result<Self, ConfigError> {
        let any = |port: u16| SocketAddr::from(([0, 0, 0, 0], port));
        let metrics_listen = match env.get("AULA_METRICS_LISTEN") {
            Some("off") => None,
            _ => Some(env.addr("AULA_METRICS_LISTEN", any(metrics_port))?),
        };
        let dns_refresh = env.duration("AULA_DNS_REFRESH", Duration::from_secs(10))?;
        if dns_refresh > Duration::from_secs(30) || dns_refresh.is_zero() {
            return Err(bad(
                "AULA_DNS_REFRESH",
                env.get("AULA_DNS_REFRESH").unwrap_or(""),
                "must be between 1ms and 30s",
            ));
        }
        Ok(Self {
            listen_var,
            listen: env.addr(listen_var, any(port))?,
            metrics_listen,
            peer_timeout: env.duration("AULA_PEER_TIMEOUT", Duration::from_secs(5))?,
            dns_refresh,
            shutdown_grace: env.duration("AULA_SHUTDOWN_GRACE", Duration::from_secs(10))?,
        })
    }
}

/// Everything the runtime needs to run one service.
#[derive(Debug, Clone)]
pub struct Settings {
    pub spec: ServiceSpec,
    /// Listen addresses, peers' deadline and discovery, the drain's grace.
    pub server: ServerSettings,
    pub database: Database,
    /// The PostgreSQL schema holding this service's tables (`AULA_DB_SCHEMA`, default its name).
    pub db_schema: String,
    pub db_max_connections: u32,
    pub db_acquire_timeout: Duration,
    /// Message sizes, HTTP/2 streams, keepalive, calls in flight, reflection (`limits.rs`).
    pub limits: crate::limits::Limits,
    /// Mutual TLS (`AULA_TLS_*`); `None` serves and calls in plaintext.
    pub tls: Option<crate::tls::TlsSettings>,
    /// The fault flags file (`AULA_FLAGS_FILE`, docs/FLAGS.md); `None`: no flags, no watcher.
    pub flags_file: Option<PathBuf>,
    /// End-user authentication (`AULA_AUTH=jwt`); `None` when off.
    pub auth: Option<crate::auth::AuthConfig>,
    /// `AULA_DEMO_DATA=1`: seed the service's demo rows at start-up ([`crate::demo`]).
    pub demo_data: bool,
    /// The full environment, for service-specific settings (`CPAR_REMINDER_LEAD`, `GEMINI_*`).
    pub env: Env,
}

impl Settings {
    pub fn load(spec: ServiceSpec, env: &Env) -> Result<Self, ConfigError> {
        let server = ServerSettings::load(env, "AULA_LISTEN", spec.port, spec.metrics_port)?;
        let own_var = format!("{}_DATABASE_URL", spec.env_prefix());
        let chosen = [own_var.as_str(), "DATABASE_URL"]
            .into_iter()
            .find_map(|var| env.get(var).map(|url| (var, url)));
        let database = match chosen {
            Some((_, url))
                if url.starts_with("postgres://") || url.starts_with("postgresql://") =>
            {
                Database::Postgres(url.to_string())
            }
            Some((var, url)) if url.starts_with("sqlite:") => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                if path.is_empty() {
                    return Err(bad(var, url, "a sqlite URL needs a file path"));
                }
                Database::Sqlite(PathBuf::from(path))
            }
            Some((var, url)) => {
                return Err(bad(
                    var,
                    "<redacted>",
                    format!(
                        "unsupported scheme {:?}: use postgres:// or sqlite:",
                        scheme(url)
                    ),
                ))
            }
            None => {
                let dir = PathBuf::from(env.get("AULA_DATA_DIR").unwrap_or("./data"));
                Database::Sqlite(dir.join(format!("{}.db", spec.name)))
            }
        };
        let db_max_connections = env.count("AULA_DB_MAX_CONNECTIONS", 10u32)?;
        Ok(Self {
            spec,
            server,
            database,
            db_schema: match env.get("AULA_DB_SCHEMA") {
                None => spec.name.to_string(),
                Some(s) if s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                    s.to_string()
                }
                Some(s) => return Err(bad("AULA_DB_SCHEMA", s, "letters, digits and _ only")),
            },
            db_max_connections,
            db_acquire_timeout: env.duration("AULA_DB_ACQUIRE_TIMEOUT", Duration::from_secs(5))?,
            limits: crate::limits::Limits::load(env)?,
            tls: crate::tls::TlsSettings::from_env(env)?,
            flags_file: env.get("AULA_FLAGS_FILE").map(PathBuf::from),
            auth: crate::auth::AuthConfig::load(env)?,
            demo_data: match env.get("AULA_DEMO_DATA") {
                None | Some("0") => false,
                Some("1") => true,
                Some(v) => return Err(bad("AULA_DEMO_DATA", v, "expected 1 or 0")),
            },
            env: env.clone(),
        })
    }

    /// A peer's address: `<NAME>_ADDR`, or 127.0.0.1 and its standard port.
    pub fn peer_addr(&self, peer: &ServiceSpec) -> String {
        peer_addr(&self.env, peer)
    }
}

/// A peer's address: `<NAME>_ADDR`, or 127.0.0.1 and its standard port; `https://` when TLS
/// is on (`AULA_TLS_CERT`) and the variable names no scheme.
pub fn peer_addr(env: &Env, peer: &ServiceSpec) -> String {
    let scheme = match env.get("AULA_TLS_CERT") {
        Some(_) => "https",
        None => "http",
    };
    match env.get(&format!("{}_ADDR", peer.env_prefix())) {
        Some(a) if a.contains("://") => a.to_string(),
        Some(a) => format!("{scheme}://{a}"),
        None => format!("{scheme}://127.0.0.1:{}", peer.port),
    }
}

/// Only the scheme of a URL, so credentials never reach an error message.
fn scheme(url: &str) -> &str {
    url.split("://").next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{CURSOS, MIDIA};

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), None, "the unit is required");
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("ten"), None);
        assert_eq!(parse_duration("10x"), None);
    }

    #[test]
    fn defaults_follow_the_spec() {
        let s = Settings::load(CURSOS, &Env::default()).unwrap();
        assert_eq!(s.server.listen.port(), 50051);
        assert_eq!(s.server.metrics_listen.unwrap().port(), 9051);
        assert_eq!(s.server.shutdown_grace, Duration::from_secs(10));
        assert_eq!(
            s.database,
            Database::Sqlite(PathBuf::from("./data/cursos.db"))
        );
        assert_eq!(s.peer_addr(&MIDIA), "http://127.0.0.1:50056");
    }

    #[test]
    fn overrides_and_errors_name_the_variable() {
        let env = Env::from_pairs([
            ("MIDIA_ADDR", "midia:50056"),
            ("DATABASE_URL", "postgres://u:secret@db/aula"),
            ("AULA_METRICS_LISTEN", "off"),
        ]);
        let s = Settings::load(CURSOS, &env).unwrap();
        assert_eq!(s.peer_addr(&MIDIA), "http://midia:50056");
        assert!(matches!(s.database, Database::Postgres(_)));
        assert!(s.server.metrics_listen.is_none());

        let own = Env::from_pairs([
            ("DATABASE_URL", "postgres://x/y"),
            ("CURSOS_DATABASE_URL", "sqlite:///tmp/c.db"),
        ]);
        assert_eq!(
            Settings::load(CURSOS, &own).unwrap().database,
            Database::Sqlite("/tmp/c.db".into())
        );

        for value in ["soon", "0s", "0ms", "5", "-1s"] {
            let err = Settings::load(CURSOS, &Env::from_pairs([("AULA_PEER_TIMEOUT", value)]))
                .unwrap_err();
            assert_eq!(err.var, "AULA_PEER_TIMEOUT", "{value}");
            assert!(err.to_string().starts_with("AULA_PEER_TIMEOUT: "), "{err}");
        }
        let err = Settings::load(
            CURSOS,
            &Env::from_pairs([("DATABASE_URL", "mysql://u:secret@h/d")]),
        )
        .unwrap_err();
        assert_eq!(err.var, "DATABASE_URL");
        assert!(!err.to_string().contains("secret"));
    }
}
