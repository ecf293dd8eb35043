//! The machine's engine settings ([`crate::wire::engine`]), applied at
//! every boot before the services start: `/etc/docker/daemon.json`,
//! dockerd's environment and the extra CA certificates in the trust
//! store (`/etc/ssl/certs/ca-certificates.crt`, which dockerd's registry
//! client reads, and a copy of each in `/usr/local/share/ca-certificates`).
//! The root is a tmpfs overlay, so each boot starts from the ISO's files
//! and nothing is applied twice.
//!
//! Where the settings come from: the host's per-boot config (fw_cfg)
//! when it has them, kept in the state directory for boots without one;
//! else that kept copy, which the userdata's `.b2d/engine.json` put there
//! at the disk's first boot.

use crate::errors::{PathError, WithPath};
use crate::wire::engine::{Engine, FILE_NAME};
use std::path::{Path, PathBuf};

/// Where the guest keeps the settings it applied (`b2d_dir` is
/// `/var/lib/boot2docker/b2d`, root-only).
pub fn kept(b2d_dir: &Path) -> PathBuf {
    b2d_dir.join(FILE_NAME)
}

/// This boot's settings: `from_host` when the host sent some (and then
/// kept for later boots), else the kept ones, else none.
pub fn settings(from_host: Option<&Engine>, b2d_dir: &Path) -> Engine {
    let path = kept(b2d_dir);
    if let Some(e) = from_host {
        let text = e.to_json();
        if std::fs::read(&path).ok().as_deref() != Some(&text[..]) {
            let r = std::fs::create_dir_all(b2d_dir)
                .with_path("create directory", b2d_dir)
                .and_then(|()| crate::atomic::write(&path, &text, 0o600));
            if let Err(e) = r {
                log::warn!("engine: cannot keep the host's settings: {e}");
            }
        }
        return e.clone();
    }
    match std::fs::read(&path) {
        Ok(text) => Engine::parse(&text).unwrap_or_else(|e| {
            log::error!(
                "engine: {} is not engine settings ({e}); none applied",
                path.display()
            );
            Engine::default()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Engine::default(),
        Err(e) => {
            log::error!("engine: cannot read {}: {e}; none applied", path.display());
            Engine::default()
        }
    }
}

/// Roots of the files [`apply`] writes (`/` at boot).
#[derive(Debug, Clone)]
pub struct Paths {
    pub etc: PathBuf,
    /// `/usr/local/share/ca-certificates`.
    pub local_cas: PathBuf,
}

impl Paths {
    pub fn under(root: &Path, etc: &Path) -> Paths {
        Paths {
            etc: etc.to_path_buf(),
            local_cas: root.join("usr/local/share/ca-certificates"),
        }
    }

    pub fn daemon_json(&self) -> PathBuf {
        self.etc.join("docker/daemon.json")
    }

    pub fn bundle(&self) -> PathBuf {
        self.etc.join("ssl/certs/ca-certificates.crt")
    }
}

/// Write daemon.json and the CA certificates; returns dockerd's extra
/// environment. What is wrong is logged, and left out.
pub fn apply(p: &Paths, e: &Engine) -> Vec<(String, String)> {
    for problem in e.problems() {
        log::error!("engine: {problem}");
    }
    let e = e.usable();
    if !e.daemon.is_empty() {
        let keys: Vec<&str> = e.daemon.keys().map(String::as_str).collect();
        match write_daemon_json(p, &e) {
            Ok(()) => log::info!(
                "engine: {} written ({})",
                p.daemon_json().display(),
                keys.join(", ")
            ),
            Err(err) => log::error!("engine: {err}; dockerd starts without these settings"),
        }
    }
    if !e.ca_certs.is_empty() {
        match add_cas(p, &e.ca_certs) {
            Ok(n) => log::info!(
                "engine: {n} CA certificate(s) added to {}",
                p.bundle().display()
            ),
            Err(err) => log::error!("engine: {err}; the extra CA certificates are not trusted"),
        }
    }
    if !e.env.is_empty() {
        let names: Vec<&str> = e.env.keys().map(String::as_str).collect();
        log::info!("engine: dockerd's environment sets {}", names.join(", "));
    }
    e.env.into_iter().collect()
}

fn write_daemon_json(p: &Paths, e: &Engine) -> Result<(), PathError> {
    let path = p.daemon_json();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_path("create directory", dir)?;
    }
    let mut text = serde_json::to_vec_pretty(&e.daemon).unwrap_or_default();
    text.push(b'\n');
    crate::atomic::replace(&path, &text, 0o644)
}

/// Each certificate into `local_cas` and, once, into the bundle
/// (replaced whole, never torn); returns how many the bundle gained.
fn add_cas(p: &Paths, pems: &[String]) -> Result<usize, PathError> {
    std::fs::create_dir_all(&p.local_cas).with_path("create directory", &p.local_cas)?;
    for (i, pem) in pems.iter().enumerate() {
        let f = p.local_cas.join(format!("b2d-{}.crt", i + 1));
        crate::atomic::replace(&f, pem.as_bytes(), 0o644)?;
    }
    let bundle = p.bundle();
    let mut text = match std::fs::read_to_string(&bundle) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_path("read", &bundle),
    };
    let mut added = 0;
    for pem in pems {
        if text.contains(pem.trim()) {
            continue;
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(pem.trim());
        text.push('\n');
        added += 1;
    }
    if added > 0 {
        if let Some(dir) = bundle.parent() {
            std::fs::create_dir_all(dir).with_path("create directory", dir)?;
        }
        crate::atomic::replace(&bundle, text.as_bytes(), 0o644)?;
    }
    Ok(added)
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
