//! A development CA and certificates for every identity (`aula certs`, and the tests' real
//! TLS). Production certificates come from cert-manager or your own PKI; these follow the same
//! shape so nothing else changes: a SPIFFE URI SAN naming the identity, DNS SANs for the names
//! peers dial (compose, Kubernetes), `localhost` and 127.0.0.1 for a developer's machine.

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

/// The trust domain `aula certs` writes by default.
pub const DEFAULT_TRUST_DOMAIN: &str = "aula.local";
/// The Kubernetes namespace in the SANs by default.
pub const DEFAULT_NAMESPACE: &str = "aula";
const CA_NAME: &str = "Aula development CA";

/// A certificate authority that can issue certificates.
pub struct DevCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    key_pem: String,
    trust_domain: String,
}

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

fn ca_params(validity: Duration) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    dn.push(DnType::OrganizationName, "Aula");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut p, validity);
    p
}

fn set_validity(p: &mut CertificateParams, validity: Duration) {
    let now = time::OffsetDateTime::now_utc();
    // A little slack for clocks that disagree between machines.
    p.not_before = now - time::Duration::minutes(5);
    p.not_after = now + validity;
}

impl DevCa {
    /// A new CA (a new key) valid for `validity`.
    pub fn new(trust_domain: &str, validity: Duration) -> anyhow::Result<Self> {
        let key = KeyPair::generate()?;
        let key_pem = key.serialize_pem();
        let issuer = CertifiedIssuer::self_signed(ca_params(validity), key)?;
        Ok(Self {
            issuer,
            key_pem,
            trust_domain: trust_domain.to_string(),
        })
    }

    /// The CA whose key is `key_pem` (written by an earlier run): certificates it issues are
    /// trusted by everyone holding the earlier `ca.crt`.
    pub fn from_key(trust_domain: &str, key_pem: &str, validity: Duration) -> anyhow::Result<Self> {
        let key = KeyPair::from_pem(key_pem).context("not a PEM private key")?;
        let issuer = CertifiedIssuer::self_signed(ca_params(validity), key)?;
        Ok(Self {
            issuer,
            key_pem: key_pem.to_string(),
            trust_domain: trust_domain.to_string(),
        })
    }

    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A certificate for `name` in `namespace`: URI SAN
    /// `spiffe://<trust-domain>/ns/<namespace>/sa/<name>`; DNS SANs `<name>`,
    /// `<name>.<namespace>`, `<name>.<namespace>.svc`, `<name>.<namespace>.svc.cluster.local`
    /// and `localhost`; IP SANs 127.0.0.1 and ::1. Good for serving and for client auth.
    pub fn issue(&self, name: &str, namespace: &str, validity: Duration) -> anyhow::Result<Issued> {
        let dns = [
            name.to_string(),
            format!("{name}.{namespace}"),
            format!("{name}.{namespace}.svc"),
            format!("{name}.{namespace}.svc.cluster.local"),
            "localhost".to_string(),
        ];
        let mut sans = vec![SanType::URI(
            format!("spiffe://{}/ns/{namespace}/sa/{name}", self.trust_domain).try_into()?,
        )];
        for d in dns {
            sans.push(SanType::DnsName(d.try_into()?));
        }
        sans.push(SanType::IpAddress([127, 0, 0, 1].into()));
        sans.push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
        self.issue_sans(name, sans, validity)
    }

    /// A certificate with exactly these SANs (tests: a certificate naming nobody, or only DNS).
    pub fn issue_sans(
        &self,
        common_name: &str,
        sans: Vec<SanType>,
        validity: Duration,
    ) -> anyhow::Result<Issued> {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        p.distinguished_name = dn;
        p.subject_alt_names = sans;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.use_authority_key_identifier_extension = true;
        set_validity(&mut p, validity);
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// What `aula certs` writes.
pub struct WriteOptions<'a> {
    pub out: &'a Path,
    pub trust_domain: &'a str,
    pub namespace: &'a str,
    /// The identities to issue for (every service, the gateway and `operator`).
    pub identities: &'a [&'a str],
    pub validity: Duration,
    /// Unix permissions of the private keys: 0o600 (the owner only), or 0o644 for a bind mount
    /// into containers running as another user (`aula certs --container-readable`).
    pub key_mode: u32,
}

/// Writes `ca.crt` (and `ca.key`, reused when present: re-running rotates the certificates
/// under the same trust) and `<identity>.crt` + `<identity>.key` for each identity, keys with
/// `key_mode`. Returns the files written.
pub fn write_dir(o: &WriteOptions<'_>) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(o.out).with_context(|| format!("creating {}", o.out.display()))?;
    // Keys readable by others are meant for containers: they must be able to enter the folder.
    #[cfg(unix)]
    if o.key_mode & 0o004 != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(o.out, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} readable", o.out.display()))?;
    }
    let ca_key = o.out.join("ca.key");
    // The CA outlives what it signs, so rotations under it have room.
    let ca_validity = o.validity * 10;
    let ca = match std::fs::read_to_string(&ca_key) {
        Ok(pem) => DevCa::from_key(o.trust_domain, &pem, ca_validity)
            .with_context(|| format!("{}: remove it to start a new CA", ca_key.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            DevCa::new(o.trust_domain, ca_validity)?
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", ca_key.display())),
    };
    let mut written = Vec::new();
    let mut write = |name: String, text: &str, mode: u32| -> anyhow::Result<()> {
        let path = o.out.join(name);
        write_file(&path, text, mode)?;
        written.push(path);
        Ok(())
    };
    write("ca.crt".into(), &ca.cert_pem(), 0o644)?;
    // No service reads the CA's key: only its owner, whatever key_mode says.
    write("ca.key".into(), ca.key_pem(), 0o600)?;
    for id in o.identities {
        let issued = ca.issue(id, o.namespace, o.validity)?;
        write(format!("{id}.crt"), &issued.cert_pem, 0o644)?;
        write(format!("{id}.key"), &issued.key_pem, o.key_mode)?;
    }
    Ok(written)
}

/// Writes through a temporary file and a rename, so a service polling the file never reads
/// half of it.
fn write_file(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    // Created with the final permissions: a key is never readable by others, not even briefly.
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        open.mode(mode);
        let mut f = open
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
