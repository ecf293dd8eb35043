use super::create::{plan, CreatedNode};
use super::docker::{Docker, DockerError};
use super::form::{form, Node, ADDR_POOL};
use super::*;
use crate::host::cmd::Confirm;
use crate::host::network::Attachment;
use crate::host::store::{Role, SwarmMember};
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Duration;

/// Answers as dockerd would, and records each `docker …` by machine.
struct FakeDocker {
    calls: Mutex<Vec<String>>,
    /// `docker node ls` output.
    node_ls: String,
    /// A machine whose `swarm join` fails, with what it says.
    join_fails: Option<(&'static str, &'static str)>,
}

impl FakeDocker {
    fn new(node_ls: String) -> FakeDocker {
        FakeDocker {
            calls: Mutex::new(Vec::new()),
            node_ls,
            join_fails: None,
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Docker for FakeDocker {
    fn run(&self, m: &Machine, args: &[String]) -> Result<String, DockerError> {
        let line = format!("{}: docker {}", m.name, args.join(" "));
        self.calls.lock().unwrap().push(line);
        match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["swarm", "join-token", "-q", kind] => Ok(format!("SWMTKN-{kind}\n")),
            ["swarm", "join", ..] => match self.join_fails {
                Some((who, said)) if who == m.name => Err(DockerError::Failed {
                    status: std::os::unix::process::ExitStatusExt::from_raw(1 << 8),
                    tail: said.into(),
                }),
                _ => Ok("This node joined a swarm as a worker.\n".into()),
            },
            ["node", "ls", ..] => Ok(self.node_ls.clone()),
            _ => Ok(String::new()),
        }
    }
}

fn row(host: &str, status: &str, manager: &str) -> String {
    format!(
        "{{\"Availability\":\"Active\",\"Hostname\":\"{host}\",\"ManagerStatus\":\"{manager}\",\"Status\":\"{status}\"}}\n"
    )
}

fn store(t: &std::path::Path) -> Store {
    Store::at(t.to_path_buf())
}

/// Machine `name` saved in `s`, a node of `swarm` as `role`, at
/// 192.168.140.`host`.
fn node(s: &Store, name: &str, swarm: Option<(&str, Role)>, host: u8) -> Machine {
    let mut m = crate::host::store::sample(s.dir(name));
    m.name = name.into();
    m.config.docker_port = 40000 + u16::from(host);
    m.config.network = Some(Attachment {
        name: "lab".into(),
        address: Ipv4Addr::new(192, 168, 140, host),
    });
    m.config.swarm = swarm.map(|(n, role)| SwarmMember {
        name: n.into(),
        role,
    });
    std::fs::create_dir_all(&m.dir).unwrap();
    m.save_config().unwrap();
    m
}

fn three(s: &Store) -> Vec<Node> {
    [
        ("lab", Role::Manager),
        ("lab-2", Role::Manager),
        ("lab-3", Role::Worker),
        ("lab-4", Role::Worker),
    ]
    .iter()
    .enumerate()
    .map(|(i, (n, role))| Node {
        machine: node(s, n, Some(("lab", *role)), i as u8 + 1),
        role: *role,
        address: Ipv4Addr::new(192, 168, 140, i as u8 + 1),
    })
    .collect()
}

#[test]
fn nodes_are_named_after_the_swarm() {
    assert_eq!(node_names("lab", 3), ["lab", "lab-2", "lab-3"]);
    assert!(node_names("lab", 0).is_empty());
}

#[test]
fn the_plan_takes_the_first_nodes_as_managers_and_refuses_what_exists() {
    let t = tempfile::tempdir().unwrap();
    let s = store(t.path());
    let o = |nodes, managers| CreateOptions {
        name: "lab".into(),
        nodes,
        managers,
        ..Default::default()
    };
    assert_eq!(
        plan(&s, &o(3, 2)).unwrap(),
        vec![
            ("lab".to_string(), Role::Manager),
            ("lab-2".to_string(), Role::Manager),
            ("lab-3".to_string(), Role::Worker),
        ]
    );
    for (nodes, managers, want) in [
        (
            0,
            1,
            "--nodes 0: a swarm has 1 to 32 nodes (e.g. --nodes 3)",
        ),
        (33, 1, "--nodes 33: a swarm has 1 to 32 nodes"),
        (3, 0, "--managers 0: a swarm of 3 nodes has 1 to 3 managers"),
        (3, 4, "--managers 4: a swarm of 3 nodes has 1 to 3 managers"),
    ] {
        let e = plan(&s, &o(nodes, managers)).unwrap_err().to_string();
        assert!(e.starts_with(want), "{e}");
    }
    let mut bad = o(2, 1);
    bad.name = "x".repeat(62);
    let e = plan(&s, &bad).unwrap_err().to_string();
    assert!(e.contains("is not a valid machine name"), "{e}");

    node(&s, "lab-2", None, 2);
    let e = plan(&s, &o(3, 1)).unwrap_err().to_string();
    assert_eq!(
        e,
        "machine \"lab-2\" exists and is not a node of swarm \"lab\": choose another swarm name, or remove the machine with `b2d rm lab-2`"
    );
    assert!(plan(&s, &o(1, 1)).is_ok(), "only lab is made");
    node(&s, "lab", Some(("lab", Role::Manager)), 1);
    let e = plan(&s, &o(1, 1)).unwrap_err().to_string();
    assert!(
        e.starts_with("swarm \"lab\" exists (lab): see it with `b2d swarm ls lab`"),
        "{e}"
    );
    assert!(e.contains("`b2d swarm rm lab` first"), "{e}");
}

#[test]
fn a_swarm_is_formed_with_docker_s_own_commands_in_order() {
    let t = tempfile::tempdir().unwrap();
    let s = store(t.path());
    let nodes = three(&s);
    let ls = row("lab", "Ready", "Leader")
        + &row("lab-2", "Ready", "Reachable")
        + &row("lab-3", "Ready", "")
        + &row("lab-4", "Ready", "");
    let d = FakeDocker::new(ls);
    let phases = Mutex::new(Vec::new());
    let rows = form(
        &d,
        &nodes,
        Duration::from_secs(5),
        Duration::ZERO,
        &|i, w| phases.lock().unwrap().push(format!("{i} {w}")),
    )
    .unwrap();
    assert_eq!(rows.len(), 4);
    let calls = d.calls();
    assert_eq!(
        calls[..4],
        [
            format!("lab: docker swarm init --advertise-addr 192.168.140.1 --default-addr-pool {ADDR_POOL}"),
            "lab: docker swarm join-token -q manager".to_string(),
            "lab-2: docker swarm join --token SWMTKN-manager --advertise-addr 192.168.140.2 192.168.140.1:2377".to_string(),
            "lab: docker swarm join-token -q worker".to_string(),
        ]
    );
    // The workers join together, in either order.
    let mut workers = calls[4..6].to_vec();
    workers.sort();
    assert_eq!(
        workers,
        [
            "lab-3: docker swarm join --token SWMTKN-worker --advertise-addr 192.168.140.3 192.168.140.1:2377",
            "lab-4: docker swarm join --token SWMTKN-worker --advertise-addr 192.168.140.4 192.168.140.1:2377",
        ]
    );
    assert_eq!(calls[6..], ["lab: docker node ls --format {{json .}}"]);
    let phases = phases.into_inner().unwrap();
    assert_eq!(phases[0], "0 docker swarm init");
    assert!(
        phases.contains(&"1 joining as a manager".to_string()),
        "{phases:?}"
    );
    assert!(
        phases.contains(&"3 joining as a worker".to_string()),
        "{phases:?}"
    );
}

#[test]
fn a_failed_join_names_the_node_and_hides_the_token() {
    let t = tempfile::tempdir().unwrap();
    let s = store(t.path());
    let mut d = FakeDocker::new(String::new());
    d.join_fails = Some((
        "lab-3",
        "Error response from daemon: Timeout was reached before node joined",
    ));
    let e = form(
        &d,
        &three(&s),
        Duration::from_secs(5),
        Duration::ZERO,
        &|_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "machine \"lab-3\": `docker swarm join --token <token> --advertise-addr 192.168.140.3 192.168.140.1:2377` failed: Error response from daemon: Timeout was reached before node joined"
    );
    assert!(!e.contains("SWMTKN"), "{e}");
}

#[test]
fn nodes_not_ready_in_time_are_named_with_what_the_swarm_says() {
    let t = tempfile::tempdir().unwrap();
    let s = store(t.path());
    let d = FakeDocker::new(
        row("lab", "Ready", "Leader")
            + &row("lab-2", "Ready", "Reachable")
            + &row("lab-3", "Down", ""),
    );
    let e = form(&d, &three(&s), Duration::ZERO, Duration::ZERO, &|_, _| {})
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "not every node was Ready within 0 s (`docker node ls` on lab: lab-3 is Down, lab-4 is not listed)"
    );
}

#[test]
fn what_the_swarm_says_of_a_node_is_shown_printable() {
    let t = tempfile::tempdir().unwrap();
    let s = store(t.path());
    let m = node(&s, "lab", Some(("lab", Role::Manager)), 1);
    let row = super::docker::NodeRow {
        hostname: "lab".into(),
        status: "Ready\u{1b}[2J".into(),
        availability: "\u{9b}31m".into(),
        manager_status: "Leader\u{7}".into(),
    };
    let v = super::ls::view(&m, crate::host::cmd::status::State::Running, Some(&row));
    assert_eq!(v.status.as_deref(), Some("Ready\\x1b[2J"));
    assert_eq!(v.availability.as_deref(), Some("\\u{9b}31m"));
    assert_eq!(v.manager_status.as_deref(), Some("Leader\\x07"));
}

#[test]
fn ls_shows_recorded_roles_without_a_running_manager() {
    let t = tempfile::tempdir().unwrap();
    let s = store(t.path());
    node(&s, "lab-10", Some(("lab", Role::Worker)), 10);
    node(&s, "lab-2", Some(("lab", Role::Worker)), 2);
    node(&s, "lab", Some(("lab", Role::Manager)), 1);
    node(&s, "other", None, 3);
    let d = FakeDocker::new(String::new());
    let l = ls(&s, "lab", &d).unwrap();
    assert!(d.calls().is_empty(), "nothing runs: nobody asked");
    let names: Vec<&str> = l.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["lab", "lab-2", "lab-10"]);
    assert_eq!(l.network.as_deref(), Some("lab"));
    let text = super::ls::render(&l);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("NODE    ROLE     STATE    ADDRESS"),
        "{text}"
    );
    assert!(
        lines[1].starts_with(
            "lab     manager  Stopped  192.168.140.1   -      -        tcp://127.0.0.1:40001"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("(SWARM and MANAGER unknown: no manager of swarm \"lab\" is running (`b2d up lab` starts the first))\n"),
        "{text}"
    );
    let v = serde_json::to_value(&l).unwrap();
    assert_eq!(v["nodes"][2]["role"], "worker");
    assert_eq!(v["nodes"][0]["status"], serde_json::Value::Null);
    let e = ls(&s, "nope", &d).unwrap_err().to_string();
    assert!(e.starts_with("no swarm named \"nope\""), "{e}");
    assert!(e.contains("`b2d swarm create nope --nodes 3`"), "{e}");
}

