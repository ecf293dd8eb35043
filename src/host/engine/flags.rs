//! The dockerd 26 daemon flags `--engine-opt` takes, each with its
//! daemon.json key and the kind of value it holds, and the daemon.json
//! keys `--daemon-json` may hold. Flags whose value is a structure
//! (`--default-ulimit`, `--default-address-pool`, `--add-runtime`…) are
//! left to `--daemon-json`; b2d's own (`-H`, `--tls*`, `--containerd`…)
//! are refused with why ([`crate::wire::engine::B2D_KEYS`]).

/// What a flag's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Bool,
    Int,
    /// Repeatable: a list in daemon.json.
    List,
    /// Repeatable `NAME=VALUE`: an object in daemon.json (`log-opts`).
    Map,
}

/// One flag: its name without `--`, its daemon.json key, its kind.
pub struct Flag {
    pub name: &'static str,
    pub key: &'static str,
    pub kind: Kind,
}

const fn f(name: &'static str, key: &'static str, kind: Kind) -> Flag {
    Flag { name, key, kind }
}

use Kind::*;

/// dockerd 26's daemon flags that make sense in a b2d machine.
pub const FLAGS: &[Flag] = &[
    f(
        "allow-nondistributable-artifacts",
        "allow-nondistributable-artifacts",
        List,
    ),
    f("authorization-plugin", "authorization-plugins", List),
    f("bip", "bip", Str),
    f("bridge", "bridge", Str),
    f("cdi-spec-dir", "cdi-spec-dirs", List),
    f("cgroup-parent", "cgroup-parent", Str),
    f("containerd-namespace", "containerd-namespace", Str),
    f(
        "containerd-plugins-namespace",
        "containerd-plugins-namespace",
        Str,
    ),
    f("cpu-rt-period", "cpu-rt-period", Int),
    f("cpu-rt-runtime", "cpu-rt-runtime", Int),
    f("debug", "debug", Bool),
    f("default-cgroupns-mode", "default-cgroupns-mode", Str),
    f("default-gateway", "default-gateway", Str),
    f("default-gateway-v6", "default-gateway-v6", Str),
    f("default-ipc-mode", "default-ipc-mode", Str),
    f("default-runtime", "default-runtime", Str),
    f("default-shm-size", "default-shm-size", Str),
    f("dns", "dns", List),
    f("dns-opt", "dns-opts", List),
    f("dns-search", "dns-search", List),
    f("exec-opt", "exec-opts", List),
    f("experimental", "experimental", Bool),
    f("fixed-cidr", "fixed-cidr", Str),
    f("fixed-cidr-v6", "fixed-cidr-v6", Str),
    f("group", "group", Str),
    f("host-gateway-ip", "host-gateway-ip", Str),
    f("icc", "icc", Bool),
    f("init", "init", Bool),
    f("init-path", "init-path", Str),
    f("insecure-registry", "insecure-registries", List),
    f("ip", "ip", Str),
    f("ip-forward", "ip-forward", Bool),
    f("ip-masq", "ip-masq", Bool),
    f("ip6tables", "ip6tables", Bool),
    f("iptables", "iptables", Bool),
    f("ipv6", "ipv6", Bool),
    f("label", "labels", List),
    f("live-restore", "live-restore", Bool),
    f("log-driver", "log-driver", Str),
    f("log-format", "log-format", Str),
    f("log-level", "log-level", Str),
    f("log-opt", "log-opts", Map),
    f("max-concurrent-downloads", "max-concurrent-downloads", Int),
    f("max-concurrent-uploads", "max-concurrent-uploads", Int),
    f("max-download-attempts", "max-download-attempts", Int),
    f("metrics-addr", "metrics-addr", Str),
    f("mtu", "mtu", Int),
    f(
        "network-control-plane-mtu",
        "network-control-plane-mtu",
        Int,
    ),
    f("no-new-privileges", "no-new-privileges", Bool),
    f("node-generic-resource", "node-generic-resources", List),
    f("raw-logs", "raw-logs", Bool),
    f("registry-mirror", "registry-mirrors", List),
    f("seccomp-profile", "seccomp-profile", Str),
    f("selinux-enabled", "selinux-enabled", Bool),
    f("shutdown-timeout", "shutdown-timeout", Int),
    f("storage-driver", "storage-driver", Str),
    f("storage-opt", "storage-opts", List),
    f(
        "swarm-default-advertise-addr",
        "swarm-default-advertise-addr",
        Str,
    ),
    f("userland-proxy", "userland-proxy", Bool),
    f("userland-proxy-path", "userland-proxy-path", Str),
    f("userns-remap", "userns-remap", Str),
];

