//! `b2d stop`: shut a machine down with the ACPI power button, killed
//! after the timeout; a suspended machine is resumed to shut down
//! cleanly (the work is [`super::lifecycle`]'s).

use super::lifecycle;
use super::{Context, Output};
use crate::host::store::{MachineError, Store, DEFAULT_NAME};
use std::time::Duration;

/// `b2d stop [NAME] [--timeout SECS]`.
#[derive(Debug, Clone, clap::Args)]
pub struct StopArgs {
    #[arg(default_value = DEFAULT_NAME)]
    pub name: String,
    /// Seconds to wait for the guest to power off.
    #[arg(long, default_value_t = 90)]
    pub timeout: u64,
}

/// `b2d stop NAME`: how it stopped, on stderr.
pub fn run(store: &Store, args: StopArgs, _cx: &mut Context) -> Result<Output, MachineError> {
    let stopped = lifecycle::stop_by_name(store, &args.name, Duration::from_secs(args.timeout))?;
    Ok(stopped.render(&args.name))
}