#[test]
fn rm_asks_or_needs_force_and_removes_every_node_only() {
    let t = tempfile::tempdir().unwrap();
    let s = store(t.path());
    for (i, n) in ["lab", "lab-2", "lab-3"].iter().enumerate() {
        node(&s, n, Some(("lab", Role::Worker)), i as u8 + 1);
    }
    node(&s, "keep", None, 9);
    let e = rm::remove(&s, "lab", false, Confirm::NoTerminal)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "not removing swarm \"lab\" (lab, lab-2, lab-3) without confirmation: pass -f to remove its machines and their disks (`b2d swarm rm -f lab`)"
    );
    let mut asked = Vec::new();
    let mut no = |q: &str| {
        asked.push(q.to_string());
        "n\n".to_string()
    };
    let e = rm::remove(&s, "lab", false, Confirm::Ask(&mut no))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not removed"), "{e}");
    assert_eq!(
        asked,
        ["Remove swarm \"lab\": machines lab, lab-2, lab-3 with their disks, images, containers and volumes? [y/N] "]
    );
    assert_eq!(s.list().unwrap().len(), 4);
    let said = rm::remove(&s, "lab", true, Confirm::NoTerminal).unwrap();
    assert!(
        said.stderr
            .ends_with("Swarm \"lab\" removed: lab, lab-2, lab-3.\n"),
        "{}",
        said.stderr
    );
    assert!(
        said.stderr.contains("Machine \"lab-2\" removed.\n"),
        "{}",
        said.stderr
    );
    let left: Vec<String> = s
        .list()
        .unwrap()
        .into_iter()
        .flatten()
        .map(|m| m.name)
        .collect();
    assert_eq!(left, ["keep"]);
    let e = rm::remove(&s, "lab", true, Confirm::NoTerminal)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("no swarm named \"lab\""), "{e}");
}

