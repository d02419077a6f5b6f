//! The services `aula` runs: one `ServiceDef` per gRPC service of the catalogue (its crate's
//! `service()`), and the gateway.

use aula_runtime::{spec, ServiceDef};

macro_rules! definitions {
    ($($name:ident),*) => {
        /// Every gRPC service's definition, in catalogue order.
        pub fn all() -> [ServiceDef; spec::ALL.len()] {
            [$($name::service()),*]
        }
    };
}
aula_runtime::with_services!(definitions);

/// Every name `aula up` and `aula serve` accept: the catalogue's.
pub const NAMES: [&str; spec::NAMES.len()] = spec::NAMES;

pub fn by_name(name: &str) -> Option<ServiceDef> {
    all().into_iter().find(|d| d.spec.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalogue says which services own tables; their crates say it by declaring
    /// migrations. The two must agree (the chart and compose give storage by the catalogue).
    #[test]
    fn definitions_follow_the_catalogue() {
        let defs = all();
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
        assert!(NAMES.contains(&spec::GATEWAY.name));
    }
}
