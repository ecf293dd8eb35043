//! The name of every file in a machine's directory, in one place: what
//! the store keeps, what QEMU and its helpers make there while the
//! machine runs, and what a suspend leaves. Nothing else in b2d builds
//! a path in a machine's directory.

use super::Machine;
use std::path::{Path, PathBuf};

/// What the machine is booted with.
pub const CONFIG: &str = "config.json";

/// The QEMU pid file of the machine in `dir`.
pub fn pid_file_in(dir: &Path) -> PathBuf {
    dir.join("qemu.pid")
}

/// The lock two b2d commands take on the machine in `dir`.
pub fn lock_in(dir: &Path) -> PathBuf {
    dir.join("lock")
}

/// The log that `log` (`serial.log`, `agent.log`) is moved to when it
/// is rotated: one is kept.
pub fn rotated(log: &Path) -> PathBuf {
    let mut p = log.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

/// Where the next segment of `log` is written before it takes its place.
pub fn next_segment(log: &Path) -> PathBuf {
    let mut p = log.as_os_str().to_owned();
    p.push(".next");
    PathBuf::from(p)
}

/// What the store keeps.
impl Machine {
    pub fn config_file(&self) -> PathBuf {
        self.dir.join(CONFIG)
    }
    /// The raw data disk.
    pub fn disk(&self) -> PathBuf {
        self.dir.join("disk.img")
    }
    /// The machine's copy of its ISO.
    pub fn iso(&self) -> PathBuf {
        self.dir.join("b2d.iso")
    }
    /// The key `b2d ssh` logs in with (its `.pub` beside it).
    pub fn ssh_key(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }
    /// The guest's host key, pinned.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }
    /// `DOCKER_CERT_PATH`: ca.pem, cert.pem, key.pem.
    pub fn cert_dir(&self) -> PathBuf {
        self.dir.join("certs")
    }
    /// The machine's CA key (its certificate is in [`Machine::cert_dir`]).
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join(crate::tls::CA_KEY)
    }
}

/// What a running machine makes: QEMU's, the host agent's and the share
/// servers' files.
impl Machine {
    /// This boot's serial console (capped; see `vm::console_rotate`).
    pub fn serial_log(&self) -> PathBuf {
        self.dir.join("serial.log")
    }
    /// The console before this segment: the previous boot's, or the
    /// earlier part of this one.
    pub fn serial_log_before(&self) -> PathBuf {
        rotated(&self.serial_log())
    }
    /// QEMU's own messages.
    pub fn qemu_log(&self) -> PathBuf {
        self.dir.join("qemu.log")
    }
    pub fn pid_file(&self) -> PathBuf {
        pid_file_in(&self.dir)
    }
    /// The QMP monitor b2d's verbs use (stop, suspend).
    pub fn qmp_socket(&self) -> PathBuf {
        self.dir.join("qmp.sock")
    }
    /// The host agent's own QMP monitor, so `b2d stop` never waits for it.
    pub fn agent_qmp_socket(&self) -> PathBuf {
        self.dir.join("agent-qmp.sock")
    }
    /// The per-boot guest config QEMU hands over through fw_cfg.
    pub fn guest_config(&self) -> PathBuf {
        self.dir.join("guest-config.json")
    }
    /// The guest's ports channel (virtio-serial, served by QEMU).
    pub fn ports_channel(&self) -> PathBuf {
        self.dir.join("agent.sock")
    }
    /// The tunnel channel: forwarded TCP connections.
    pub fn tunnel_channel(&self) -> PathBuf {
        self.dir.join("tunnel.sock")
    }
    /// The guest's control port (sync, unmount, resumed, peers).
    pub fn control_channel(&self) -> PathBuf {
        self.dir.join("control.sock")
    }
    /// The forwards in place now, as the host agent keeps them.
    pub fn forwards_file(&self) -> PathBuf {
        self.dir.join("ports.json")
    }
    /// The host agent's log (capped; the one before is `agent.log.1`).
    pub fn agent_log(&self) -> PathBuf {
        self.dir.join("agent.log")
    }
    /// Held by the running host agent; holds the pid of its QEMU.
    pub fn agent_lock(&self) -> PathBuf {
        self.dir.join("agent.lock")
    }
    /// Share `i`'s virtiofsd socket.
    pub fn virtiofs_socket(&self, i: usize) -> PathBuf {
        self.dir.join(format!("vfs{i}.sock"))
    }
    /// What the virtiofsd processes say.
    pub fn virtiofsd_log(&self) -> PathBuf {
        self.dir.join("virtiofsd.log")
    }
    /// Where share `i` is mounted for its server, in the server's own
    /// namespace: a folder that stays empty outside it.
    pub fn share_view(&self, i: usize) -> PathBuf {
        self.dir.join(format!("share{i}"))
    }
    /// Where a confined share server mounts its masks' tmpfs.
    pub fn hidden_dir(&self) -> PathBuf {
        self.dir.join("hidden")
    }
}

/// What a suspend leaves.
impl Machine {
    /// The devices' state, as QEMU migrated it.
    pub fn suspend_state(&self) -> PathBuf {
        self.dir.join("suspend.state")
    }
    /// The guest's RAM, sparse.
    pub fn suspend_ram(&self) -> PathBuf {
        self.dir.join("suspend.ram")
    }
    /// What was saved and the checks before it is loaded.
    pub fn suspend_meta(&self) -> PathBuf {
        self.dir.join("suspend.json")
    }
}
