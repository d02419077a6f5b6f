//! Generates `aula_runtime::spec` from `services/catalogue.toml`, the one list of services.
//!
//! Everything a mistake in the catalogue could break is checked here, so it fails the build with
//! a message naming the entry: unknown fields, duplicate names or ports, a `grpc` service that
//! proto/services.proto does not define, a caller that is not a service, an RPC the callee does
//! not have. Each gRPC service's name comes from tonic's generated `SERVICE_NAME` constant.
use heck::ToUpperCamelCase;
use serde::Deserialize;
use std::{collections::BTreeMap, env, fmt::Write as _, fs, path::PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalogue {
    service: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    grpc: Option<String>,
    #[serde(default)]
    http: bool,
    port: u16,
    metrics_port: u16,
    stateful: bool,
    summary: String,
    #[serde(default)]
    callers: BTreeMap<String, Vec<String>>,
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let path = manifest.join("../catalogue.toml");
    let proto = manifest.join("../../proto/services.proto");
    println!("cargo:rerun-if-changed={}", path.display());
    println!("cargo:rerun-if-changed={}", proto.display());

    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let catalogue: Catalogue =
        toml::from_str(&text).unwrap_or_else(|e| panic!("services/catalogue.toml: {e}"));
    let proto = fs::read_to_string(&proto).unwrap_or_else(|e| panic!("{}: {e}", proto.display()));
    let rpcs = proto_services(&proto);
    if let Err(e) = check(&catalogue, &rpcs) {
        panic!("services/catalogue.toml: {e}");
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("catalogue.rs");
    fs::write(out, generate(&catalogue)).unwrap();
}

/// `service Name { rpc A(...) ...; rpc B(...) ... }` of package `services`: full name -> RPCs.
fn proto_services(proto: &str) -> BTreeMap<String, Vec<String>> {
    let mut services = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in proto.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["service", name, ..] => {
                let name = name.trim_end_matches('{');
                current = Some(format!("services.{name}"));
                services.insert(format!("services.{name}"), Vec::new());
            }
            ["rpc", rest, ..] if current.is_some() => {
                let rpc = rest.split('(').next().unwrap_or_default().to_string();
                services
                    .get_mut(current.as_ref().unwrap())
                    .unwrap()
                    .push(rpc);
            }
            ["}", ..] => current = None,
            _ => {}
        }
    }
    services
}

