//! The machine's TLS material, shared by host and guest: a per-machine CA
//! and a client certificate (made by `b2d` when it creates a machine), and
//! the server certificate the guest issues itself at every boot for its
//! current names. All keys are ECDSA P-256: fast to generate even under
//! emulation, and no entropy stall.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use std::net::IpAddr;
use time::{Duration, OffsetDateTime};

/// File names, both in the machine directory and in the guest. The client
/// pair uses the names the docker CLI looks for in `DOCKER_CERT_PATH`.
pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca-key.pem";
pub const CLIENT_CERT: &str = "cert.pem";
pub const CLIENT_KEY: &str = "key.pem";
pub const SERVER_CERT: &str = "server.pem";
pub const SERVER_KEY: &str = "server-key.pem";

/// Clocks of a fresh VM and its host can disagree a little.
const BACKDATE: Duration = Duration::hours(24);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what}: {source}")]
    Rcgen {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("\"{}\" is not a valid DNS name for a certificate", .name.escape_debug())]
    BadName { name: String },
}

fn rc(what: &'static str) -> impl FnOnce(rcgen::Error) -> TlsError {
    move |source| TlsError::Rcgen { what, source }
}

/// A PEM certificate and its PEM private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
}

fn key() -> Result<KeyPair, TlsError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rc("generating a P-256 key"))
}

fn params(cn: &str, now: OffsetDateTime, days: i64) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "b2d");
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.not_before = now - BACKDATE;
    p.not_after = now + Duration::days(days);
    p.use_authority_key_identifier_extension = true;
    p
}

/// A new CA for machine `machine`, valid ten years from `now`.
pub fn new_ca(machine: &str, now: OffsetDateTime) -> Result<Pair, TlsError> {
    let k = key()?;
    let mut p = params(&format!("b2d CA for {machine}"), now, 3650);
    p.use_authority_key_identifier_extension = false;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p.self_signed(&k).map_err(rc("self-signing the CA"))?;
    Ok(Pair {
        cert_pem: cert.pem(),
        key_pem: k.serialize_pem(),
    })
}

fn issuer(ca: &Pair) -> Result<Issuer<'static, KeyPair>, TlsError> {
    let k = KeyPair::from_pem(&ca.key_pem).map_err(rc("reading the CA key"))?;
    Issuer::from_ca_cert_pem(&ca.cert_pem, k).map_err(rc("reading the CA certificate"))
}

/// A client certificate (clientAuth) signed by `ca`, valid ten years: the
/// one `DOCKER_CERT_PATH` points the docker CLI at.
pub fn issue_client(ca: &Pair, machine: &str, now: OffsetDateTime) -> Result<Pair, TlsError> {
    let k = key()?;
    let mut p = params(&format!("b2d client for {machine}"), now, 3650);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p
        .signed_by(&k, &issuer(ca)?)
        .map_err(rc("signing the client certificate"))?;
    Ok(Pair {
        cert_pem: cert.pem(),
        key_pem: k.serialize_pem(),
    })
}

/// The names a server certificate covers: `localhost`, 127.0.0.1, the
/// hostname and the given addresses, without duplicates.
pub fn server_names(hostname: &str, ips: &[IpAddr]) -> Vec<Name> {
    let mut out = vec![Name::Dns("localhost".into())];
    if !hostname.is_empty() && hostname != "localhost" {
        out.push(Name::Dns(hostname.into()));
    }
    let mut all = vec![IpAddr::from([127, 0, 0, 1])];
    all.extend_from_slice(ips);
    for ip in all {
        let n = Name::Ip(ip);
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// One subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    Dns(String),
    Ip(IpAddr),
}

/// A server certificate (serverAuth) for `names`, signed by `ca`, valid a
/// year: the guest issues a fresh one at every boot.
pub fn issue_server(ca: &Pair, names: &[Name], now: OffsetDateTime) -> Result<Pair, TlsError> {
    let k = key()?;
    let cn = names
        .iter()
        .find_map(|n| match n {
            Name::Dns(d) if d != "localhost" => Some(d.as_str()),
            _ => None,
        })
        .unwrap_or("localhost");
    let mut p = params(cn, now, 365);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    for n in names {
        p.subject_alt_names.push(match n {
            Name::Ip(ip) => SanType::IpAddress(*ip),
            Name::Dns(d) => SanType::DnsName(
                d.clone()
                    .try_into()
                    .map_err(|_| TlsError::BadName { name: d.clone() })?,
            ),
        });
    }
    let cert = p
        .signed_by(&k, &issuer(ca)?)
        .map_err(rc("signing the server certificate"))?;
    Ok(Pair {
        cert_pem: cert.pem(),
        key_pem: k.serialize_pem(),
    })
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
