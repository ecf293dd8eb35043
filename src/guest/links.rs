//! The guest's ethernet links, as sysfs lists them: DHCP runs on them,
//! and a private network's NIC is one of them.

use std::path::Path;

/// Ethernet links under `sys_class_net`: ARP type 1, not `lo`, backed by a
/// device (virtual links such as bridges, veth or dummy have no `device`).
pub fn ethernet_links(sys_class_net: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(sys_class_net) else {
        return Vec::new();
    };
    let mut out: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let dir = e.path();
            let ty = std::fs::read_to_string(dir.join("type")).ok()?;
            (name != "lo" && ty.trim() == "1" && dir.join("device").exists()).then_some(name)
        })
        .collect();
    out.sort();
    out
}
