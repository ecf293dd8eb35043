//! `b2d status`: what a machine is doing, from its QEMU process and the
//! ready line on its console (`b2d ls` shows every machine's, `b2d
//! inspect` all of it).

use super::{boot_phases, CmdError, Context, Format, Output};
use crate::host::network;
use crate::host::store::{Machine, Store, SwarmMember, DEFAULT_NAME};
use crate::host::vm;
use crate::host::vm::console::{self, Boot};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum State {
    /// QEMU runs and the guest printed its ready line.
    Running,
    /// QEMU runs; the guest has not reached the ready line yet.
    Starting,
    Stopped,
    /// No QEMU; `b2d suspend` saved its state and `b2d up` resumes it.
    Suspended,
    /// Its config.json cannot be used; `b2d rm -f` removes it.
    Broken,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Running => "Running",
            State::Starting => "Starting",
            State::Stopped => "Stopped",
            State::Suspended => "Suspended",
            State::Broken => "Broken",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub name: String,
    pub state: State,
    pub pid: Option<u32>,
    /// "kvm" or "tcg", read off the running QEMU's command line.
    pub accel: Option<String>,
    pub docker_host: String,
    pub ssh_port: u16,
    /// The guest's own addresses (on QEMU's user network; the host reaches
    /// the guest through the 127.0.0.1 forwards).
    pub guest_ip: Vec<String>,
    /// Where the data disk is mounted, when the guest runs from it.
    pub data: Option<String>,
    /// Whether docker's data survives a stop (a data disk is in use).
    /// Unknown (null) until the guest is ready.
    pub persistent: Option<bool>,
    pub docker: Option<bool>,
    /// What dockerd said when it last ended this boot (a setting it
    /// refused), if it did: before the ready line when Docker never
    /// answered, after it otherwise.
    pub docker_said: Option<String>,
    pub cpus: u32,
    pub memory_mib: u32,
    pub disk_size: u64,
    pub dir: String,
    /// Its private network, if it is on one.
    pub network: Option<NetworkStatus>,
    /// The swarm `b2d swarm create` made it a node of.
    pub swarm: Option<SwarmMember>,
}

/// A machine's place on its private network.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkStatus {
    pub name: String,
    pub address: std::net::Ipv4Addr,
    pub prefix: u8,
    /// The multicast group and port its frames travel on, on 127.0.0.1.
    pub segment: String,
}

impl NetworkStatus {
    fn of(m: &Machine) -> Option<NetworkStatus> {
        let a = m.config.network.as_ref()?;
        Some(NetworkStatus {
            name: a.name.clone(),
            address: a.address,
            prefix: network::PREFIX,
            segment: network::segment_here(&a.name, &m.store()).to_string(),
        })
    }
}

/// `b2d status [NAME] [--json] [--boot]`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    #[arg(default_value = DEFAULT_NAME)]
    pub name: String,
    #[arg(long)]
    pub json: bool,
    /// Where the last boot's time went: each phase, slowest first.
    #[arg(long)]
    pub boot: bool,
}

/// `b2d status NAME`: [`read`] as text or JSON; with `--boot`, the last
/// boot's phases ([`boot_phases`]).
pub fn run(store: &Store, args: StatusArgs, _cx: &mut Context) -> Result<Output, CmdError> {
    let format = Format::json(args.json);
    if args.boot {
        return Ok(Output::stdout(boot_phases::last_boot(
            store, &args.name, format,
        )?));
    }
    Ok(Output::stdout(
        format.render(&read(&store.open(&args.name)?), render)?,
    ))
}

/// What machine `m` is doing now, from its QEMU process and console.
pub fn read(m: &Machine) -> Status {
    let pid = vm::running_pid(m);
    let log = pid
        .map(|_| console::read_log(&m.serial_log()))
        .unwrap_or_default();
    let ready = match console::read(&log) {
        Boot::Ready(r) => Some(r),
        _ => None,
    };
    let docker_said = match &ready {
        Some(r) if r.docker => console::said_since_ready(&log, "dockerd"),
        _ => console::last_said(&log, "dockerd"),
    };
    let state = match (pid, &ready) {
        (None, _) if crate::host::suspend::saved::is_suspended(m) => State::Suspended,
        (None, _) => State::Stopped,
        (Some(_), None) => State::Starting,
        (Some(_), Some(_)) => State::Running,
    };
    Status {
        name: m.name.clone(),
        state,
        pid,
        accel: pid.and_then(vm::accel_of),
        docker_host: format!("tcp://127.0.0.1:{}", m.config.docker_port),
        ssh_port: m.config.ssh_port,
        guest_ip: ready.as_ref().map(|r| r.ip.clone()).unwrap_or_default(),
        data: ready.as_ref().and_then(|r| r.data.clone()),
        persistent: ready.as_ref().map(|r| r.data.is_some()),
        docker: ready.as_ref().map(|r| r.docker),
        docker_said,
        cpus: m.config.cpus,
        memory_mib: m.config.memory_mib,
        disk_size: m.config.disk_size,
        dir: m.dir.display().to_string(),
        network: NetworkStatus::of(m),
        swarm: m.config.swarm.clone(),
    }
}

