//! Suspend and resume through QEMU migration to a file.
//!
//! Save: the guest writes its page cache back and unmounts the shares
//! (control port), the virtiofs devices are unplugged (QEMU 7.2 cannot
//! migrate them), the VM is paused and its devices migrated to
//! `suspend.state` (`x-ignore-shared`: the RAM is not in the stream),
//! the RAM is copied out of QEMU's memfd to `suspend.ram` ([`ram`]),
//! QEMU quits, and [`saved::commit`] records it. Resume: the state is
//! checked ([`saved`]), a new memfd is filled from `suspend.ram` while a
//! QEMU with the same devices starts on it (`-incoming defer`), the
//! devices are loaded once both checksums are right, the VM runs again
//! and gets its virtiofs devices back; the guest then hears `resumed`.

mod errors;
pub mod saved;

pub use errors::{NotResumed, Refusal, Step, SuspendError, Unresumable};

use crate::errors::WithPath;
use crate::host::shares::{self, virtiofs};
use crate::host::store::Machine;
use crate::host::vm::accel::Accel;
use crate::host::vm::qmp::Qmp;
use crate::host::{vm, vm::control, vm::ram};
use crate::wire::control::Op;
use saved::{Saved, Unusable};
use serde_json::{json, Value};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long the guest may take to write its page cache back.
pub const GUEST_PREPARE: Duration = Duration::from_secs(120);
const QMP_WAIT: Duration = Duration::from_secs(30);

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a suspend did.
#[derive(Debug)]
pub struct Done {
    pub saved: Saved,
    pub secs: f64,
}

/// The ids of the plugged virtiofs devices.
fn virtiofs_devices(q: &mut Qmp) -> Result<Vec<String>, Step> {
    let list = q.execute("qom-list", Some(json!({"path": "/machine/peripheral"})))?;
    let mut ids: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("name").and_then(Value::as_str))
        .filter(|n| n.starts_with("vfsdev"))
        .map(str::to_string)
        .collect();
    ids.sort();
    Ok(ids)
}

