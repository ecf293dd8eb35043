//! `b2d ip`: where a running machine's ports are reached from this host.
//! With user networking the guest's ports are forwarded to loopback.

use super::{CmdError, Context, Output};
use crate::host::store::{Store, DEFAULT_NAME};

/// `b2d ip [NAME]`.
#[derive(Debug, Clone, clap::Args)]
pub struct IpArgs {
    #[arg(default_value = DEFAULT_NAME)]
    pub name: String,
}

/// `b2d ip NAME`: one line.
pub fn run(store: &Store, args: IpArgs, cx: &mut Context) -> Result<Output, CmdError> {
    super::running(store, &args.name, &cx.exe)?;
    Ok(Output::stdout("127.0.0.1\n"))
}
