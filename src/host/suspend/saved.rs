//! A suspended machine's saved state: QEMU's migration stream of its
//! devices in `suspend.state`, the guest RAM in `suspend.ram` (sparse:
//! [`crate::host::vm::ram`]), and `suspend.json`, written last, which makes it a
//! suspend. The state is never loaded blindly: its size and SHA-256, the
//! data disk, the ISO, QEMU and the accelerator must all be as they were
//! when it was saved, or the machine boots cold from its disk instead
//! (the guest wrote its page cache back before the save, so that is a
//! power cut at a quiet moment, which the disk format survives).

use crate::errors::{PathError, WithPath};
use crate::host::store::{Config, Machine};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Bumped when what is saved changes meaning.
pub const VERSION: u32 = 3;

/// Which file, as it was: enough to tell it was written or replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
}

impl Stamp {
    pub fn of(path: &Path) -> io::Result<Stamp> {
        let md = std::fs::metadata(path)?;
        Ok(Stamp {
            size: md.len(),
            mtime_ns: md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
            inode: md.ino(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    pub version: u32,
    pub state_size: u64,
    pub state_sha256: String,
    /// The guest RAM's size and checksum ([`crate::host::vm::ram`]).
    pub ram_size: u64,
    pub ram_sha256: String,
    pub disk: Stamp,
    pub iso: Stamp,
    pub qemu: Stamp,
    /// The accelerator it ran under (a TCG CPU is not a KVM one).
    pub accel: String,
    /// The settings it ran with: it resumes with these.
    pub config: Config,
    /// The virtiofs devices unplugged for the save, to plug back.
    pub virtiofs: usize,
    /// When it was saved, ms since the Unix epoch.
    pub saved_unix_ms: u64,
}

/// Why a saved state is not loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    #[error("{path}: {why}")]
    Unreadable { path: PathBuf, why: String },
    #[error("{path}: the state is {found} bytes, {want} were saved")]
    Size {
        path: PathBuf,
        found: u64,
        want: u64,
    },
    #[error("{path}: the state's SHA-256 is not the one saved: the file is damaged")]
    Checksum { path: PathBuf },
    #[error("{path}: the disk changed since the suspend")]
    DiskChanged { path: PathBuf },
    #[error("{path}: the ISO changed since the suspend")]
    IsoChanged { path: PathBuf },
    #[error("{path}: QEMU changed since the suspend")]
    QemuChanged { path: PathBuf },
    #[error("it was saved under {saved}, and this boot uses {now}")]
    Accel { saved: String, now: String },
    #[error("{path}: saved by another b2d (state version {found}, this one reads {VERSION})")]
    Version { path: PathBuf, found: u32 },
}

/// The saved state's description, if the machine is suspended.
pub fn read(m: &Machine) -> Option<Result<Saved, Unusable>> {
    let path = m.suspend_meta();
    let text = match crate::small_file::read(&path, crate::small_file::JSON_LIMIT) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(Unusable::Unreadable { path, why: e.why() })),
    };
    Some(
        serde_json::from_slice::<Saved>(&text).map_err(|e| Unusable::Unreadable {
            path,
            why: e.to_string(),
        }),
    )
}

pub fn is_suspended(m: &Machine) -> bool {
    m.suspend_meta().exists()
}

/// SHA-256 of a file, hex.
pub fn sha256(path: &Path) -> io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Whether `s` may be loaded into `m` by `qemu` under `accel`: everything
/// but the checksum, which [`verify_state`] reads the whole file for.
pub fn check(m: &Machine, s: &Saved, qemu: &Path, accel: &str) -> Result<(), Unusable> {
    let meta = m.suspend_meta();
    if s.version != VERSION {
        return Err(Unusable::Version {
            path: meta,
            found: s.version,
        });
    }
    let same = |path: PathBuf, want: &Stamp| Stamp::of(&path).ok().as_ref() == Some(want);
    if !same(m.disk(), &s.disk) {
        return Err(Unusable::DiskChanged { path: m.disk() });
    }
    if !same(m.iso(), &s.iso) {
        return Err(Unusable::IsoChanged { path: m.iso() });
    }
    if !same(qemu.to_path_buf(), &s.qemu) {
        return Err(Unusable::QemuChanged {
            path: qemu.to_path_buf(),
        });
    }
    if s.accel != accel {
        return Err(Unusable::Accel {
            saved: s.accel.clone(),
            now: accel.to_string(),
        });
    }
    Ok(())
}

/// `path` must be `size` bytes, and `checksum` of it must be `sha256`.
fn check_file(
    path: PathBuf,
    size: u64,
    sha256: &str,
    checksum: impl FnOnce(&Path) -> io::Result<String>,
) -> Result<(), Unusable> {
    let unreadable = |e: io::Error| Unusable::Unreadable {
        path: path.clone(),
        why: e.to_string(),
    };
    let found = std::fs::metadata(&path).map_err(unreadable)?.len();
    if found != size {
        return Err(Unusable::Size {
            path,
            found,
            want: size,
        });
    }
    if checksum(&path).map_err(unreadable)? != sha256 {
        return Err(Unusable::Checksum { path });
    }
    Ok(())
}

/// The state file's size and checksum against what was saved.
pub fn verify_state(m: &Machine, s: &Saved) -> Result<(), Unusable> {
    check_file(m.suspend_state(), s.state_size, &s.state_sha256, sha256)
}

/// Fill `ram` (a new memfd) from the saved RAM, which must have the
/// size and the checksum saved.
pub fn load_ram(m: &Machine, s: &Saved, ram: &std::fs::File) -> Result<(), Unusable> {
    check_file(m.suspend_ram(), s.ram_size, &s.ram_sha256, |p| {
        crate::host::vm::ram::fill(p, s.ram_size, ram)
    })
}

/// The names the state files of a resumed machine move to, for the
/// host agent to delete ([`remove_loaded`]).
fn loaded_name(p: PathBuf) -> PathBuf {
    let mut s = p.into_os_string();
    s.push(".loaded");
    s.into()
}

/// After a resume has loaded the state: the description goes, so the
/// machine is no longer suspended, and the state files are moved aside
/// (deleting a few hundred MiB takes a while; [`remove_loaded`] does
/// it, out of `up`'s way).
pub fn loaded(m: &Machine) -> io::Result<()> {
    std::fs::remove_file(m.suspend_meta())?;
    for f in [m.suspend_state(), m.suspend_ram()] {
        std::fs::rename(&f, loaded_name(f.clone()))?;
    }
    Ok(())
}

/// Delete what [`loaded`] moved aside (the host agent does, once it runs).
pub fn remove_loaded(m: &Machine) {
    for f in [m.suspend_state(), m.suspend_ram()] {
        let _ = std::fs::remove_file(loaded_name(f));
    }
}

/// Forget the saved state (it was loaded, or it cannot be).
pub fn discard(m: &Machine) {
    // The description first: without it the state file means nothing.
    let _ = std::fs::remove_file(m.suspend_meta());
    remove_loaded(m);
    let _ = std::fs::remove_file(m.suspend_state());
    let _ = std::fs::remove_file(m.suspend_state().with_extension("state.tmp"));
    let _ = std::fs::remove_file(m.suspend_ram());
    let _ = std::fs::remove_file(m.suspend_ram().with_extension("ram.tmp"));
}

/// Record a state written to [`state_file`]: fsync it, checksum it, stamp
/// the disk as QEMU left it, and write the description last.
/// What a suspend saved besides the device state: the RAM's checksum,
/// how many virtiofs devices to plug back, when.
pub struct Taken {
    pub ram_sha256: String,
    pub virtiofs: usize,
    pub unix_ms: u64,
}

pub fn commit(m: &Machine, qemu: &Path, accel: &str, t: Taken) -> Result<Saved, PathError> {
    let path = m.suspend_state();
    let ram = m.suspend_ram();
    let stamp = |p: &Path| Stamp::of(p).with_path("look at", p);
    std::fs::File::open(&path)
        .and_then(|f| f.sync_all())
        .with_path("fsync", &path)?;
    let s = Saved {
        version: VERSION,
        state_size: std::fs::metadata(&path).with_path("look at", &path)?.len(),
        state_sha256: sha256(&path).with_path("checksum", &path)?,
        ram_size: std::fs::metadata(&ram).with_path("look at", &ram)?.len(),
        ram_sha256: t.ram_sha256,
        disk: stamp(&m.disk())?,
        iso: stamp(&m.iso())?,
        qemu: stamp(qemu)?,
        accel: accel.to_string(),
        config: m.config.clone(),
        virtiofs: t.virtiofs,
        saved_unix_ms: t.unix_ms,
    };
    let meta = m.suspend_meta();
    let mut text =
        serde_json::to_vec_pretty(&s).map_err(|e| PathError::new("encode", &meta, e.into()))?;
    text.push(b'\n');
    crate::atomic::write(&meta, &text, 0o600)?;
    Ok(s)
}

#[cfg(test)]
#[path = "saved_tests.rs"]
mod tests;
