//! A machine's engine settings (`b2d up --engine-opt …`, and the same
//! flags on `b2d disk create`): what `config.json` keeps
//! ([`EngineConfig`]), how the flags of one command change it
//! ([`apply`]), and the merged settings the guest applies at every boot
//! ([`for_guest`], the wire type [`Engine`]).
//!
//! Everything is checked here, before anything boots: an unknown or
//! malformed setting is refused with the flag and the key named. Merge
//! order: b2d's own settings (dockerd flags, never daemon.json keys),
//! then `--daemon-json`, then the flags; a list flag adds to the file's
//! list, any other flag replaces the file's value.

pub mod ca;
pub mod check;
pub mod flags;
pub mod proxy;

use crate::wire::engine::{Engine, MAX_SIZE};
use check::Invalid;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

pub use ca::CaCert;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{flag} {arg}: {why}")]
    Bad {
        flag: &'static str,
        arg: String,
        #[source]
        why: Invalid,
    },
    #[error("{flag} {}: {why}", path.display())]
    File {
        flag: &'static str,
        path: PathBuf,
        #[source]
        why: FileProblem,
    },
    #[error("the engine settings come to {size} bytes, over the {MAX_SIZE} a machine carries: give fewer or smaller --ca-cert files")]
    TooBig { size: usize },
}

pub use crate::host::store::config::{DaemonJson, EngineConfig};

/// Why a `--daemon-json` or `--ca-cert` file is refused (the error names
/// the flag and the file).
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    #[error("{0}")]
    Open(#[source] std::io::Error),
    /// The flag's error names the file: only what is wrong with it.
    #[error("{}", .0.why())]
    Read(crate::small_file::SmallFileError),
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("daemon.json holds one JSON object, {{…}}")]
    NotObject,
    #[error(transparent)]
    Setting(#[from] Invalid),
    #[error(transparent)]
    Ca(#[from] ca::CaError),
}

/// The engine flags of one command, as typed. A list flag given replaces
/// the machine's list; `none` alone empties it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineArgs {
    pub opts: Vec<String>,
    pub env: Vec<String>,
    pub registry_mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub labels: Vec<String>,
    /// A file, or `none`.
    pub daemon_json: Option<PathBuf>,
    /// `--proxy-from-env` (true) or `--no-proxy-from-env` (false).
    pub proxy_from_env: Option<bool>,
    /// Files, or `none`.
    pub ca_certs: Vec<PathBuf>,
}

impl EngineArgs {
    pub fn is_empty(&self) -> bool {
        *self == EngineArgs::default()
    }
}

const NONE: &str = "none";

/// The values a list flag was given: None if it was not, none for
/// `none` (which must come alone).
fn given<'a, T: AsRef<std::ffi::OsStr>>(
    values: &'a [T],
    flag: &'static str,
) -> Result<Option<&'a [T]>, EngineError> {
    let none = values.iter().any(|v| v.as_ref() == NONE);
    match (values.len(), none) {
        (0, _) => Ok(None),
        (1, true) => Ok(Some(&[])),
        (_, true) => Err(EngineError::Bad {
            flag,
            arg: NONE.into(),
            why: Invalid::NoneAlone(flag),
        }),
        _ => Ok(Some(values)),
    }
}

