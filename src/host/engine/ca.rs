//! `--ca-cert FILE`: PEM CA certificates for the guest's trust store
//! (a TLS-intercepting proxy's, a private registry's). Every block of the
//! file must be a certificate that parses; each is kept as its own
//! normalised PEM with its subject, for `b2d inspect`.

use std::path::Path;

pub use crate::host::store::config::CaCert;

/// Why a `--ca-cert` file is refused; `block` is the PEM block's number
/// when the file holds several.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("not PEM: {0}")]
    NotPem(pem::PemError),
    #[error("no PEM certificate in it (a file with -----BEGIN CERTIFICATE----- blocks)")]
    NoCertificate,
    #[error("{}a {tag} is not a certificate: give the CA's certificate, not its key", which(*block))]
    NotCertificate { block: Option<usize>, tag: String },
    #[error("{}trailing bytes after the certificate", which(*block))]
    Trailing { block: Option<usize> },
    #[error("{}not an X.509 certificate: {why}", which(*block))]
    NotX509 {
        block: Option<usize>,
        why: x509_parser::nom::Err<x509_parser::error::X509Error>,
    },
}

fn which(block: Option<usize>) -> String {
    block.map(|n| format!("block {n}: ")).unwrap_or_default()
}

/// The certificates in PEM text `text` (of file `from`); the error says
/// what is wrong, with the block's number when the file has several.
pub fn parse(text: &[u8], from: &Path) -> Result<Vec<CaCert>, CaError> {
    let blocks = pem::parse_many(text).map_err(CaError::NotPem)?;
    if blocks.is_empty() {
        return Err(CaError::NoCertificate);
    }
    let several = blocks.len() > 1;
    let block = |i: usize| several.then_some(i + 1);
    let mut out = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        if b.tag() != "CERTIFICATE" {
            return Err(CaError::NotCertificate {
                block: block(i),
                tag: b.tag().to_string(),
            });
        }
        let subject = match x509_parser::parse_x509_certificate(b.contents()) {
            Ok(([], c)) => c.subject().to_string(),
            Ok(_) => return Err(CaError::Trailing { block: block(i) }),
            Err(e) => {
                return Err(CaError::NotX509 {
                    block: block(i),
                    why: e,
                })
            }
        };
        let pem = pem::encode_config(
            b,
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        );
        if !out.iter().any(|c: &CaCert| c.pem == pem) {
            out.push(CaCert {
                from: from.to_path_buf(),
                subject,
                pem,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(name: &str) -> String {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, name.to_string());
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn certificates_parse_and_anything_else_is_refused() {
        let two = format!("# corp bundle\n{}\n{}", ca("Root A"), ca("Root B"));
        let got = parse(two.as_bytes(), Path::new("/c.pem")).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].subject, "CN=Root A");
        assert_eq!(got[1].subject, "CN=Root B");
        assert!(got[0].pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(got[0].pem.trim_end().ends_with("-----END CERTIFICATE-----"));
        assert!(!got[0].pem.contains('\r'));
        assert_eq!(got[0].from, Path::new("/c.pem"));
        // The same certificate twice is kept once.
        let a = ca("Root A");
        assert_eq!(
            parse(format!("{a}{a}").as_bytes(), Path::new("/a"))
                .unwrap()
                .len(),
            1
        );

        let e = parse(b"hello", Path::new("/x")).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
        let e = parse(format!("{a}{key}").as_bytes(), Path::new("/x"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("block 2: a PRIVATE KEY is not a certificate"),
            "{e}"
        );
        let junk = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
        let e = parse(junk.as_bytes(), Path::new("/x"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("not an X.509 certificate"), "{e}");
        let e = parse(b"-----BEGIN CERTIFICATE-----\n!!\n", Path::new("/x"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("not PEM") || e.contains("no PEM"), "{e}");
    }
}
