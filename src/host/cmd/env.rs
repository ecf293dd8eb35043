//! `b2d env`: the docker CLI's variables for a machine in one shell's
//! syntax, ending with the comment that says how to apply them.

use super::{CmdError, Context, Output};
use crate::host::store::{Store, DEFAULT_NAME};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    /// bash, zsh, dash, ksh and any POSIX sh.
    Bash,
    Fish,
    Powershell,
    Cmd,
    Tcsh,
}

impl Shell {
    /// Its name on the command line (`--shell NAME`), as clap spells it.
    pub fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Fish => "fish",
            Shell::Powershell => "powershell",
            Shell::Cmd => "cmd",
            Shell::Tcsh => "tcsh",
        }
    }

    /// The shell named by a path such as `$SHELL`; POSIX when unknown.
    pub fn from_path(shell: Option<&str>) -> Shell {
        let base = shell
            .and_then(|s| Path::new(s).file_name())
            .and_then(|s| s.to_str())
            .unwrap_or("");
        match base {
            "fish" => Shell::Fish,
            "tcsh" | "csh" => Shell::Tcsh,
            "pwsh" | "powershell" | "pwsh.exe" | "powershell.exe" => Shell::Powershell,
            "cmd" | "cmd.exe" => Shell::Cmd,
            _ => Shell::Bash,
        }
    }

    fn set(self, k: &str, v: &str) -> String {
        match self {
            Shell::Bash => format!("export {k}={}", posix_quote(v)),
            Shell::Fish => format!("set -gx {k} {};", fish_quote(v)),
            Shell::Powershell => format!("$Env:{k} = '{}'", v.replace('\'', "''")),
            Shell::Cmd => format!("SET {k}={v}"),
            Shell::Tcsh => format!("setenv {k} {};", posix_quote(v)),
        }
    }

    fn unset(self, k: &str) -> String {
        match self {
            Shell::Bash => format!("unset {k}"),
            Shell::Fish => format!("set -e {k};"),
            Shell::Powershell => format!("Remove-Item Env:\\{k} -ErrorAction SilentlyContinue"),
            Shell::Cmd => format!("SET {k}="),
            Shell::Tcsh => format!("unsetenv {k};"),
        }
    }

    fn comment(self) -> &'static str {
        match self {
            Shell::Cmd => "REM",
            _ => "#",
        }
    }

    /// How to apply `cmd`'s output in this shell.
    fn apply(self, cmd: &str) -> String {
        match self {
            Shell::Bash => format!("eval \"$({cmd})\""),
            Shell::Fish => format!("{cmd} | source"),
            Shell::Powershell => format!("& {cmd} | Invoke-Expression"),
            Shell::Cmd => format!("@FOR /f \"tokens=*\" %i IN ('{cmd}') DO @%i"),
            Shell::Tcsh => format!("eval `{cmd}`"),
        }
    }
}

/// Single-quote for sh and tcsh: `'` becomes `'\''`.
fn posix_quote(v: &str) -> String {
    crate::util::sh_quote(v)
}

/// Single-quote for fish, where `\\` and `\'` are the escapes.
fn fish_quote(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `b2d env [NAME] [--shell S] [--unset]`.
#[derive(Debug, Clone, clap::Args)]
pub struct EnvArgs {
    #[arg(default_value = DEFAULT_NAME)]
    pub name: String,
    /// Shell syntax (default: from $SHELL).
    #[arg(long, value_enum)]
    pub shell: Option<Shell>,
    /// Print commands that clear the variables instead.
    #[arg(long)]
    pub unset: bool,
}

/// `b2d env NAME`: the script to evaluate, in the shell `--shell` names
/// or else the login shell's syntax. The machine must be running, except
/// to unset.
pub fn run(store: &Store, o: EnvArgs, cx: &mut Context) -> Result<Output, CmdError> {
    let exe = cx.exe.as_str();
    let m = if o.unset {
        store.open(&o.name)?
    } else {
        super::running(store, &o.name, exe)?
    };
    let sh = o
        .shell
        .unwrap_or_else(|| Shell::from_path(cx.login_shell.as_deref()));
    let vars = vars(&m.name, m.config.docker_port, &m.cert_dir());
    let hint = hint_command(exe, &o.name, o.shell, o.unset);
    Ok(Output::stdout(render(sh, &vars, o.unset, &hint)))
}

/// The variables, in the order they are printed.
pub fn vars(name: &str, docker_port: u16, cert_dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("DOCKER_TLS_VERIFY", "1".into()),
        ("DOCKER_HOST", format!("tcp://127.0.0.1:{docker_port}")),
        ("DOCKER_CERT_PATH", cert_dir.display().to_string()),
        ("DOCKER_MACHINE_NAME", name.into()),
    ]
}

