//! ssh host keys (boot step 5). The host companion may ship the guest's
//! ed25519 host key in userdata (`.b2d/ssh_host_ed25519_key{,.pub}`, which
//! the disk part installs into `/var/lib/boot2docker/b2d/`); then `b2d ssh`
//! can check the key strictly from the first connection. Otherwise missing
//! keys (ed25519 and ecdsa: fast, no entropy stall) are generated once, in
//! process (an ssh-keygen run cost about 0.5 s of a first boot under TCG,
//! most of it loading and starting OpenSSL), and persisted in
//! `/var/lib/boot2docker/ssh/`, where sshd reads them (`-h`).
//!
//! A power cut can strike at any instant, so nothing is trusted because it
//! exists: a key pair is used only when both files parse as OpenSSH keys
//! of the right type and the public half matches the private one. A broken
//! pair (a zero-length file left by delayed allocation, a torn write, a
//! stray `.pub`) is logged and replaced. New keys are checked like any
//! other and land with [`crate::atomic::write`] (fsync, rename,
//! fsync the directory): public half first, private half last, so a cut
//! between the two leaves a mismatch that the next boot repairs.

use crate::errors::{PathError, WithPath};
use ssh_key::{EcdsaCurve, PrivateKey, PublicKey};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Key types sshd is given, in `-h` order.
pub const KEY_TYPES: &[&str] = &["ed25519", "ecdsa"];

#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    #[error("host keys: {0}")]
    Io(#[from] PathError),
    #[error("host keys: making {}: {source}", path.display())]
    Keygen {
        path: PathBuf,
        #[source]
        source: KeygenError,
    },
}

/// Why a new key could not be made.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    #[error("unknown key type {0:?}")]
    UnknownType(String),
    #[error("{0}")]
    Key(#[from] ssh_key::Error),
    #[error("the new key is unusable: {0}")]
    Unusable(PairProblem),
}

/// Why a key pair (file contents) cannot serve as a host key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairProblem {
    #[error("the private key is empty")]
    PrivateEmpty,
    #[error("the public key is empty")]
    PublicEmpty,
    #[error("the private key does not parse ({0})")]
    PrivateUnparsable(ssh_key::Error),
    #[error("the private key is encrypted")]
    Encrypted,
    #[error("the private key is {found}, not {wanted}")]
    WrongType { found: &'static str, wanted: String },
    #[error("the public key does not parse ({0})")]
    PublicUnparsable(ssh_key::Error),
    #[error("the public key does not match the private key")]
    Mismatch,
}

pub fn key_file(ssh_dir: &Path, ty: &str) -> PathBuf {
    ssh_dir.join(format!("ssh_host_{ty}_key"))
}

/// `key` with `.pub` appended, as ssh-keygen names the public half.
fn pub_file(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// The ssh-keygen `-t` name of a key's algorithm.
fn type_name(key: &PrivateKey) -> &'static str {
    match key.algorithm() {
        ssh_key::Algorithm::Ed25519 => "ed25519",
        ssh_key::Algorithm::Ecdsa { .. } => "ecdsa",
        ssh_key::Algorithm::Rsa { .. } => "rsa",
        _ => "other",
    }
}

/// Why the key pair `private`/`public` (file contents) cannot serve as a
/// `ty` host key; None when it can.
pub fn pair_problem(ty: &str, private: &[u8], public: &[u8]) -> Option<PairProblem> {
    if private.is_empty() {
        return Some(PairProblem::PrivateEmpty);
    }
    if public.is_empty() {
        return Some(PairProblem::PublicEmpty);
    }
    let key = match PrivateKey::from_openssh(private) {
        Ok(k) => k,
        Err(e) => return Some(PairProblem::PrivateUnparsable(e)),
    };
    if key.is_encrypted() {
        return Some(PairProblem::Encrypted);
    }
    if type_name(&key) != ty {
        return Some(PairProblem::WrongType {
            found: type_name(&key),
            wanted: ty.to_string(),
        });
    }
    let text = String::from_utf8_lossy(public);
    let public = match PublicKey::from_openssh(text.trim()) {
        Ok(k) => k,
        Err(e) => return Some(PairProblem::PublicUnparsable(e)),
    };
    if public.key_data() != key.public_key().key_data() {
        return Some(PairProblem::Mismatch);
    }
    None
}

