//! Fault flags: failures switched on and off at run time from a file, for drills (watch the
//! right alert fire and the right panel move, then switch it off), without a restart and
//! without a flag service to run. docs/FLAGS.md lists the flags and what each one moves.
//!
//! - [`file`]: the file (flagd's flag-definition format), its checks, and the edits behind
//!   `aula flags`.
//! - [`layer`]: the server layer that injects the faults into calls.
//! - here: [`Flags`], one service's live view of the file, and [`watch`], which re-reads the
//!   file (every [`POLL`]) and applies a change, turning health NOT_SERVING for
//!   `fault.<service>.unavailable`.
//!
//! Off costs nothing measurable: without a file, or with every fault of the service off, the
//! layer does one atomic load per call and hands the call on.

pub mod file;
pub mod layer;

use file::{FaultName, Kind, Values};
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, RwLock,
    },
    time::Duration,
};
use tokio_util::sync::CancellationToken;
use tonic_health::{server::HealthReporter, ServingStatus};

pub use layer::FaultLayer;

/// How often the file is re-read: a change applies within a second (the issue asks for 2 s).
pub const POLL: Duration = Duration::from_millis(500);

/// The flag of the chatbot's Gemini outage.
pub const GEMINI_OUTAGE: &str = "fault.chatbot.gemini_outage";

/// One fault with the flag that asked for it (injected failures name it).
#[derive(Debug, Clone, PartialEq)]
pub struct Named<T> {
    pub value: T,
    pub flag: Arc<str>,
}

/// The faults of one method (or, as defaults, of the whole service).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MethodFaults {
    pub error_ratio: Option<Named<f64>>,
    pub error_code: Option<tonic::Code>,
    pub latency: Option<Named<Duration>>,
}

/// Everything switched on for one service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// `fault.<service>.unavailable`, with its flag name.
    pub unavailable: Option<Arc<str>>,
    pub service: MethodFaults,
    /// Per method, by name (`GetUserCourses`): its own flags over the service's.
    pub methods: HashMap<String, MethodFaults>,
    /// Every enabled flag of the file (any name), for boolean flags read elsewhere.
    pub values: Values,
}

impl Faults {
    /// The faults that apply to `service` from the values of a checked file.
    pub fn for_service(service: &str, values: &Values) -> Faults {
        let mut out = Faults {
            values: values.clone(),
            ..Faults::default()
        };
        let mut codes: Vec<(Option<String>, tonic::Code)> = Vec::new();
        for (name, value) in &values.0 {
            let Ok(FaultName {
                service: s,
                method,
                kind,
            }) = file::fault_name(name)
            else {
                continue;
            };
            if s != service {
                continue;
            }
            let flag: Arc<str> = name.as_str().into();
            let target = match &method {
                Some(m) => out.methods.entry(m.clone()).or_default(),
                None => &mut out.service,
            };
            match kind {
                Kind::ErrorRatio => {
                    let ratio = value.as_f64().unwrap_or(0.0);
                    target.error_ratio = (ratio > 0.0).then_some(Named { value: ratio, flag });
                }
                Kind::LatencyMs => {
                    let ms = value.as_f64().unwrap_or(0.0);
                    target.latency = (ms > 0.0).then(|| Named {
                        value: Duration::from_secs_f64(ms / 1000.0),
                        flag,
                    });
                }
                Kind::ErrorCode => {
                    if let Some(code) = value.as_str().and_then(file::code_from_name) {
                        codes.push((method, code));
                    }
                }
                Kind::Unavailable => {
                    if value.as_bool() == Some(true) {
                        out.unavailable = Some(flag);
                    }
                }
                Kind::GeminiOutage => {}
            }
        }
        for (method, code) in codes {
            match method {
                Some(m) => out.methods.entry(m).or_default().error_code = Some(code),
                None => out.service.error_code = Some(code),
            }
        }
        // A method's own flags override the service's, kind by kind.
        let defaults = out.service.clone();
        for m in out.methods.values_mut() {
            m.error_ratio = m.error_ratio.take().or(defaults.error_ratio.clone());
            m.latency = m.latency.take().or(defaults.latency.clone());
            m.error_code = m.error_code.or(defaults.error_code);
        }
        out
    }

    /// Whether any fault of this service is on (the layer's one check per call).
    pub fn any(&self) -> bool {
        self.unavailable.is_some()
            || self.service != MethodFaults::default()
            || self.methods.values().any(|m| *m != MethodFaults::default())
    }

    /// The faults of one method.
    pub fn method(&self, name: &str) -> &MethodFaults {
        self.methods.get(name).unwrap_or(&self.service)
    }
}

/// One service's live flags; cheap to clone, clones share the view.
#[derive(Clone)]
pub struct Flags {
    inner: Arc<Shared>,
}

struct Shared {
    service: &'static str,
    /// Whether any of the service's faults is on: the only thing a call reads when none is.
    active: AtomicBool,
    current: RwLock<Arc<Faults>>,
}

impl std::fmt::Debug for Flags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flags")
            .field("service", &self.inner.service)
            .field("faults", &self.current())
            .finish()
    }
}

