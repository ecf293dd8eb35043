//! `b2d swarm` and `b2d up --network` as a user meets their misuse,
//! without booting anything: bad counts and names, an existing swarm or
//! machine in the way, a swarm whose nodes cannot boot (QEMU fails: the
//! machines are made, kept, listed and removed), and a stopped machine
//! joining and leaving a network.

use super::{stderr, stdout, Env};
use std::os::unix::fs::PermissionsExt;

/// `b2d swarm create lab --nodes 3 --iso ISO`, as it is refused.
fn refused_create(e: &Env, iso: &std::path::Path) -> String {
    stderr(&e.run(&[
        "swarm",
        "create",
        "lab",
        "--nodes",
        "3",
        "--iso",
        iso.to_str().unwrap(),
    ]))
}

/// A QEMU that says why it cannot start.
fn failing_qemu(e: &Env) -> std::path::PathBuf {
    let fake = e.dir.path().join("qemu");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'qemu: could not load the machine' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    fake
}

#[test]
fn bad_counts_and_names_are_refused_before_anything_is_made() {
    let e = Env::new();
    let iso = e.fake_iso();
    let iso = iso.to_str().unwrap();
    for (args, want) in [
        (
            &["--nodes", "0"][..],
            "--nodes 0: a swarm has 1 to 32 nodes (e.g. --nodes 3)",
        ),
        (
            &["--nodes", "3", "--managers", "4"],
            "--managers 4: a swarm of 3 nodes has 1 to 3 managers (e.g. --managers 1)",
        ),
        (
            &["--nodes", "3", "--network", "none"],
            "--network none: a swarm's nodes need a private network",
        ),
        (
            &["--nodes", "3", "--network", "my lab"],
            "--network my lab: not a network name",
        ),
    ] {
        let mut a = vec!["swarm", "create", "lab", "--iso", iso];
        a.extend(args);
        let msg = stderr(&e.run(&a));
        assert!(msg.contains(want), "{args:?}: {msg}");
    }
    let msg = stderr(&e.run(&["swarm", "create", "lab"]));
    assert!(msg.contains("--nodes <NODES>"), "{msg}");
    let msg = stderr(&e.run(&["swarm", "create", "a.b", "--nodes", "2", "--iso", iso]));
    assert!(msg.contains("\"a.b\" is not a valid machine name"), "{msg}");
    let msg = stderr(&e.run(&["up", "dev", "--iso", iso, "--network", "a/b"]));
    assert!(msg.contains("--network a/b: not a network name"), "{msg}");
    assert!(msg.contains("or --network none"), "{msg}");
    for verb in [&["swarm", "ls", "lab"][..], &["swarm", "rm", "-f", "lab"]] {
        let msg = stderr(&e.run(verb));
        assert!(msg.contains("no swarm named \"lab\""), "{verb:?}: {msg}");
        assert!(
            msg.contains("`b2d swarm create lab --nodes 3`"),
            "{verb:?}: {msg}"
        );
    }
    e.no_machines();
}

#[test]
fn a_machine_in_the_way_is_named_and_left_alone() {
    let e = Env::new();
    let dir = e.stopped_machine("lab-2");
    let before = std::fs::read(dir.join("config.json")).unwrap();
    let iso = e.fake_iso();
    let msg = refused_create(&e, &iso);
    assert!(
        msg.contains("machine \"lab-2\" exists and is not a node of swarm \"lab\""),
        "{msg}"
    );
    assert!(msg.contains("`b2d rm lab-2`"), "{msg}");
    assert_eq!(std::fs::read(dir.join("config.json")).unwrap(), before);
    assert_eq!(e.dir.entries(), 1, "nothing else was made");
}

