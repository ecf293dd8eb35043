//! A data disk image as the host sees it after a power cut: where its
//! data partition starts, its label and UUID, and `e2fsck -fn` of it.

use std::path::Path;
use std::process::Command;

/// Byte offset of partition 1 of a GPT image, if it has one.
pub fn data_offset(img: &Path) -> Option<u64> {
    let out = Command::new("sfdisk")
        .arg("--json")
        .arg(img)
        .output()
        .expect("sfdisk (apt-get install fdisk)");
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let parts = v["partitiontable"]["partitions"].as_array()?;
    let p1 = parts
        .iter()
        .find(|p| p["node"].as_str().is_some_and(|n| n.ends_with('1')))?;
    let sector = v["partitiontable"]["sectorsize"].as_u64().unwrap_or(512);
    Some(p1["start"].as_u64()? * sector)
}

/// The filesystem at `offset` of `img`: (label, UUID), from `blkid -p`.
pub fn fs_at(img: &Path, offset: u64) -> Option<(String, String)> {
    let out = Command::new("blkid")
        .args(["-p", "-o", "export", "-O", &offset.to_string()])
        .arg(img)
        .output()
        .expect("blkid (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::to_string)
    };
    if get("TYPE").as_deref() != Some("ext4") {
        return None;
    }
    Some((get("LABEL").unwrap_or_default(), get("UUID")?))
}

/// The data filesystem's UUID when its format had committed (it carries
/// the final label, which the format sets last).
pub fn committed_uuid(img: &Path) -> Option<String> {
    let (label, uuid) = fs_at(img, data_offset(img)?)?;
    (label == "boot2docker-data").then_some(uuid)
}

/// `e2fsck -fn` of the data partition: Ok, or its output.
pub fn fsck(img: &Path) -> Result<(), String> {
    let off = data_offset(img).ok_or_else(|| format!("{}: no partition 1", img.display()))?;
    let dev = format!("{}?offset={off}", img.display());
    let out = Command::new("e2fsck")
        .args(["-fn", &dev])
        .output()
        .expect("e2fsck (e2fsprogs)");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "e2fsck -fn {dev}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
