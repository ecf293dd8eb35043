//! Telling running machines who is on their network now. A guest learns
//! its peers from the per-boot config; one that runs while a peer is
//! created, moved or removed is told over its control port, and writes
//! its /etc/hosts again. What each guest was told is kept in its
//! `guest-config.json` (the config of this boot, its peers updated once
//! the guest confirmed), so a machine that already knows is not asked.

use crate::errors::PathError;
use crate::host::network::peers;
use crate::host::store::{Machine, Store};
use crate::host::vm;
use crate::host::vm::control::Control;
use crate::wire::control::Op;
use crate::wire::guest_config::GuestConfig;
use crate::wire::network::Peer;
use std::time::Duration;

/// How long a running guest has to answer.
const ANSWER: Duration = Duration::from_secs(5);

fn config(m: &Machine) -> Option<GuestConfig> {
    let text = crate::small_file::read(&m.guest_config(), crate::small_file::JSON_LIMIT).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The peers on `network` the guest of `m` was told of this boot, if it
/// was told of that network at all.
pub fn told(m: &Machine, network: &str) -> Option<Vec<Peer>> {
    config(m)?
        .network
        .filter(|n| n.network == network)
        .map(|n| n.peers)
}

/// Note in `m`'s guest-config.json that its guest now knows `peers`.
fn record(m: &Machine, peers: &[Peer]) -> Result<(), PathError> {
    let Some(mut c) = config(m) else {
        return Ok(());
    };
    if let Some(n) = c.network.as_mut() {
        n.peers = peers.to_vec();
    }
    let path = m.guest_config();
    let text = serde_json::to_vec(&c).map_err(|e| PathError::new("encode", &path, e.into()))?;
    crate::atomic::write(&path, &text, 0o644)
}

/// Why a running guest was not told its peers.
#[derive(Debug, thiserror::Error)]
enum NotTold {
    /// The control port could not be reached, or did not answer.
    #[error(transparent)]
    Control(#[from] std::io::Error),
    /// The guest's own answer.
    #[error("{0}")]
    Guest(String),
    #[error(transparent)]
    Record(#[from] PathError),
}

fn tell(m: &Machine, network: &str, peers: Vec<Peer>) -> Result<(), NotTold> {
    let op = Op::Peers {
        network: network.into(),
        peers: peers.clone(),
    };
    let reply = Control::connect(m).and_then(|mut c| c.ask(op, ANSWER))?;
    if let Some(e) = reply.error {
        return Err(NotTold::Guest(e));
    }
    Ok(record(m, &peers)?)
}

/// Tell each running machine on `network` whose guest does not know its
/// peers as they are now; one line for each that could not be told.
pub fn announce(store: &Store, network: &str) -> Vec<String> {
    let due: Vec<(Machine, Vec<Peer>)> = crate::host::network::members(store, network)
        .unwrap_or_default()
        .into_iter()
        .filter(|m| vm::running_pid(m).is_some())
        .map(|m| {
            let now = peers(store, &m);
            (m, now)
        })
        .filter(|(m, now)| told(m, network).as_ref() != Some(now))
        .collect();
    std::thread::scope(|s| {
        let asks: Vec<_> = due
            .into_iter()
            .map(|(m, now)| s.spawn(move || tell(&m, network, now).err().map(|e| (m.name, e))))
            .collect();
        asks.into_iter()
            .filter_map(|a| a.join().ok().flatten())
            .map(|(name, e)| {
                format!(
                    "machine \"{name}\" was not told who is on network {network} ({e}); its /etc/hosts catches up at its next boot"
                )
            })
            .collect()
    })
}
