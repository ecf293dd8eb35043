//! `b2d disk create` and `b2d disk inspect`: the user's keys (the default
//! one when none is named) into a data disk, and the human form of an
//! inspection. The image work itself is [`crate::host::store::disk_image`].

use super::flags::EngineFlags;
use super::json::JsonError;
use super::{Context, Format, Output};
use crate::disk::image::ImageFormat;
use crate::disk::size::{parse_size, Human};
use crate::disk::userdata::{Compat, EntryKind};
use crate::host::engine;
use crate::host::store::disk_image::{self, CreateSpec, DiskImageError, Inspection};
use crate::host::store::keys::{self, KeyError};
use crate::util::printable;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DiskCmdError {
    #[error("HOME is not set, so there is no default ssh key: pass --ssh-key PUBFILE")]
    NoHome,
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Image(#[from] DiskImageError),
    #[error(transparent)]
    Engine(#[from] crate::host::engine::EngineError),
    #[error("--compat docker-machine writes only docker-machine's entries, so no engine settings: drop --compat, or drop the engine flags")]
    EngineInCompat,
    #[error(transparent)]
    Json(#[from] JsonError),
}

/// `b2d disk create|inspect`.
// Parsed once per run: the size of a variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, clap::Subcommand)]
pub enum DiskCmd {
    /// Write a sparse data disk carrying the magic and your ssh key.
    Create(CreateArgs),
    /// Show the magic, userdata, partitions and filesystems of a disk or image.
    Inspect(InspectArgs),
}

/// `b2d disk create PATH --size SIZE …`.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// Image file to create.
    pub path: PathBuf,
    /// Virtual size, e.g. 20G or 2T.
    #[arg(long, value_parser = parse_size)]
    pub size: u64,
    #[arg(long, value_enum, default_value = "raw")]
    pub format: ImageFormat,
    /// Public key file (repeatable). Default: ~/.ssh/id_ed25519.pub, then ~/.ssh/id_rsa.pub.
    #[arg(long = "ssh-key", value_name = "PUBFILE")]
    pub ssh_keys: Vec<PathBuf>,
    /// Write the userdata exactly as docker-machine does.
    #[arg(long, value_enum)]
    pub compat: Option<CompatArg>,
    /// Replace an existing image file.
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineFlags,
}

/// `--compat`'s values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompatArg {
    /// Exactly the four entries docker-machine writes.
    DockerMachine,
}

/// `b2d disk inspect PATH`.
#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    pub path: PathBuf,
    #[arg(long)]
    pub json: bool,
}

/// `b2d disk create|inspect`: the disk's report, as text or JSON. No
/// machine is involved.
pub fn run(cmd: DiskCmd, cx: &mut Context) -> Result<Output, DiskCmdError> {
    let (json, report) = match cmd {
        DiskCmd::Create(a) => (a.json, create(&a.options(), cx.home.as_deref())?),
        DiskCmd::Inspect(a) => (a.json, inspect(&a.path)?),
    };
    Ok(Output::stdout(render(&report, Format::json(json))?))
}

impl CreateArgs {
    fn options(self) -> CreateOptions {
        CreateOptions {
            path: self.path,
            size: self.size,
            format: self.format,
            ssh_keys: self.ssh_keys,
            compat: match self.compat {
                Some(CompatArg::DockerMachine) => Compat::DockerMachine,
                None => Compat::B2d,
            },
            force: self.force,
            engine: self.engine.args(),
        }
    }
}

/// What `disk create` writes: [`CreateArgs`] with `--compat` and the
/// engine flags read.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub path: PathBuf,
    pub size: u64,
    pub format: ImageFormat,
    /// Public key files; none means the user's default key.
    pub ssh_keys: Vec<PathBuf>,
    pub compat: Compat,
    pub force: bool,
    /// Engine settings for the userdata (`.b2d/engine.json`).
    pub engine: crate::host::engine::EngineArgs,
}

/// Write the disk with the named keys, or with the default key under
/// `home` (`~/.ssh/id_ed25519.pub`, then `id_rsa.pub`) when none is named.
pub fn create(o: &CreateOptions, home: Option<&Path>) -> Result<Inspection, DiskCmdError> {
    let mut keys = o.ssh_keys.clone();
    if keys.is_empty() {
        keys.push(keys::default_key(home.ok_or(DiskCmdError::NoHome)?)?);
    }
    let mut extensions = Vec::new();
    if !o.engine.is_empty() {
        if o.compat == Compat::DockerMachine {
            return Err(DiskCmdError::EngineInCompat);
        }
        let c = engine::apply(&Default::default(), &o.engine)?;
        extensions.extend(crate::host::store::create::engine_extension(
            &engine::for_guest_here(&c)?,
        ));
    }
    Ok(disk_image::create(&CreateSpec {
        path: o.path.clone(),
        size: o.size,
        format: o.format,
        authorized_keys: keys::authorized_keys(&keys)?,
        extensions,
        compat: o.compat,
        force: o.force,
    })?)
}

pub fn inspect(path: &Path) -> Result<Inspection, DiskCmdError> {
    Ok(disk_image::inspect(path)?)
}

/// What `b2d disk create|inspect` prints.
pub fn render(i: &Inspection, format: Format) -> Result<String, JsonError> {
    format.render(i, human)
}

/// A serde name (`"qcow2"`, `"gpt"`, `"ext4"`) as text.
fn serde_name(v: impl serde::Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// A string read off the disk, quoted with anything odd escaped.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.escape_debug())
}