/// Why a pair found on disk is not used.
#[derive(Debug, thiserror::Error)]
enum Broken {
    #[error(transparent)]
    Problem(PairProblem),
    #[error("the {half} key cannot be read ({source})")]
    Unreadable {
        half: &'static str,
        source: io::Error,
    },
}

/// What is on disk at `key` and `key.pub`.
enum Pair {
    Absent,
    Broken(Broken),
    Good { private: Vec<u8>, public: Vec<u8> },
}

fn check(ty: &str, key: &Path) -> Pair {
    let private = std::fs::read(key);
    let public = std::fs::read(pub_file(key));
    let missing =
        |r: &io::Result<Vec<u8>>| matches!(r, Err(e) if e.kind() == io::ErrorKind::NotFound);
    if missing(&private) && missing(&public) {
        return Pair::Absent;
    }
    match (private, public) {
        (Ok(private), Ok(public)) => match pair_problem(ty, &private, &public) {
            None => Pair::Good { private, public },
            Some(why) => Pair::Broken(Broken::Problem(why)),
        },
        (Err(source), _) => Pair::Broken(Broken::Unreadable {
            half: "private",
            source,
        }),
        (_, Err(source)) => Pair::Broken(Broken::Unreadable {
            half: "public",
            source,
        }),
    }
}

/// Install a pair durably: public half first, private half last.
fn install_pair(key: &Path, private: &[u8], public: &[u8]) -> Result<(), HostKeyError> {
    let pubf = pub_file(key);
    crate::atomic::write(&pubf, public, 0o644)?;
    Ok(crate::atomic::write(key, private, 0o600)?)
}

/// A new `ty` key pair in OpenSSH's formats (private, public), with no
/// comment, as `ssh-keygen -q -t TY -N "" -C ""` writes them.
pub fn new_pair(ty: &str) -> Result<(Vec<u8>, Vec<u8>), KeygenError> {
    let algorithm = match ty {
        "ed25519" => ssh_key::Algorithm::Ed25519,
        "ecdsa" => ssh_key::Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        },
        _ => return Err(KeygenError::UnknownType(ty.to_string())),
    };
    let key = PrivateKey::random(&mut ssh_key::rand_core::OsRng, algorithm)?;
    let private = key.to_openssh(ssh_key::LineEnding::LF)?;
    let public = format!("{}\n", key.public_key().to_openssh()?);
    let (private, public) = (private.as_bytes().to_vec(), public.into_bytes());
    match pair_problem(ty, &private, &public) {
        Some(why) => Err(KeygenError::Unusable(why)),
        None => Ok((private, public)),
    }
}

/// Make a `ty` key and install it durably at `key`.
fn generate(ty: &str, key: &Path) -> Result<(), HostKeyError> {
    let (private, public) = new_pair(ty).map_err(|source| HostKeyError::Keygen {
        path: key.to_path_buf(),
        source,
    })?;
    install_pair(key, &private, &public)
}

