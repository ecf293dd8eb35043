//! What to boot: disks, NIC and firmware, and the QEMU command line for it.

use crate::host::vm::accel::Accel;
use std::path::PathBuf;

/// The id of the user-network netdev (eth0 in the guest), which the
/// host agent's `hostfwd_add` names too.
pub const USER_NETDEV: &str = "n0";

/// The id of the chardev the guest's serial console writes to.
pub const SERIAL_CHARDEV: &str = "serial0";

/// How a disk is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskBus {
    /// virtio-scsi (the default b2d profile: the disk is `sda`).
    VirtioScsi,
    /// AHCI SATA, as VirtualBox attaches disks.
    Ahci,
    /// virtio-blk: the disk is `vda`, named apart from the `sd*` disks
    /// (two disks on one SCSI bus are named in whatever order the
    /// kernel's asynchronous scan finishes).
    VirtioBlk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nic {
    VirtioNet,
    /// e1000, VirtualBox's default NIC.
    E1000,
}

#[derive(Debug, Clone)]
pub struct Disk {
    pub path: PathBuf,
    /// qemu's format name: raw, qcow2, vmdk, vpc.
    pub format: String,
    pub bus: DiskBus,
}

#[derive(Debug, Clone)]
pub struct VmSpec {
    pub iso: PathBuf,
    pub disks: Vec<Disk>,
    pub nic: Nic,
    pub uefi: bool,
    pub memory_mib: u32,
    pub cpus: u32,
    /// A guest reboot ends QEMU (tests); a machine reboots in place.
    pub no_reboot: bool,
    /// Disk writes reach the image file as the guest flushes them and
    /// discards punch holes back into it (machines). Tests use
    /// `cache=unsafe`: their images are thrown away.
    pub durable: bool,
    /// QEMU loads this kernel and initramfs itself, with this command line
    /// (the boot benchmark), instead of booting the CD.
    pub direct: Option<DirectBoot>,
}

/// A direct kernel boot: `-kernel`, `-initrd`, `-append`.
#[derive(Debug, Clone)]
pub struct DirectBoot {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub append: String,
}

impl VmSpec {
    pub fn new(iso: impl Into<PathBuf>) -> Self {
        VmSpec {
            iso: iso.into(),
            disks: Vec::new(),
            nic: Nic::VirtioNet,
            uefi: false,
            memory_mib: 2048,
            cpus: 2,
            no_reboot: true,
            durable: false,
            direct: None,
        }
    }
    pub fn disk(mut self, path: impl Into<PathBuf>, format: &str, bus: DiskBus) -> Self {
        self.disks.push(Disk {
            path: path.into(),
            format: format.into(),
            bus,
        });
        self
    }

    /// The QEMU arguments. Guest ports are forwarded from 127.0.0.1 only.
    pub fn args(
        &self,
        accel: Accel,
        ssh_port: u16,
        docker_port: u16,
        serial_log: &std::path::Path,
        ovmf: Option<&std::path::Path>,
    ) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "-accel".into(),
            accel.qemu_arg().into(),
            "-m".into(),
            self.memory_mib.to_string(),
            "-smp".into(),
            self.cpus.to_string(),
            "-nodefaults".into(),
            "-display".into(),
            "none".into(),
            "-chardev".into(),
            // Appending: the host agent may switch the console to a new
            // file (a rotation) and a resume goes on with the same one.
            format!(
                "file,id={SERIAL_CHARDEV},path={},append=on",
                opt_path(serial_log)
            ),
            "-serial".into(),
            format!("chardev:{SERIAL_CHARDEV}"),
            // The guest's RTC follows the host's clock, also while the VM
            // is paused: the guest agent steps its clock to it (see
            // guest::clock).
            "-rtc".into(),
            "base=utc,clock=host".into(),
            "-device".into(),
            "virtio-rng-pci".into(),
            // The guest hands its free pages back (see guest::reclaim).
            "-device".into(),
            "virtio-balloon-pci,free-page-reporting=on,id=balloon0".into(),
            "-drive".into(),
            format!(
                "file={},media=cdrom,readonly=on,if=none,id=cd0",
                opt_path(&self.iso)
            ),
        ];
        if self.no_reboot {
            a.push("-no-reboot".into());
        }
        a.extend(["-cpu".into(), accel.cpu_arg().into()]);
        let has_scsi = self.disks.iter().any(|d| d.bus == DiskBus::VirtioScsi);
        // The CD sits on AHCI so it never takes the name sda on the SCSI bus.
        let cd = match &self.direct {
            None => "ide-cd,drive=cd0,bus=ahci0.0,bootindex=0".to_string(),
            Some(d) => {
                a.extend([
                    "-kernel".into(),
                    d.kernel.display().to_string(),
                    "-initrd".into(),
                    d.initrd.display().to_string(),
                    "-append".into(),
                    d.append.clone(),
                ]);
                "ide-cd,drive=cd0,bus=ahci0.0".to_string()
            }
        };
        a.extend([
            "-device".into(),
            "ahci,id=ahci0".into(),
            "-device".into(),
            cd,
        ]);
        if has_scsi {
            a.extend(["-device".into(), "virtio-scsi-pci,id=scsi0".into()]);
        }
        let mut ahci_port = 1;
        let cache = if self.durable {
            "cache=writeback,discard=unmap"
        } else {
            "cache=unsafe"
        };
        for (i, d) in self.disks.iter().enumerate() {
            a.push("-drive".into());
            a.push(format!(
                "file={},format={},if=none,id=d{i},{cache}",
                opt_path(&d.path),
                d.format
            ));
            a.push("-device".into());
            a.push(match d.bus {
                DiskBus::VirtioScsi => format!("scsi-hd,drive=d{i},bus=scsi0.0"),
                DiskBus::VirtioBlk => format!("virtio-blk-pci,drive=d{i}"),
                DiskBus::Ahci => {
                    ahci_port += 1;
                    format!("ide-hd,drive=d{i},bus=ahci0.{}", ahci_port - 1)
                }
            });
        }
        let model = match self.nic {
            Nic::VirtioNet => "virtio-net-pci",
            Nic::E1000 => "e1000",
        };
        a.extend([
            "-netdev".into(),
            format!("user,id={USER_NETDEV},hostfwd=tcp:127.0.0.1:{ssh_port}-:22,hostfwd=tcp:127.0.0.1:{docker_port}-:2376"),
            "-device".into(),
            format!("{model},netdev={USER_NETDEV}"),
        ]);
        if let Some(fw) = ovmf.filter(|_| self.uefi) {
            a.extend(["-bios".into(), fw.display().to_string()]);
        }
        a
    }
}