fn unplug(q: &mut Qmp, ids: &[String]) -> Result<(), Step> {
    for id in ids {
        q.execute("device_del", Some(json!({ "id": id })))?;
    }
    let start = Instant::now();
    while !virtiofs_devices(q)?.is_empty() {
        if start.elapsed() > Duration::from_secs(20) {
            return Err(Step::Unplug);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Plug the virtiofs devices of `m`'s shares in (QEMU has their sockets).
pub fn plug(q: &mut Qmp, m: &Machine, count: usize) -> Result<(), Step> {
    for i in 0..count {
        let props = virtiofs::device(i, &shares::tag(i));
        let mut args = json!({ "driver": props[0] });
        for p in &props[1..] {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            args[k] = json!(v);
        }
        q.execute("device_add", Some(args))
            .map_err(|source| Step::Plug {
                machine: m.name.clone(),
                source,
            })?;
    }
    Ok(())
}

fn shell_quote(p: &Path) -> String {
    crate::util::sh_quote(&p.display().to_string())
}

/// Poll `query-migrate` until it ends.
/// Leave the shared guest RAM out of the migration stream (both ends
/// must say so).
fn ignore_shared(q: &mut Qmp) -> Result<(), Step> {
    q.execute(
        "migrate-set-capabilities",
        Some(json!({"capabilities": [{"capability": "x-ignore-shared", "state": true}]})),
    )
    .map(drop)
    .map_err(Step::IgnoreShared)
}

fn ram_bytes(m: &Machine) -> u64 {
    u64::from(m.config.memory_mib) << 20
}

fn migrated(q: &mut Qmp) -> Result<(), Step> {
    loop {
        let st = q.execute("query-migrate", None)?;
        match st.get("status").and_then(Value::as_str).unwrap_or("") {
            "completed" => return Ok(()),
            "failed" | "cancelled" => {
                let why = st
                    .get("error-desc")
                    .and_then(Value::as_str)
                    .unwrap_or("migration failed");
                return Err(Step::Migration(why.to_string()));
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Undo a half-done suspend: run again, plug the devices back, tell the
/// guest to mount its shares.
fn abandon(q: &mut Qmp, m: &Machine, ctl: &mut control::Control, plugged: usize) -> Vec<Step> {
    let mut said = Vec::new();
    if let Err(e) = q.execute("cont", None) {
        said.push(Step::Cont(e));
    }
    if let Err(e) = plug(q, m, plugged) {
        said.push(e);
    }
    match ctl.ask(Op::Resumed { unix_ms: unix_ms() }, Duration::from_secs(30)) {
        Ok(r) => said.extend(r.error.map(Step::Guest)),
        Err(e) => said.push(Step::Io(e)),
    }
    said
}

/// Save running machine `m` and end its QEMU. The caller holds the lock.
pub fn suspend(m: &Machine, qemu_bin: &Path) -> Result<Done, SuspendError> {
    let start = Instant::now();
    let name = m.name.clone();
    let Some(pid) = vm::running_pid(m) else {
        return Err(SuspendError::NotRunning(name));
    };
    let log = crate::host::vm::console::read_log(&m.serial_log());
    if !matches!(
        crate::host::vm::console::read(&log),
        crate::host::vm::console::Boot::Ready(_)
    ) {
        return Err(SuspendError::Booting(name));
    }
    let accel = vm::accel_of(pid).unwrap_or_default();
    let refused = |why: Refusal| SuspendError::Refused {
        name: m.name.clone(),
        why,
    };
    let Some(guest_ram) = ram::find(pid, ram_bytes(m)) else {
        return Err(refused(Refusal::NotInMemfd(m.name.clone())));
    };
    let mut ctl = control::Control::connect(m).map_err(|e| refused(Refusal::NoControlPort(e)))?;
    let r = ctl
        .ask(Op::Suspend, GUEST_PREPARE)
        .map_err(|e| refused(Refusal::GuestNotReady(e)))?;
    if let Some(e) = r.error {
        return Err(refused(Refusal::Guest(e)));
    }
    let mut q = Qmp::connect(&m.qmp_socket(), QMP_WAIT).map_err(|e| refused(Step::Io(e).into()))?;
    let ids = virtiofs_devices(&mut q).map_err(|e| refused(e.into()))?;
    let tmp = m.suspend_state().with_extension("state.tmp");
    let ram_tmp = m.suspend_ram().with_extension("ram.tmp");
    let mut ram_sha256 = String::new();
    let saved_state = unplug(&mut q, &ids)
        .and_then(|()| Ok(q.execute("stop", None).map(drop)?))
        .and_then(|()| {
            ignore_shared(&mut q)?;
            q.execute(
                "migrate-set-parameters",
                Some(json!({ "max-bandwidth": 64u64 << 30 })),
            )?;
            // Made private first: `cat >` keeps the mode of a file that exists.
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .with_path("create", &tmp)?;
            let uri = format!("exec:cat > {}", shell_quote(&tmp));
            q.execute("migrate", Some(json!({ "uri": uri })))?;
            migrated(&mut q)
        })
        .and_then(|()| {
            ram_sha256 =
                ram::save(&guest_ram, ram_bytes(m), &ram_tmp).map_err(|source| Step::Ram {
                    path: ram_tmp.clone(),
                    source,
                })?;
            std::fs::rename(&ram_tmp, m.suspend_ram()).with_path("rename into place", &ram_tmp)?;
            Ok(std::fs::rename(&tmp, m.suspend_state()).with_path("rename into place", &tmp)?)
        });
    if let Err(why) = saved_state {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(&ram_tmp);
        let _ = std::fs::remove_file(m.suspend_ram());
        let undo = abandon(&mut q, m, &mut ctl, ids.len());
        return Err(SuspendError::Save { name, why, undo });
    }
    let _ = q.execute("quit", None);
    if !vm::wait_gone(m, Duration::from_secs(30)) {
        vm::stop_now(m);
    }
    vm::cleanup(m);
    let taken = saved::Taken {
        ram_sha256,
        virtiofs: ids.len(),
        unix_ms: unix_ms(),
    };
    let saved = saved::commit(m, qemu_bin, &accel, taken).map_err(|why| {
        saved::discard(m);
        SuspendError::Commit {
            name: m.name.clone(),
            why,
        }
    })?;
    Ok(Done {
        saved,
        secs: start.elapsed().as_secs_f64(),
    })
}

/// Bring suspended machine `m` back: check the state, load it into a new
/// QEMU, run it and plug its virtiofs devices back. The state is
/// discarded whatever happens (once loaded, the disk moves on). The
/// caller holds the lock and then tells the guest [`Op::Resumed`].
pub fn resume(
    m: &Machine,
    saved: &Saved,
    qemu_bin: &Path,
    accel: Accel,
    plan: &shares::Plan,
) -> Result<(), NotResumed> {
    let unusable = |e: Unusable| {
        saved::discard(m);
        NotResumed::Unusable(e.into())
    };
    saved::check(m, saved, qemu_bin, accel.name()).map_err(unusable)?;
    if saved.ram_size != ram_bytes(m) {
        saved::discard(m);
        return Err(NotResumed::Unusable(Unresumable::RamSize {
            saved: saved.ram_size >> 20,
            now: m.config.memory_mib,
        }));
    }
    let guest_ram = ram::memfd(saved.ram_size).map_err(|e| {
        saved::discard(m);
        NotResumed::Unusable(Unresumable::NoMemory(e))
    })?;
    // The RAM is filled and both checksums read while QEMU starts on
    // it; the devices are loaded only once they match.
    let verified = std::thread::scope(|sc| {
        let verify = sc.spawn(|| {
            saved::verify_state(m, saved).and_then(|()| saved::load_ram(m, saved, &guest_ram))
        });
        let started = start_incoming(m, qemu_bin, accel, plan, guest_ram.as_raw_fd());
        let verified = verify.join().unwrap_or(Err(Unusable::Unreadable {
            path: m.suspend_state(),
            why: "the check failed".into(),
        }));
        (started, verified)
    });
    // QEMU has the RAM open itself.
    drop(guest_ram);
    let mut q = match verified {
        (Ok(q), Ok(())) => q,
        (Ok(_), Err(e)) | (Err(NotResumed::Unusable(_)), Err(e)) => {
            vm::stop_now(m);
            return Err(unusable(e));
        }
        (Err(e), _) => return Err(e),
    };
    load_devices(m, &mut q)?;
    if let Err(e) = saved::loaded(m) {
        // It must never be loaded twice: gone, whatever it takes.
        eprintln!("b2d: {}: moving the loaded state aside: {e}", m.name);
        saved::discard(m);
    }
    let failed = |why: Step| {
        vm::stop_now(m);
        NotResumed::Unusable(why.into())
    };
    q.execute("cont", None).map_err(|e| failed(e.into()))?;
    if plan.fs() == crate::wire::guest_config::ShareFs::Virtiofs {
        plug(&mut q, m, saved.virtiofs).map_err(failed)?;
    }
    Ok(())
}

/// Start QEMU waiting for the state, and load it; QEMU is left paused.
/// A resume that cannot go on: QEMU stopped, the state forgotten.
fn give_up(m: &Machine, why: Unresumable) -> NotResumed {
    vm::stop_now(m);
    saved::discard(m);
    NotResumed::Unusable(why)
}

/// Start QEMU on the guest RAM `ram_fd`, waiting for a state.
fn start_incoming(
    m: &Machine,
    qemu_bin: &Path,
    accel: Accel,
    plan: &shares::Plan,
    ram_fd: RawFd,
) -> Result<Qmp, NotResumed> {
    let failed = |why: Unresumable| give_up(m, why);
    vm::start(m, qemu_bin, accel, plan, vm::Launch::Incoming { ram_fd }).map_err(|e| {
        if matches!(e, vm::QemuError::Start { .. }) {
            failed(Unresumable::Qemu(e))
        } else {
            NotResumed::Start(e)
        }
    })?;
    let mut q = Qmp::connect(&m.qmp_socket(), QMP_WAIT).map_err(|e| failed(Step::Io(e).into()))?;
    ignore_shared(&mut q).map_err(|e| failed(e.into()))?;
    Ok(q)
}

/// Load the devices' state into a QEMU started by [`start_incoming`];
/// it stays paused.
fn load_devices(m: &Machine, q: &mut Qmp) -> Result<(), NotResumed> {
    let failed = |why: Unresumable| give_up(m, why);
    let uri = format!("exec:cat {}", shell_quote(&m.suspend_state()));
    q.execute("migrate-incoming", Some(json!({ "uri": uri })))
        .map_err(|e| failed(Step::Io(e).into()))?;
    let start = Instant::now();
    loop {
        let status = q
            .execute("query-status", None)
            .map(|s| s["status"].as_str().unwrap_or_default().to_string());
        match status.as_deref() {
            Ok("inmigrate") if start.elapsed() < Duration::from_secs(300) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Ok("paused") | Ok("running") => return Ok(()),
            Ok(other) => return Err(failed(Unresumable::Status(other.to_string()))),
            Err(_) => {
                let said = std::fs::read_to_string(m.qemu_log()).unwrap_or_default();
                let said = said
                    .lines()
                    .last()
                    .unwrap_or("QEMU exited")
                    .trim()
                    .to_string();
                return Err(failed(Unresumable::Load(said)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_for_the_shell_qemu_runs() {
        assert_eq!(shell_quote(Path::new("/a b/s")), "'/a b/s'");
        assert_eq!(shell_quote(Path::new("/it's")), "'/it'\\''s'");
    }
}
