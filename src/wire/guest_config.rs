//! The per-boot settings the host hands the guest through QEMU's fw_cfg
//! (`-fw_cfg name=opt/org.b2d/config,file=…`; in the guest
//! `/sys/firmware/qemu_fw_cfg/by_name/opt/org.b2d/config/raw`). Unlike the
//! userdata archive, which a disk carries only until it is formatted,
//! this is read at every boot, so a stopped machine's settings (its
//! shared folders) can change.

use serde::{Deserialize, Serialize};

/// The fw_cfg item name.
pub const FW_CFG_NAME: &str = "opt/org.b2d/config";

/// Largest config the guest reads (the shares and the engine settings).
pub const MAX_SIZE: u64 = (64 << 10) + super::engine::MAX_SIZE as u64;

/// How a folder crosses into the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ShareFs {
    /// virtio-9p, served by QEMU itself.
    #[default]
    #[serde(rename = "9p")]
    NineP,
    /// virtiofs, served by a virtiofsd beside QEMU (vhost-user).
    #[serde(rename = "virtiofs")]
    Virtiofs,
}

impl ShareFs {
    pub fn name(self) -> &'static str {
        match self {
            ShareFs::NineP => "9p",
            ShareFs::Virtiofs => "virtiofs",
        }
    }
}

/// A host directory shared into the guest at the same absolute path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// The mount tag QEMU exports it under.
    pub tag: String,
    /// Absolute path, the same on both sides.
    pub path: String,
    #[serde(default)]
    pub readonly: bool,
    /// Absent in configs from before virtiofs: 9p.
    #[serde(default)]
    pub fs: ShareFs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GuestConfig {
    #[serde(default)]
    pub shares: Vec<Share>,
    /// The machine's engine settings; None (a config from before them, or
    /// a resume) keeps what the guest applied last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<super::engine::Engine>,
    /// The machine's NIC on a private network between machines, if it
    /// has one (`b2d up --network`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<super::network::PrivateNic>,
}

/// Why a share from the host is refused by the guest.
pub fn share_problem(s: &Share) -> Option<String> {
    let p = std::path::Path::new(&s.path);
    if !p.is_absolute() {
        return Some(format!("{}: not an absolute path", s.path));
    }
    if p.components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Some(format!("{}: contains ..", s.path));
    }
    // Where the system lives: a share there would hide the guest's own files.
    const SYSTEM: &[&str] = &[
        "/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/mnt", "/proc", "/root", "/run",
        "/sbin", "/sys", "/tmp", "/usr", "/var",
    ];
    let top = p.components().take(2).collect::<std::path::PathBuf>();
    if SYSTEM.iter().any(|s| top == std::path::Path::new(s)) && !s.path.starts_with("/tmp/") {
        return Some(format!("{}: inside the guest's system directories", s.path));
    }
    if s.tag.is_empty() || s.tag.len() > 31 || !s.tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Some(format!("{}: bad mount tag {:?}", s.path, s.tag));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(path: &str) -> Share {
        Share {
            tag: "b2d0".into(),
            path: path.into(),
            readonly: false,
            fs: ShareFs::NineP,
        }
    }

    #[test]
    fn shares_round_trip_and_system_paths_are_refused() {
        let c = GuestConfig {
            shares: vec![share("/home/alice")],
            engine: None,
            network: None,
        };
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(
            text,
            r#"{"shares":[{"tag":"b2d0","path":"/home/alice","readonly":false,"fs":"9p"}]}"#
        );
        let old: GuestConfig =
            serde_json::from_str(r#"{"shares":[{"tag":"b2d0","path":"/home/alice"}]}"#).unwrap();
        assert_eq!(old, c, "a config without fs means 9p");
        let v: Share = serde_json::from_str(
            r#"{"tag":"b2d0","path":"/home/alice","readonly":true,"fs":"virtiofs"}"#,
        )
        .unwrap();
        assert_eq!(v.fs, ShareFs::Virtiofs);
        assert_eq!(
            serde_json::from_str::<GuestConfig>("{}").unwrap(),
            GuestConfig::default()
        );
        assert_eq!(share_problem(&share("/home/alice")), None);
        assert_eq!(share_problem(&share("/Users/bob/src")), None);
        assert_eq!(share_problem(&share("/tmp/work")), None);
        for bad in [
            "/",
            "/etc",
            "/usr/local",
            "/var/lib/docker",
            "relative",
            "/home/../etc",
            "/mnt/sda1",
        ] {
            assert!(share_problem(&share(bad)).is_some(), "{bad}");
        }
        let mut t = share("/home/a");
        t.tag = "bad tag".into();
        assert!(share_problem(&t).unwrap().contains("mount tag"));
    }
}