/// dockerd's short flags, by their long names.
pub const SHORT: &[(&str, &str)] = &[
    ("D", "debug"),
    ("b", "bridge"),
    ("G", "group"),
    ("l", "log-level"),
    ("s", "storage-driver"),
    ("H", "host"),
    ("p", "pidfile"),
    ("g", "data-root"),
];

/// dockerd flags b2d sets or keeps itself, with their daemon.json key
/// (see [`crate::wire::engine::B2D_KEYS`] for why).
pub const B2D_FLAGS: &[(&str, &str)] = &[
    ("host", "hosts"),
    ("tls", "tls"),
    ("tlsverify", "tlsverify"),
    ("tlscacert", "tlscacert"),
    ("tlscert", "tlscert"),
    ("tlskey", "tlskey"),
    ("containerd", "containerd"),
    ("data-root", "data-root"),
    ("exec-root", "exec-root"),
    ("pidfile", "pidfile"),
];

/// dockerd flags that are not settings, or whose value is a structure,
/// with what to use instead.
pub const ELSEWHERE: &[(&str, &str)] = &[
    (
        "config-file",
        "b2d writes /etc/docker/daemon.json: use --daemon-json FILE",
    ),
    ("validate", "b2d checks the settings before booting"),
    ("version", "not a setting"),
    ("help", "not a setting"),
    (
        "http-proxy",
        "use --engine-env HTTP_PROXY=URL, or --proxy-from-env",
    ),
    (
        "https-proxy",
        "use --engine-env HTTPS_PROXY=URL, or --proxy-from-env",
    ),
    (
        "no-proxy",
        "use --engine-env NO_PROXY=LIST, or --proxy-from-env",
    ),
    (
        "add-runtime",
        "its value is a structure: use --daemon-json FILE with \"runtimes\"",
    ),
    (
        "default-ulimit",
        "its value is a structure: use --daemon-json FILE with \"default-ulimits\"",
    ),
    (
        "default-address-pool",
        "its value is a structure: use --daemon-json FILE with \"default-address-pools\"",
    ),
    (
        "default-network-opt",
        "its value is a structure: use --daemon-json FILE with \"default-network-opts\"",
    ),
    ("rootless", "b2d runs dockerd as root in the VM"),
];

/// The flag named `name` (long name, or a short one).
pub fn find(name: &str) -> Option<&'static Flag> {
    let long = SHORT
        .iter()
        .find(|(s, _)| *s == name)
        .map_or(name, |(_, l)| l);
    FLAGS.iter().find(|f| f.name == long)
}

/// The long name of `name`, if it is one of dockerd's short flags.
pub fn long_name(name: &str) -> &str {
    SHORT
        .iter()
        .find(|(s, _)| *s == name)
        .map_or(name, |(_, l)| l)
}

/// The daemon.json keys of dockerd 26 on Linux (those of [`FLAGS`] and
/// those only the file can set).
pub fn json_keys() -> impl Iterator<Item = &'static str> {
    const FILE_ONLY: &[&str] = &[
        "api-cors-header",
        "builder",
        "default-address-pools",
        "default-network-opts",
        "default-ulimits",
        "features",
        "proxies",
        "runtimes",
        "oom-score-adjust",
    ];
    FLAGS
        .iter()
        .map(|f| f.key)
        .chain(FILE_ONLY.iter().copied())
        .chain(B2D_FLAGS.iter().map(|(_, k)| *k))
}

/// The known names closest to `unknown` (a typo's likely meaning).
pub fn closest<'a>(unknown: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|k| (distance(unknown, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance, for [`closest`].
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_is_named_once_and_no_b2d_key_is_a_user_setting() {
        let mut names: Vec<&str> = FLAGS.iter().map(|f| f.name).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "a flag is listed twice");
        for f in FLAGS {
            assert!(
                crate::wire::engine::b2d_key(f.key).is_none(),
                "{} is b2d's own",
                f.name
            );
            assert!(!ELSEWHERE.iter().any(|(e, _)| *e == f.name), "{}", f.name);
        }
        for (_, key) in B2D_FLAGS {
            assert!(crate::wire::engine::b2d_key(key).is_some(), "{key}");
        }
    }

    #[test]
    fn short_names_and_typos() {
        assert_eq!(find("D").unwrap().key, "debug");
        assert_eq!(find("label").unwrap().kind, Kind::List);
        assert!(find("labels").is_none());
        assert_eq!(long_name("H"), "host");
        assert_eq!(
            closest("regstry-mirror", FLAGS.iter().map(|f| f.name)),
            Some("registry-mirror")
        );
        assert_eq!(
            closest("labels", FLAGS.iter().map(|f| f.name)),
            Some("label")
        );
        assert_eq!(closest("frobnicate", FLAGS.iter().map(|f| f.name)), None);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert!(json_keys().any(|k| k == "runtimes"));
        assert!(json_keys().any(|k| k == "registry-mirrors"));
    }
}
