//! Network (boot step 4): DHCP on every ethernet link with busybox
//! `udhcpc`, whose hook script is b2d-init itself (`b2d-init bound` etc.),
//! except a NIC on a private network between machines ([`super::private_network`]).
//!
//! Pure parts: link discovery over a sysfs root, the udhcpc command line,
//! udhcpc's environment → `ip` commands + resolv.conf, and `ip -o addr`
//! parsing. Commands run through `Sys::run`.

use crate::errors::PathError;
use crate::sys::{run_tool, Sys, ToolError};
use crate::wire::network::PrivateNic;
use std::collections::HashMap;
use std::path::Path;

/// How `ip` is invoked (Debian's busybox provides the applet).
pub const IP: &[&str] = &["busybox", "ip"];

pub use super::links::ethernet_links;

/// The udhcpc command: foreground, quit once bound, give up after `tries`.
pub fn udhcpc_args(iface: &str, script: &Path, tries: u32) -> Vec<String> {
    let mut v: Vec<String> = ["udhcpc", "-i", iface, "-f", "-q", "-n", "-t"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.push(tries.to_string());
    v.extend(["-T", "2", "-s"].iter().map(|s| s.to_string()));
    v.push(script.display().to_string());
    v
}

/// Set in udhcpc's environment for a renewal of a running guest's lease
/// (after a resume): the address it has stays while udhcpc asks, so
/// connections through it are not cut.
pub const RENEW_ENV: (&str, &str) = ("B2D_DHCP", "renew");

/// The udhcpc hook events b2d-init answers to.
pub const HOOK_EVENTS: &[&str] = &["deconfig", "bound", "renew", "leasefail", "nak"];

/// What a hook invocation does.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HookPlan {
    /// Commands (program + args).
    pub commands: Vec<Vec<String>>,
    /// New /etc/resolv.conf content, if any.
    pub resolv_conf: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("udhcpc hook {event}: missing environment variable {var}")]
    MissingEnv { event: String, var: &'static str },
    #[error("udhcpc hook: unknown event \"{}\"", .0.escape_debug())]
    UnknownEvent(String),
    #[error("udhcpc hook: {0}")]
    Command(#[from] ToolError),
    #[error("udhcpc hook: {0}")]
    Write(#[from] PathError),
}

fn ip(args: &[&str]) -> Vec<String> {
    IP.iter().chain(args).map(|s| s.to_string()).collect()
}

/// Translate one udhcpc event and its environment into actions.
pub fn hook_plan(event: &str, env: &HashMap<String, String>) -> Result<HookPlan, HookError> {
    let need = |var: &'static str| -> Result<&str, HookError> {
        env.get(var)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or(HookError::MissingEnv {
                event: event.to_string(),
                var,
            })
    };
    let mut plan = HookPlan::default();
    let renewing = env.get(RENEW_ENV.0).map(String::as_str) == Some(RENEW_ENV.1);
    match event {
        "leasefail" | "nak" => {}
        "deconfig" if renewing => {}
        "deconfig" => {
            let iface = need("interface")?;
            plan.commands
                .push(ip(&["-4", "addr", "flush", "dev", iface]));
            plan.commands.push(ip(&["link", "set", "dev", iface, "up"]));
        }
        "bound" | "renew" => {
            let iface = need("interface")?;
            let addr = need("ip")?;
            let prefix = match env.get("mask").filter(|m| !m.is_empty()) {
                Some(m) => m.clone(),
                None => mask_to_prefix(need("subnet")?).to_string(),
            };
            if event == "bound" && !renewing {
                plan.commands
                    .push(ip(&["-4", "addr", "flush", "dev", iface]));
            }
            let cidr = format!("{addr}/{prefix}");
            let mut add = vec!["addr", "replace", cidr.as_str()];
            if let Some(b) = env.get("broadcast").filter(|b| !b.is_empty()) {
                add.extend(["broadcast", b.as_str()]);
            }
            add.extend(["dev", iface]);
            plan.commands.push(ip(&add));
            if let Some(mtu) = env.get("mtu").filter(|m| !m.is_empty()) {
                plan.commands
                    .push(ip(&["link", "set", "dev", iface, "mtu", mtu]));
            }
            if let Some(r) = env.get("router").and_then(|r| r.split_whitespace().next()) {
                plan.commands
                    .push(ip(&["route", "replace", "default", "via", r, "dev", iface]));
            }
            let dns: Vec<&str> = env
                .get("dns")
                .map(|d| d.split_whitespace().collect())
                .unwrap_or_default();
            if !dns.is_empty() {
                let mut rc = String::from("# written by b2d-init (udhcpc)\n");
                if let Some(d) = env.get("domain").filter(|d| !d.is_empty()) {
                    rc.push_str(&format!("search {d}\n"));
                }
                for d in dns {
                    rc.push_str(&format!("nameserver {d}\n"));
                }
                plan.resolv_conf = Some(rc);
            }
        }
        other => return Err(HookError::UnknownEvent(other.to_string())),
    }
    Ok(plan)
}

/// 255.255.255.0 → 24 (a malformed mask counts its valid octets' bits).
pub fn mask_to_prefix(mask: &str) -> u32 {
    mask.split('.')
        .filter_map(|o| o.parse::<u8>().ok())
        .map(|o| o.count_ones())
        .sum()
}

/// Carry out a hook plan: run each command, then write resolv.conf
/// atomically (temp + rename).
pub fn apply_hook(sys: &dyn Sys, plan: &HookPlan, resolv: &Path) -> Result<(), HookError> {
    for (program, args) in plan.commands.iter().filter_map(|c| c.split_first()) {
        run_tool(sys, program, args)?;
    }
    if let Some(rc) = &plan.resolv_conf {
        crate::atomic::write(resolv, rc.as_bytes(), 0o644)?;
    }
    Ok(())
}

/// IPv4 addresses (not loopback) from `ip -4 -o addr show` output.
pub fn parse_ipv4_addrs(out: &str) -> Vec<String> {
    let mut v = Vec::new();
    for line in out.lines() {
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if w == "inet" {
                if let Some(cidr) = words.next() {
                    let a = cidr.split('/').next().unwrap_or(cidr);
                    if !a.starts_with("127.") && !v.iter().any(|x| x == a) {
                        v.push(a.to_string());
                    }
                }
            }
        }
    }
    v
}