/// The human-readable report.
pub fn human(i: &Inspection) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} image, {} virtual ({} bytes)",
        i.path.display(),
        serde_name(i.format),
        Human(i.virtual_size),
        i.virtual_size
    );
    let _ = match (i.magic, i.archive_len, &i.archive_error) {
        (false, ..) => writeln!(s, "magic: no"),
        (true, Some(n), _) => writeln!(s, "magic: yes, userdata archive of {n} bytes"),
        (true, None, Some(e)) => {
            writeln!(
                s,
                "magic: yes, but the archive is refused: {}",
                printable(e)
            )
        }
        (true, None, None) => writeln!(s, "magic: yes"),
    };
    for e in &i.entries {
        let kind = match e.kind {
            EntryKind::File => "file",
            EntryKind::Dir => "dir ",
        };
        let _ = writeln!(
            s,
            "  {kind} {} {:>6} {}",
            e.mode,
            e.size,
            printable(&e.path)
        );
    }
    if !i.authorized_keys.is_empty() {
        let _ = writeln!(s, "authorized keys:");
        for k in &i.authorized_keys {
            let _ = writeln!(s, "  {}", printable(k));
        }
    }
    let _ = match i.table {
        None => writeln!(s, "partition table: none"),
        Some(t) => writeln!(s, "partition table: {}", serde_name(t)),
    };
    for p in &i.partitions {
        let _ = writeln!(
            s,
            "  {}: start {} size {} type {}{}",
            p.number,
            p.start,
            Human(p.size),
            printable(&p.type_id),
            p.name
                .as_deref()
                .map(|n| format!(" name {}", quoted(n)))
                .unwrap_or_default()
        );
    }
    if i.filesystems.is_empty() {
        let _ = writeln!(
            s,
            "filesystems: none{}",
            if i.blank { " (blank disk)" } else { "" }
        );
    }
    for f in &i.filesystems {
        let _ = writeln!(
            s,
            "filesystem: {} at {}{}{}{}",
            serde_name(f.kind),
            f.offset,
            f.partition
                .map(|n| format!(" (partition {n})"))
                .unwrap_or_default(),
            f.label
                .as_deref()
                .map(|l| format!(" label {}", quoted(l)))
                .unwrap_or_default(),
            f.uuid
                .as_deref()
                .map(|u| format!(" uuid {}", printable(u)))
                .unwrap_or_default(),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(dir: &Path) -> PathBuf {
        let p = dir.join("k.pub");
        std::fs::write(
            &p,
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdx1Q0XbE3W9r1HqQ0w3l3m8tZ1p2x3y4z5a6b7c8d9 me@host\n",
        )
        .unwrap();
        p
    }

    fn options(dir: &Path, keys: Vec<PathBuf>) -> CreateOptions {
        CreateOptions {
            path: dir.join("d.img"),
            size: 1 << 30,
            format: ImageFormat::Raw,
            ssh_keys: keys,
            compat: Compat::DockerMachine,
            force: false,
            engine: Default::default(),
        }
    }

    #[test]
    fn engine_settings_go_into_a_b2d_disk_and_never_a_docker_machine_one() {
        let t = tempfile::tempdir().unwrap();
        let mut o = options(t.path(), vec![key(t.path())]);
        o.engine.registry_mirrors = vec!["https://m.example".into()];
        let e = create(&o, None).unwrap_err().to_string();
        assert!(e.starts_with("--compat docker-machine writes only"), "{e}");
        assert!(!o.path.exists());
        o.compat = Compat::B2d;
        o.engine.labels = vec!["bad".into()];
        let e = create(&o, None).unwrap_err().to_string();
        assert!(e.starts_with("--engine-label bad: "), "{e}");
        assert!(!o.path.exists());
        o.engine.labels = vec!["a=b".into()];
        let i = create(&o, None).unwrap();
        assert!(
            i.entries.iter().any(|e| e.path == ".b2d/engine.json"),
            "{:?}",
            i.entries
        );
    }

    #[test]
    fn without_a_key_the_default_one_is_used_or_asked_for() {
        let t = tempfile::tempdir().unwrap();
        let o = options(t.path(), vec![]);
        let e = create(&o, None).unwrap_err().to_string();
        assert!(e.contains("pass --ssh-key PUBFILE"), "{e}");
        let e = create(&o, Some(t.path())).unwrap_err().to_string();
        assert!(e.contains(".ssh/id_ed25519.pub"), "{e}");
        assert!(!o.path.exists());
        std::fs::create_dir(t.path().join(".ssh")).unwrap();
        std::fs::copy(key(t.path()), t.path().join(".ssh/id_rsa.pub")).unwrap();
        let i = create(&o, Some(t.path())).unwrap();
        assert_eq!(i.authorized_keys.len(), 1);
        assert_eq!(i.entries.len(), 4, "docker-machine's four entries");
    }

    #[test]
    fn the_report_reads_as_text_and_as_json() {
        let t = tempfile::tempdir().unwrap();
        let o = options(t.path(), vec![key(t.path())]);
        let i = create(&o, None).unwrap();
        let text = render(&i, Format::Human).unwrap();
        assert!(
            text.contains("d.img: raw image, 1G virtual (1073741824 bytes)"),
            "{text}"
        );
        assert!(text.contains("magic: yes, userdata archive of"), "{text}");
        assert!(
            text.contains("authorized keys:\n  ssh-ed25519 AAAA"),
            "{text}"
        );
        assert!(text.contains("partition table: none"), "{text}");
        assert!(text.contains("filesystems: none\n"), "{text}");
        let v: serde_json::Value =
            serde_json::from_str(&render(&i, Format::Json).unwrap()).unwrap();
        assert_eq!(v["format"], "raw");
        assert_eq!(v["magic"], true);
        assert_eq!(quoted("a\"b\n"), "\"a\\\"b\\n\"");
    }
}
