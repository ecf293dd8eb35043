//! Each engine setting checked on its own, before anything boots: a
//! value dockerd would refuse at start-up is refused here with the flag
//! and the value named and what to type instead. Each check returns the
//! value as it is kept (trimmed), or why not.

use super::flags::{self, Kind};
use serde_json::Value;

/// Why a value is refused, naming what to type instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("not a URL: use https://HOST[:PORT] (e.g. https://mirror.gcr.io)")]
    MirrorNotUrl,
    #[error("dockerd takes http or https mirrors, not {0}: use https://HOST[:PORT]")]
    MirrorScheme(String),
    #[error("credentials do not belong in a mirror URL: use `docker login` instead")]
    MirrorCredentials,
    #[error("{0}: use https://HOST[:PORT]")]
    MirrorHost(HostPort),
    #[error("a mirror URL has no query or fragment: use https://HOST[:PORT][/PATH]")]
    MirrorQuery,
    #[error("give the registry without a scheme: HOST[:PORT] (e.g. registry.local:5000) or a CIDR block")]
    RegistryScheme,
    #[error("{0} is not an IP address: a CIDR block is IP/BITS (e.g. 10.0.0.0/8)")]
    CidrAddress(String),
    #[error("/{bits}: the prefix length is 0 to {max} (e.g. 10.0.0.0/8)")]
    CidrPrefix { bits: String, max: u8 },
    #[error("{0}: use HOST[:PORT] (e.g. registry.local:5000)")]
    RegistryHost(HostPort),
    #[error("a label is KEY=VALUE (e.g. --engine-label env=dev)")]
    Label,
    #[error("use NAME=VALUE (e.g. --engine-env HTTP_PROXY=http://proxy:3128)")]
    EnvForm,
    #[error("\"{}\": {why}", name.escape_debug())]
    Env { name: String, why: &'static str },
    #[error(transparent)]
    Proxy(#[from] super::proxy::Newline),
    #[error("`{0} none` empties the list: give it alone")]
    NoneAlone(&'static str),
    #[error("--{long} is b2d's own: {why}; leave it out")]
    B2dFlag { long: String, why: &'static str },
    #[error("--{long}: {what}")]
    Elsewhere { long: String, what: &'static str },
    #[error("dockerd has no daemon flag --{long}: did you mean --engine-opt {near}=…?")]
    FlagNear { long: String, near: &'static str },
    #[error("dockerd has no daemon flag --{0} that b2d passes on: see `dockerd --help`, or put a daemon.json setting in --daemon-json FILE")]
    NoFlag(String),
    #[error("dockerd's --{0} needs a value: use --engine-opt {0}=VALUE")]
    NeedsValue(&'static str),
    #[error("no value: use --engine-opt {0}=VALUE")]
    NoValue(&'static str),
    #[error("--{0} takes true or false")]
    Bool(&'static str),
    #[error("--{0} takes a whole number")]
    Int(&'static str),
    #[error("--{0} takes NAME=VALUE (e.g. --engine-opt {0}=max-size=10m)")]
    Map(&'static str),
    #[error("--log-level takes debug, info, warn, error or fatal")]
    LogLevel,
    #[error("--dns takes an IP address (e.g. --engine-opt dns=1.1.1.1)")]
    Dns,
    #[error("\"{key}\" takes {want}")]
    JsonKind { key: String, want: &'static str },
    #[error("\"{key}\": {item}: {why}")]
    JsonItem {
        key: String,
        item: String,
        why: Box<Invalid>,
    },
    #[error("\"{key}\": {why}")]
    JsonValue { key: String, why: Box<Invalid> },
    #[error("key \"{key}\" is b2d's own: {why}; remove it")]
    B2dKey { key: String, why: &'static str },
    #[error("dockerd 26 has no daemon.json key \"{key}\": did you mean \"{near}\"?")]
    KeyNear { key: String, near: &'static str },
    #[error("dockerd 26 has no daemon.json key \"{0}\": remove it")]
    NoKey(String),
}

/// Why `HOST[:PORT]` is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostPort {
    #[error("{0}: unclosed [")]
    Unclosed(String),
    #[error("{0} is not an IPv6 address")]
    NotIpv6(String),
    #[error("port \"{}\" is not 1 to 65535", .0.escape_debug())]
    Port(String),
    #[error("no host")]
    NoHost,
    #[error("\"{}\" is not a host name", .0.escape_debug())]
    HostName(String),
}

/// `--registry-mirror URL`: http or https, a host, nothing after the path.
pub fn mirror(v: &str) -> Result<String, Invalid> {
    let v = v.trim();
    let Some((scheme, rest)) = v.split_once("://") else {
        return Err(Invalid::MirrorNotUrl);
    };
    if scheme != "http" && scheme != "https" {
        return Err(Invalid::MirrorScheme(scheme.into()));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.contains('@') {
        return Err(Invalid::MirrorCredentials);
    }
    host_port(authority).map_err(Invalid::MirrorHost)?;
    if path.contains(['?', '#']) {
        return Err(Invalid::MirrorQuery);
    }
    Ok(v.to_string())
}

/// `--insecure-registry HOST[:PORT]` or a CIDR block (`10.0.0.0/8`).
pub fn insecure_registry(v: &str) -> Result<String, Invalid> {
    let v = v.trim();
    if v.contains("://") {
        return Err(Invalid::RegistryScheme);
    }
    if let Some((ip, bits)) = v.split_once('/') {
        let ip: std::net::IpAddr = ip.parse().map_err(|_| Invalid::CidrAddress(ip.into()))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match bits.parse::<u8>() {
            Ok(b) if b <= max => {}
            _ => {
                return Err(Invalid::CidrPrefix {
                    bits: bits.into(),
                    max,
                })
            }
        }
        return Ok(v.to_string());
    }
    host_port(v).map_err(Invalid::RegistryHost)?;
    Ok(v.to_string())
}

/// `HOST[:PORT]` with a DNS name or an IP address (IPv6 in brackets).
fn host_port(v: &str) -> Result<(), HostPort> {
    let (host, port) = if let Some(rest) = v.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| HostPort::Unclosed(v.into()))?;
        h.parse::<std::net::Ipv6Addr>()
            .map_err(|_| HostPort::NotIpv6(h.into()))?;
        (None, after.strip_prefix(':'))
    } else {
        match v.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(v), None),
        }
    };
    if let Some(p) = port {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => {}
            _ => return Err(HostPort::Port(p.into())),
        }
    }
    match host {
        None => Ok(()),
        Some("") => Err(HostPort::NoHost),
        Some(h) if hostname_ok(h) || h.parse::<std::net::Ipv4Addr>().is_ok() => Ok(()),
        Some(h) => Err(HostPort::HostName(h.into())),
    }
}

fn hostname_ok(h: &str) -> bool {
    h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `--engine-label KEY=VALUE`.
pub fn label(v: &str) -> Result<String, Invalid> {
    let v = v.trim();
    match v.split_once('=') {
        Some((k, _)) if !k.is_empty() && !k.contains(char::is_whitespace) => Ok(v.to_string()),
        _ => Err(Invalid::Label),
    }
}

/// `--engine-env NAME=VALUE`.
pub fn env(v: &str) -> Result<String, Invalid> {
    let Some((k, val)) = v.split_once('=') else {
        return Err(Invalid::EnvForm);
    };
    match crate::wire::engine::env_problem(k, val) {
        Some(why) => Err(Invalid::Env {
            name: k.into(),
            why,
        }),
        None => Ok(v.to_string()),
    }
}

/// One `--engine-opt KEY=VALUE`, as its daemon.json key and value.
pub fn opt(v: &str) -> Result<(&'static str, Kind, Value), Invalid> {
    let v = v.trim();
    let bare = v.trim_start_matches('-');
    let (name, value) = match bare.split_once('=') {
        Some((n, val)) => (n, Some(val)),
        None => (bare, None),
    };
    let Some(flag) = flags::find(name) else {
        return Err(unknown_flag(name));
    };
    let value = match (flag.kind, value) {
        (Kind::Bool, None) => return Ok((flag.key, flag.kind, Value::Bool(true))),
        (_, None) => return Err(Invalid::NeedsValue(flag.name)),
        (_, Some("")) => return Err(Invalid::NoValue(flag.name)),
        (_, Some(val)) => val,
    };
    let json = match flag.kind {
        Kind::Bool => match value {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(Invalid::Bool(flag.name)),
        },
        Kind::Int => value
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| Invalid::Int(flag.name))?,
        Kind::Str => Value::String(specific(flag.name, value)?),
        Kind::List => Value::String(specific(flag.name, value)?),
        Kind::Map => match value.split_once('=') {
            Some((k, _)) if !k.is_empty() => Value::String(value.to_string()),
            _ => return Err(Invalid::Map(flag.name)),
        },
    };
    Ok((flag.key, flag.kind, json))
}

/// The checks some flags' values get beyond their kind.
fn specific(name: &str, value: &str) -> Result<String, Invalid> {
    match name {
        "registry-mirror" => mirror(value),
        "insecure-registry" => insecure_registry(value),
        "label" => label(value),
        "log-level" => match value {
            "debug" | "info" | "warn" | "error" | "fatal" => Ok(value.into()),
            _ => Err(Invalid::LogLevel),
        },
        "dns" => value
            .parse::<std::net::IpAddr>()
            .map(|_| value.to_string())
            .map_err(|_| Invalid::Dns),
        _ => Ok(value.to_string()),
    }
}

/// Why dockerd flag `name` is not an `--engine-opt`, and what to use.
fn unknown_flag(name: &str) -> Invalid {
    let long = flags::long_name(name);
    if let Some((_, key)) = flags::B2D_FLAGS.iter().find(|(f, _)| *f == long) {
        let why = crate::wire::engine::b2d_key(key).unwrap_or("b2d sets it itself");
        return Invalid::B2dFlag {
            long: long.into(),
            why,
        };
    }
    if let Some((_, what)) = flags::ELSEWHERE.iter().find(|(f, _)| *f == long) {
        return Invalid::Elsewhere {
            long: long.into(),
            what,
        };
    }
    match flags::closest(long, flags::FLAGS.iter().map(|f| f.name)) {
        Some(near) => Invalid::FlagNear {
            long: long.into(),
            near,
        },
        None => Invalid::NoFlag(long.into()),
    }
}

/// Whether daemon.json value `v` fits key `key` (for a key of a known
/// kind); why not otherwise.
pub fn json_value(key: &str, v: &Value) -> Result<(), Invalid> {
    let Some(flag) = flags::FLAGS.iter().find(|f| f.key == key) else {
        return Ok(());
    };
    let ok = match flag.kind {
        Kind::Str => v.is_string(),
        Kind::Bool => v.is_boolean(),
        Kind::Int => v.is_i64(),
        Kind::List => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        Kind::Map => v
            .as_object()
            .is_some_and(|o| o.values().all(Value::is_string)),
    };
    if !ok {
        let want = match flag.kind {
            Kind::Str => "a string",
            Kind::Bool => "true or false",
            Kind::Int => "a whole number",
            Kind::List => "a list of strings",
            Kind::Map => "an object of strings",
        };
        return Err(Invalid::JsonKind {
            key: key.into(),
            want,
        });
    }
    if let (Kind::List, Some(items)) = (flag.kind, v.as_array()) {
        for item in items.iter().filter_map(Value::as_str) {
            specific(flag.name, item).map_err(|e| Invalid::JsonItem {
                key: key.into(),
                item: item.into(),
                why: Box::new(e),
            })?;
        }
    } else if let Some(s) = v.as_str() {
        specific(flag.name, s).map_err(|e| Invalid::JsonValue {
            key: key.into(),
            why: Box::new(e),
        })?;
    }
    Ok(())
}

/// Why daemon.json key `key` cannot be in `--daemon-json`, if it cannot.
pub fn json_key(key: &str) -> Result<(), Invalid> {
    if let Some(why) = crate::wire::engine::b2d_key(key) {
        return Err(Invalid::B2dKey {
            key: key.into(),
            why,
        });
    }
    if flags::json_keys().any(|k| k == key) {
        return Ok(());
    }
    Err(match flags::closest(key, flags::json_keys()) {
        Some(near) => Invalid::KeyNear {
            key: key.into(),
            near,
        },
        None => Invalid::NoKey(key.into()),
    })
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
