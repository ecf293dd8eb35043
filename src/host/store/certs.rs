//! A machine's certificates on the host: its CA and the docker CLI's
//! client pair in `certs/` (what `DOCKER_CERT_PATH` names), the CA key
//! beside them, and the CA as `.b2d/` userdata entries so the guest can
//! issue its own server certificate at every boot.

use crate::disk::userdata::Extension;
use crate::errors::{PathError, WithPath};
use crate::tls::{self, Pair};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("machine \"{machine}\": {source}")]
    Tls {
        machine: String,
        #[source]
        source: tls::TlsError,
    },
    #[error(transparent)]
    Io(#[from] PathError),
}

/// Write a new CA and client pair for `machine` under `dir`; returns the
/// userdata entries that carry the CA to the guest.
pub fn create(dir: &Path, machine: &str) -> Result<Vec<Extension>, CertError> {
    let now = time::OffsetDateTime::now_utc();
    let tls_err = |source| CertError::Tls {
        machine: machine.into(),
        source,
    };
    let ca = tls::new_ca(machine, now).map_err(tls_err)?;
    let client = tls::issue_client(&ca, machine, now).map_err(tls_err)?;
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).with_path("create", &certs)?;
    for (path, data, mode) in [
        (certs.join(tls::CA_CERT), &ca.cert_pem, 0o644),
        (certs.join(tls::CLIENT_CERT), &client.cert_pem, 0o644),
        (certs.join(tls::CLIENT_KEY), &client.key_pem, 0o600),
        (dir.join(tls::CA_KEY), &ca.key_pem, 0o600),
    ] {
        crate::atomic::write(&path, data.as_bytes(), mode)?;
    }
    Ok(extensions(&ca))
}

/// The `.b2d/` entries for a CA: the guest signs with it, root-only.
pub fn extensions(ca: &Pair) -> Vec<Extension> {
    vec![
        Extension {
            name: tls::CA_CERT.into(),
            mode: 0o644,
            data: ca.cert_pem.clone().into_bytes(),
        },
        Extension {
            name: tls::CA_KEY.into(),
            mode: 0o600,
            data: ca.key_pem.clone().into_bytes(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_docker_cert_path_and_ships_the_ca() {
        let t = tempfile::tempdir().unwrap();
        let ext = create(t.path(), "default").unwrap();
        let certs = t.path().join("certs");
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            assert!(certs.join(f).is_file(), "{f}");
        }
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&certs.join("key.pem")), 0o600);
        assert_eq!(mode(&t.path().join("ca-key.pem")), 0o600);
        let names: Vec<_> = ext.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["ca.pem", "ca-key.pem"]);
        assert_eq!(
            ext[0].data,
            std::fs::read(certs.join("ca.pem")).unwrap(),
            "the guest gets the same CA the client trusts"
        );
        let out = std::process::Command::new("openssl")
            .args(["verify", "-purpose", "sslclient", "-CAfile"])
            .arg(certs.join("ca.pem"))
            .arg(certs.join("cert.pem"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}
