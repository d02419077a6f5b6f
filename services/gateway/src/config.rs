//! The gateway's own settings, from the environment (a parameter, so tests need no process
//! variables); what every hosted server reads (listen addresses, peers' deadline, the grace) is
//! the runtime's [`ServerSettings`]. Spellings are those of docs/CONFIG.md; a bad value names
//! its variable.

use aula_runtime::config::{ConfigError, Env, ServerSettings};
use std::time::Duration;

/// What only the gateway reads.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `GATEWAY_DRAIN_DELAY`: how long the gateway keeps accepting requests after `/readyz`
    /// turned 503, so load balancers (Kubernetes endpoints) stop sending before the listener
    /// closes. At most half the grace period; `0s` closes at once (`aula up`, tests).
    pub drain_delay: Duration,
    /// Body size, request rate, header timeout, connections (`limits.rs`).
    pub limits: crate::limits::HttpLimits,
}

impl GatewayConfig {
    pub fn load(server: &ServerSettings, env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            drain_delay: env
                .duration_or_zero("GATEWAY_DRAIN_DELAY", Duration::from_secs(2))?
                .min(server.shutdown_grace / 2),
            limits: crate::limits::HttpLimits::from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &Env) -> Result<(ServerSettings, GatewayConfig), ConfigError> {
        let server = crate::service().settings(env)?;
        let config = GatewayConfig::load(&server, env)?;
        Ok((server, config))
    }

    #[test]
    fn defaults_follow_config_md() {
        let (s, c) = load(&Env::default()).unwrap();
        assert_eq!(s.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(s.metrics_listen, Some("0.0.0.0:9080".parse().unwrap()));
        assert_eq!(s.peer_timeout, Duration::from_secs(5));
        assert_eq!(s.shutdown_grace, Duration::from_secs(10));
        assert_eq!(c.drain_delay, Duration::from_secs(2));
        let short = Env::from_pairs([("AULA_SHUTDOWN_GRACE", "1s"), ("GATEWAY_DRAIN_DELAY", "5s")]);
        assert_eq!(
            load(&short).unwrap().1.drain_delay,
            Duration::from_millis(500)
        );
    }

    #[test]
    fn overrides_and_errors_name_the_variable() {
        let env = Env::from_pairs([
            ("GATEWAY_LISTEN", "127.0.0.1:18080"),
            ("AULA_LISTEN", "127.0.0.1:1"),
            ("AULA_METRICS_LISTEN", "off"),
            ("AULA_PEER_TIMEOUT", "250ms"),
        ]);
        let (s, _) = load(&env).unwrap();
        assert_eq!(
            s.listen.port(),
            18080,
            "GATEWAY_LISTEN, not the services' AULA_LISTEN"
        );
        assert!(s.metrics_listen.is_none());
        assert_eq!(s.peer_timeout, Duration::from_millis(250));

        aula_runtime::testing::assert_each_refused(
            load,
            &[
                ("GATEWAY_LISTEN", "everywhere"),
                ("AULA_METRICS_LISTEN", "9080"),
                ("AULA_PEER_TIMEOUT", "soon"),
                ("AULA_PEER_TIMEOUT", "0s"),
                ("AULA_SHUTDOWN_GRACE", "10"),
                ("AULA_DNS_REFRESH", "1m"),
                ("GATEWAY_DRAIN_DELAY", "later"),
            ],
        );
    }
}
