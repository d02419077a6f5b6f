//! The servers `aula` runs, each its crate's `service()`: one `ServiceDef` per gRPC service of
//! the catalogue, and the gateway's `HttpDef`; the runtime starts either ([`Hosted`]).

use aula_runtime::{host::Hosted, spec, Env, ServiceDef};

macro_rules! definitions {
    ($($name:ident),*) => {
        /// Every gRPC service's definition, in catalogue order.
        pub fn grpc() -> [ServiceDef; spec::ALL.len()] {
            [$($name::service()),*]
        }
    };
}
aula_runtime::with_services!(definitions);

/// Every server of the catalogue, in its order: the gRPC services, then the gateway.
pub fn all() -> Vec<Hosted> {
    grpc()
        .into_iter()
        .map(Hosted::from)
        .chain([Hosted::from(gateway::service())])
        .collect()
}

/// Every name `aula up` and `aula serve` accept: the catalogue's.
pub const NAMES: [&str; spec::NAMES.len()] = spec::NAMES;

pub fn by_name(name: &str) -> Option<Hosted> {
    all().into_iter().find(|h| h.name() == name)
}

/// clap's parser of a service name: an unknown one is a usage error (exit 2) listing the
/// names, with "a similar value exists" when one is close (`curso` -> `cursos`).
pub fn name_parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(NAMES)
}

/// `port + offset`, or an error naming `--port-offset` (AULA_PORT_OFFSET).
pub fn offset_port(port: u16, offset: u16) -> anyhow::Result<u16> {
    port.checked_add(offset).ok_or_else(|| {
        anyhow::anyhow!(
            "--port-offset {offset} (AULA_PORT_OFFSET) moves port {port} past 65535: use a smaller offset"
        )
    })
}

/// Points every `<NAME>_ADDR` the user did not set at `host` and the service's port moved by
/// `offset`, so peers, `aula status` and `aula load` follow a stack started with
/// `aula up --port-offset`.
pub fn apply_port_offset(env: &mut Env, host: &str, offset: u16) -> anyhow::Result<()> {
    if offset == 0 {
        return Ok(());
    }
    for s in spec::ALL {
        let var = format!("{}_ADDR", s.env_prefix());
        if env.get(&var).is_none() {
            // No scheme: peer_addr picks https:// when TLS is on.
            env.set(var, format!("{host}:{}", offset_port(s.port, offset)?));
        }
    }
    Ok(())
}

/// What a client of the stack (`aula status`, `aula load`) connects with: the process's
/// settings with the ports moved by `port_offset`, and the certificate it presents when
/// AULA_TLS_* is set (mutual TLS). `None` when they are wrong, after saying why on one line
/// as `aula <command>: ...`: the caller exits 2.
pub fn client_settings(
    command: &str,
    port_offset: u16,
) -> Option<(Env, Option<aula_runtime::tls::Tls>)> {
    let mut env = Env::from_process();
    let tls = apply_port_offset(&mut env, "127.0.0.1", port_offset)
        .and_then(|()| aula_runtime::tls::Tls::from_env(&env));
    match tls {
        Ok(tls) => Some((env, tls)),
        Err(e) => {
            eprintln!("aula {command}: {e:#}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalogue says which services own tables; their crates say it by declaring
    /// migrations. The two must agree (the chart and compose give storage by the catalogue).
    #[test]
    fn definitions_follow_the_catalogue() {
        let defs = grpc();
        for (def, spec) in defs.iter().zip(spec::ALL) {
            assert_eq!(
                def.spec, spec,
                "{}: its ServiceDef uses another spec",
                spec.name
            );
            assert_eq!(
                def.migrations.is_some(),
                spec.stateful,
                "{}: services/catalogue.toml says stateful = {}, but its ServiceDef {} migrations",
                spec.name,
                spec.stateful,
                if def.migrations.is_some() {
                    "declares"
                } else {
                    "declares no"
                }
            );
        }
        let names: Vec<_> = all().iter().map(Hosted::name).collect();
        assert_eq!(names, NAMES, "aula runs every server of the catalogue");
    }
}