fn check(c: &Catalogue, rpcs: &BTreeMap<String, Vec<String>>) -> Result<(), String> {
    let names: Vec<&str> = c.service.iter().map(|s| s.name.as_str()).collect();
    for (i, s) in c.service.iter().enumerate() {
        let n = &s.name;
        if n.is_empty() || !n.chars().all(|ch| ch.is_ascii_lowercase()) {
            return Err(format!("{n:?}: a name is lowercase ASCII letters only (it is also a crate, a DNS name and a variable prefix)"));
        }
        for other in &c.service[..i] {
            let clash = [
                (other.name == s.name, "name"),
                (other.port == s.port || other.metrics_port == s.port, "port"),
                (
                    other.metrics_port == s.metrics_port || other.port == s.metrics_port,
                    "metrics_port",
                ),
            ];
            if let Some((_, what)) = clash.iter().find(|(c, _)| *c) {
                return Err(format!("{n}: its {what} is already used by {}", other.name));
            }
        }
        if s.port == s.metrics_port {
            return Err(format!("{n}: port and metrics_port are the same"));
        }
        match (&s.grpc, s.http) {
            (Some(_), true) | (None, false) => {
                return Err(format!(
                    "{n}: set either grpc = \"services.<Service>\" or http = true"
                ))
            }
            (Some(g), false) if !rpcs.contains_key(g) => {
                return Err(format!(
                    "{n}: grpc = {g:?} is not a service of proto/services.proto (it has {})",
                    rpcs.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            }
            _ => {}
        }
        if s.http && s.stateful {
            return Err(format!("{n}: an HTTP entry has no storage of its own"));
        }
        if s.http && !s.callers.is_empty() {
            return Err(format!(
                "{n}: HTTP entries are public: list no callers (callers restrict gRPC RPCs)"
            ));
        }
        for (caller, called) in &s.callers {
            if !names.contains(&caller.as_str()) || caller == n {
                return Err(format!(
                    "{n}: caller {caller:?} is not another service of the catalogue"
                ));
            }
            let have = s.grpc.as_ref().and_then(|g| rpcs.get(g)).unwrap();
            if called.is_empty() {
                return Err(format!("{n}: caller {caller} lists no RPC"));
            }
            for rpc in called {
                if !have.contains(rpc) {
                    return Err(format!(
                        "{n}: caller {caller} lists {rpc:?}, which {} does not have ({})",
                        s.grpc.as_ref().unwrap(),
                        have.join(", ")
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The module tonic generates a server in: prost's type name (heck's upper camel case, so
/// `CPARService` is `CparService`) in tonic-build's snake case, plus `_server`.
fn server_module(grpc: &str) -> String {
    let short = grpc.rsplit('.').next().unwrap().to_upper_camel_case();
    let mut module = String::new();
    let mut chars = short.chars().peekable();
    while let Some(ch) = chars.next() {
        module.push(ch.to_ascii_lowercase());
        if chars.peek().is_some_and(|next| next.is_uppercase()) {
            module.push('_');
        }
    }
    module + "_server"
}

fn generate(c: &Catalogue) -> String {
    let mut out = String::from("// Generated by build.rs from services/catalogue.toml.\n\n");
    let (grpc, http): (Vec<&Entry>, Vec<&Entry>) = c.service.iter().partition(|s| !s.http);
    for s in &grpc {
        let callers: String = s
            .callers
            .iter()
            .map(|(name, rpcs)| format!("Caller {{ name: {name:?}, rpcs: &{rpcs:?} }}, "))
            .collect();
        writeln!(
            out,
            "#[doc = {doc:?}]\npub const {upper}: ServiceSpec = ServiceSpec {{ name: {name:?}, \
             grpc_service: aula_api::{module}::SERVICE_NAME, port: {port}, metrics_port: {mport}, \
             stateful: {stateful}, summary: {summary:?}, callers: &[{callers}] }};",
            doc = format!("{}: {}.", s.name, s.summary),
            upper = s.name.to_uppercase(),
            name = s.name,
            module = server_module(s.grpc.as_ref().unwrap()),
            port = s.port,
            mport = s.metrics_port,
            stateful = s.stateful,
            summary = s.summary,
        )
        .unwrap();
    }
    for s in &http {
        writeln!(
            out,
            "#[doc = {doc:?}]\npub const {upper}: HttpSpec = HttpSpec {{ name: {name:?}, \
             port: {port}, metrics_port: {mport}, summary: {summary:?} }};",
            doc = format!("{}: {}.", s.name, s.summary),
            upper = s.name.to_uppercase(),
            name = s.name,
            port = s.port,
            mport = s.metrics_port,
            summary = s.summary,
        )
        .unwrap();
    }
    let list = |v: &[&Entry]| {
        v.iter()
            .map(|s| s.name.to_uppercase())
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(
        out,
        "\n/// Every gRPC service, in the catalogue's (port) order.\npub const ALL: [ServiceSpec; {}] = [{}];",
        grpc.len(),
        list(&grpc)
    )
    .unwrap();
    writeln!(
        out,
        "\n/// The HTTP entries (the REST gateway).\npub const HTTP: [HttpSpec; {}] = [{}];",
        http.len(),
        list(&http)
    )
    .unwrap();
    writeln!(
        out,
        "\n/// Every name of the catalogue, in its order (gRPC services and HTTP entries).\npub const NAMES: [&str; {}] = {:?};",
        c.service.len(),
        c.service.iter().map(|s| s.name.as_str()).collect::<Vec<_>>()
    )
    .unwrap();
    writeln!(
        out,
        "\n/// Calls `$m!(cursos, chatbot, ...)` with every gRPC service's name as an identifier (its\n\
         /// crate's name), for code that needs an item per service: `aula`'s list of definitions.\n\
         #[macro_export]\nmacro_rules! with_services {{ ($m:ident) => {{ $m! {{ {} }} }}; }}",
        grpc.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
    )
    .unwrap();
    out
}