#[test]
fn a_created_swarm_says_how_long_and_what_to_type() {
    let c = Created {
        name: "lab".into(),
        network: "lab".into(),
        nodes: ["lab", "lab-2"]
            .iter()
            .enumerate()
            .map(|(i, n)| CreatedNode {
                name: n.to_string(),
                role: if i == 0 { Role::Manager } else { Role::Worker },
                address: Ipv4Addr::new(192, 168, 140, i as u8 + 1),
                docker_host: format!("tcp://127.0.0.1:4037{i}"),
                boot: "first boot, 50.0 s".into(),
            })
            .collect(),
        secs: 123.45,
        notes: vec!["lab-2: guest: x".into()],
    };
    let said = c.render("b2d");
    assert_eq!(
        said.stderr,
        "b2d: lab-2: guest: x\nSwarm \"lab\": 2 nodes Ready (1 manager, 1 worker) 123.5 s after `swarm create` began.\n"
    );
    let lines: Vec<&str> = said.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "NODE   ROLE     ADDRESS        DOCKER_HOST            BOOT"
    );
    assert_eq!(
        lines[1],
        "lab    manager  192.168.140.1  tcp://127.0.0.1:40370  first boot, 50.0 s"
    );
    assert!(
        said.stdout.contains("    eval \"$(b2d env lab)\"\n"),
        "{}",
        said.stdout
    );
    assert!(
        said.stdout.contains("`b2d ssh lab-2`, `b2d stop lab-2`"),
        "{}",
        said.stdout
    );
    assert!(
        said.stdout.ends_with("    b2d swarm rm lab\n"),
        "{}",
        said.stdout
    );
}
