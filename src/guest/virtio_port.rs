//! The guest's virtio-serial ports (the port watch's, the tunnel's and
//! the control port): a port's device node found by its sysfs name,
//! opened, and whether the host end has sent anything.

use std::path::{Path, PathBuf};

/// A virtio-serial port's device node: the `vportNpM` whose sysfs
/// `name` is `channel` (there is no udev to make `/dev/virtio-ports/`
/// links).
pub fn channel_device(sys_root: &Path, dev_root: &Path, channel: &str) -> Option<PathBuf> {
    let dir = std::fs::read_dir(sys_root.join("class/virtio-ports")).ok()?;
    dir.flatten().find_map(|e| {
        let name = std::fs::read_to_string(e.path().join("name")).ok()?;
        (name.trim() == channel).then(|| dev_root.join(e.file_name()))
    })
}

/// The virtio port `channel`, opened for reading and writing; None (said
/// once on the console as `what: …; without`) when the VM has no such
/// port or it cannot be opened.
pub fn open_port(
    sys_root: &Path,
    dev_root: &Path,
    channel: &str,
    what: &str,
    without: &str,
) -> Option<(std::fs::File, PathBuf)> {
    let Some(dev) = channel_device(sys_root, dev_root, channel) else {
        log::info!("{what}: no {channel} port; {without}");
        return None;
    };
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&dev)
    {
        Ok(f) => Some((f, dev)),
        Err(e) => {
            log::warn!("{what}: cannot open {}: {e}; {without}", dev.display());
            None
        }
    }
}

/// Whether the host end of virtio port `f` is open and has sent data,
/// waiting up to a second. A port nobody holds on the host polls as hung
/// up *and* readable (a read returns 0 at once): that is no data.
pub fn host_sent(f: &std::fs::File) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::from(1000u16)) {
        Ok(n) if n > 0 => fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN) && !r.contains(PollFlags::POLLHUP)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ports::CHANNEL;

    #[test]
    fn finds_the_channel_by_its_sysfs_name() {
        let t = tempfile::tempdir().unwrap();
        let vp = t.path().join("sys/class/virtio-ports");
        for (port, name) in [
            ("vport0p1", "org.qemu.guest_agent.0\n"),
            ("vport0p2", "org.b2d.agent.0\n"),
        ] {
            std::fs::create_dir_all(vp.join(port)).unwrap();
            std::fs::write(vp.join(port).join("name"), name).unwrap();
        }
        assert_eq!(
            channel_device(&t.path().join("sys"), Path::new("/dev"), CHANNEL),
            Some(PathBuf::from("/dev/vport0p2"))
        );
        assert_eq!(
            channel_device(&t.path().join("none"), Path::new("/dev"), CHANNEL),
            None
        );
    }
}
