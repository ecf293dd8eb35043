//! The verbs around a machine (url, cp, kill, inspect, ssh-config,
//! completion): their misuse, and what they print for a stopped machine.

use super::{stderr, stdout, Env};
use std::process::Command;

#[test]
fn the_new_verbs_explain_their_misuse() {
    let e = Env::new();
    let dir = e.stopped_machine("dev");
    for args in [
        &["url", "dev"][..],
        &["cp", "./x", "dev:/tmp"],
        &["cp", "dev:/tmp/x", "."],
    ] {
        let msg = stderr(&e.run(args));
        assert!(
            msg.contains("machine \"dev\" is not running"),
            "{args:?}: {msg}"
        );
        assert!(msg.contains("b2d up dev"), "{args:?}: {msg}");
    }
    let msg = stderr(&e.run(&["cp", "a", "b"]));
    assert!(msg.contains("write the guest side as NAME:PATH"), "{msg}");
    let msg = stderr(&e.run(&["cp", "dev:/a", "dev:/b"]));
    assert!(msg.contains("copy to this host first"), "{msg}");
    let msg = stderr(&e.run(&["cp", "dev:", "x"]));
    assert!(msg.contains("no path after the machine name"), "{msg}");
    let msg = stderr(&e.run(&["cp", "only-one"]));
    assert!(msg.contains("<DST>"), "{msg}");

    // kill of a stopped machine: nothing to do, said so.
    let out = e.run(&["kill", "dev"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Machine \"dev\" is not running."));
    assert!(dir.join("disk.img").exists());

    // inspect: JSON by default, a template, and a template's mistake named.
    let v: serde_json::Value = serde_json::from_str(&stdout(&e.run(&["inspect", "dev"]))).unwrap();
    assert_eq!(v["state"], "Stopped");
    assert_eq!(v["ssh_port"], 40022);
    assert_eq!(
        stdout(&e.run(&["inspect", "dev", "--format", "{{.Name}} {{.DockerHost}}"])),
        "dev tcp://127.0.0.1:40376\n"
    );
    let msg = stderr(&e.run(&["inspect", "dev", "--format", "{{.Nope}}"]));
    assert!(
        msg.contains("--format: {{.Nope}}: no field Nope (there are: "),
        "{msg}"
    );
    let msg = stderr(&e.run(&["inspect", "dev", "--format", "{{.Name}}", "--json"]));
    assert!(msg.contains("cannot be used with"), "{msg}");

    // ssh-config works for a stopped machine: the port is remembered.
    let block = stdout(&e.run(&["ssh-config", "dev"]));
    assert!(
        block.starts_with("# Put this block above any `Host *` in ~/.ssh/config")
            && block.contains("\nHost b2d-dev\n  HostName 127.0.0.1\n  Port 40022\n"),
        "{block}"
    );
    assert!(
        block.contains(&format!(
            "  UserKnownHostsFile \"{}\"\n",
            dir.join("known_hosts").display()
        )),
        "{block}"
    );
    assert!(block.contains("  StrictHostKeyChecking yes\n"), "{block}");
    // OpenSSH itself reads the block as meant.
    // Put above a `Host *` that forwards the agent and X11, as the
    // block's first line says: those stay off for the machine.
    let cfg = e.dir.path().join("ssh_config");
    std::fs::write(
        &cfg,
        format!("{block}\nHost *\n  ForwardAgent yes\n  ForwardX11 yes\n"),
    )
    .unwrap();
    let out = Command::new("ssh")
        .args(["-G", "-F", cfg.to_str().unwrap(), "b2d-dev"])
        .output()
        .unwrap();
    let seen = stdout(&out);
    for want in [
        "hostname 127.0.0.1",
        "port 40022",
        "user docker",
        "stricthostkeychecking true",
        "hostkeyalias b2d-dev",
        "forwardagent no",
        "forwardx11 no",
    ] {
        assert!(
            seen.lines().any(|l| l == want),
            "{want} not in ssh -G:\n{seen}"
        );
    }

    // completion: a script per shell, naming the verbs; others refused.
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout(&e.run(&["completion", shell]));
        assert!(
            script.contains("ssh-config") && script.contains("registry-mirror"),
            "{shell}"
        );
    }
    let msg = stderr(&e.run(&["completion", "tcsh"]));
    assert!(msg.contains("invalid value 'tcsh'"), "{msg}");
    assert!(msg.contains("bash"), "{msg}");
    let msg = stderr(&e.run(&["completion"]));
    assert!(msg.contains("<SHELL>"), "{msg}");
}
