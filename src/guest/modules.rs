//! Kernel modules (boot step 3): the wanted list from `/etc/b2d/modules`
//! plus modalias coldplug of present devices, resolved through
//! `modules.dep`, `modules.softdep` (`pre:`), `modules.alias` and
//! `modules.builtin` of `/lib/modules/$(uname -r)`, loaded deps-first with
//! `finit_module`. Compressed modules are passed to the kernel as they are
//! (see `RealSys::finit_module`).

use crate::errors::{os_error, PathError, WithPath};
use crate::sys::Sys;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A module index file that cannot be read.
pub type ModulesError = PathError;

/// `ext4` for `kernel/fs/ext4/ext4.ko.xz`; `-` and `_` are the same.
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    normalize(stem)
}

fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The parsed index files of one kernel's module directory.
#[derive(Debug, Default, Clone)]
pub struct ModIndex {
    /// name → (path relative to the module dir, direct+indirect deps).
    pub dep: HashMap<String, (String, Vec<String>)>,
    /// name → modules to load before it.
    pub softdep_pre: HashMap<String, Vec<String>>,
    /// (glob pattern, module name), in file order.
    pub aliases: Vec<(String, String)>,
    pub builtin: HashSet<String>,
}

impl ModIndex {
    pub fn parse(dep: &str, softdep: &str, alias: &str, builtin: &str) -> ModIndex {
        let mut ix = ModIndex::default();
        for line in dep.lines() {
            let Some((file, deps)) = line.split_once(':') else {
                continue;
            };
            let file = file.trim();
            if file.is_empty() {
                continue;
            }
            let deps = deps.split_whitespace().map(module_name).collect();
            ix.dep.insert(module_name(file), (file.to_string(), deps));
        }
        for line in softdep.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("softdep") {
                continue;
            }
            let Some(name) = words.next() else { continue };
            let mut pre = Vec::new();
            let mut in_pre = false;
            for w in words {
                match w {
                    "pre:" => in_pre = true,
                    "post:" => in_pre = false,
                    m if in_pre => pre.push(normalize(m)),
                    _ => {}
                }
            }
            ix.softdep_pre
                .entry(normalize(name))
                .or_default()
                .extend(pre);
        }
        for line in alias.lines() {
            let mut words = line.split_whitespace();
            if let (Some("alias"), Some(pat), Some(m)) = (words.next(), words.next(), words.next())
            {
                ix.aliases.push((pat.to_string(), normalize(m)));
            }
        }
        ix.builtin = builtin
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(module_name)
            .collect();
        ix
    }

    /// Read the index files from `dir` (`/lib/modules/<release>`). Only
    /// modules.dep is required; the others may be absent.
    pub fn load(dir: &Path) -> Result<ModIndex, ModulesError> {
        let read = |name: &str, required: bool| -> Result<String, ModulesError> {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(s) => Ok(s),
                Err(e) if !required && e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
                Err(e) => Err(e).with_path("cannot read", &path),
            }
        };
        Ok(ModIndex::parse(
            &read("modules.dep", true)?,
            &read("modules.softdep", false)?,
            &read("modules.alias", false)?,
            &read("modules.builtin", false)?,
        ))
    }

    /// Module names a wanted name stands for: itself if it is a module,
    /// nothing if builtin, else every alias match. `None`: unknown.
    fn lookup(&self, name: &str) -> Option<Vec<String>> {
        let n = normalize(name);
        if self.dep.contains_key(&n) {
            return Some(vec![n]);
        }
        if self.builtin.contains(&n) {
            return Some(vec![]);
        }
        let hits = self.alias_matches(name);
        if hits.is_empty() {
            None
        } else {
            Some(hits)
        }
    }

    /// Modules whose alias pattern matches `s` (deduplicated, file order).
    pub fn alias_matches(&self, s: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (pat, m) in &self.aliases {
            if glob_match(pat.as_bytes(), s.as_bytes()) && !out.contains(m) {
                out.push(m.clone());
            }
        }
        out
    }
}