/// Boot step 4 (network half): lo up, each ethernet link up and DHCP on
/// all of them in parallel, except the NIC on a private network
/// (`private`), which gets the host's address instead; returns the IPv4
/// addresses obtained.
pub fn bring_up(
    sys: &dyn Sys,
    sys_root: &Path,
    hook: &Path,
    tries: u32,
    private: Option<&PrivateNic>,
) -> Vec<String> {
    let run = |args: &[&str]| {
        let argv: Vec<&str> = IP[1..]
            .iter()
            .copied()
            .chain(args.iter().copied())
            .collect();
        if let Err(e) = run_tool(sys, IP[0], &argv) {
            log::warn!("network: {e}");
        }
    };
    run(&["link", "set", "dev", "lo", "up"]);
    let class_net = sys_root.join("class/net");
    let (links, _) = super::private_network::split_links(&class_net, private);
    if links.is_empty() && private.is_none() {
        log::warn!("network: no ethernet link found");
        return Vec::new();
    }
    std::thread::scope(|s| {
        if let Some(nic) = private {
            s.spawn(
                || match super::private_network::configure(sys, &class_net, nic) {
                    Ok(l) => log::info!(
                        "network {}: {l} is {}/{} ({} peers)",
                        nic.network,
                        nic.address,
                        nic.prefix,
                        nic.peers.len()
                    ),
                    Err(e) => log::error!("{e}"),
                },
            );
        }
        for l in &links {
            s.spawn(move || {
                run(&["link", "set", "dev", l, "up"]);
                let args = udhcpc_args(l, hook, tries);
                let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                match run_tool(sys, "busybox", &argv) {
                    Ok(_) => log::info!("network: {l}: DHCP lease obtained"),
                    Err(e) => log::warn!("network: {l}: no DHCP lease: {e}"),
                }
            });
        }
    });
    current_ipv4(sys)
}

/// The IPv4 addresses configured now.
pub fn current_ipv4(sys: &dyn Sys) -> Vec<String> {
    match run_tool(sys, IP[0], &[IP[1], "-4", "-o", "addr", "show"]) {
        Ok(o) => parse_ipv4_addrs(&String::from_utf8_lossy(&o.stdout)),
        Err(e) => {
            log::warn!("network: {e}");
            Vec::new()
        }
    }
}

#[cfg(test)]
#[path = "network_tests.rs"]
mod tests;
