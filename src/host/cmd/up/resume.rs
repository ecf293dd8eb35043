//! `b2d up` of a suspended machine: resume it from its saved state, or
//! say in one line why not and leave the cold boot to `up`. New settings
//! cannot be loaded into a saved machine: it is resumed with the old
//! ones, shut down cleanly, and booted cold with the new.

use super::{after_boot, changes, Note, UpError, UpOptions};
use crate::host::cmd::lifecycle::Stopped;
use crate::host::shares;
use crate::host::store::{Machine, Store};
use crate::host::suspend::{self, NotResumed};
use crate::host::ui::progress::{Event, Sink};
use crate::host::vm::accel::{self, Accel};
use crate::host::vm::console::{self, Boot};
use crate::host::{forward::fixed, suspend::saved, vm::control};
use crate::wire::control::{Op, REMOUNT_FOR};
use crate::wire::ready::Ready;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long `up` waits for the guest's answer to `resumed`: the guest
/// answers once its shares are back or it gave up on them after
/// [`REMOUNT_FOR`], and then some, for the clock step and the lease.
const GUEST_ANSWER: Duration = Duration::from_secs(2 * REMOUNT_FOR.as_secs());

pub(super) enum Attempt {
    NotSuspended,
    Resumed {
        ready: Box<Ready>,
        secs: f64,
        accel: Accel,
        notes: Vec<Note>,
    },
    /// Boot cold; the notes say why.
    Cold(Vec<Note>),
}

/// Options that need a cold boot of a suspended machine (forwarded ports
/// do not: a resumed QEMU gets its forwards anew).
fn needs_cold_boot(m: &Machine, o: &UpOptions) -> Result<Vec<String>, UpError> {
    Ok(changes::ignored(m, o)?
        .into_iter()
        .filter(|c| !c.starts_with("--ssh-port ") && !c.starts_with("--docker-port "))
        .collect())
}

pub(super) fn attempt(
    store: &Store,
    m: &mut Machine,
    o: &UpOptions,
    qemu: &Path,
    sink: &mut dyn Sink,
) -> Result<Attempt, UpError> {
    let saved = match saved::read(m) {
        None => return Ok(Attempt::NotSuspended),
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            saved::discard(m);
            return Ok(Attempt::Cold(vec![Note::NotResumed(e.to_string())]));
        }
    };
    let wanted = needs_cold_boot(m, o)?;
    let mut notes: Vec<Note> = fixed::for_boot(store, m, o.ports())?
        .into_iter()
        .map(Note::Port)
        .collect();
    m.save_config()?;
    let accel = accel::choose(&m.iso());
    let start = Instant::now();
    sink.event(Event::Begin(format!(
        "Resuming {} ({})",
        m.name,
        accel.name()
    )));
    sink.event(Event::Step(Some("loading the saved state".into())));
    let plan = shares::plan_for(m)?;
    match suspend::resume(m, &saved, qemu, accel, &plan) {
        Ok(()) => {}
        Err(NotResumed::Start(e)) => {
            sink.event(Event::End);
            return Err(e.into());
        }
        Err(NotResumed::Unusable(why)) => {
            sink.event(Event::End);
            notes.push(Note::NotResumed(why.to_string()));
            return Ok(Attempt::Cold(notes));
        }
    }
    if !wanted.is_empty() {
        sink.event(Event::Step(Some(
            "shutting down to apply the new settings".into(),
        )));
        let killed = match crate::host::cmd::lifecycle::stop(m, Duration::from_secs(90)) {
            Stopped::Killed { why } | Stopped::Discarded { why } => Some(why),
            Stopped::Clean | Stopped::Already => None,
        };
        sink.event(Event::End);
        notes.push(Note::ResumedToRestart { wanted, killed });
        return Ok(Attempt::Cold(notes));
    }
    sink.event(Event::Step(Some("the guest steps its clock".into())));
    // The guest's clock, lease and shares while the host agent starts.
    let asked = {
        let m = m.clone();
        std::thread::spawn(move || {
            control::Control::connect(&m).and_then(|mut c| {
                c.ask(
                    Op::Resumed {
                        unix_ms: suspend::unix_ms(),
                    },
                    GUEST_ANSWER,
                )
            })
        })
    };
    notes.extend(
        after_boot(store, m, o)
            .into_iter()
            .filter(|n| *n != Note::AgentStarted),
    );
    let answer = asked
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the control thread failed")));
    match answer {
        Ok(r) => notes.extend(r.error.map(Note::Guest)),
        Err(e) => notes.push(Note::Guest(format!("after the resume: {e}"))),
    }
    let docker_addr = format!("127.0.0.1:{}", m.config.docker_port);
    let up = crate::util::tcp_open(&docker_addr, Duration::from_secs(10));
    sink.event(Event::End);
    if !up {
        return Err(UpError::DockerUnreachable {
            name: m.name.clone(),
            port: m.config.docker_port,
            log: m.qemu_log(),
        });
    }
    let log = console::read_log(&m.serial_log());
    let Boot::Ready(ready) = console::read(&log) else {
        return Err(UpError::DockerDown {
            name: m.name.clone(),
            said: console::dockerd_said(&log),
            tail: console::tail(&log, 15),
        });
    };
    Ok(Attempt::Resumed {
        ready,
        secs: start.elapsed().as_secs_f64(),
        accel,
        notes,
    })
}
