//! What a certificate says about its holder: the identity (SPIFFE URI SAN, else the first DNS
//! SAN's first label) and when it expires. Read from certificates rustls has already verified
//! (a peer's) or that we present (our own).

use crate::identity::ServiceIdentity;
use rustls::pki_types::CertificateDer;
use x509_cert::{
    der::Decode,
    ext::pkix::{name::GeneralName, SubjectAltName},
    Certificate,
};

/// The parts of an end-entity certificate Aula uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// URI SANs, in order.
    pub uris: Vec<String>,
    /// DNS SANs, in order.
    pub dns: Vec<String>,
    /// Expiry, in seconds since the Unix epoch.
    pub not_after: u64,
}

impl Leaf {
    pub fn parse(der: &CertificateDer<'_>) -> anyhow::Result<Self> {
        let cert = Certificate::from_der(der.as_ref())
            .map_err(|e| anyhow::anyhow!("not an X.509 certificate: {e}"))?;
        let tbs = &cert.tbs_certificate;
        let mut uris = Vec::new();
        let mut dns = Vec::new();
        if let Some((_, SubjectAltName(names))) = tbs
            .get::<SubjectAltName>()
            .map_err(|e| anyhow::anyhow!("a bad subjectAltName extension: {e}"))?
        {
            for name in names {
                match name {
                    GeneralName::UniformResourceIdentifier(u) => uris.push(u.to_string()),
                    GeneralName::DnsName(d) => dns.push(d.to_string()),
                    _ => {}
                }
            }
        }
        Ok(Self {
            uris,
            dns,
            not_after: tbs.validity.not_after.to_unix_duration().as_secs(),
        })
    }

    /// The identity this certificate proves, if it names one (in `trust_domain`, when given).
    pub fn identity(&self, trust_domain: Option<&str>) -> Option<ServiceIdentity> {
        identity_from_sans(&self.uris, &self.dns, trust_domain).map(ServiceIdentity::new)
    }

    /// The SPIFFE ID among the URI SANs, if any.
    pub fn spiffe_id(&self) -> Option<&str> {
        self.uris
            .iter()
            .find(|u| u.starts_with("spiffe://"))
            .map(String::as_str)
    }
}

/// `spiffe://<trust-domain>/ns/<namespace>/sa/<name>` gives `<name>` (Istio and Linkerd write
/// workload identities this way); otherwise the first DNS SAN's first label
/// (`cursos.aula.svc` gives `cursos`). A SPIFFE URI of another shape names nobody, and so does
/// one from another trust domain than `trust_domain` (`AULA_TLS_TRUST_DOMAIN`), when given:
/// a CA shared by several trust domains (a mesh's, federated) signs workloads that are not
/// ours, and their `cursos` is not our `cursos`. Neither falls back to a DNS SAN.
pub fn identity_from_sans(
    uris: &[String],
    dns: &[String],
    trust_domain: Option<&str>,
) -> Option<String> {
    for uri in uris {
        let Some(rest) = uri.strip_prefix("spiffe://") else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        return match parts.as_slice() {
            [td, "ns", ns, "sa", name]
                if !td.is_empty()
                    && !ns.is_empty()
                    && valid_name(name)
                    && trust_domain.is_none_or(|want| *td == want) =>
            {
                Some(name.to_string())
            }
            _ => None,
        };
    }
    let first = dns.first()?.split('.').next()?;
    valid_name(first).then(|| first.to_string())
}

/// A name as Kubernetes writes service accounts: lower-case letters, digits and `-`.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn id(uris: &[&str], dns: &[&str]) -> Option<String> {
        identity_from_sans(&s(uris), &s(dns), None)
    }

    #[test]
    fn spiffe_first_then_dns() {
        assert_eq!(
            id(&["spiffe://aula.local/ns/aula/sa/cursos"], &["gateway"]).as_deref(),
            Some("cursos")
        );
        assert_eq!(
            id(&[], &["cursos.aula.svc", "localhost"]).as_deref(),
            Some("cursos")
        );
        assert_eq!(
            id(&["https://example.com"], &["midia"]).as_deref(),
            Some("midia")
        );
        // A SPIFFE identity of another shape is not silently replaced by a DNS name.
        assert_eq!(id(&["spiffe://td/workload/x"], &["cursos"]), None);
        assert_eq!(id(&["spiffe://td/ns/a/sa/"], &[]), None);
        assert_eq!(id(&[], &[]), None);
        assert_eq!(id(&[], &["*.aula.svc"]), None);
    }

    #[test]
    fn a_trust_domain_admits_its_own_spiffe_ids_only() {
        let td =
            |uris: &[&str], dns: &[&str]| identity_from_sans(&s(uris), &s(dns), Some("aula.test"));
        assert_eq!(
            td(&["spiffe://aula.test/ns/aula/sa/cursos"], &["cursos"]).as_deref(),
            Some("cursos")
        );
        // Another trust domain names nobody, even with a DNS SAN that would.
        assert_eq!(
            td(&["spiffe://evil.test/ns/aula/sa/cursos"], &["cursos"]),
            None
        );
        assert_eq!(
            td(&["spiffe://aula.test.evil/ns/aula/sa/cursos"], &[]),
            None
        );
        assert_eq!(td(&["spiffe://AULA.TEST/ns/aula/sa/cursos"], &[]), None);
        // Without a SPIFFE ID the DNS SAN still names the holder (certificates from a PKI
        // that writes none; the CA is what vouches for them).
        assert_eq!(td(&[], &["cursos.aula.svc"]).as_deref(), Some("cursos"));
    }
}
