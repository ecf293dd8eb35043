//! `b2d url`: the Docker API's URL of a running machine, as
//! `docker-machine url` prints it (`DOCKER_HOST`; TLS with the machine's
//! client certificate, see `b2d env`).

use super::CmdError;
use crate::host::store::Store;

/// `b2d url NAME`: one line.
pub fn url(store: &Store, name: &str, exe: &str) -> Result<String, CmdError> {
    let m = super::running(store, name, exe)?;
    Ok(format!("tcp://127.0.0.1:{}\n", m.config.docker_port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_machine_has_no_url_yet() {
        let t = tempfile::tempdir().unwrap();
        let store = Store {
            root: t.path().into(),
        };
        crate::host::store::saved_sample(&store);
        let e = url(&store, "dev", "b2d").unwrap_err().to_string();
        assert_eq!(
            e,
            "machine \"dev\" is not running: start it with `b2d up dev`"
        );
    }
}