/// The human form of `b2d status`.
pub fn render(s: &Status) -> String {
    let mut out = String::new();
    let mut row = |k: &str, v: String| out += &format!("{k:<12}{v}\n");
    let state = match (s.pid, &s.accel) {
        (Some(pid), Some(a)) => format!("{} (QEMU pid {pid}, {a})", s.state),
        (Some(pid), None) => format!("{} (QEMU pid {pid})", s.state),
        _ => s.state.to_string(),
    };
    row("Name", s.name.clone());
    row("State", state);
    row("DOCKER_HOST", s.docker_host.clone());
    row(
        "SSH",
        format!("127.0.0.1:{} (b2d ssh {})", s.ssh_port, s.name),
    );
    if s.state == State::Running {
        row("Guest IP", s.guest_ip.join(", "));
        row(
            "Persistence",
            match &s.data {
                Some(d) => format!("data disk mounted at {d}"),
                None => "NONE: running from RAM, data is lost at stop".into(),
            },
        );
        match (s.docker, &s.docker_said) {
            (Some(false), Some(w)) => row("Docker", format!("not answering: dockerd said: {w}")),
            (Some(false), None) => row("Docker", "not answering (see `b2d logs`)".into()),
            (_, Some(w)) => row(
                "Docker",
                format!("dockerd ended since the boot, saying: {w}"),
            ),
            _ => {}
        }
    } else if let (State::Starting, Some(w)) = (s.state, &s.docker_said) {
        row("Docker", format!("dockerd ended, saying: {w}"));
    }
    row(
        "Resources",
        format!(
            "{} CPUs, {} MiB memory, {} disk",
            s.cpus,
            s.memory_mib,
            crate::disk::size::gib(s.disk_size)
        ),
    );
    if let Some(n) = &s.network {
        row(
            "Network",
            format!(
                "{} on {} (this host only: multicast {} on 127.0.0.1)",
                n.address, n.name, n.segment
            ),
        );
    }
    if let Some(w) = &s.swarm {
        row(
            "Swarm",
            format!("{} of swarm {} (b2d swarm ls {})", w.role, w.name, w.name),
        );
    }
    row("Directory", s.dir.clone());
    out
}

