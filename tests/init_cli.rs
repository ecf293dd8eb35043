//! The built b2d-init binary, run as an ordinary process (never PID 1).

use std::process::Command;

fn b2d_init() -> Command {
    Command::new(env!("CARGO_BIN_EXE_b2d-init"))
}

#[test]
fn refuses_to_boot_when_not_pid1() {
    let out = b2d_init().output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("b2d-init is PID 1; use a subcommand"), "{err}");
}

#[test]
fn version() {
    let out = b2d_init().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("b2d-init {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn prepare_disk_help_and_bad_args() {
    let out = b2d_init()
        .args(["prepare-disk", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--device DEV") && text.contains("--json"),
        "{text}"
    );
    let out = b2d_init()
        .args(["prepare-disk", "--frob"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--frob"));
}

#[test]
fn unknown_command_is_an_error() {
    let out = b2d_init().arg("dance").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("dance"));
}

#[test]
fn udhcpc_hook_dry_run_prints_the_commands() {
    let out = b2d_init()
        .arg("bound")
        .env("B2D_HOOK_DRY_RUN", "1")
        .env("interface", "eth0")
        .env("ip", "10.0.2.15")
        .env("subnet", "255.255.255.0")
        .env("router", "10.0.2.2")
        .env("dns", "10.0.2.3")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "busybox ip -4 addr flush dev eth0\n\
         busybox ip addr replace 10.0.2.15/24 dev eth0\n\
         busybox ip route replace default via 10.0.2.2 dev eth0\n\
         # /etc/resolv.conf\n# written by b2d-init (udhcpc)\nnameserver 10.0.2.3\n"
    );
    let out = b2d_init()
        .arg("bound")
        .env("B2D_HOOK_DRY_RUN", "1")
        .env_remove("interface")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("interface"));
}