/// fnmatch-style matching with `*`, `?` and `[...]` (as in modules.alias).
pub fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let (mut star_p, mut star_i) = (None, 0);
    while i < s.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star_p = Some(p);
                    star_i = i;
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' => {
                    if let Some((ok, next)) = class_match(pat, p, s[i]) {
                        if ok {
                            p = next;
                            i += 1;
                            continue;
                        }
                    } else if s[i] == b'[' {
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
                c if c == s[i] => {
                    p += 1;
                    i += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star_p {
            Some(sp) => {
                p = sp + 1;
                star_i += 1;
                i = star_i;
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Match one byte against the class starting at `pat[p] == '['`; returns
/// (matched, index after `]`) or None when the class is unterminated.
fn class_match(pat: &[u8], p: usize, c: u8) -> Option<(bool, usize)> {
    let mut j = p + 1;
    let negate = j < pat.len() && (pat[j] == b'!' || pat[j] == b'^');
    if negate {
        j += 1;
    }
    let mut matched = false;
    let mut first = true;
    while j < pat.len() && (first || pat[j] != b']') {
        first = false;
        if j + 2 < pat.len() && pat[j + 1] == b'-' && pat[j + 2] != b']' {
            matched |= pat[j] <= c && c <= pat[j + 2];
            j += 3;
        } else {
            matched |= pat[j] == c;
            j += 1;
        }
    }
    (j < pat.len()).then_some((matched != negate, j + 1))
}

/// The load plan: module files in load order, and names nothing knew.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// (module name, path relative to the module dir, params).
    pub load: Vec<(String, String, String)>,
    pub unknown: Vec<String>,
    /// module → the modules.dep dependencies it cannot load without.
    pub needs: HashMap<String, Vec<String>>,
}

/// Order `wanted` (name, params) deps-first: softdep `pre:` modules, then
/// modules.dep deps, then the module; each module once; cycles are cut.
pub fn resolve(ix: &ModIndex, wanted: &[(String, String)]) -> Plan {
    let mut plan = Plan::default();
    let mut seen = HashSet::new();
    for (name, params) in wanted {
        match ix.lookup(name) {
            Some(mods) => {
                for m in mods {
                    visit(ix, &m, params, &mut seen, &mut plan);
                }
            }
            None => plan.unknown.push(name.clone()),
        }
    }
    plan
}

fn visit(ix: &ModIndex, m: &str, params: &str, seen: &mut HashSet<String>, plan: &mut Plan) {
    if !seen.insert(m.to_string()) {
        return;
    }
    for pre in ix.softdep_pre.get(m).into_iter().flatten() {
        for pm in ix.lookup(pre).unwrap_or_default() {
            visit(ix, &pm, "", seen, plan);
        }
    }
    let Some((file, deps)) = ix.dep.get(m) else {
        return;
    };
    // modules.dep lists the deepest dependencies last; load those first.
    for d in deps.iter().rev() {
        visit(ix, d, "", seen, plan);
    }
    if !deps.is_empty() {
        plan.needs.insert(m.to_string(), deps.clone());
    }
    plan.load
        .push((m.to_string(), file.clone(), params.to_string()));
}

/// `/etc/b2d/modules`: one module per line, optional params after it,
/// `#` comments and blank lines ignored.
pub fn parse_wanted(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((n, p)) => (n.to_string(), p.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

/// Every `modalias` of present devices (`sys_root/bus/*/devices/*/modalias`).
pub fn coldplug_aliases(sys_root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(buses) = std::fs::read_dir(sys_root.join("bus")) else {
        return out;
    };
    let mut bus_dirs: Vec<PathBuf> = buses.flatten().map(|e| e.path()).collect();
    bus_dirs.sort();
    for bus in bus_dirs {
        let Ok(devs) = std::fs::read_dir(bus.join("devices")) else {
            continue;
        };
        let mut devs: Vec<PathBuf> = devs.flatten().map(|e| e.path()).collect();
        devs.sort();
        for dev in devs {
            if let Ok(a) = std::fs::read_to_string(dev.join("modalias")) {
                let a = a.trim();
                if !a.is_empty() && !out.iter().any(|x| x == a) {
                    out.push(a.to_string());
                }
            }
        }
    }
    out
}

/// What happened when loading.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    pub loaded: Vec<String>,
    pub already: Vec<String>,
    /// (module, why) for real failures.
    pub failed: Vec<(String, String)>,
    /// Drivers for hardware this machine does not have (the module said
    /// ENODEV / ENXIO, or needs one that did): Hyper-V's `hv_*` under
    /// QEMU, `crc32c_intel` without SSE4.2. Normal, not a failure.
    pub absent: Vec<String>,
}

impl LoadReport {
    /// The one quiet line about drivers whose hardware is not there.
    pub fn absent_line(&self) -> Option<String> {
        (!self.absent.is_empty()).then(|| {
            format!(
                "modules: not loaded, their hardware is not present: {}",
                self.absent.join(", ")
            )
        })
    }
}

/// `5 loaded, 1 already present, 1 failed (mbcache), 2 without their hardware`.
impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} loaded, {} already present, {} failed",
            self.loaded.len(),
            self.already.len(),
            self.failed.len()
        )?;
        if !self.failed.is_empty() {
            let names: Vec<&str> = self.failed.iter().map(|(n, _)| n.as_str()).collect();
            write!(f, " ({})", names.join(", "))?;
        }
        if !self.absent.is_empty() {
            write!(f, ", {} without their hardware", self.absent.len())?;
        }
        Ok(())
    }
}

