//! `b2d rm`: remove a machine and its disk, after a yes on the terminal
//! or with `-f` (which also kills a running one first; the work is
//! [`super::lifecycle`]'s).

use super::lifecycle::{self, RmError};
use super::{Context, Output};
use crate::host::store::{Store, DEFAULT_NAME};

/// `b2d rm [-f] [NAME]`.
#[derive(Debug, Clone, clap::Args)]
pub struct RmArgs {
    #[arg(default_value = DEFAULT_NAME)]
    pub name: String,
    /// Do not ask; kill the machine first if it runs.
    #[arg(short, long)]
    pub force: bool,
}

/// `b2d rm NAME`: asked on the terminal unless forced.
pub fn run(store: &Store, args: RmArgs, cx: &mut Context) -> Result<Output, RmError> {
    lifecycle::rm(store, &args.name, args.force, cx.term.confirm())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::cmd::context::TestTerminal;

    #[test]
    fn the_question_is_put_on_the_terminal_and_refused_without_one() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path());
        let m = crate::host::store::saved_sample(&store);
        let args = RmArgs {
            name: "dev".into(),
            force: false,
        };
        let mut none = TestTerminal::default();
        let e = run(&store, args.clone(), &mut none.context()).unwrap_err();
        assert!(e.to_string().contains("pass -f"), "{e}");
        let mut no = TestTerminal {
            ask: Some(Box::new(|_| "n\n".into())),
            ..Default::default()
        };
        let e = run(&store, args.clone(), &mut no.context()).unwrap_err();
        assert!(e.to_string().contains("not removed"), "{e}");
        assert!(m.dir.exists());
        let mut yes = TestTerminal {
            ask: Some(Box::new(|q| {
                assert!(q.starts_with("Remove machine \"dev\""), "{q}");
                "y\n".into()
            })),
            ..Default::default()
        };
        let out = run(&store, args, &mut yes.context()).unwrap();
        assert_eq!(out.stderr, "Machine \"dev\" removed.\n");
        assert!(!m.dir.exists());
    }
}