pub use crate::util::qemu_opt_path as opt_path;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn forwards_bind_loopback_only_and_disks_follow_their_bus() {
        let spec = VmSpec::new("/b2d.iso")
            .disk("/d.qcow2", "qcow2", DiskBus::VirtioScsi)
            .disk("/v.vmdk", "vmdk", DiskBus::Ahci)
            .disk("/b.img", "raw", DiskBus::VirtioBlk);
        let a = spec
            .args(Accel::Tcg, 2222, 2376, Path::new("/tmp/serial.log"), None)
            .join(" ");
        assert!(
            a.contains("hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.1:2376-:2376"),
            "{a}"
        );
        assert!(!a.contains("hostfwd=tcp::"), "{a}");
        assert!(a.contains("scsi-hd,drive=d0,bus=scsi0.0"));
        assert!(a.contains("ide-hd,drive=d1,bus=ahci0.1"));
        assert!(a.contains("virtio-blk-pci,drive=d2"));
        assert!(a.contains("-accel tcg"));
        assert!(a.contains("-cpu qemu64,-cx16"), "{a}");
        assert!(a.contains(
            "-chardev file,id=serial0,path=/tmp/serial.log,append=on -serial chardev:serial0"
        ));
        assert!(a.contains("-no-reboot"));
        assert!(a.contains("cache=unsafe"));
        assert!(a.contains("-rtc base=utc,clock=host"), "{a}");
    }

    #[test]
    fn a_machine_reboots_in_place_and_keeps_its_writes() {
        let mut spec = VmSpec::new("/b2d.iso").disk("/d.img", "raw", DiskBus::VirtioScsi);
        spec.no_reboot = false;
        spec.durable = true;
        let a = spec.args(Accel::Tcg, 1, 2, Path::new("/s"), None).join(" ");
        assert!(!a.contains("-no-reboot"), "{a}");
        let odd = VmSpec::new("/x,y/b2d.iso")
            .args(Accel::Tcg, 1, 2, Path::new("/s,1"), None)
            .join(" ");
        assert!(odd.contains("file=/x,,y/b2d.iso,media=cdrom"), "{odd}");
        assert!(
            odd.contains("file,id=serial0,path=/s,,1,append=on "),
            "{odd}"
        );
        assert!(
            a.contains("format=raw,if=none,id=d0,cache=writeback,discard=unmap"),
            "{a}"
        );
    }

    #[test]
    fn uefi_uses_the_given_firmware_and_e1000_when_asked() {
        let mut spec = VmSpec::new("/b2d.iso");
        spec.uefi = true;
        spec.nic = Nic::E1000;
        let a = spec
            .args(
                Accel::Kvm,
                1,
                2,
                Path::new("/s"),
                Some(Path::new("/usr/share/ovmf/OVMF.fd")),
            )
            .join(" ");
        assert!(a.contains("-bios /usr/share/ovmf/OVMF.fd"));
        assert!(a.contains("e1000,netdev=n0"));
        assert!(a.contains("-cpu host"));
    }
}