/// The errors a driver's init returns when its device is not there.
fn is_no_device(e: &io::Error) -> bool {
    matches!(os_error(e), Some(libc::ENODEV) | Some(libc::ENXIO))
}

/// Load every module of `plan` from `dir`. EEXIST is success; a driver
/// whose hardware is absent (and anything that needs it) is noted in one
/// quiet line; another failure is logged and the rest are still tried (a
/// missing driver costs a device, not the boot).
pub fn load(sys: &dyn Sys, dir: &Path, plan: &Plan) -> LoadReport {
    let mut r = LoadReport::default();
    for (name, file, params) in &plan.load {
        let needs_absent = plan
            .needs
            .get(name)
            .is_some_and(|deps| deps.iter().any(|d| r.absent.contains(d)));
        if needs_absent {
            r.absent.push(name.clone());
            continue;
        }
        match sys.finit_module(&dir.join(file), params) {
            Ok(()) => r.loaded.push(name.clone()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => r.already.push(name.clone()),
            Err(e) if is_no_device(&e) => r.absent.push(name.clone()),
            Err(e) => {
                log::warn!("module {name} failed to load: {e}");
                r.failed.push((name.clone(), e.to_string()));
            }
        }
    }
    if let Some(line) = r.absent_line() {
        log::info!("{line}");
    }
    r
}

/// Boot step 3: wanted list + coldplug, resolved and loaded. A device
/// whose driver is in the `later` list (`/etc/b2d/modules.after`, e.g.
/// the balloon) is left to that list's load after the ready line.
pub fn load_all(
    sys: &dyn Sys,
    modules_dir: &Path,
    wanted_file: &Path,
    sys_root: &Path,
    later: &Path,
) -> Result<LoadReport, ModulesError> {
    let later: HashSet<String> = read_wanted(later)
        .into_iter()
        .map(|(n, _)| normalize(&n))
        .collect();
    let wanted = read_wanted(wanted_file);
    load_wanted(
        sys,
        modules_dir,
        wanted,
        Some((sys_root, &later)),
        "modules",
    )
}

/// The modules `names` (and what they need), e.g. 9p before a 9p share
/// is mounted; `what` names them in the log.
pub fn load_named(
    sys: &dyn Sys,
    modules_dir: &Path,
    names: &[&str],
    what: &str,
) -> Result<LoadReport, ModulesError> {
    let wanted = names
        .iter()
        .map(|n| (n.to_string(), String::new()))
        .collect();
    load_wanted(sys, modules_dir, wanted, None, what)
}

/// The modules of `wanted_file`, resolved and loaded; `what` names them
/// in the log. The boot's later lists: the services' modules
/// (`/etc/b2d/modules.docker`, beside the disk and the network) and what
/// only comes after the ready line (`/etc/b2d/modules.after`: the first
/// container's link and published port, the balloon; under TCG each load
/// is about 0.1 s the boot need not pay).
pub fn load_list(
    sys: &dyn Sys,
    modules_dir: &Path,
    wanted_file: &Path,
    what: &str,
) -> Result<LoadReport, ModulesError> {
    let wanted = read_wanted(wanted_file);
    load_wanted(sys, modules_dir, wanted, None, what)
}

fn read_wanted(wanted_file: &Path) -> Vec<(String, String)> {
    match std::fs::read_to_string(wanted_file) {
        Ok(t) => parse_wanted(&t),
        Err(e) => {
            log::warn!("no module list {}: {e}", wanted_file.display());
            Vec::new()
        }
    }
}

fn load_wanted(
    sys: &dyn Sys,
    modules_dir: &Path,
    mut wanted: Vec<(String, String)>,
    coldplug: Option<(&Path, &HashSet<String>)>,
    what: &str,
) -> Result<LoadReport, ModulesError> {
    let ix = ModIndex::load(modules_dir)?;
    let listed = wanted.len();
    if let Some((sys_root, later)) = coldplug {
        for alias in coldplug_aliases(sys_root) {
            for m in ix.alias_matches(&alias) {
                if !later.contains(&normalize(&m)) {
                    wanted.push((m, String::new()));
                }
            }
        }
    }
    let plan = resolve(&ix, &wanted);
    for u in &plan.unknown {
        log::warn!("module {u}: not a module, builtin or alias of this kernel");
    }
    log::info!(
        "{what}: {} listed, {} coldplug, {} to load",
        listed,
        wanted.len() - listed,
        plan.load.len()
    );
    let report = load(sys, modules_dir, &plan);
    log::info!("{what}: {report}");
    Ok(report)
}

#[cfg(test)]
#[path = "modules_tests.rs"]
mod tests;
