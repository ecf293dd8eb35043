//! The docker CLI context `b2d-NAME`, written in the CLI's own store
//! format so `docker --context b2d-NAME …` and `docker context use` work
//! without `eval "$(b2d env)"`:
//!
//! - `$DOCKER_CONFIG` (else `~/.docker`)`/contexts/meta/<id>/meta.json`
//!   with the endpoint `tcp://127.0.0.1:PORT`, TLS verified;
//! - `…/contexts/tls/<id>/docker/{ca,cert,key}.pem`, the machine's client
//!   material;
//!
//! where `<id>` is the hex SHA-256 of the context name. `b2d up` writes it,
//! `b2d rm` removes it; the user's current context is switched only when
//! asked (`b2d up --use-context`), by `currentContext` in `config.json`.

use crate::errors::{PathError, WithPath};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("docker context {name}: {source}")]
    Io {
        name: String,
        #[source]
        source: PathError,
    },
    #[error("{}: not a JSON object; fix or remove it, then run b2d up again", path.display())]
    BadConfig { path: PathBuf },
    /// A file to read that is not a regular file, is too large or
    /// cannot be read; the error names it.
    #[error(transparent)]
    File(#[from] crate::small_file::SmallFileError),
}

/// The most read of a machine's certificate or key file (they are a few
/// hundred bytes).
const CERT_LIMIT: u64 = 64 << 10;

/// The context's name for machine `machine`.
pub fn name(machine: &str) -> String {
    format!("b2d-{machine}")
}

/// The docker CLI's configuration directory.
pub fn config_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker"))
}

fn id(name: &str) -> String {
    format!("{:x}", Sha256::digest(name.as_bytes()))
}

/// Where one context lives: its meta directory and its TLS directory.
pub fn paths(config: &Path, name: &str) -> (PathBuf, PathBuf) {
    let id = id(name);
    (
        config.join("contexts/meta").join(&id),
        config.join("contexts/tls").join(&id),
    )
}

/// Create or update context `name` for `tcp://127.0.0.1:port`, with the
/// client TLS material of `cert_dir` (a `DOCKER_CERT_PATH`: the docker CLI
/// names the files the same in both places).
pub fn write(
    config: &Path,
    name: &str,
    machine: &str,
    port: u16,
    cert_dir: &Path,
) -> Result<(), ContextError> {
    let (meta_dir, tls_dir) = paths(config, name);
    let io = |what: &'static str, path: &Path| {
        let (name, path) = (name.to_string(), path.to_path_buf());
        move |e| ContextError::Io {
            name,
            source: PathError::wrap(what, path, e),
        }
    };
    let written = |source| ContextError::Io {
        name: name.to_string(),
        source,
    };
    let docker_tls = tls_dir.join("docker");
    for d in [&meta_dir, &docker_tls] {
        std::fs::create_dir_all(d).map_err(io("create", d))?;
    }
    for (file, mode) in [("ca.pem", 0o644), ("cert.pem", 0o644), ("key.pem", 0o600)] {
        let src = cert_dir.join(file);
        let data = crate::small_file::read(&src, CERT_LIMIT)?;
        let dst = docker_tls.join(file);
        crate::atomic::write(&dst, &data, mode).map_err(written)?;
    }
    let meta = json!({
        "Name": name,
        "Metadata": { "Description": format!("b2d machine {machine}") },
        "Endpoints": {
            "docker": { "Host": format!("tcp://127.0.0.1:{port}"), "SkipTLSVerify": false }
        }
    });
    let path = meta_dir.join("meta.json");
    crate::atomic::write(&path, meta.to_string().as_bytes(), 0o644).map_err(written)
}

/// Remove context `name`; when it is the current one, the current context
/// goes back to the default.
pub fn remove(config: &Path, name: &str) -> Result<(), ContextError> {
    let (meta_dir, tls_dir) = paths(config, name);
    for d in [meta_dir, tls_dir] {
        match std::fs::remove_dir_all(&d) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(ContextError::Io {
                    name: name.into(),
                    source: PathError::new("remove", d, e),
                })
            }
            _ => {}
        }
    }
    if current(config)?.as_deref() == Some(name) {
        set_current(config, None)?;
    }
    Ok(())
}

fn read_config(config: &Path) -> Result<(PathBuf, Value), ContextError> {
    let path = config.join("config.json");
    match crate::small_file::read_if_there(&path, crate::small_file::JSON_LIMIT)? {
        Some(b) => match serde_json::from_slice::<Value>(&b) {
            Ok(v @ Value::Object(_)) => Ok((path, v)),
            _ => Err(ContextError::BadConfig { path }),
        },
        None => Ok((path, json!({}))),
    }
}

