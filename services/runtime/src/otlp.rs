//! Where and how spans are exported, from the standard `OTEL_*` variables as the OpenTelemetry
//! specification defines them, checked at start: a malformed endpoint, an unknown protocol or
//! sampler is a start error naming the variable, never a silent "no traces".
//!
//! - `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is) or `OTEL_EXPORTER_OTLP_ENDPOINT` (over
//!   HTTP, `/v1/traces` appended) switches export on; `OTEL_TRACES_EXPORTER=none` off.
//! - `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc` (our default,
//!   port 4317, what the bundled collector listens on) or `http/protobuf` (4318).
//! - `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` / `OTEL_EXPORTER_OTLP_TIMEOUT`: milliseconds, 10000.
//! - `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`: the six standard samplers.
//!
//! Headers (`OTEL_EXPORTER_OTLP_HEADERS`) and compression are read by the exporter itself.

use crate::config::{ConfigError, Env};
use opentelemetry_sdk::trace::Sampler;
use std::time::Duration;

/// The wire protocol of the exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

/// Where spans go.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// The URL the exporter sends to (for HTTP, the full `/v1/traces` URL).
    pub endpoint: String,
    pub protocol: Protocol,
    pub timeout: Duration,
}

fn bad(var: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// The first of `vars` that is set, with its name.
fn first<'a>(env: &'a Env, vars: &[&'static str]) -> Option<(&'static str, &'a str)> {
    vars.iter()
        .find_map(|&v| env.get(v).map(|value| (v, value.trim())))
}

/// The export settings, or `None` when no endpoint is configured (or export is off).
pub fn export(env: &Env) -> Result<Option<Export>, ConfigError> {
    match first(env, &["OTEL_TRACES_EXPORTER"]) {
        None | Some((_, "otlp")) => {}
        Some((_, "none")) => return Ok(None),
        Some((var, other)) => {
            return Err(bad(
                var,
                other,
                "expected otlp or none (the only exporters built in)",
            ))
        }
    }
    let protocol = match first(
        env,
        &[
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ],
    ) {
        None | Some((_, "grpc")) => Protocol::Grpc,
        Some((_, "http/protobuf")) => Protocol::HttpProtobuf,
        Some((var, other)) => {
            return Err(bad(
                var,
                other,
                "expected grpc or http/protobuf (http/json is not built in)",
            ))
        }
    };
    let endpoint = match (
        first(env, &["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]),
        first(env, &["OTEL_EXPORTER_OTLP_ENDPOINT"]),
    ) {
        (Some((var, url)), _) => checked_url(var, url)?,
        (None, Some((var, url))) => {
            let base = checked_url(var, url)?;
            match protocol {
                Protocol::Grpc => base,
                // The specification: the base endpoint gets the signal's path appended.
                Protocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
            }
        }
        (None, None) => return Ok(None),
    };
    let timeout = match first(
        env,
        &[
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ],
    ) {
        None => Duration::from_secs(10),
        Some((var, ms)) => match ms.parse::<u64>() {
            Ok(ms) if ms > 0 => Duration::from_millis(ms),
            _ => return Err(bad(var, ms, "expected a positive number of milliseconds")),
        },
    };
    Ok(Some(Export {
        endpoint,
        protocol,
        timeout,
    }))
}

/// An `http://` or `https://` URL with a host.
fn checked_url(var: &str, value: &str) -> Result<String, ConfigError> {
    let url = url::Url::parse(value).map_err(|e| {
        bad(
            var,
            value,
            format!("expected a URL such as http://otel-collector:4317 ({e})"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(var, value, "expected an http:// or https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad(var, value, "the URL has no host"));
    }
    Ok(value.to_string())
}

/// The sampler of `OTEL_TRACES_SAMPLER` (default `parentbased_always_on`).
pub fn sampler(env: &Env) -> Result<Sampler, ConfigError> {
    const VAR: &str = "OTEL_TRACES_SAMPLER";
    const ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
    let ratio = || -> Result<f64, ConfigError> {
        match env.get(ARG).map(str::trim) {
            None => Ok(1.0),
            Some(v) => match v.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                _ => Err(bad(ARG, v, "expected a ratio between 0 and 1")),
            },
        }
    };
    let name = env
        .get(VAR)
        .map(str::trim)
        .unwrap_or("parentbased_always_on");
    Ok(match name {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatioBased(ratio()?),
        "parentbased_always_on" => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        "parentbased_always_off" => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        "parentbased_traceidratio" => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio()?)))
        }
        other => {
            return Err(bad(
                VAR,
                other,
                "expected always_on, always_off, traceidratio, parentbased_always_on, \
                 parentbased_always_off or parentbased_traceidratio",
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn the_per_signal_endpoint_alone_enables_export_and_is_used_as_is() {
        let e = export(&env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://collector:4318/custom",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(e.endpoint, "http://collector:4318/custom");
        assert_eq!(e.protocol, Protocol::Grpc);
        assert!(export(&env(&[])).unwrap().is_none());
        let off = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ]);
        assert!(export(&off).unwrap().is_none());
    }

    #[test]
    fn http_protobuf_appends_the_signal_path_to_the_base_endpoint() {
        let e = export(&env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(e.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(e.protocol, Protocol::HttpProtobuf);
        assert_eq!(e.timeout, Duration::from_millis(2500));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://c:21"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "5s"),
            ("OTEL_TRACES_EXPORTER", "jaeger"),
        ] {
            let mut pairs = vec![(var, value)];
            if !var.ends_with("ENDPOINT") {
                pairs.push(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"));
            }
            let err = export(&env(&pairs)).unwrap_err();
            assert_eq!(err.var, var, "{var}={value}");
        }
        for (var, value) in [
            ("OTEL_TRACES_SAMPLER", "bogus"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ] {
            let e = env(&[("OTEL_TRACES_SAMPLER", "traceidratio"), (var, value)]);
            assert_eq!(sampler(&e).unwrap_err().var, var, "{var}={value}");
        }
        assert!(matches!(
            sampler(&env(&[])).unwrap(),
            Sampler::ParentBased(_)
        ));
    }
}
