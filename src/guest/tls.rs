//! TLS (boot step 6): a fresh server certificate at every boot for the
//! current addresses, hostname, `localhost` and 127.0.0.1, signed by the
//! machine's CA from userdata (`.b2d/ca.pem`, `.b2d/ca-key.pem`, installed
//! root-only in `/var/lib/boot2docker/b2d/`). The certificate always
//! matches the machine's names, so there is nothing to regenerate when an
//! address changes. Without a CA, dockerd serves the unix socket only.

use super::services::TlsArgs;
use crate::errors::{PathError, WithPath};
use crate::tls::{self, Pair};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Why this boot has no server certificate.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Io(#[from] PathError),
    #[error("issuing the server certificate with the CA {}: {source}", ca.display())]
    Issue {
        ca: PathBuf,
        #[source]
        source: tls::TlsError,
    },
}

/// Where dockerd listens for TLS clients.
pub const TCP: &str = "tcp://0.0.0.0:2376";

/// Issue this boot's server certificate into `tls_dir` from the CA in
/// `b2d_dir`; the dockerd arguments for it, or None (logged) when there is
/// no CA or it cannot be used.
pub fn prepare(b2d_dir: &Path, tls_dir: &Path, hostname: &str, ips: &[String]) -> Option<TlsArgs> {
    let (ca_cert, ca_key) = (b2d_dir.join(tls::CA_CERT), b2d_dir.join(tls::CA_KEY));
    if !ca_cert.is_file() || !ca_key.is_file() {
        log::info!(
            "tls: no machine CA in userdata ({} missing): Docker API on the unix socket only",
            ca_cert.display()
        );
        return None;
    }
    match issue(&ca_cert, &ca_key, tls_dir, hostname, ips) {
        Ok(args) => Some(args),
        Err(e) => {
            log::error!(
                "tls: {}; Docker API on the unix socket only",
                crate::error_chain(&e)
            );
            None
        }
    }
}

fn issue(
    ca_cert: &Path,
    ca_key: &Path,
    tls_dir: &Path,
    hostname: &str,
    ips: &[String],
) -> Result<TlsArgs, IssueError> {
    let read = |p: &Path| std::fs::read_to_string(p).with_path("read", p);
    let ca = Pair {
        cert_pem: read(ca_cert)?,
        key_pem: read(ca_key)?,
    };
    let addrs: Vec<IpAddr> = ips.iter().filter_map(|s| s.parse().ok()).collect();
    let names = tls::server_names(hostname, &addrs);
    let server =
        tls::issue_server(&ca, &names, time::OffsetDateTime::now_utc()).map_err(|source| {
            IssueError::Issue {
                ca: ca_cert.to_path_buf(),
                source,
            }
        })?;
    std::fs::create_dir_all(tls_dir).with_path("create", tls_dir)?;
    let write = |name: &str, data: &str, mode: u32| {
        let p = tls_dir.join(name);
        crate::atomic::replace(&p, data.as_bytes(), mode)?;
        Ok::<_, IssueError>(p)
    };
    let args = TlsArgs {
        tcp: TCP.into(),
        ca: write(tls::CA_CERT, &ca.cert_pem, 0o644)?,
        cert: write(tls::SERVER_CERT, &server.cert_pem, 0o644)?,
        key: write(tls::SERVER_KEY, &server.key_pem, 0o600)?,
    };
    log::info!(
        "tls: server certificate issued for {}",
        names
            .iter()
            .map(|n| match n {
                tls::Name::Dns(d) => d.clone(),
                tls::Name::Ip(ip) => ip.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_from_the_shipped_ca_and_points_dockerd_at_it() {
        let t = tempfile::tempdir().unwrap();
        let (b2d, tlsd) = (t.path().join("b2d"), t.path().join("tls"));
        std::fs::create_dir(&b2d).unwrap();
        let ca = tls::new_ca("m", time::OffsetDateTime::now_utc()).unwrap();
        std::fs::write(b2d.join(tls::CA_CERT), &ca.cert_pem).unwrap();
        std::fs::write(b2d.join(tls::CA_KEY), &ca.key_pem).unwrap();
        let a = prepare(&b2d, &tlsd, "m", &["10.0.2.15".into()]).unwrap();
        assert_eq!(a.tcp, "tcp://0.0.0.0:2376");
        assert_eq!(a.key, tlsd.join("server-key.pem"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&a.key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let first = std::fs::read(&a.cert).unwrap();
        // The next boot gets a fresh certificate, not the old one.
        let b = prepare(&b2d, &tlsd, "m", &["10.0.2.16".into()]).unwrap();
        assert_ne!(std::fs::read(&b.cert).unwrap(), first);
        let out = std::process::Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(&b.ca)
            .arg(&b.cert)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    #[test]
    fn without_a_ca_or_with_a_broken_one_dockerd_stays_on_the_socket() {
        let t = tempfile::tempdir().unwrap();
        let tlsd = t.path().join("tls");
        assert_eq!(prepare(t.path(), &tlsd, "m", &[]), None);
        std::fs::write(t.path().join(tls::CA_CERT), "junk").unwrap();
        std::fs::write(t.path().join(tls::CA_KEY), "junk").unwrap();
        assert_eq!(prepare(t.path(), &tlsd, "m", &[]), None);
        assert!(!tlsd.join(tls::SERVER_KEY).exists());
    }
}
