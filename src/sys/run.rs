//! The one runner of external programs, for both sides. Every process b2d
//! starts is made by [`command`] and started by [`spawn`] or [`output`]
//! (or becomes the program, for `b2d ssh`), so its failure always reads
//! the same way: a [`ToolError`] naming the program, its arguments, how
//! it ended (exit code or signal) and the last lines it wrote. The guest
//! runs its tools through [`run_tool`] over the [`Sys::run`] seam, so the
//! recording fake sees every command:
//!
//! ```text
//! mke2fs -q -F -t ext4 /dev/sda1 exited with status 1: No space left on device
//! busybox udhcpc -i eth0 … was killed by SIGKILL (nothing on stderr)
//! cannot run ssh-keygen -q -t ed25519 …: No such file or directory (os error 2)
//! ```

use super::{CmdOutput, Sys};
use std::fmt;
use std::io;

/// At most this many of the last non-empty lines of a failed tool's
/// stderr go into its error ...
pub const TAIL_LINES: usize = 3;
/// ... and at most this many characters of them (the end is kept).
pub const TAIL_CHARS: usize = 300;

/// A program and its arguments, shown as a shell would take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub program: String,
    pub args: Vec<String>,
}

impl CommandLine {
    pub fn new<S: AsRef<str>>(program: &str, args: &[S]) -> Self {
        CommandLine {
            program: program.to_string(),
            args: args.iter().map(|a| a.as_ref().to_string()).collect(),
        }
    }
}

/// A word as a shell reads it: bare when it is plain, else single-quoted.
fn quoted(w: &str) -> String {
    let plain = !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%^".contains(&b));
    if plain {
        w.to_string()
    } else {
        crate::util::sh_quote(w)
    }
}

impl fmt::Display for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&quoted(&self.program))?;
        for a in &self.args {
            write!(f, " {}", quoted(a))?;
        }
        Ok(())
    }
}

/// How a program that did not succeed ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
    /// Neither a code nor a signal was reported.
    Unknown,
}

impl ExitStatus {
    pub fn of(out: &CmdOutput) -> ExitStatus {
        match (out.code, out.signal) {
            (Some(c), _) => ExitStatus::Code(c),
            (None, Some(s)) => ExitStatus::Signal(s),
            (None, None) => ExitStatus::Unknown,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitStatus::Code(c) => write!(f, "exited with status {c}"),
            ExitStatus::Signal(s) => match nix::sys::signal::Signal::try_from(s) {
                Ok(sig) => write!(f, "was killed by {sig}"),
                Err(_) => write!(f, "was killed by signal {s}"),
            },
            ExitStatus::Unknown => f.write_str("ended without an exit status"),
        }
    }
}

/// A program that could not be started or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("cannot run {cmd}: {source}")]
    Spawn {
        cmd: CommandLine,
        #[source]
        source: io::Error,
    },
    #[error("{cmd} {status}{}", tail_suffix(.tail))]
    Failed {
        cmd: CommandLine,
        status: ExitStatus,
        /// The last lines of its stderr (of stdout when stderr was empty),
        /// joined by `; `, at most [`TAIL_LINES`] / [`TAIL_CHARS`].
        tail: String,
    },
}

impl ToolError {
    pub fn cmd(&self) -> &CommandLine {
        match self {
            ToolError::Spawn { cmd, .. } | ToolError::Failed { cmd, .. } => cmd,
        }
    }
    /// The exit code, when the program ran and exited with one.
    pub fn code(&self) -> Option<i32> {
        match self {
            ToolError::Failed {
                status: ExitStatus::Code(c),
                ..
            } => Some(*c),
            _ => None,
        }
    }
}

fn tail_suffix(tail: &str) -> String {
    if tail.is_empty() {
        " (nothing on stderr)".into()
    } else {
        format!(": {tail}")
    }
}

/// The last few non-empty lines of `bytes`, one line, bounded, with
/// control characters blanked.
pub fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            l.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>()
                .trim()
                .to_string()
        })
        .filter(|l| !l.is_empty())
        .collect();
    let joined = lines[lines.len().saturating_sub(TAIL_LINES)..].join("; ");
    let n = joined.chars().count();
    if n <= TAIL_CHARS {
        return joined;
    }
    let kept: String = joined.chars().skip(n - (TAIL_CHARS - 1)).collect();
    format!("…{kept}")
}

/// The one place b2d makes a process: a tool run to its end, a program
/// it keeps running beside it (QEMU, virtiofsd, the host agent, a guest
/// service) or one it becomes (ssh, scp). Start it with [`spawn`] or
/// [`output`].
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    std::process::Command::new(program)
}

/// What `cmd` runs, as a person reads it.
pub fn line_of(cmd: &std::process::Command) -> CommandLine {
    CommandLine {
        program: cmd.get_program().to_string_lossy().into_owned(),
        args: cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    }
}

/// Start `cmd`; one that cannot start is a [`ToolError::Spawn`] naming it.
pub fn spawn(cmd: &mut std::process::Command) -> Result<std::process::Child, ToolError> {
    cmd.spawn().map_err(|source| ToolError::Spawn {
        cmd: line_of(cmd),
        source,
    })
}

