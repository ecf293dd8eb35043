//! `b2d ls`: every machine of the store, one row each (its status, see
//! [`super::status`]), or why it cannot be opened.

use super::status::{self, columns, State, Status};
use super::{Context, Format, Output};
use crate::host::cmd::CmdError;
use crate::host::store::Store;
use serde::Serialize;

/// A row of `b2d ls`: a machine's status, or a machine that cannot be
/// opened and why.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Listed {
    Machine(Box<Status>),
    Broken(Broken),
}

/// A machine `b2d ls` cannot open (state `Broken`).
#[derive(Debug, Clone, Serialize)]
pub struct Broken {
    pub name: String,
    pub state: State,
    /// Why, and how to get out of it.
    pub error: String,
    pub dir: String,
}

/// `b2d ls [--json]`.
#[derive(Debug, Clone, clap::Args)]
pub struct LsArgs {
    #[arg(long)]
    pub json: bool,
}

/// `b2d ls`: every machine's status, as a table or JSON. A machine that
/// cannot be opened is listed as broken, with why; the others are listed
/// as usual.
pub fn run(store: &Store, args: LsArgs, _cx: &mut Context) -> Result<Output, CmdError> {
    let all: Vec<Listed> = store
        .list()?
        .into_iter()
        .map(|m| match m {
            Ok(m) => Listed::Machine(Box::new(status::read(&m))),
            Err(u) => Listed::Broken(Broken {
                name: u.name,
                state: State::Broken,
                error: u.error.to_string(),
                dir: u.dir.display().to_string(),
            }),
        })
        .collect();
    Ok(Output::stdout(
        Format::json(args.json).render(&all[..], table)?,
    ))
}

/// The `b2d ls` table; below it, why each broken machine is broken.
pub fn table(all: &[Listed]) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "STATE".into(),
        "DOCKER_HOST".into(),
        "SSH".into(),
        "CPUS".into(),
        "MEMORY".into(),
        "DISK".into(),
        "NETWORK".into(),
    ]];
    let mut reasons = String::new();
    for l in all {
        let s = match l {
            Listed::Machine(s) => s,
            Listed::Broken(b) => {
                let mut row: [String; 8] = Default::default();
                row[0] = b.name.clone();
                row[1] = b.state.to_string();
                row[2..].fill("-".into());
                rows.push(row);
                reasons += &format!("{}\n", b.error);
                continue;
            }
        };
        rows.push([
            s.name.clone(),
            s.state.to_string(),
            s.docker_host.clone(),
            format!("127.0.0.1:{}", s.ssh_port),
            s.cpus.to_string(),
            format!("{} MiB", s.memory_mib),
            crate::disk::size::gib(s.disk_size),
            s.network
                .as_ref()
                .map(|n| format!("{} {}", n.name, n.address))
                .unwrap_or_default(),
        ]);
    }
    let mut out = columns(&rows);
    if !reasons.is_empty() {
        out += "\n";
        out += &reasons;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::store::sample;

    #[test]
    fn table_aligns_columns() {
        let t = tempfile::tempdir().unwrap();
        let a = status::read(&sample(t.path()));
        let mut b = a.clone();
        b.name = "a-much-longer-name".into();
        b.disk_size = 3 << 29;
        let out = table(&[Listed::Machine(Box::new(a)), Listed::Machine(Box::new(b))]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        let col = lines[0].find("STATE").unwrap();
        assert_eq!(lines[1].find("Stopped"), Some(col), "{out}");
        assert_eq!(lines[2].find("Stopped"), Some(col), "{out}");
        assert!(lines[2].ends_with("1.5 GiB"), "{out}");
    }
}