/// Rows as left-aligned columns two spaces apart, one line each.
pub fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            let line: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:<w$}"))
                .collect();
            line.join("  ").trim_end().to_string() + "\n"
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::cmd::context::TestTerminal;
    use crate::host::cmd::ip::{self, IpArgs};
    use crate::host::cmd::ls::{self, table, Listed, LsArgs};
    use crate::host::store::sample;

    /// `b2d status NAME [--json]` as it prints.
    fn show(store: &Store, name: &str, format: Format) -> Result<String, CmdError> {
        let args = StatusArgs {
            name: name.into(),
            json: format == Format::Json,
            boot: false,
        };
        Ok(run(store, args, &mut TestTerminal::default().context())?.stdout)
    }

    /// `b2d ls [--json]` as it prints.
    fn list(store: &Store, format: Format) -> Result<String, CmdError> {
        let args = LsArgs {
            json: format == Format::Json,
        };
        Ok(ls::run(store, args, &mut TestTerminal::default().context())?.stdout)
    }

    /// `b2d ip NAME` as it prints.
    fn ip(store: &Store, name: &str) -> Result<String, CmdError> {
        let args = IpArgs { name: name.into() };
        Ok(ip::run(store, args, &mut TestTerminal::default().context())?.stdout)
    }

    #[test]
    fn a_machine_without_qemu_is_stopped_whatever_its_log_says() {
        let t = tempfile::tempdir().unwrap();
        let m = sample(t.path());
        std::fs::write(
            m.serial_log(),
            "b2d-ready {\"ms\":1,\"ip\":[],\"data\":null,\"ssh\":true,\"docker\":true}\n",
        )
        .unwrap();
        let s = read(&m);
        assert_eq!(s.state, State::Stopped);
        assert_eq!(s.persistent, None);
        let text = render(&s);
        assert!(text.contains("State       Stopped\n"), "{text}");
        assert!(text.contains("DOCKER_HOST tcp://127.0.0.1:40376"), "{text}");
        assert!(
            text.contains("2 CPUs, 2048 MiB memory, 20 GiB disk"),
            "{text}"
        );
        assert!(!text.contains("Persistence"), "{text}");
    }

    #[test]
    fn status_and_ls_read_the_store_as_text_or_json() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path());
        assert_eq!(list(&store, Format::Json).unwrap(), "[]\n");
        assert_eq!(list(&store, Format::Human).unwrap().lines().count(), 1);
        crate::host::store::saved_sample(&store);
        let v: serde_json::Value =
            serde_json::from_str(&show(&store, "dev", Format::Json).unwrap()).unwrap();
        assert_eq!(v["state"], "Stopped");
        assert!(show(&store, "dev", Format::Human)
            .unwrap()
            .starts_with("Name        dev\n"));
        let ls = list(&store, Format::Human).unwrap();
        assert!(ls.lines().nth(1).unwrap().starts_with("dev  "), "{ls}");
        let e = ip(&store, "dev").unwrap_err().to_string();
        assert!(e.contains("machine \"dev\" is not running"), "{e}");
        // A saved state's description makes it suspended.
        let m = store.open("dev").unwrap();
        std::fs::write(m.suspend_meta(), "{}").unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&show(&store, "dev", Format::Json).unwrap()).unwrap();
        assert_eq!(v["state"], "Suspended");
        let ls = list(&store, Format::Human).unwrap();
        assert!(ls.contains(" Suspended "), "{ls}");
    }

    #[test]
    fn dockerd_s_own_words_show_when_it_does_not_answer() {
        let t = tempfile::tempdir().unwrap();
        let mut s = read(&sample(t.path()));
        s.state = State::Running;
        s.docker = Some(false);
        s.docker_said = Some("invalid registry mirror: x".into());
        let text = render(&s);
        assert!(
            text.contains("Docker      not answering: dockerd said: invalid registry mirror: x\n"),
            "{text}"
        );
        s.docker = Some(true);
        assert!(render(&s).contains("Docker      dockerd ended since the boot, saying: invalid"));
        s.docker_said = None;
        assert!(!render(&s).contains("Docker "), "{}", render(&s));
        s.state = State::Starting;
        s.docker = None;
        s.docker_said = Some("bad".into());
        assert!(render(&s).contains("Docker      dockerd ended, saying: bad\n"));
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["docker_said"], "bad");
    }

    #[test]
    fn a_machine_on_a_network_shows_its_address_and_swarm() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path());
        let mut m = sample(store.dir("dev"));
        m.config.network = Some(network::Attachment {
            name: "lab".into(),
            address: std::net::Ipv4Addr::new(192, 168, 140, 2),
        });
        m.config.swarm = Some(SwarmMember {
            name: "lab".into(),
            role: crate::host::store::Role::Worker,
        });
        let s = read(&m);
        let seg = network::segment_here("lab", &store).to_string();
        let text = render(&s);
        assert!(
            text.contains(&format!(
                "Network     192.168.140.2 on lab (this host only: multicast {seg} on 127.0.0.1)\n"
            )),
            "{text}"
        );
        assert!(
            text.contains("Swarm       worker of swarm lab (b2d swarm ls lab)\n"),
            "{text}"
        );
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["network"]["address"], "192.168.140.2");
        assert_eq!(v["network"]["prefix"], 24);
        assert_eq!(v["network"]["segment"], seg);
        assert_eq!(v["swarm"]["role"], "worker");
        let ls = table(&[
            Listed::Machine(Box::new(s)),
            Listed::Machine(Box::new(read(&sample(store.dir("plain"))))),
        ]);
        let lines: Vec<&str> = ls.lines().collect();
        assert!(lines[0].ends_with("  NETWORK"), "{ls}");
        assert!(lines[1].ends_with("  lab 192.168.140.2"), "{ls}");
        assert!(lines[2].ends_with("GiB"), "no network, nothing: {ls}");
    }
}