/// The script `b2d env` prints. `cmd` is the command line that printed it,
/// for the closing hint.
pub fn render(shell: Shell, vars: &[(&'static str, String)], unset: bool, cmd: &str) -> String {
    let mut out = String::new();
    for (k, v) in vars {
        out += &if unset {
            shell.unset(k)
        } else {
            shell.set(k, v)
        };
        out.push('\n');
    }
    let c = shell.comment();
    out += &format!(
        "{c} Run this command to configure your shell:\n{c} {}\n",
        shell.apply(cmd)
    );
    out
}

/// The `b2d env …` command line to repeat in the hint: the options that
/// change the output, and the name unless it is the default.
pub fn hint_command(exe: &str, name: &str, shell: Option<Shell>, unset: bool) -> String {
    let mut cmd = format!("{exe} env");
    if name != crate::host::store::DEFAULT_NAME {
        cmd += &format!(" {name}");
    }
    if let Some(s) = shell {
        cmd += &format!(" --shell {}", s.name());
    }
    if unset {
        cmd += " --unset";
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::cmd::context::TestTerminal;

    #[test]
    fn each_shell_is_named_as_clap_parses_it() {
        for s in <Shell as clap::ValueEnum>::value_variants() {
            let v = clap::ValueEnum::to_possible_value(s).unwrap();
            assert_eq!(s.name(), v.get_name());
            assert_eq!(
                <Shell as clap::ValueEnum>::from_str(s.name(), false),
                Ok(*s)
            );
        }
    }

    fn v() -> Vec<(&'static str, String)> {
        vars("dev", 40376, Path::new("/home/u/it's here/certs"))
    }

    #[test]
    fn bash_exports_quoted_values_and_the_eval_hint() {
        let s = render(Shell::Bash, &v(), false, "b2d env dev");
        assert_eq!(
            s,
            "export DOCKER_TLS_VERIFY='1'\n\
             export DOCKER_HOST='tcp://127.0.0.1:40376'\n\
             export DOCKER_CERT_PATH='/home/u/it'\\''s here/certs'\n\
             export DOCKER_MACHINE_NAME='dev'\n\
             # Run this command to configure your shell:\n\
             # eval \"$(b2d env dev)\"\n"
        );
    }

    #[test]
    fn bash_output_round_trips_through_a_real_shell() {
        let s = render(Shell::Bash, &v(), false, "b2d env dev");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{s}\nprintf '%s|%s' \"$DOCKER_CERT_PATH\" \"$DOCKER_HOST\""
            ))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "/home/u/it's here/certs|tcp://127.0.0.1:40376"
        );
    }

    #[test]
    fn every_shell_has_its_syntax() {
        let cases = [
            (
                Shell::Fish,
                "set -gx DOCKER_CERT_PATH '/home/u/it\\'s here/certs';",
                "b2d env | source",
            ),
            (
                Shell::Powershell,
                "$Env:DOCKER_CERT_PATH = '/home/u/it''s here/certs'",
                "& b2d env | Invoke-Expression",
            ),
            (
                Shell::Cmd,
                "SET DOCKER_CERT_PATH=/home/u/it's here/certs",
                "REM @FOR /f \"tokens=*\" %i IN ('b2d env') DO @%i",
            ),
            (
                Shell::Tcsh,
                "setenv DOCKER_CERT_PATH '/home/u/it'\\''s here/certs';",
                "eval `b2d env`",
            ),
        ];
        for (shell, line, hint) in cases {
            let s = render(shell, &v(), false, "b2d env");
            assert!(
                s.lines().any(|l| l == line),
                "{shell:?}: {line} not in\n{s}"
            );
            assert!(
                s.trim_end().ends_with(hint),
                "{shell:?}: {hint} not at the end of\n{s}"
            );
        }
    }

    #[test]
    fn unset_clears_every_variable() {
        let s = render(Shell::Bash, &v(), true, "b2d env --unset");
        for k in [
            "DOCKER_TLS_VERIFY",
            "DOCKER_HOST",
            "DOCKER_CERT_PATH",
            "DOCKER_MACHINE_NAME",
        ] {
            assert!(s.contains(&format!("unset {k}\n")), "{s}");
        }
        assert!(!s.contains("export"));
        let s = render(Shell::Fish, &v(), true, "b2d env --unset");
        assert!(s.contains("set -e DOCKER_HOST;"), "{s}");
    }

    #[test]
    fn the_script_needs_a_running_machine_except_to_unset() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path());
        crate::host::store::saved_sample(&store);
        let mut o = EnvArgs {
            name: "dev".into(),
            shell: None,
            unset: false,
        };
        let mut term = TestTerminal::default();
        let mut cx = term.context();
        let e = run(&store, o.clone(), &mut cx).unwrap_err().to_string();
        assert!(e.contains("machine \"dev\" is not running"), "{e}");
        o.unset = true;
        cx.login_shell = Some("/usr/bin/fish".into());
        let s = run(&store, o, &mut cx).unwrap().stdout;
        assert!(s.contains("set -e DOCKER_HOST;"), "{s}");
        assert!(s.ends_with("# b2d env dev --unset | source\n"), "{s}");
    }

    #[test]
    fn shell_from_path() {
        assert_eq!(Shell::from_path(Some("/usr/bin/fish")), Shell::Fish);
        assert_eq!(Shell::from_path(Some("/bin/tcsh")), Shell::Tcsh);
        assert_eq!(Shell::from_path(Some("/bin/zsh")), Shell::Bash);
        assert_eq!(Shell::from_path(None), Shell::Bash);
    }

    #[test]
    fn hint_repeats_what_changes_the_output() {
        assert_eq!(hint_command("b2d", "default", None, false), "b2d env");
        assert_eq!(
            hint_command("/opt/b2d", "dev", Some(Shell::Fish), true),
            "/opt/b2d env dev --shell fish --unset"
        );
    }
}