#[test]
fn nodes_that_cannot_boot_are_kept_listed_and_removed_together() {
    let e = Env::new();
    let iso = e.fake_iso();
    let qemu = failing_qemu(&e);
    let out = e
        .cmd(&[
            "swarm",
            "create",
            "lab",
            "--nodes",
            "3",
            "--managers",
            "2",
            "--iso",
            iso.to_str().unwrap(),
            "--memory",
            "1G",
            "--mount",
            "none",
        ])
        .env("B2D_QEMU", &qemu)
        .output()
        .unwrap();
    let msg = stderr(&out);
    assert!(
        msg.contains("Creating machine \"lab-3\" (2 CPUs, 1024 MiB memory"),
        "{msg}"
    );
    assert!(msg.contains("swarm \"lab\" not created: nodes did not boot:\n  lab: QEMU did not start machine \"lab\""), "{msg}");
    assert!(msg.contains("could not load the machine"), "{msg}");
    assert!(
        msg.contains("`b2d swarm rm -f lab` removes them all"),
        "{msg}"
    );

    // Three ordinary machines on one network, each its own address.
    let addresses: Vec<String> = ["lab", "lab-2", "lab-3"]
        .iter()
        .map(|n| {
            let st: serde_json::Value =
                serde_json::from_str(&stdout(&e.run(&["status", n, "--json"]))).unwrap();
            assert_eq!(st["network"]["name"], "lab", "{st}");
            assert_eq!(st["network"]["prefix"], 24, "{st}");
            assert!(
                st["network"]["segment"]
                    .as_str()
                    .unwrap()
                    .starts_with("239."),
                "{st}"
            );
            assert_eq!(st["swarm"]["name"], "lab", "{st}");
            st["network"]["address"].as_str().unwrap().to_string()
        })
        .collect();
    let prefix = addresses[0].rsplit_once('.').unwrap().0.to_string();
    assert!(prefix.starts_with("192.168."), "{addresses:?}");
    assert_eq!(
        addresses,
        ["1", "2", "3"].map(|h| format!("{prefix}.{h}")),
        "the lowest free host numbers, in order"
    );
    let ls = stdout(&e.run(&["swarm", "ls", "lab"]));
    let lines: Vec<&str> = ls.lines().collect();
    for (line, (name, role)) in lines[1..4].iter().zip([
        ("lab", "manager"),
        ("lab-2", "manager"),
        ("lab-3", "worker"),
    ]) {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[..3], [name, role, "Stopped"], "{ls}");
    }
    assert!(
        ls.contains("no manager of swarm \"lab\" is running"),
        "{ls}"
    );
    let machines = stdout(&e.run(&["ls"]));
    assert!(
        machines.contains(&format!("lab {}", addresses[2])),
        "{machines}"
    );

    let msg = refused_create(&e, &iso);
    assert!(
        msg.contains("swarm \"lab\" exists (lab, lab-2, lab-3)"),
        "{msg}"
    );
    let msg = stderr(&e.run(&["swarm", "rm", "lab"]));
    assert!(msg.contains("pass -f"), "{msg}");
    assert_eq!(e.dir.entries(), 3);
    let out = e.run(&["swarm", "rm", "-f", "lab"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{said}");
    assert!(
        said.ends_with("Swarm \"lab\" removed: lab, lab-2, lab-3.\n"),
        "{said}"
    );
    e.no_machines();
}

#[test]
fn a_stopped_machine_joins_and_leaves_a_network() {
    let e = Env::new();
    e.stopped_machine("dev");
    let qemu = failing_qemu(&e);
    let up = |net: &str| {
        e.cmd(&["up", "dev", "--network", net])
            .env("B2D_QEMU", &qemu)
            .output()
            .unwrap()
    };
    let network = || -> serde_json::Value {
        let st: serde_json::Value =
            serde_json::from_str(&stdout(&e.run(&["status", "dev", "--json"]))).unwrap();
        st["network"].clone()
    };
    // QEMU fails, but the machine is on the network from now on.
    stderr(&up("lab"));
    let joined = network();
    assert_eq!(joined["name"], "lab", "{joined}");
    let text = stdout(&e.run(&["status", "dev"]));
    assert!(
        text.contains(&format!(
            "Network     {} on lab (this host only: multicast ",
            joined["address"].as_str().unwrap()
        )),
        "{text}"
    );
    stderr(&up("lab"));
    assert_eq!(network(), joined, "the address is kept");
    stderr(&up("none"));
    assert_eq!(network(), serde_json::Value::Null);
}
