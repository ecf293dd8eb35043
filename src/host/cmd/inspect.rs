//! `b2d inspect`: everything about a machine as one JSON document (its
//! state, settings, where its files are, how to reach it), or one
//! `--format` template over it ([`super::template`]).

use super::status::{self, State};
use super::template::{self, TemplateError};
use super::{Context, Output};
use crate::host::engine::EngineConfig;
use crate::host::store::{Machine, MachineError, Store, DEFAULT_NAME};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Machine(#[from] MachineError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Json(#[from] super::json::JsonError),
}

/// A `--ca-cert` as inspect shows it: no PEM.
#[derive(Debug, Serialize)]
pub struct CaView {
    pub from: String,
    pub subject: String,
}

/// The engine settings as inspect shows them.
#[derive(Debug, Serialize)]
pub struct EngineView {
    pub opts: Vec<String>,
    pub env: Vec<String>,
    pub registry_mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub labels: Vec<String>,
    pub daemon_json: Option<String>,
    pub daemon_json_settings: Option<serde_json::Map<String, serde_json::Value>>,
    pub proxy_from_env: bool,
    pub ca_certs: Vec<CaView>,
}

impl From<&EngineConfig> for EngineView {
    fn from(c: &EngineConfig) -> EngineView {
        EngineView {
            opts: c.opts.clone(),
            env: c.env.clone(),
            registry_mirrors: c.registry_mirrors.clone(),
            insecure_registries: c.insecure_registries.clone(),
            labels: c.labels.clone(),
            daemon_json: c.daemon_json.as_ref().map(|d| d.from.display().to_string()),
            daemon_json_settings: c.daemon_json.as_ref().map(|d| d.settings.clone()),
            proxy_from_env: c.proxy_from_env,
            ca_certs: c
                .ca_certs
                .iter()
                .map(|ca| CaView {
                    from: ca.from.display().to_string(),
                    subject: ca.subject.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub name: String,
    pub state: State,
    pub driver: &'static str,
    pub dir: String,
    pub pid: Option<u32>,
    pub accel: Option<String>,
    pub cpus: u32,
    pub memory_mib: u32,
    pub disk_size: u64,
    pub disk: String,
    pub iso: String,
    pub docker_host: String,
    pub docker_cert_path: String,
    pub docker_context: String,
    pub ssh_host: &'static str,
    pub ssh_port: u16,
    pub ssh_user: &'static str,
    pub ssh_key: String,
    pub ssh_known_hosts: String,
    pub ssh_host_key_alias: String,
    pub guest_ip: Vec<String>,
    pub data: Option<String>,
    pub docker: Option<bool>,
    pub docker_said: Option<String>,
    /// Shared folders, `PATH` or `PATH:ro`.
    pub mounts: Vec<String>,
    pub mount_type: String,
    /// What the shares hold and the guest sees empty: b2d's store and
    /// the credential folders (the next boot's, from this environment).
    pub hidden: Vec<String>,
    pub engine: EngineView,
    pub network: Option<status::NetworkStatus>,
    pub swarm: Option<crate::host::store::SwarmMember>,
}

/// Everything about machine `m`.
pub fn inspection(m: &Machine) -> Inspection {
    let s = status::read(m);
    let c = &m.config;
    Inspection {
        name: m.name.clone(),
        state: s.state,
        driver: "qemu",
        dir: s.dir,
        pid: s.pid,
        accel: s.accel,
        cpus: c.cpus,
        memory_mib: c.memory_mib,
        disk_size: c.disk_size,
        disk: m.disk().display().to_string(),
        iso: m.iso().display().to_string(),
        docker_host: s.docker_host,
        docker_cert_path: m.cert_dir().display().to_string(),
        docker_context: crate::host::client::context::name(&m.name),
        ssh_host: "127.0.0.1",
        ssh_port: c.ssh_port,
        ssh_user: "docker",
        ssh_key: m.ssh_key().display().to_string(),
        ssh_known_hosts: m.known_hosts().display().to_string(),
        ssh_host_key_alias: m.host_key_alias(),
        guest_ip: s.guest_ip,
        data: s.data,
        docker: s.docker,
        docker_said: s.docker_said,
        mounts: c
            .mounts
            .iter()
            .flatten()
            .map(|mo| {
                let ro = if mo.readonly { ":ro" } else { "" };
                format!("{}{ro}", mo.path.display())
            })
            .collect(),
        mount_type: c.mount_type.map_or("auto", |t| t.name()).into(),
        hidden: hidden(m),
        engine: EngineView::from(&c.engine),
        network: s.network,
        swarm: s.swarm,
    }
}

/// The paths the machine's shares show empty.
fn hidden(m: &Machine) -> Vec<String> {
    let hidden = crate::host::shares::plan::hidden_for(m);
    m.config
        .mounts
        .iter()
        .flatten()
        .flat_map(|mo| {
            crate::host::shares::masks::for_share(&mo.path, &hidden)
                .masks
                .into_iter()
                .map(|rel| mo.path.join(rel).display().to_string())
        })
        .collect()
}

/// `b2d inspect [NAME] [--format T | --json]`.
#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    #[arg(default_value = DEFAULT_NAME)]
    pub name: String,
    /// A Go-template-like format, e.g. '{{.DockerHost}}' or
    /// '{{json .Engine}}'.
    #[arg(long, short = 'f', conflicts_with = "json")]
    pub format: Option<String>,
    /// JSON (the default).
    #[arg(long)]
    pub json: bool,
}

/// `b2d inspect NAME [--format T]`: pretty JSON, or the template.
pub fn run(store: &Store, args: InspectArgs, _cx: &mut Context) -> Result<Output, InspectError> {
    let i = inspection(&store.open(&args.name)?);
    let json = |e: serde_json::Error| InspectError::Json(e.into());
    let doc = serde_json::to_value(&i).map_err(json)?;
    Ok(Output::stdout(match args.format.as_deref() {
        None => serde_json::to_string_pretty(&doc).map_err(json)? + "\n",
        Some(t) => template::render(t, &doc)? + "\n",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::cmd::context::TestTerminal;

    /// `b2d inspect NAME [--format T]` as it prints.
    fn show(store: &Store, name: &str, format: Option<&str>) -> Result<String, InspectError> {
        let args = InspectArgs {
            name: name.into(),
            format: format.map(str::to_string),
            json: false,
        };
        Ok(run(store, args, &mut TestTerminal::default().context())?.stdout)
    }

    #[test]
    fn the_store_is_shown_hidden_in_a_share_that_holds_it() {
        let t = tempfile::tempdir().unwrap();
        let top = t.path().canonicalize().unwrap();
        let store = Store::at(top.join("data/b2d/machines"));
        let mut m = crate::host::store::saved_sample(&store);
        m.config.mounts = Some(vec![crate::host::shares::Mount {
            path: top.clone(),
            readonly: false,
        }]);
        let i = inspection(&m);
        assert_eq!(i.mounts, [top.display().to_string()]);
        assert_eq!(i.hidden[0], top.join("data/b2d").display().to_string());
    }

    #[test]
    fn everything_about_a_machine_as_json_or_a_template() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path());
        let mut m = crate::host::store::saved_sample(&store);
        m.config.engine.registry_mirrors = vec!["https://m.example".into()];
        m.save_config().unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&show(&store, "dev", None).unwrap()).unwrap();
        assert_eq!(v["name"], "dev");
        assert_eq!(v["state"], "Stopped");
        assert_eq!(v["docker_host"], "tcp://127.0.0.1:40376");
        assert_eq!(v["ssh_port"], 40022);
        assert_eq!(v["docker_context"], "b2d-dev");
        assert_eq!(v["engine"]["registry_mirrors"][0], "https://m.example");
        assert_eq!(v["mount_type"], "auto");
        assert_eq!(v["network"], serde_json::Value::Null);
        assert_eq!(v["swarm"], serde_json::Value::Null);
        assert_eq!(
            show(
                &store,
                "dev",
                Some("{{.Name}} {{.DockerHost}} {{.SshPort}}")
            )
            .unwrap(),
            "dev tcp://127.0.0.1:40376 40022\n"
        );
        assert_eq!(
            show(&store, "dev", Some("{{json .Engine.RegistryMirrors}}")).unwrap(),
            "[\"https://m.example\"]\n"
        );
        let e = show(&store, "dev", Some("{{.Nope}}"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--format: {{.Nope}}: no field Nope (there are: "),
            "{e}"
        );
        let e = show(&store, "gone", None).unwrap_err().to_string();
        assert!(e.contains("no machine named \"gone\""), "{e}");
    }
}
