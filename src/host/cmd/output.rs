//! What every verb returns: the one shape of a verb's result, which the
//! binary prints (stderr first, then stdout) and, for `b2d ssh` and
//! `b2d cp`, follows by running OpenSSH in b2d's place.

/// What a verb has to say, and what runs after it.
#[derive(Debug, Default)]
pub struct Output {
    /// For the person at the terminal (what happened, notes): empty or
    /// whole lines. Printed first.
    pub stderr: String,
    /// What scripts read: empty or whole lines. Printed after `stderr`.
    pub stdout: String,
    /// A program to run in b2d's place once both are printed.
    pub exec: Option<Exec>,
}

/// A program the binary runs in its own place (`exec`), as `b2d ssh` runs
/// OpenSSH's `ssh`.
#[derive(Debug)]
pub struct Exec {
    pub command: std::process::Command,
    /// The Debian package that has the program, for the error when it is
    /// missing.
    pub package: &'static str,
}

impl Output {
    /// One message line for stderr (the newline is added).
    pub fn stderr_line(line: impl std::fmt::Display) -> Output {
        Output {
            stderr: format!("{line}\n"),
            ..Output::default()
        }
    }

    /// Text for stdout only.
    pub fn stdout(text: impl Into<String>) -> Output {
        Output {
            stdout: text.into(),
            ..Output::default()
        }
    }

    /// Nothing to print: run `command` (from Debian's `package`) in b2d's
    /// place.
    pub fn exec(command: std::process::Command, package: &'static str) -> Output {
        Output {
            exec: Some(Exec { command, package }),
            ..Output::default()
        }
    }
}