/// A list flag's new value, each checked: None if not given, empty for
/// `none`.
fn list(
    values: &[String],
    flag: &'static str,
    check: fn(&str) -> Result<String, Invalid>,
) -> Result<Option<Vec<String>>, EngineError> {
    let Some(values) = given(values, flag)? else {
        return Ok(None);
    };
    let mut out: Vec<String> = Vec::new();
    for g in values {
        let v = check(g).map_err(|why| EngineError::Bad {
            flag,
            arg: g.clone(),
            why,
        })?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(Some(out))
}

fn opt(v: &str) -> Result<String, Invalid> {
    check::opt(v).map(|_| v.trim().to_string())
}

/// `old` with the flags of `a` applied, every value checked and every
/// file read.
pub fn apply(old: &EngineConfig, a: &EngineArgs) -> Result<EngineConfig, EngineError> {
    let mut c = old.clone();
    if let Some(v) = list(&a.opts, "--engine-opt", opt)? {
        c.opts = v;
    }
    if let Some(v) = list(&a.env, "--engine-env", check::env)? {
        c.env = v;
    }
    if let Some(v) = list(&a.registry_mirrors, "--registry-mirror", check::mirror)? {
        c.registry_mirrors = v;
    }
    if let Some(v) = list(
        &a.insecure_registries,
        "--insecure-registry",
        check::insecure_registry,
    )? {
        c.insecure_registries = v;
    }
    if let Some(v) = list(&a.labels, "--engine-label", check::label)? {
        c.labels = v;
    }
    match &a.daemon_json {
        None => {}
        Some(p) if p.as_os_str() == NONE => c.daemon_json = None,
        Some(p) => c.daemon_json = Some(read_daemon_json(p)?),
    }
    if let Some(b) = a.proxy_from_env {
        c.proxy_from_env = b;
    }
    if let Some(files) = given(&a.ca_certs, "--ca-cert")? {
        c.ca_certs = Vec::new();
        for p in files {
            for cert in read_ca(p)? {
                if !c.ca_certs.iter().any(|o| o.pem == cert.pem) {
                    c.ca_certs.push(cert);
                }
            }
        }
    }
    Ok(c)
}

fn file_err<W: Into<FileProblem>>(flag: &'static str, path: &Path) -> impl Fn(W) -> EngineError {
    let path = path.to_path_buf();
    move |why| EngineError::File {
        flag,
        path: path.clone(),
        why: why.into(),
    }
}

/// Read a regular file of at most `MAX_SIZE` bytes (what a machine
/// carries); a device, a FIFO or a larger file is refused unread.
fn read_small(flag: &'static str, path: &Path) -> Result<(PathBuf, Vec<u8>), EngineError> {
    let bad = file_err(flag, path);
    let abs = std::fs::canonicalize(path).map_err(|e| bad(FileProblem::Open(e)))?;
    let data =
        crate::small_file::read(&abs, MAX_SIZE as u64).map_err(|e| bad(FileProblem::Read(e)))?;
    Ok((abs, data))
}

/// `--daemon-json FILE`: a JSON object of dockerd 26's keys, none of them
/// b2d's own, each value of its key's kind.
pub fn read_daemon_json(path: &Path) -> Result<DaemonJson, EngineError> {
    let (from, data) = read_small("--daemon-json", path)?;
    let bad = file_err("--daemon-json", path);
    let v: Value = serde_json::from_slice(&data).map_err(|e| bad(FileProblem::NotJson(e)))?;
    let Value::Object(settings) = v else {
        return Err(bad(FileProblem::NotObject));
    };
    for (k, v) in &settings {
        check::json_key(k).map_err(|e| bad(e.into()))?;
        check::json_value(k, v).map_err(|e| bad(e.into()))?;
    }
    Ok(DaemonJson { from, settings })
}

fn read_ca(path: &Path) -> Result<Vec<CaCert>, EngineError> {
    let (from, data) = read_small("--ca-cert", path)?;
    ca::parse(&data, &from).map_err(file_err("--ca-cert", path))
}

/// Add `value` to daemon.json: to the list or object of a repeatable
/// flag, else in place of what the file said.
fn merge(daemon: &mut Map<String, Value>, key: &str, kind: flags::Kind, value: Value) {
    match kind {
        flags::Kind::List => {
            let slot = daemon
                .entry(key.to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            if let Value::Array(items) = slot {
                if !items.contains(&value) {
                    items.push(value);
                }
            }
        }
        flags::Kind::Map => {
            let (name, val) = value
                .as_str()
                .and_then(|s| s.split_once('='))
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .unwrap_or_default();
            let slot = daemon
                .entry(key.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(o) = slot {
                o.insert(name, Value::String(val));
            }
        }
        _ => {
            daemon.insert(key.to_string(), value);
        }
    }
}

/// The settings the guest applies: daemon.json merged, dockerd's
/// environment (the host's proxies through `host_env` when
/// `--proxy-from-env`, then `--engine-env`), the CA certificates.
pub fn for_guest(
    c: &EngineConfig,
    host_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Engine, EngineError> {
    let bad = |flag, arg: &str, why: Invalid| EngineError::Bad {
        flag,
        arg: arg.to_string(),
        why,
    };
    let mut e = Engine::default();
    if let Some(d) = &c.daemon_json {
        e.daemon = d.settings.clone();
    }
    for o in &c.opts {
        let (key, kind, value) = check::opt(o).map_err(|why| bad("--engine-opt", o, why))?;
        merge(&mut e.daemon, key, kind, value);
    }
    for (flag, key, values, check) in [
        (
            "--registry-mirror",
            "registry-mirrors",
            &c.registry_mirrors,
            check::mirror as fn(&str) -> Result<String, Invalid>,
        ),
        (
            "--insecure-registry",
            "insecure-registries",
            &c.insecure_registries,
            check::insecure_registry,
        ),
        ("--engine-label", "labels", &c.labels, check::label),
    ] {
        for v in values {
            let v = check(v).map_err(|why| bad(flag, v, why))?;
            merge(&mut e.daemon, key, flags::Kind::List, Value::String(v));
        }
    }
    if c.proxy_from_env {
        e.env = proxy::from_env(host_env).map_err(|e| bad("--proxy-from-env", e.var, e.into()))?;
    }
    for v in &c.env {
        let v = check::env(v).map_err(|why| bad("--engine-env", v, why))?;
        if let Some((k, val)) = v.split_once('=') {
            e.env.insert(k.to_string(), val.to_string());
        }
    }
    e.ca_certs = c.ca_certs.iter().map(|c| c.pem.clone()).collect();
    let size = e.to_json().len();
    if size > MAX_SIZE {
        return Err(EngineError::TooBig { size });
    }
    Ok(e)
}

/// [`for_guest`] with this process's environment.
pub fn for_guest_here(c: &EngineConfig) -> Result<Engine, EngineError> {
    for_guest(c, &|k| std::env::var(k).ok())
}

/// The flags that would change `old` into `new`, as the user would type
/// them (for `up` of a running machine, which cannot take them now).
pub fn changed(old: &EngineConfig, new: &EngineConfig) -> Vec<String> {
    let mut out = Vec::new();
    let lists = [
        ("--engine-opt", &old.opts, &new.opts),
        ("--engine-env", &old.env, &new.env),
        (
            "--registry-mirror",
            &old.registry_mirrors,
            &new.registry_mirrors,
        ),
        (
            "--insecure-registry",
            &old.insecure_registries,
            &new.insecure_registries,
        ),
        ("--engine-label", &old.labels, &new.labels),
    ];
    for (flag, a, b) in lists {
        if a != b {
            out.push(match b.is_empty() {
                true => format!("{flag} none"),
                false => b
                    .iter()
                    .map(|v| format!("{flag} {v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
    }
    if old.daemon_json != new.daemon_json {
        out.push(match &new.daemon_json {
            Some(d) => format!("--daemon-json {}", d.from.display()),
            None => "--daemon-json none".into(),
        });
    }
    if old.proxy_from_env != new.proxy_from_env {
        out.push(match new.proxy_from_env {
            true => "--proxy-from-env".into(),
            false => "--no-proxy-from-env".into(),
        });
    }
    if old.ca_certs != new.ca_certs {
        let mut files: Vec<String> = new
            .ca_certs
            .iter()
            .map(|c| c.from.display().to_string())
            .collect();
        files.dedup();
        out.push(match files.is_empty() {
            true => "--ca-cert none".into(),
            false => files
                .iter()
                .map(|f| format!("--ca-cert {f}"))
                .collect::<Vec<_>>()
                .join(" "),
        });
    }
    out
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