impl Flags {
    /// No flags (what a service without `AULA_FLAGS_FILE` has).
    pub fn off(service: &'static str) -> Flags {
        Flags {
            inner: Arc::new(Shared {
                service,
                active: AtomicBool::new(false),
                current: RwLock::new(Arc::new(Faults::default())),
            }),
        }
    }

    /// Whether any fault of this service is on.
    pub fn active(&self) -> bool {
        self.inner.active.load(Ordering::Relaxed)
    }

    /// What is on now.
    pub fn current(&self) -> Arc<Faults> {
        self.inner
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the boolean flag `name` is enabled with the value `true` (false when the flag
    /// is absent, disabled or not a boolean, as OpenFeature's default of `false`).
    pub fn enabled(&self, name: &str) -> bool {
        self.current().values.0.get(name).and_then(|v| v.as_bool()) == Some(true)
    }

    fn apply(&self, values: &Values) -> Arc<Faults> {
        let faults = Arc::new(Faults::for_service(self.inner.service, values));
        let active = faults.any();
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner()) = faults.clone();
        self.inner.active.store(active, Ordering::Relaxed);
        faults
    }
}

/// Reads the flags file once (at start-up, so the first call already sees it). A file that is
/// missing or malformed leaves every flag off and says why; it never stops a service starting.
pub fn load(service: &'static str, path: Option<&Path>) -> Flags {
    let flags = Flags::off(service);
    if let Some(path) = path {
        match read(path) {
            Ok(Some((_, values))) => {
                let faults = flags.apply(&values);
                log_on(service, path, &faults);
            }
            Ok(None) => tracing::info!(
                path = %path.display(),
                "AULA_FLAGS_FILE does not exist (yet): every flag is off"
            ),
            Err(why) => tracing::error!(
                path = %path.display(),
                error = %why,
                "AULA_FLAGS_FILE is not a valid flags file: every flag is off until it is"
            ),
        }
    }
    flags
}

/// The file's text and checked values; `None` when it does not exist.
fn read(path: &Path) -> Result<Option<(String, Values)>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => file::parse(&text).map(|v| Some((text, v))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read it: {e}")),
    }
}

fn log_on(service: &str, path: &Path, faults: &Faults) {
    let mut on: Vec<String> = Vec::new();
    for (name, value) in &faults.values.0 {
        if file::fault_name(name).is_ok_and(|f| f.service == service) {
            on.push(format!("{name}={value}"));
        }
    }
    if on.is_empty() {
        tracing::info!(path = %path.display(), "fault flags: none on");
    } else {
        tracing::warn!(path = %path.display(), on = %on.join(", "), "fault flags ON: calls fail or slow down on purpose");
    }
}

/// Re-reads `path` every [`POLL`] until `drain`, applying each change to `flags` and turning
/// the service's health (its own name's status) NOT_SERVING while `fault.<service>.unavailable` is on. A file that
/// becomes malformed keeps the last good flags, logged once per change; a deleted file turns
/// every flag off.
pub async fn watch(
    flags: Flags,
    path: PathBuf,
    reporter: HealthReporter,
    grpc_service: &'static str,
    drain: CancellationToken,
) {
    let service = flags.inner.service;
    let mut last_text: Option<Option<String>> = None;
    let mut last_error: Option<String> = None;
    let mut unavailable = flags.current().unavailable.is_some();
    if unavailable {
        reporter
            .set_service_status(grpc_service, ServingStatus::NotServing)
            .await;
        reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
    }
    let mut ticks = crate::host::Ticks::every(POLL);
    while ticks.next(drain.cancelled()).await {
        let p = path.clone();
        let text = match tokio::task::spawn_blocking(move || match std::fs::read_to_string(&p) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read it: {e}")),
        })
        .await
        {
            Ok(Ok(t)) => t,
            Ok(Err(why)) => {
                if last_error.as_ref() != Some(&why) {
                    tracing::error!(path = %path.display(), error = %why, "AULA_FLAGS_FILE: keeping the last good flags");
                    last_error = Some(why);
                }
                continue;
            }
            Err(_) => continue,
        };
        if last_text.as_ref() == Some(&text) {
            continue;
        }
        last_text = Some(text.clone());
        let values = match text.as_deref().map(file::parse) {
            None => Values::default(),
            Some(Ok(v)) => v,
            Some(Err(why)) => {
                tracing::error!(path = %path.display(), error = %why, "AULA_FLAGS_FILE is malformed: keeping the last good flags");
                last_error = Some(why);
                continue;
            }
        };
        last_error = None;
        let faults = flags.apply(&values);
        log_on(service, &path, &faults);
        let now = faults.unavailable.is_some();
        // Draining owns the status from here on (NOT_SERVING until the end).
        if now != unavailable && !drain.is_cancelled() {
            unavailable = now;
            let status = if now {
                ServingStatus::NotServing
            } else {
                ServingStatus::Serving
            };
            // The service's own status only: readiness probes ask for it (the pod leaves the
            // Service), liveness asks for the server's ("", still SERVING: nothing restarts a
            // pod that is only rehearsing an outage).
            reporter.set_service_status(grpc_service, status).await;
        }
    }
}
