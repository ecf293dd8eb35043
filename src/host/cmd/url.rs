//! `b2d url`: the Docker API's URL of a running machine, as
//! `docker-machine url` prints it (`DOCKER_HOST`; TLS with the machine's
//! client certificate, see `b2d env`).

use super::{CmdError, Context, Output};
use crate::host::store::{Store, DEFAULT_NAME};

/// `b2d url [NAME]`.
#[derive(Debug, Clone, clap::Args)]
pub struct UrlArgs {
    #[arg(default_value = DEFAULT_NAME)]
    pub name: String,
}

/// `b2d url NAME`: one line.
pub fn run(store: &Store, args: UrlArgs, cx: &mut Context) -> Result<Output, CmdError> {
    let m = super::running(store, &args.name, &cx.exe)?;
    Ok(Output::stdout(format!(
        "tcp://127.0.0.1:{}\n",
        m.config.docker_port
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::cmd::context::TestTerminal;

    /// `b2d url NAME` as it prints.
    fn url(store: &Store, name: &str) -> Result<String, CmdError> {
        let args = UrlArgs { name: name.into() };
        Ok(run(store, args, &mut TestTerminal::default().context())?.stdout)
    }

    #[test]
    fn a_stopped_machine_has_no_url_yet() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path());
        crate::host::store::saved_sample(&store);
        let e = url(&store, "dev").unwrap_err().to_string();
        assert_eq!(
            e,
            "machine \"dev\" is not running: start it with `b2d up dev`"
        );
    }
}
