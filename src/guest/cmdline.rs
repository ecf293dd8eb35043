//! `b2d.*` options from the kernel command line (`/proc/cmdline`).
//!
//! Splitting follows the kernel's own `next_arg()`: whitespace separates
//! parameters except inside double quotes, and the quotes are dropped
//! (`b2d.hostname="my box"` and `"b2d.hostname=my box"` are the same).
//! Everything after a lone `--` belongs to init's argv, not to us.
//!
//! The splitting is hand-written: `procfs-core`'s `KernelCmdline` splits on
//! single spaces only, so it keeps the quotes (`b2d.hostname="my` and
//! `box"` come out as two words) and the trailing newline.

use std::path::Path;

/// The boot benchmark's floor (in the rootfs, from buildroot-overlay).
pub const FLOOR: &str = "/usr/lib/b2d/floor.sh";

/// The options b2d-init understands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    /// `b2d.debug`: debug logging.
    pub debug: bool,
    /// `b2d.shell`: a root shell on the console instead of a login prompt.
    pub shell: bool,
    /// `b2d.nodisk`: do not touch any disk; run from RAM.
    pub nodisk: bool,
    /// `b2d.noformat`: never format a disk (mount existing data only).
    pub noformat: bool,
    /// `b2d.hostname=NAME`.
    pub hostname: Option<String>,
    /// `b2d.floor`: exec [`FLOOR`], the boot benchmark's naive shell init,
    /// instead of the agent's main stage (`make bench-boot` only).
    pub floor: bool,
    /// `b2d.*` keys we do not know, kept so they can be logged.
    pub unknown: Vec<(String, Option<String>)>,
}

/// Split a command line into parameters the way the kernel does.
pub fn split_kernel_args(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut have = false;
    for c in line.chars() {
        match c {
            '"' => {
                in_quote = !in_quote;
                have = true;
            }
            c if c.is_whitespace() && !in_quote => {
                if have {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            c => {
                cur.push(c);
                have = true;
            }
        }
    }
    if have {
        out.push(cur);
    }
    out
}

fn parse_bool(value: Option<&str>) -> Option<bool> {
    match value {
        None => Some(true),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "" | "1" | "y" | "yes" | "true" | "on" => Some(true),
            "0" | "n" | "no" | "false" | "off" => Some(false),
            _ => None,
        },
    }
}

/// Parse the text of `/proc/cmdline`.
pub fn parse(line: &str) -> Cmdline {
    let mut c = Cmdline::default();
    for arg in split_kernel_args(line) {
        if arg == "--" {
            break;
        }
        let Some(rest) = arg.strip_prefix("b2d.") else {
            continue;
        };
        let (key, value) = match rest.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (rest.to_string(), None),
        };
        let flag = match key.as_str() {
            "debug" => Some(&mut c.debug),
            "shell" => Some(&mut c.shell),
            "nodisk" => Some(&mut c.nodisk),
            "noformat" => Some(&mut c.noformat),
            "floor" => Some(&mut c.floor),
            _ => None,
        };
        match (flag, key.as_str()) {
            (Some(slot), _) => match parse_bool(value.as_deref()) {
                Some(b) => *slot = b,
                None => c.unknown.push((key, value)),
            },
            (None, "hostname") => c.hostname = value.filter(|v| !v.is_empty()),
            (None, _) => c.unknown.push((key, value)),
        }
    }
    c
}

/// Read and parse `proc_root/cmdline`; a missing file gives the defaults.
pub fn read(proc_root: &Path) -> Cmdline {
    let path = proc_root.join("cmdline");
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text),
        Err(e) => {
            log::warn!("cannot read {}: {e}; using defaults", path.display());
            Cmdline::default()
        }
    }
}

/// Log what was understood and what was not.
pub fn log_options(c: &Cmdline) {
    log::info!(
        "cmdline: debug={} shell={} nodisk={} noformat={} hostname={}",
        c.debug,
        c.shell,
        c.nodisk,
        c.noformat,
        c.hostname.as_deref().unwrap_or("(not set)")
    );
    for (k, v) in &c.unknown {
        match v {
            Some(v) => log::warn!("cmdline: unknown or invalid option b2d.{k}={v} (ignored)"),
            None => log::warn!("cmdline: unknown option b2d.{k} (ignored)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_the_kernel() {
        assert_eq!(
            split_kernel_args("console=ttyS0  b2d.hostname=\"my box\" \"a=b c\" x\n"),
            vec!["console=ttyS0", "b2d.hostname=my box", "a=b c", "x"]
        );
        assert_eq!(split_kernel_args("  "), Vec::<String>::new());
        assert_eq!(split_kernel_args("a=\"\""), vec!["a="]);
    }

    #[test]
    fn parses_b2d_options() {
        let c = parse(
            "BOOT_IMAGE=/vmlinuz quiet b2d.debug b2d.shell=1 b2d.nodisk=0 \
             b2d.noformat=yes b2d.hostname=\"dev box\" b2d.frob=3 b2d.debug2",
        );
        assert!(c.debug && c.shell && c.noformat && !c.nodisk && !c.floor);
        assert_eq!(c.hostname.as_deref(), Some("dev box"));
        assert!(parse("quiet b2d.floor").floor);
        assert_eq!(
            c.unknown,
            vec![
                ("frob".to_string(), Some("3".to_string())),
                ("debug2".to_string(), None)
            ]
        );
    }

    #[test]
    fn invalid_bool_is_kept_as_unknown_and_init_args_ignored() {
        let c = parse("b2d.shell=maybe -- b2d.debug");
        assert!(!c.shell && !c.debug);
        assert_eq!(
            c.unknown,
            vec![("shell".to_string(), Some("maybe".to_string()))]
        );
        assert_eq!(parse("b2d.hostname=").hostname, None);
    }

    #[test]
    fn missing_file_gives_defaults() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read(d.path()), Cmdline::default());
        std::fs::write(d.path().join("cmdline"), "b2d.nodisk\n").unwrap();
        assert!(read(d.path()).nodisk);
    }
}