/// The docker CLI's current context, if one is set in its config.json.
pub fn current(config: &Path) -> Result<Option<String>, ContextError> {
    let (_, v) = read_config(config)?;
    Ok(v.get("currentContext")
        .and_then(Value::as_str)
        .map(str::to_string))
}

/// Set (or clear) the current context, keeping every other setting.
pub fn set_current(config: &Path, name: Option<&str>) -> Result<(), ContextError> {
    let (path, mut v) = read_config(config)?;
    let Some(obj) = v.as_object_mut() else {
        return Err(ContextError::BadConfig { path });
    };
    match name {
        Some(n) => {
            obj.insert("currentContext".into(), Value::String(n.into()));
        }
        None => {
            obj.remove("currentContext");
        }
    }
    let failed = |source| ContextError::Io {
        name: name.unwrap_or_default().into(),
        source,
    };
    std::fs::create_dir_all(config)
        .with_path("create", config)
        .map_err(failed)?;
    let text = serde_json::to_vec_pretty(&v)
        .map_err(|e| failed(PathError::new("encode", &path, e.into())))?;
    crate::atomic::write(&path, &text, 0o600).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn material(d: &Path) {
        std::fs::write(d.join("ca.pem"), "CA").unwrap();
        std::fs::write(d.join("cert.pem"), "CERT").unwrap();
        std::fs::write(d.join("key.pem"), "KEY").unwrap();
    }

    /// The real docker CLI (a test dependency, in .ci/deps) reads what we
    /// wrote: endpoint, TLS material, and the current context.
    #[test]
    fn the_docker_cli_reads_the_context() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("docker");
        material(d.path());
        write(&cfg, "b2d-dev", "dev", 40123, d.path()).unwrap();
        // A second write updates in place.
        write(&cfg, "b2d-dev", "dev", 40124, d.path()).unwrap();
        let out = Command::new("docker")
            .env("DOCKER_CONFIG", &cfg)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .args(["context", "inspect", "b2d-dev"])
            .output()
            .expect("docker CLI (see .ci/deps)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let c = &v[0];
        assert_eq!(c["Name"], "b2d-dev");
        assert_eq!(c["Endpoints"]["docker"]["Host"], "tcp://127.0.0.1:40124");
        assert_eq!(c["Endpoints"]["docker"]["SkipTLSVerify"], false);
        let files: Vec<&str> = c["TLSMaterial"]["docker"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(files, vec!["ca.pem", "cert.pem", "key.pem"]);
        let (_, tls_dir) = paths(&cfg, "b2d-dev");
        assert_eq!(
            std::fs::read(tls_dir.join("docker/key.pem")).unwrap(),
            b"KEY"
        );

        // Not switched unless asked; then `docker context show` agrees.
        assert_eq!(current(&cfg).unwrap(), None);
        std::fs::write(cfg.join("config.json"), r#"{"auths":{"r.example":{}}}"#).unwrap();
        set_current(&cfg, Some("b2d-dev")).unwrap();
        let shown = Command::new("docker")
            .env("DOCKER_CONFIG", &cfg)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .args(["context", "show"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), "b2d-dev");

        // Removing it clears it as current and keeps the other settings.
        remove(&cfg, "b2d-dev").unwrap();
        let (meta, tls_dir) = paths(&cfg, "b2d-dev");
        assert!(!meta.exists() && !tls_dir.exists());
        let conf: Value =
            serde_json::from_slice(&std::fs::read(cfg.join("config.json")).unwrap()).unwrap();
        assert!(conf.get("currentContext").is_none());
        assert!(conf["auths"].get("r.example").is_some());
        remove(&cfg, "b2d-dev").unwrap(); // twice is fine
    }

    #[test]
    fn a_broken_docker_config_is_named_not_overwritten() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("config.json"), "[1,2").unwrap();
        let e = set_current(d.path(), Some("b2d-x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("config.json: not a JSON object"), "{e}");
        assert_eq!(
            std::fs::read_to_string(d.path().join("config.json")).unwrap(),
            "[1,2"
        );
    }

    #[test]
    fn a_docker_config_that_is_a_fifo_or_too_large_is_refused_unread() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("config.json");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = current(d.path()).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("{} is a FIFO, not a regular file", path.display())
        );
        std::fs::remove_file(&path).unwrap();
        let mut big = b"{\"a\":\"".to_vec();
        big.resize((1 << 20) + 1, b'x');
        std::fs::write(&path, &big).unwrap();
        let e = set_current(d.path(), Some("b2d-x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("config.json is larger than 1 MiB"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), big, "left as it was");
    }

    #[test]
    fn the_id_is_the_sha256_of_the_name() {
        // `printf b2d-default | sha256sum`
        assert_eq!(
            id("b2d-default"),
            "0bba64b44563e4ca747798bf04bc75f286b20edd548883737369a71b5c5597c7"
        );
        assert_eq!(name("dev"), "b2d-dev");
    }
}
