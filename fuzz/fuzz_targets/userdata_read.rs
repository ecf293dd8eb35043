//! Feed arbitrary bytes to the userdata reader. It must never panic, never
//! read past its limit, and anything it accepts must be made of clean
//! relative paths that the installer can trust.
#![no_main]

use b2d::disk::userdata::{self, EntryKind, MAX_ARCHIVE, MAX_FILE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(archive) = userdata::read(data) else {
        return;
    };
    assert!(archive.len <= MAX_ARCHIVE && archive.len <= data.len());
    assert_eq!(archive.len % 512, 0);
    let mut seen = std::collections::HashSet::new();
    for e in &archive.entries {
        let p = e.path.as_str();
        assert!(!p.is_empty(), "empty path");
        assert!(!p.starts_with('/'), "absolute path {p:?}");
        assert!(!p.ends_with('/'), "trailing slash {p:?}");
        assert!(
            p.split('/').all(|c| !c.is_empty() && c != "." && c != ".."),
            "unclean path {p:?}"
        );
        assert!(!p.chars().any(char::is_control), "control char in {p:?}");
        assert!(seen.insert(p), "duplicate {p:?}");
        assert!(e.mode <= 0o777, "unmasked mode {:o} for {p:?}", e.mode);
        match e.kind {
            EntryKind::File => assert!(e.data.len() <= MAX_FILE),
            EntryKind::Dir => assert!(e.data.is_empty()),
        }
    }
    // Only the bytes up to the end marker matter: reading just them must
    // give the same archive.
    let again = userdata::read(&data[..archive.len]).expect("prefix re-read");
    assert_eq!(again, archive);
    // The accessors must not panic either.
    let _ = archive.has_magic_entry();
    let _ = archive.authorized_keys();
    let _ = archive.b2d_files();
});
