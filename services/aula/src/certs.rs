//! `aula certs`: a development CA and a certificate for every service, the gateway and an
//! `operator`, so compose and a developer get mutual TLS in one command (issue #14).

use aula_runtime::{
    spec,
    tls::certs::{self, WriteOptions},
};
use clap::Args;
use std::{path::PathBuf, process::ExitCode, time::Duration};

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write ca.crt, ca.key and <name>.crt + <name>.key into
    #[arg(long)]
    pub out: PathBuf,
    /// SPIFFE trust domain of the URI SANs (spiffe://<trust-domain>/ns/<namespace>/sa/<name>)
    #[arg(long, default_value = certs::DEFAULT_TRUST_DOMAIN)]
    pub trust_domain: String,
    /// Kubernetes namespace in the SANs (<name>.<namespace>.svc)
    #[arg(long, default_value = certs::DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// Days the certificates are valid (the CA: ten times as long)
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
    /// Private keys readable by everyone (0644, not 0600), for a bind mount into containers
    /// that run as another user (docker-compose.mtls.yml). Development only.
    #[arg(long)]
    pub container_readable: bool,
}

/// The identities `aula certs` issues for: every service, the gateway, and `operator` (the
/// default admin identity, for grpcurl and `aula status`).
pub fn identities() -> Vec<&'static str> {
    spec::ALL
        .iter()
        .map(|s| s.name)
        .chain([spec::GATEWAY.name, "operator"])
        .collect()
}

fn valid_label(s: &str, dots: bool) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (dots && b == b'.')
        })
}

pub fn run(args: CertsArgs) -> ExitCode {
    if !valid_label(&args.trust_domain, true) {
        eprintln!(
            "aula certs: --trust-domain {:?}: lower-case letters, digits, '-' and '.' only",
            args.trust_domain
        );
        return ExitCode::from(2);
    }
    if !valid_label(&args.namespace, false) {
        eprintln!(
            "aula certs: --namespace {:?}: lower-case letters, digits and '-' only",
            args.namespace
        );
        return ExitCode::from(2);
    }
    let ids = identities();
    let options = WriteOptions {
        out: &args.out,
        trust_domain: &args.trust_domain,
        namespace: &args.namespace,
        identities: &ids,
        validity: Duration::from_secs(86_400 * u64::from(args.days)),
        key_mode: if args.container_readable {
            0o644
        } else {
            0o600
        },
    };
    match certs::write_dir(&options) {
        Ok(files) => {
            for f in files {
                println!("wrote {}", f.display());
            }
            let d = args.out.display();
            println!(
                "\nServe with mutual TLS (each service with its own certificate):\n  \
                 AULA_TLS_CERT={d}/cursos.crt AULA_TLS_KEY={d}/cursos.key AULA_TLS_CA={d}/ca.crt aula serve cursos\n\
                 Call it as the operator:\n  \
                 grpcurl -cacert {d}/ca.crt -cert {d}/operator.crt -key {d}/operator.key localhost:50051 list\n\
                 Running it again issues new certificates under the same CA (ca.key): a rotation."
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("aula certs: {e:#}");
            ExitCode::FAILURE
        }
    }
}
