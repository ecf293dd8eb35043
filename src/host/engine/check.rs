//! Each engine setting checked on its own, before anything boots: a
//! value dockerd would refuse at start-up is refused here with the flag
//! and the value named and what to type instead. Each check returns the
//! value as it is kept (trimmed), or why not.

use super::flags::{self, Kind};
use serde_json::Value;

/// `--registry-mirror URL`: http or https, a host, nothing after the path.
pub fn mirror(v: &str) -> Result<String, String> {
    let v = v.trim();
    let Some((scheme, rest)) = v.split_once("://") else {
        return Err("not a URL: use https://HOST[:PORT] (e.g. https://mirror.gcr.io)".into());
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "dockerd takes http or https mirrors, not {scheme}: use https://HOST[:PORT]"
        ));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.contains('@') {
        return Err("credentials do not belong in a mirror URL: use `docker login` instead".into());
    }
    host_port(authority).map_err(|e| format!("{e}: use https://HOST[:PORT]"))?;
    if path.contains(['?', '#']) {
        return Err("a mirror URL has no query or fragment: use https://HOST[:PORT][/PATH]".into());
    }
    Ok(v.to_string())
}

/// `--insecure-registry HOST[:PORT]` or a CIDR block (`10.0.0.0/8`).
pub fn insecure_registry(v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.contains("://") {
        return Err("give the registry without a scheme: HOST[:PORT] (e.g. registry.local:5000) or a CIDR block".into());
    }
    if let Some((ip, bits)) = v.split_once('/') {
        let ip: std::net::IpAddr = ip.parse().map_err(|_| {
            format!("{ip} is not an IP address: a CIDR block is IP/BITS (e.g. 10.0.0.0/8)")
        })?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match bits.parse::<u8>() {
            Ok(b) if b <= max => {}
            _ => {
                return Err(format!(
                    "/{bits}: the prefix length is 0 to {max} (e.g. 10.0.0.0/8)"
                ))
            }
        }
        return Ok(v.to_string());
    }
    host_port(v).map_err(|e| format!("{e}: use HOST[:PORT] (e.g. registry.local:5000)"))?;
    Ok(v.to_string())
}

/// `HOST[:PORT]` with a DNS name or an IP address (IPv6 in brackets).
fn host_port(v: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = v.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{v}: unclosed ["))?;
        h.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{h} is not an IPv6 address"))?;
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
            _ => return Err(format!("port \"{}\" is not 1 to 65535", p.escape_debug())),
        }
    }
    match host {
        None => Ok(()),
        Some("") => Err("no host".into()),
        Some(h) if hostname_ok(h) || h.parse::<std::net::Ipv4Addr>().is_ok() => Ok(()),
        Some(h) => Err(format!("\"{}\" is not a host name", h.escape_debug())),
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
pub fn label(v: &str) -> Result<String, String> {
    let v = v.trim();
    match v.split_once('=') {
        Some((k, _)) if !k.is_empty() && !k.contains(char::is_whitespace) => Ok(v.to_string()),
        _ => Err("a label is KEY=VALUE (e.g. --engine-label env=dev)".into()),
    }
}

/// `--engine-env NAME=VALUE`.
pub fn env(v: &str) -> Result<String, String> {
    let Some((k, val)) = v.split_once('=') else {
        return Err("use NAME=VALUE (e.g. --engine-env HTTP_PROXY=http://proxy:3128)".into());
    };
    match crate::wire::engine::env_problem(k, val) {
        Some(why) => Err(format!("\"{}\": {why}", k.escape_debug())),
        None => Ok(v.to_string()),
    }
}

/// One `--engine-opt KEY=VALUE`, as its daemon.json key and value.
pub fn opt(v: &str) -> Result<(&'static str, Kind, Value), String> {
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
        (_, None) => {
            return Err(format!(
                "dockerd's --{} needs a value: use --engine-opt {}=VALUE",
                flag.name, flag.name
            ))
        }
        (_, Some("")) => return Err(format!("no value: use --engine-opt {}=VALUE", flag.name)),
        (_, Some(val)) => val,
    };
    let json = match flag.kind {
        Kind::Bool => match value {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(format!("--{} takes true or false", flag.name)),
        },
        Kind::Int => value
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("--{} takes a whole number", flag.name))?,
        Kind::Str => Value::String(specific(flag.name, value)?),
        Kind::List => Value::String(specific(flag.name, value)?),
        Kind::Map => match value.split_once('=') {
            Some((k, _)) if !k.is_empty() => Value::String(value.to_string()),
            _ => {
                return Err(format!(
                    "--{} takes NAME=VALUE (e.g. --engine-opt {}=max-size=10m)",
                    flag.name, flag.name
                ))
            }
        },
    };
    Ok((flag.key, flag.kind, json))
}

