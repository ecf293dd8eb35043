//! The user's ssh public keys that go into the userdata archive.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no ssh public key found (looked for {looked}); pass --ssh-key PUBFILE or create one with `ssh-keygen -t ed25519`")]
    NoDefault { looked: String },
    #[error("cannot read ssh public key: {0}")]
    Read(#[source] crate::small_file::SmallFileError),
    #[error("{path}: this is a private key; pass the .pub file instead")]
    Private { path: PathBuf },
    #[error("{path}: line {line} is not an OpenSSH public key (expected e.g. `ssh-ed25519 AAAA... comment`)")]
    NotPublic { path: PathBuf, line: usize },
    #[error("{path}: file holds no key; pass the .pub file of an existing key")]
    Empty { path: PathBuf },
}

/// Key types OpenSSH writes in `.pub` files and accepts in `authorized_keys`.
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// The default key as docker-machine users expect: `~/.ssh/id_ed25519.pub`,
/// then `~/.ssh/id_rsa.pub`.
pub fn default_key(home: &Path) -> Result<PathBuf, KeyError> {
    let candidates = [
        home.join(".ssh/id_ed25519.pub"),
        home.join(".ssh/id_rsa.pub"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| KeyError::NoDefault {
            looked: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// True when `line` is `TYPE BASE64 [comment]`, possibly after options.
fn is_public_key_line(line: &str) -> bool {
    let mut words = line.split_ascii_whitespace();
    // authorized_keys lines may start with options (no spaces inside unless quoted;
    // one options word is enough for what users paste here).
    let first = words.next().unwrap_or("");
    let (kind, blob) = if KEY_TYPES.contains(&first) {
        (first, words.next())
    } else {
        (words.next().unwrap_or(""), words.next())
    };
    KEY_TYPES.contains(&kind)
        && blob.is_some_and(|b| {
            b.starts_with("AAAA")
                && b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'=')
        })
}

/// The most read of a `.pub` file: the whole userdata archive is bounded
/// at 1 MiB.
const MAX_KEY_FILE: u64 = 256 << 10;

/// Read and check one `.pub` file; returns its bytes unchanged (docker-machine
/// writes the file verbatim), with a final newline added if it had none.
pub fn read_public_key(path: &Path) -> Result<Vec<u8>, KeyError> {
    let bytes = crate::small_file::read(path, MAX_KEY_FILE).map_err(KeyError::Read)?;
    let text = String::from_utf8_lossy(&bytes);
    if text.contains("PRIVATE KEY") {
        return Err(KeyError::Private {
            path: path.to_path_buf(),
        });
    }
    let mut keys = 0;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !is_public_key_line(line) {
            return Err(KeyError::NotPublic {
                path: path.to_path_buf(),
                line: i + 1,
            });
        }
        keys += 1;
    }
    if keys == 0 {
        return Err(KeyError::Empty {
            path: path.to_path_buf(),
        });
    }
    let mut out = bytes;
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    Ok(out)
}

/// The `authorized_keys` content for several `.pub` files, in order.
pub fn authorized_keys(paths: &[PathBuf]) -> Result<Vec<u8>, KeyError> {
    let mut out = Vec::new();
    for p in paths {
        out.extend(read_public_key(p)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdx1Q0XbE3W9r1HqQ0w3l3m8tZ1p2x3y4z5a6b7c8d9 me@host";

    fn write(dir: &Path, name: &str, s: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, s).unwrap();
        p
    }

    #[test]
    fn default_prefers_ed25519_then_rsa() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            default_key(d.path()),
            Err(KeyError::NoDefault { .. })
        ));
        std::fs::create_dir(d.path().join(".ssh")).unwrap();
        let rsa = write(d.path(), ".ssh/id_rsa.pub", ED);
        assert_eq!(default_key(d.path()).unwrap(), rsa);
        let ed = write(d.path(), ".ssh/id_ed25519.pub", ED);
        assert_eq!(default_key(d.path()).unwrap(), ed);
    }

    #[test]
    fn accepts_public_keys_verbatim_and_concatenates() {
        let d = tempfile::tempdir().unwrap();
        let a = write(d.path(), "a.pub", ED);
        let b = write(d.path(), "b.pub", &format!("# team key\nno-pty {ED}\n"));
        let all = authorized_keys(&[a, b]).unwrap();
        let text = String::from_utf8(all).unwrap();
        assert_eq!(text, format!("{ED}\n# team key\nno-pty {ED}\n"));
    }

    #[test]
    fn refuses_private_garbage_and_empty_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "id", "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n");
        let e = read_public_key(&p).unwrap_err();
        assert!(matches!(e, KeyError::Private { .. }));
        assert!(e.to_string().contains("id: this is a private key"));
        let g = write(d.path(), "g.pub", &format!("{ED}\nhello world\n"));
        let e = read_public_key(&g).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let empty = write(d.path(), "e.pub", "\n# nothing\n");
        assert!(matches!(
            read_public_key(&empty),
            Err(KeyError::Empty { .. })
        ));
        let missing = d.path().join("missing.pub");
        assert!(read_public_key(&missing)
            .unwrap_err()
            .to_string()
            .contains("missing.pub"));
        let e = read_public_key(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot read ssh public key: /dev/zero is a character device, not a regular file"
        );
        let big = write(d.path(), "big.pub", &format!("{ED}\n").repeat(3000));
        let e = read_public_key(&big).unwrap_err().to_string();
        assert!(e.contains("big.pub is larger than 256 KiB"), "{e}");
    }
}
