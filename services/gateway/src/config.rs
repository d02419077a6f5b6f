//! The gateway's settings, from the environment (a parameter, so tests need no process
//! variables). Spellings are those of docs/CONFIG.md; a bad value names its variable.

use aula_runtime::config::{ConfigError, Env};
use std::{net::SocketAddr, time::Duration};

/// The gateway's HTTP port and its metrics port (services/catalogue.toml).
pub const PORT: u16 = aula_runtime::spec::GATEWAY.port;
pub const METRICS_PORT: u16 = aula_runtime::spec::GATEWAY.metrics_port;

/// Everything the gateway reads from its environment.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `GATEWAY_LISTEN`.
    pub listen: SocketAddr,
    /// `AULA_METRICS_LISTEN`; `None` when it is `off`.
    pub metrics_listen: Option<SocketAddr>,
    /// `AULA_PEER_TIMEOUT`: the deadline of every gRPC call the gateway makes.
    pub peer_timeout: Duration,
    /// `AULA_DNS_REFRESH`: how often the peers' names are re-resolved.
    pub dns_refresh: Duration,
    /// `AULA_SHUTDOWN_GRACE`: how long the whole drain may take, from the signal to the stop.
    pub shutdown_grace: Duration,
    /// `GATEWAY_DRAIN_DELAY`: how long the gateway keeps accepting requests after `/readyz`
    /// turned 503, so load balancers (Kubernetes endpoints) stop sending before the listener
    /// closes. At most half the grace period; `0s` closes at once (`aula up`, tests).
    pub drain_delay: Duration,
    /// Body size, request rate, header timeout, connections (`limits.rs`).
    pub limits: crate::limits::HttpLimits,
}

impl GatewayConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let any = |port: u16| SocketAddr::from(([0, 0, 0, 0], port));
        let metrics_listen = match env.get("AULA_METRICS_LISTEN") {
            Some("off") => None,
            _ => Some(env.addr("AULA_METRICS_LISTEN", any(METRICS_PORT))?),
        };
        let dns_refresh = env.duration("AULA_DNS_REFRESH", Duration::from_secs(10))?;
        if dns_refresh.is_zero() || dns_refresh > Duration::from_secs(30) {
            return Err(ConfigError {
                var: "AULA_DNS_REFRESH".into(),
                value: env.get("AULA_DNS_REFRESH").unwrap_or_default().into(),
                reason: "must be between 1ms and 30s".into(),
            });
        }
        let shutdown_grace = env.duration("AULA_SHUTDOWN_GRACE", Duration::from_secs(10))?;
        Ok(Self {
            listen: env.addr("GATEWAY_LISTEN", any(PORT))?,
            metrics_listen,
            peer_timeout: env.duration("AULA_PEER_TIMEOUT", Duration::from_secs(5))?,
            dns_refresh,
            shutdown_grace,
            drain_delay: env
                .duration_or_zero("GATEWAY_DRAIN_DELAY", Duration::from_secs(2))?
                .min(shutdown_grace / 2),
            limits: crate::limits::HttpLimits::from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_config_md() {
        let c = GatewayConfig::from_env(&Env::default()).unwrap();
        assert_eq!(c.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.metrics_listen, Some("0.0.0.0:9080".parse().unwrap()));
        assert_eq!(c.peer_timeout, Duration::from_secs(5));
        assert_eq!(c.shutdown_grace, Duration::from_secs(10));
        assert_eq!(c.drain_delay, Duration::from_secs(2));
        let short = Env::from_pairs([("AULA_SHUTDOWN_GRACE", "1s"), ("GATEWAY_DRAIN_DELAY", "5s")]);
        assert_eq!(
            GatewayConfig::from_env(&short).unwrap().drain_delay,
            Duration::from_millis(500)
        );
    }

    #[test]
    fn overrides_and_errors_name_the_variable() {
        let env = Env::from_pairs([
            ("GATEWAY_LISTEN", "127.0.0.1:18080"),
            ("AULA_METRICS_LISTEN", "off"),
            ("AULA_PEER_TIMEOUT", "250ms"),
        ]);
        let c = GatewayConfig::from_env(&env).unwrap();
        assert_eq!(c.listen.port(), 18080);
        assert!(c.metrics_listen.is_none());
        assert_eq!(c.peer_timeout, Duration::from_millis(250));

        for (var, value) in [
            ("GATEWAY_LISTEN", "everywhere"),
            ("AULA_METRICS_LISTEN", "9080"),
            ("AULA_PEER_TIMEOUT", "soon"),
            ("AULA_PEER_TIMEOUT", "0s"),
            ("AULA_SHUTDOWN_GRACE", "10"),
            ("AULA_DNS_REFRESH", "1m"),
            ("GATEWAY_DRAIN_DELAY", "later"),
        ] {
            let err = GatewayConfig::from_env(&Env::from_pairs([(var, value)])).unwrap_err();
            assert_eq!(err.var, var);
        }
    }
}
