use super::*;

#[test]
fn backoff_doubles_caps_and_resets() {
    let b = Backoff::default();
    let short = Duration::from_secs(1);
    let mut d = b.next(None, short);
    assert_eq!(d, Duration::from_millis(500));
    let mut seen = vec![d];
    for _ in 0..8 {
        d = b.next(Some(d), short);
        seen.push(d);
    }
    assert_eq!(seen[1], Duration::from_secs(1));
    assert_eq!(seen[2], Duration::from_secs(2));
    assert_eq!(*seen.last().unwrap(), Duration::from_secs(30));
    assert_eq!(
        b.next(Some(d), Duration::from_secs(61)),
        Duration::from_millis(500)
    );
}

#[test]
fn signals_map_to_actions() {
    assert_eq!(shutdown_for(Signal::SIGTERM), Some(PowerAction::PowerOff));
    assert_eq!(shutdown_for(Signal::SIGINT), Some(PowerAction::PowerOff));
    assert_eq!(shutdown_for(Signal::SIGUSR2), Some(PowerAction::PowerOff));
    assert_eq!(shutdown_for(Signal::SIGUSR1), Some(PowerAction::Reboot));
    assert_eq!(shutdown_for(Signal::SIGHUP), None);
}

#[test]
fn exit_statuses_read_as_words() {
    let pid = Pid::from_raw(42);
    let cases = [
        (WaitStatus::Exited(pid, 3), "exit code 3"),
        (
            WaitStatus::Signaled(pid, Signal::SIGKILL, true),
            "killed by SIGKILL (core dumped)",
        ),
        (
            WaitStatus::Stopped(pid, Signal::SIGSTOP),
            "stopped by SIGSTOP",
        ),
        (WaitStatus::Continued(pid), "continued"),
        (WaitStatus::StillAlive, "still running"),
        (
            WaitStatus::PtraceSyscall(pid),
            "stopped at a system call under a tracer",
        ),
    ];
    for (st, want) in cases {
        let got = describe(&st);
        assert_eq!(got, want);
        assert!(!got.contains("Pid("), "{got}");
        crate::assert_readable(&got);
    }
    assert_eq!(command_line(&[]), "(an empty command)");
    assert_eq!(
        command_line(&["sh".into(), "-c".into(), "echo hi".into()]),
        "sh -c 'echo hi'"
    );
}

#[test]
fn service_logs_are_the_owners_only_new_or_old() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let fresh = d.path().join("sshd.log");
    drop(open_log(&fresh).unwrap());
    assert_eq!(mode(&fresh), 0o600);
    // A log an earlier boot left readable by all keeps its lines, not its mode.
    let old = d.path().join("docker.log");
    std::fs::write(&old, "yesterday\n").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    use std::io::Write;
    writeln!(open_log(&old).unwrap(), "today").unwrap();
    assert_eq!(mode(&old), 0o600);
    assert_eq!(std::fs::read_to_string(&old).unwrap(), "yesterday\ntoday\n");
    let e = open_log(&d.path().join("no/such/dir.log")).unwrap_err();
    assert!(e.to_string().contains("no/such/dir.log"), "{e}");
}