/// The checks some flags' values get beyond their kind.
fn specific(name: &str, value: &str) -> Result<String, String> {
    match name {
        "registry-mirror" => mirror(value),
        "insecure-registry" => insecure_registry(value),
        "label" => label(value),
        "log-level" => match value {
            "debug" | "info" | "warn" | "error" | "fatal" => Ok(value.into()),
            _ => Err("--log-level takes debug, info, warn, error or fatal".into()),
        },
        "dns" => value
            .parse::<std::net::IpAddr>()
            .map(|_| value.to_string())
            .map_err(|_| "--dns takes an IP address (e.g. --engine-opt dns=1.1.1.1)".into()),
        _ => Ok(value.to_string()),
    }
}

/// Why dockerd flag `name` is not an `--engine-opt`, and what to use.
fn unknown_flag(name: &str) -> String {
    let long = flags::long_name(name);
    if let Some((_, key)) = flags::B2D_FLAGS.iter().find(|(f, _)| *f == long) {
        let why = crate::wire::engine::b2d_key(key).unwrap_or("b2d sets it itself");
        return format!("--{long} is b2d's own: {why}; leave it out");
    }
    if let Some((_, what)) = flags::ELSEWHERE.iter().find(|(f, _)| *f == long) {
        return format!("--{long}: {what}");
    }
    match flags::closest(long, flags::FLAGS.iter().map(|f| f.name)) {
        Some(near) => format!("dockerd has no daemon flag --{long}: did you mean --engine-opt {near}=…?"),
        None => format!(
            "dockerd has no daemon flag --{long} that b2d passes on: see `dockerd --help`, or put a daemon.json setting in --daemon-json FILE"
        ),
    }
}

/// Whether daemon.json value `v` fits key `key` (for a key of a known
/// kind); why not otherwise.
pub fn json_value(key: &str, v: &Value) -> Result<(), String> {
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
        return Err(format!("\"{key}\" takes {want}"));
    }
    if let (Kind::List, Some(items)) = (flag.kind, v.as_array()) {
        for item in items.iter().filter_map(Value::as_str) {
            specific(flag.name, item).map_err(|e| format!("\"{key}\": {item}: {e}"))?;
        }
    } else if let Some(s) = v.as_str() {
        specific(flag.name, s).map_err(|e| format!("\"{key}\": {e}"))?;
    }
    Ok(())
}

/// Why daemon.json key `key` cannot be in `--daemon-json`, if it cannot.
pub fn json_key(key: &str) -> Result<(), String> {
    if let Some(why) = crate::wire::engine::b2d_key(key) {
        return Err(format!("key \"{key}\" is b2d's own: {why}; remove it"));
    }
    if flags::json_keys().any(|k| k == key) {
        return Ok(());
    }
    Err(match flags::closest(key, flags::json_keys()) {
        Some(near) => {
            format!("dockerd 26 has no daemon.json key \"{key}\": did you mean \"{near}\"?")
        }
        None => format!("dockerd 26 has no daemon.json key \"{key}\": remove it"),
    })
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