/// Ensure host keys in `ssh_dir`, preferring the pair from `b2d_dir`.
/// Returns the private key paths for sshd's `-h` flags.
pub fn ensure(b2d_dir: &Path, ssh_dir: &Path) -> Result<Vec<PathBuf>, HostKeyError> {
    std::fs::create_dir_all(ssh_dir).with_path("create", ssh_dir)?;
    std::fs::set_permissions(ssh_dir, std::fs::Permissions::from_mode(0o700))
        .with_path("chmod", ssh_dir)?;

    let shipped = key_file(b2d_dir, "ed25519");
    match check("ed25519", &shipped) {
        Pair::Absent => {}
        Pair::Broken(why) => log::warn!(
            "ssh: the host key from userdata, {}, is unusable: {why}; ignoring it",
            shipped.display()
        ),
        Pair::Good { private, public } => {
            let dst = key_file(ssh_dir, "ed25519");
            let same = std::fs::read(&dst).ok().as_deref() == Some(&private[..])
                && std::fs::read(pub_file(&dst)).ok().as_deref() == Some(&public[..]);
            if !same {
                install_pair(&dst, &private, &public)?;
                log::info!("ssh: host key from userdata installed as {}", dst.display());
            }
        }
    }

    let mut keys = Vec::new();
    for ty in KEY_TYPES {
        let path = key_file(ssh_dir, ty);
        match check(ty, &path) {
            Pair::Good { .. } => {}
            Pair::Absent => {
                generate(ty, &path)?;
                log::info!("ssh: generated {ty} host key {}", path.display());
            }
            Pair::Broken(why) => {
                log::warn!(
                    "ssh: host key {} is broken: {why}; generating a new one",
                    path.display()
                );
                generate(ty, &path)?;
                log::info!("ssh: generated {ty} host key {}", path.display());
            }
        }
        keys.push(path);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// A real key pair made by ssh-keygen (a test dependency, in .ci/deps).
    fn real_pair(dir: &Path, ty: &str) -> (Vec<u8>, Vec<u8>) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let k = dir.join(format!("made-{ty}-{n}"));
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", ty, "-N", "", "-C", "", "-f"])
            .arg(&k)
            .output()
            .expect("ssh-keygen (apt-get install openssh-client)");
        assert!(out.status.success(), "{out:?}");
        (
            std::fs::read(&k).unwrap(),
            std::fs::read(pub_file(&k)).unwrap(),
        )
    }

    fn assert_good(ssh: &Path) {
        for ty in KEY_TYPES {
            let k = key_file(ssh, ty);
            let private = std::fs::read(&k).unwrap();
            let public = std::fs::read(pub_file(&k)).unwrap();
            assert_eq!(pair_problem(ty, &private, &public), None, "{}", k.display());
            assert_eq!(mode(&k), 0o600);
            assert_eq!(mode(&pub_file(&k)), 0o644);
        }
        let stray: Vec<_> = std::fs::read_dir(ssh)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(stray.is_empty(), "temporary files left: {stray:?}");
    }

    #[test]
    fn shipped_key_is_installed_and_only_missing_types_generated() {
        let d = tempfile::tempdir().unwrap();
        let b2d = d.path().join("b2d");
        let ssh = d.path().join("ssh");
        std::fs::create_dir_all(&b2d).unwrap();
        let (private, public) = real_pair(d.path(), "ed25519");
        std::fs::write(key_file(&b2d, "ed25519"), &private).unwrap();
        std::fs::write(b2d.join("ssh_host_ed25519_key.pub"), &public).unwrap();
        let keys = ensure(&b2d, &ssh).unwrap();
        assert_eq!(
            keys,
            vec![key_file(&ssh, "ed25519"), key_file(&ssh, "ecdsa")]
        );
        assert_good(&ssh);
        assert_eq!(std::fs::read(key_file(&ssh, "ed25519")).unwrap(), private);
        assert_eq!(
            std::fs::read(ssh.join("ssh_host_ed25519_key.pub")).unwrap(),
            public
        );
        assert_eq!(mode(&ssh), 0o700);

        // A second boot finds everything in order and makes nothing.
        let ecdsa = std::fs::read(key_file(&ssh, "ecdsa")).unwrap();
        ensure(&b2d, &ssh).unwrap();
        assert_eq!(std::fs::read(key_file(&ssh, "ecdsa")).unwrap(), ecdsa);
        assert_eq!(std::fs::read(key_file(&ssh, "ed25519")).unwrap(), private);
    }

    #[test]
    fn without_userdata_both_are_generated_once() {
        let d = tempfile::tempdir().unwrap();
        let ssh = d.path().join("ssh");
        ensure(&d.path().join("b2d"), &ssh).unwrap();
        assert_good(&ssh);
        let before = std::fs::read(key_file(&ssh, "ecdsa")).unwrap();
        ensure(&d.path().join("b2d"), &ssh).unwrap();
        assert_eq!(std::fs::read(key_file(&ssh, "ecdsa")).unwrap(), before);
    }

    /// The power-cut defect: ssh-keygen's files reached the disk as
    /// zero-length inodes, and every later boot took them as present.
    #[test]
    fn zero_length_keys_after_a_power_cut_are_regenerated() {
        let d = tempfile::tempdir().unwrap();
        let ssh = d.path().join("ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        for ty in KEY_TYPES {
            let k = key_file(&ssh, ty);
            std::fs::write(&k, b"").unwrap();
            std::fs::write(pub_file(&k), b"").unwrap();
        }
        ensure(&d.path().join("b2d"), &ssh).unwrap();
        assert_good(&ssh);
    }

    #[test]
    fn torn_mismatched_or_half_missing_pairs_are_replaced() {
        let d = tempfile::tempdir().unwrap();
        let ssh = d.path().join("ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        let (good, _) = real_pair(d.path(), "ed25519");
        let (_, other_pub) = real_pair(d.path(), "ed25519");
        let ed = key_file(&ssh, "ed25519");
        std::fs::write(&ed, &good).unwrap();
        std::fs::write(pub_file(&ed), &other_pub).unwrap();
        // The ecdsa pair: half a private key, and no public half at all.
        let (ec, _) = real_pair(d.path(), "ecdsa");
        std::fs::write(key_file(&ssh, "ecdsa"), &ec[..ec.len() / 2]).unwrap();
        ensure(&d.path().join("b2d"), &ssh).unwrap();
        assert_good(&ssh);
        assert_ne!(
            std::fs::read(&ed).unwrap(),
            good,
            "a mismatched pair is replaced"
        );
    }

    #[test]
    fn an_unusable_shipped_key_is_ignored_not_installed() {
        let d = tempfile::tempdir().unwrap();
        let b2d = d.path().join("b2d");
        let ssh = d.path().join("ssh");
        std::fs::create_dir_all(&b2d).unwrap();
        std::fs::write(key_file(&b2d, "ed25519"), b"").unwrap();
        std::fs::write(b2d.join("ssh_host_ed25519_key.pub"), b"").unwrap();
        ensure(&b2d, &ssh).unwrap();
        assert_good(&ssh);
    }

    #[test]
    fn pair_problems_are_named() {
        let d = tempfile::tempdir().unwrap();
        let (ed, ed_pub) = real_pair(d.path(), "ed25519");
        let (ec, ec_pub) = real_pair(d.path(), "ecdsa");
        assert_eq!(pair_problem("ed25519", &ed, &ed_pub), None);
        assert_eq!(pair_problem("ecdsa", &ec, &ec_pub), None);
        let cases: [(&str, &[u8], &[u8], &str); 6] = [
            ("ed25519", b"", &ed_pub, "private key is empty"),
            ("ed25519", &ed, b"", "public key is empty"),
            ("ed25519", b"PRIVATE", &ed_pub, "private key does not parse"),
            (
                "ed25519",
                &ed,
                b"ssh-ed25519 AAAA",
                "public key does not parse",
            ),
            ("ecdsa", &ed, &ed_pub, "is ed25519, not ecdsa"),
            ("ed25519", &ed, &ec_pub, "does not match"),
        ];
        for (ty, private, public, want) in cases {
            let got = pair_problem(ty, private, public)
                .map(|p| p.to_string())
                .unwrap_or_default();
            assert!(got.contains(want), "{want:?} in {got:?}");
        }
    }

    /// sshd reads what OpenSSH's own tools read: `ssh-keygen -y` derives
    /// the same public key from each new private key.
    #[test]
    fn new_keys_are_what_openssh_reads() {
        let d = tempfile::tempdir().unwrap();
        for ty in KEY_TYPES {
            let (private, public) = new_pair(ty).unwrap();
            let k = d.path().join(format!("k-{ty}"));
            crate::atomic::write(&k, &private, 0o600).unwrap();
            let out = std::process::Command::new("ssh-keygen")
                .arg("-y")
                .arg("-f")
                .arg(&k)
                .output()
                .expect("ssh-keygen (apt-get install openssh-client)");
            assert!(out.status.success(), "{ty}: {out:?}");
            let derived = String::from_utf8(out.stdout).unwrap();
            let field = |t: &str| t.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            assert_eq!(
                field(&derived),
                field(std::str::from_utf8(&public).unwrap())
            );
            assert!(
                String::from_utf8_lossy(&public).starts_with(if *ty == "ecdsa" {
                    "ecdsa-sha2-nistp256 "
                } else {
                    "ssh-ed25519 "
                }),
                "{ty}"
            );
        }
        // Two new keys differ (the random source is used).
        assert_ne!(new_pair("ecdsa").unwrap().0, new_pair("ecdsa").unwrap().0);
        let e = new_pair("dsa").unwrap_err().to_string();
        assert!(e.contains("\"dsa\""), "{e}");
    }
}
