use super::*;
use std::path::Path;
use std::process::Command;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn write(dir: &Path, name: &str, data: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p.display().to_string()
}

/// What `openssl verify` said when it refused a certificate.
#[derive(Debug, thiserror::Error)]
#[error("openssl verify refused it: {0}")]
struct Refused(String);

/// `openssl verify` against the real tool: Ok(()) or its complaint.
fn verify(ca: &str, purpose: &str, cert: &str) -> Result<(), Refused> {
    let out = Command::new("openssl")
        .args(["verify", "-CAfile", ca, "-purpose", purpose, cert])
        .output()
        .expect("openssl (apt-get install openssl)");
    if out.status.success() {
        Ok(())
    } else {
        Err(Refused(
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        ))
    }
}

fn x509_text(cert: &str) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", cert])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn client_and_server_chain_to_their_ca_and_to_no_other() {
    let t = tempfile::tempdir().unwrap();
    let ca = new_ca("default", now()).unwrap();
    let client = issue_client(&ca, "default", now()).unwrap();
    let names = server_names("default", &["10.0.2.15".parse().unwrap()]);
    let server = issue_server(&ca, &names, now()).unwrap();
    let ca_f = write(t.path(), CA_CERT, &ca.cert_pem);
    let cl_f = write(t.path(), CLIENT_CERT, &client.cert_pem);
    let sv_f = write(t.path(), SERVER_CERT, &server.cert_pem);
    verify(&ca_f, "sslclient", &cl_f).unwrap();
    verify(&ca_f, "sslserver", &sv_f).unwrap();
    // Purposes are not interchangeable.
    assert!(verify(&ca_f, "sslserver", &cl_f).is_err());
    assert!(verify(&ca_f, "sslclient", &sv_f).is_err());
    // Another machine's CA does not vouch for these.
    let other = new_ca("other", now()).unwrap();
    let other_f = write(t.path(), "other.pem", &other.cert_pem);
    assert!(verify(&other_f, "sslclient", &cl_f).is_err());

    let text = x509_text(&sv_f);
    for want in [
        "DNS:localhost",
        "DNS:default",
        "IP Address:127.0.0.1",
        "IP Address:10.0.2.15",
        "prime256v1",
        "ecdsa-with-SHA256",
    ] {
        assert!(text.contains(want), "{want} missing from\n{text}");
    }
    assert!(x509_text(&ca_f).contains("CA:TRUE"));
}

#[test]
fn keys_are_pkcs8_pem_and_reload() {
    let ca = new_ca("m", now()).unwrap();
    assert!(ca.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    // A CA read back from its PEM files still signs.
    let again = Pair {
        cert_pem: ca.cert_pem.clone(),
        key_pem: ca.key_pem.clone(),
    };
    issue_client(&again, "m", now()).unwrap();
}

#[test]
fn server_names_dedupe_and_always_cover_loopback() {
    let n = server_names("localhost", &["127.0.0.1".parse().unwrap()]);
    assert_eq!(
        n,
        vec![
            Name::Dns("localhost".into()),
            Name::Ip("127.0.0.1".parse().unwrap())
        ]
    );
}

#[test]
fn broken_ca_material_is_an_error_that_says_what() {
    let bad = Pair {
        cert_pem: "not a cert".into(),
        key_pem: new_ca("m", now()).unwrap().key_pem,
    };
    let e = issue_client(&bad, "m", now()).unwrap_err().to_string();
    assert!(e.contains("CA certificate"), "{e}");
    let bad = Pair {
        cert_pem: new_ca("m", now()).unwrap().cert_pem,
        key_pem: "junk".into(),
    };
    let e = issue_client(&bad, "m", now()).unwrap_err().to_string();
    assert!(e.contains("CA key"), "{e}");
}

#[test]
fn validity_is_backdated_for_clock_skew() {
    let t = tempfile::tempdir().unwrap();
    let ca = new_ca("m", now()).unwrap();
    let f = write(t.path(), "ca.pem", &ca.cert_pem);
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-checkend", "0", "-in", &f])
        .output()
        .unwrap();
    assert!(out.status.success(), "CA not valid now");
    // Issued "tomorrow" by a host clock a few hours ahead: still valid now.
    let ahead = issue_client(&ca, "m", now() + Duration::hours(3)).unwrap();
    let cf = write(t.path(), "c.pem", &ahead.cert_pem);
    verify(&f, "sslclient", &cf).unwrap();
}
