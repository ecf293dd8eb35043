//! `--proxy-from-env`: the host's `HTTP_PROXY`, `HTTPS_PROXY` and
//! `NO_PROXY` (or their lower-case spellings) for dockerd, read by the
//! `b2d up` that boots. A proxy on the host's own loopback
//! (`localhost`, `127.0.0.1`, `[::1]`) is the host as the guest sees it,
//! [`HOST_FROM_GUEST`] under QEMU's user networking.

use crate::wire::engine::HOST_FROM_GUEST;
use std::collections::BTreeMap;

/// The variables passed on, each with its lower-case spelling.
pub const VARS: &[(&str, &str)] = &[
    ("HTTP_PROXY", "http_proxy"),
    ("HTTPS_PROXY", "https_proxy"),
    ("NO_PROXY", "no_proxy"),
];

fn loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host == "127.0.0.1"
        || host == "[::1]"
        || host == "::1"
}

/// A proxy URL (`http://user:pw@127.0.0.1:3128/`, or a bare
/// `localhost:3128`) with a loopback host replaced by the host's address
/// as the guest sees it; anything else unchanged.
pub fn rewrite_url(v: &str) -> String {
    let (scheme, rest) = match v.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, v),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = if hostport.starts_with('[') {
        match hostport.split_once(']') {
            Some((h, p)) => (&hostport[..h.len() + 1], p),
            None => (hostport, ""),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, &hostport[h.len()..][..p.len() + 1]),
            None => (hostport, ""),
        }
    };
    if !loopback(host) {
        return v.to_string();
    }
    let mut out = String::new();
    if let Some(s) = scheme {
        out += s;
        out += "://";
    }
    if let Some(u) = user {
        out += u;
        out.push('@');
    }
    out += HOST_FROM_GUEST;
    out += port;
    out += tail;
    out
}

/// A `NO_PROXY` list with its loopback entries replaced the same way
/// (each once).
pub fn rewrite_list(v: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let item = if loopback(item) {
            HOST_FROM_GUEST.to_string()
        } else {
            item.to_string()
        };
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out.join(",")
}

/// A proxy variable whose value dockerd's environment cannot carry (it
/// holds a newline or a NUL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("its value in your environment holds a newline")]
pub struct Newline {
    pub var: &'static str,
}

/// The proxy variables for dockerd from the host's environment (`get`
/// looks one up), rewritten; an empty variable is left out. The error
/// names a variable whose value dockerd could not be given.
pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<BTreeMap<String, String>, Newline> {
    let mut out = BTreeMap::new();
    for (upper, lower) in VARS {
        let Some(v) = get(upper)
            .filter(|v| !v.is_empty())
            .or_else(|| get(lower).filter(|v| !v.is_empty()))
        else {
            continue;
        };
        if v.contains(['\0', '\n']) {
            return Err(Newline { var: upper });
        }
        let v = if *upper == "NO_PROXY" {
            rewrite_list(&v)
        } else {
            rewrite_url(v.trim())
        };
        out.insert(upper.to_string(), v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_proxies_become_the_host_as_the_guest_sees_it() {
        for (from, to) in [
            ("http://127.0.0.1:3128", "http://10.0.2.2:3128"),
            ("http://localhost:3128/", "http://10.0.2.2:3128/"),
            ("http://LOCALHOST", "http://10.0.2.2"),
            ("http://u:p@127.0.0.1:8080", "http://u:p@10.0.2.2:8080"),
            ("socks5://[::1]:1080", "socks5://10.0.2.2:1080"),
            ("127.0.0.1:3128", "10.0.2.2:3128"),
            ("http://proxy.corp:3128", "http://proxy.corp:3128"),
            ("http://127.0.0.10:3128", "http://127.0.0.10:3128"),
            ("http://u@localhost.corp", "http://u@localhost.corp"),
        ] {
            assert_eq!(rewrite_url(from), to, "{from}");
        }
        assert_eq!(
            rewrite_list("localhost, 127.0.0.1,.corp,,::1"),
            "10.0.2.2,.corp"
        );
    }

    #[test]
    fn upper_case_wins_and_empty_is_left_out() {
        let env = |k: &str| {
            match k {
                "HTTP_PROXY" => Some("http://127.0.0.1:3128"),
                "http_proxy" => Some("http://ignored:1"),
                "HTTPS_PROXY" => Some(""),
                "https_proxy" => Some("http://localhost:3129"),
                "no_proxy" => Some("localhost,.corp"),
                _ => None,
            }
            .map(str::to_string)
        };
        let got = from_env(&env).unwrap();
        assert_eq!(got["HTTP_PROXY"], "http://10.0.2.2:3128");
        assert_eq!(got["HTTPS_PROXY"], "http://10.0.2.2:3129");
        assert_eq!(got["NO_PROXY"], "10.0.2.2,.corp");
        assert!(from_env(&|_| None).unwrap().is_empty());
        let bad = from_env(&|k| (k == "NO_PROXY").then(|| "a\nb".to_string())).unwrap_err();
        assert_eq!(bad.var, "NO_PROXY");
    }
}