/// Run `cmd` to its end with its output captured; anything but exit
/// status 0 is a [`ToolError`] with the tail of what it said.
pub fn output(cmd: &mut std::process::Command) -> Result<std::process::Output, ToolError> {
    use std::os::unix::process::ExitStatusExt;
    let out = cmd.output().map_err(|source| ToolError::Spawn {
        cmd: line_of(cmd),
        source,
    })?;
    if out.status.success() {
        return Ok(out);
    }
    let status = match (out.status.code(), out.status.signal()) {
        (Some(c), _) => ExitStatus::Code(c),
        (None, Some(s)) => ExitStatus::Signal(s),
        (None, None) => ExitStatus::Unknown,
    };
    let stderr = tail(&out.stderr);
    Err(ToolError::Failed {
        cmd: line_of(cmd),
        status,
        tail: if stderr.is_empty() {
            tail(&out.stdout)
        } else {
            stderr
        },
    })
}

/// Run `program args` to completion through the seam; anything but exit
/// status 0 is a [`ToolError`].
pub fn run_tool<S: AsRef<str>>(
    sys: &dyn Sys,
    program: &str,
    args: &[S],
) -> Result<CmdOutput, ToolError> {
    run_tool_accepting(sys, program, args, &[0])
}

/// As [`run_tool`], with `ok` the exit codes that count as success
/// (e2fsck's 1 and 2: errors fixed).
pub fn run_tool_accepting<S: AsRef<str>>(
    sys: &dyn Sys,
    program: &str,
    args: &[S],
    ok: &[i32],
) -> Result<CmdOutput, ToolError> {
    let argv: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let out = match sys.run(program, &argv) {
        Ok(out) => out,
        Err(source) => {
            return Err(ToolError::Spawn {
                cmd: CommandLine::new(program, &argv),
                source,
            })
        }
    };
    if out.code.is_some_and(|c| ok.contains(&c)) {
        return Ok(out);
    }
    let stderr = tail(&out.stderr);
    Err(ToolError::Failed {
        cmd: CommandLine::new(program, &argv),
        status: ExitStatus::of(&out),
        tail: if stderr.is_empty() {
            tail(&out.stdout)
        } else {
            stderr
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::FakeSys;

    fn failed(code: Option<i32>, signal: Option<i32>, stderr: &[u8]) -> String {
        let sys = FakeSys::new();
        sys.set_output(
            "run mke2fs",
            CmdOutput {
                code,
                signal,
                stderr: stderr.to_vec(),
                ..Default::default()
            },
        );
        run_tool(&sys, "mke2fs", &["-L", "boot2docker data", "/dev/sda1"])
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_failure_names_the_command_its_status_and_the_end_of_stderr() {
        assert_eq!(
            failed(
                Some(1),
                None,
                b"mke2fs 1.47\n\nwarning: x\r\n/dev/sda1: No space\n"
            ),
            "mke2fs -L 'boot2docker data' /dev/sda1 exited with status 1: \
             mke2fs 1.47; warning: x; /dev/sda1: No space"
        );
        assert_eq!(
            failed(None, Some(9), b""),
            "mke2fs -L 'boot2docker data' /dev/sda1 was killed by SIGKILL (nothing on stderr)"
        );
        assert!(failed(None, None, b"").contains("ended without an exit status"));
        for (code, signal) in [(Some(1), None), (None, Some(9)), (None, None)] {
            crate::assert_readable(&failed(code, signal, b"x"));
        }
    }

    #[test]
    fn the_tail_is_the_last_lines_bounded_on_one_line() {
        let many: String = (1..=10).map(|i| format!("line {i}\n")).collect();
        assert_eq!(tail(many.as_bytes()), "line 8; line 9; line 10");
        let long = "x".repeat(1000);
        let t = tail(long.as_bytes());
        assert_eq!(t.chars().count(), TAIL_CHARS);
        assert!(t.starts_with('…'));
        assert_eq!(tail(b"a\x1b[1mb\tc\n"), "a [1mb c");
    }

    #[test]
    fn stdout_stands_in_for_an_empty_stderr_and_codes_can_be_accepted() {
        let sys = FakeSys::new();
        sys.set_output(
            "run e2fsck",
            CmdOutput {
                code: Some(4),
                stdout: b"/dev/sda1: UNEXPECTED INCONSISTENCY\n".to_vec(),
                ..Default::default()
            },
        );
        let e = run_tool_accepting(&sys, "e2fsck", &["-p", "/dev/sda1"], &[0, 1, 2]).unwrap_err();
        assert_eq!(e.code(), Some(4));
        assert_eq!(
            e.to_string(),
            "e2fsck -p /dev/sda1 exited with status 4: /dev/sda1: UNEXPECTED INCONSISTENCY"
        );
        sys.set_output(
            "run tune2fs",
            CmdOutput {
                code: Some(1),
                ..Default::default()
            },
        );
        assert!(run_tool_accepting(&sys, "tune2fs", &["-l"], &[0, 1]).is_ok());
    }

    #[test]
    fn a_program_that_cannot_start_is_named_with_its_arguments() {
        let sys = FakeSys::new();
        sys.fail_on("run ssh-keygen", io::ErrorKind::NotFound);
        let e = run_tool(&sys, "ssh-keygen", &["-t", "ed25519"]).unwrap_err();
        assert!(matches!(e, ToolError::Spawn { .. }));
        assert!(
            e.to_string()
                .starts_with("cannot run ssh-keygen -t ed25519: "),
            "{e}"
        );
        assert_eq!(e.cmd().program, "ssh-keygen");
    }
}
