//! `b2d status NAME --boot`: where the last boot's time went, from the
//! phases in its ready line, slowest first (in the manner of
//! `systemd-analyze blame`). Phases overlap: disk and network run side
//! by side, and so do sshd and containerd.

use super::{CmdError, Format};
use crate::host::store::Store;
use crate::host::vm::console::{self, Boot};
use crate::wire::ready::Ready;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phase {
    pub name: &'static str,
    pub ms: u64,
    pub start_ms: u64,
    pub end_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootTime {
    pub name: String,
    /// The ready line, in ms since kernel start.
    pub ready_ms: u64,
    /// Slowest first.
    pub phases: Vec<Phase>,
    /// Services that had not answered by the ready line.
    pub not_answering: Vec<&'static str>,
}

/// The phases of the boot whose ready line is `r`, slowest first.
pub fn from_ready(name: &str, r: &Ready) -> BootTime {
    let mut phases: Vec<Phase> = r
        .phases
        .spans()
        .into_iter()
        .map(|s| Phase {
            name: s.name,
            ms: s.ms(),
            start_ms: s.start,
            end_ms: s.end,
        })
        .collect();
    phases.sort_by(|a, b| b.ms.cmp(&a.ms).then(a.end_ms.cmp(&b.end_ms)));
    let p = &r.phases;
    let not_answering = [
        ("sshd", p.sshd),
        ("containerd", p.containerd),
        ("dockerd", p.dockerd),
    ]
    .into_iter()
    .filter(|(_, end)| end.is_none() && p.certificate.is_some())
    .map(|(n, _)| n)
    .collect();
    BootTime {
        name: name.into(),
        ready_ms: r.ms,
        phases,
        not_answering,
    }
}

/// `b2d status --boot`: the last boot of machine `name`, running or not.
pub fn last_boot(store: &Store, name: &str, format: Format) -> Result<String, CmdError> {
    let m = store.open(name)?;
    let log = console::read_log(&m.serial_log());
    let Boot::Ready(r) = console::read(&log) else {
        return Err(CmdError::NoReadyLine {
            log: m.serial_log().display().to_string(),
            name: m.name,
        });
    };
    Ok(format.render(&from_ready(&m.name, &r), render)?)
}

fn secs(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

pub fn render(b: &BootTime) -> String {
    let mut out = format!(
        "{}: ready {} after kernel start\n",
        b.name,
        secs(b.ready_ms)
    );
    if b.phases.is_empty() {
        out += "(this ISO's agent does not report its boot phases)\n";
    }
    for p in &b.phases {
        out += &format!(
            "{:>10}  {:<14} {} → {}\n",
            secs(p.ms),
            p.name,
            secs(p.start_ms),
            secs(p.end_ms)
        );
    }
    for n in &b.not_answering {
        out += &format!("{:>10}  {n:<14} did not answer by the ready line\n", "-");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"b2d-ready {"ms":31250,"ip":["10.0.2.15"],"data":"/mnt/sda1","ssh":true,"docker":false,"phases":{"initramfs":2700,"modules":3000,"disk":4500,"network":5200,"docker_modules":4100,"keys":5300,"shares":5400,"certificate":5600,"sshd":6000,"containerd":9000,"dockerd":null}}"#;

    #[test]
    fn slowest_first_and_the_silent_services_named() {
        let r = Ready::parse_line(LINE).unwrap();
        let b = from_ready("dev", &r);
        let names: Vec<&str> = b.phases.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "containerd",
                "initramfs",
                "network",
                "disk",
                "docker_modules",
                "sshd",
                "modules",
                "certificate",
                "keys",
                "shares"
            ]
        );
        assert_eq!(b.not_answering, ["dockerd"]);
        let text = render(&b);
        assert!(
            text.starts_with("dev: ready 31.250 s after kernel start\n   3.400 s  containerd     5.600 s → 9.000 s\n"),
            "{text}"
        );
        assert!(
            text.contains("   2.700 s  initramfs      0.000 s → 2.700 s\n"),
            "{text}"
        );
        assert!(
            text.ends_with("         -  dockerd        did not answer by the ready line\n"),
            "{text}"
        );
    }

    #[test]
    fn a_machine_that_never_got_ready_says_where_to_look() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path());
        let m = crate::host::store::saved_sample(&store);
        let e = last_boot(&store, "dev", Format::Human)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("machine \"dev\" has no ready line in "),
            "{e}"
        );
        assert!(e.contains("serial.log"), "{e}");
        std::fs::write(m.serial_log(), format!("noise\r\n{LINE}\r\n")).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&last_boot(&store, "dev", Format::Json).unwrap()).unwrap();
        assert_eq!(v["ready_ms"], 31250);
        assert_eq!(v["phases"][0]["name"], "containerd");
        assert_eq!(v["phases"][0]["ms"], 3400);
        assert_eq!(v["not_answering"][0], "dockerd");
        // An older agent's line has no phases: said, not an error.
        let old = r#"b2d-ready {"ms":7,"ip":[],"data":null,"ssh":true,"docker":true}"#;
        std::fs::write(m.serial_log(), old).unwrap();
        let text = last_boot(&store, "dev", Format::Human).unwrap();
        assert!(text.contains("does not report its boot phases"), "{text}");
    }
}
