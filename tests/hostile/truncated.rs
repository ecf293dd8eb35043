//! `b2d disk inspect` on qcow2, vmdk and vhd images cut short inside
//! each field of their headers (and the vhd's footer and dynamic
//! header): every cut is refused, naming the file and the field.

use super::images::*;
use super::refused;

/// `image` cut inside each of `fields` (name, first byte, end) in turn,
/// from `base` on (the bytes before `base` are whole in every cut), is
/// refused naming `what` and that field.
fn cut_in_every_field(image: &[u8], base: usize, what: &str, fields: &[(&str, usize, usize)]) {
    let t = tempfile::tempdir().unwrap();
    for &(name, start, end) in fields {
        for cut in [start, (start + end) / 2, end - 1] {
            let p = file(
                t.path(),
                &format!("cut{}", base + cut),
                &image[..base + cut],
                0,
            );
            refused(
                &p,
                &[
                    &format!("{what} truncated in field {name} (bytes {start}..{end})"),
                    &format!("only {cut} bytes of it"),
                ],
            );
        }
    }
}

#[test]
fn qcow2_truncated_at_every_header_field() {
    cut_in_every_field(
        &qcow2(),
        0,
        "qcow2 header",
        &[
            ("version", 4, 8),
            ("backing_file_offset", 8, 16),
            ("backing_file_size", 16, 20),
            ("cluster_bits", 20, 24),
            ("size", 24, 32),
            ("crypt_method", 32, 36),
            ("l1_size", 36, 40),
            ("l1_table_offset", 40, 48),
            ("refcount_table_offset", 48, 56),
            ("refcount_table_clusters", 56, 60),
            ("nb_snapshots", 60, 64),
            ("snapshots_offset", 64, 72),
            ("incompatible_features", 72, 80),
            ("compatible_features", 80, 88),
            ("autoclear_features", 88, 96),
            ("refcount_order", 96, 100),
            ("header_length", 100, 104),
        ],
    );
}

#[test]
fn vmdk_truncated_at_every_header_field() {
    cut_in_every_field(
        &vmdk(),
        0,
        "vmdk header",
        &[
            ("version", 4, 8),
            ("flags", 8, 12),
            ("capacity", 12, 20),
            ("grainSize", 20, 28),
            ("descriptorOffset", 28, 36),
            ("descriptorSize", 36, 44),
            ("numGTEsPerGT", 44, 48),
            ("rgdOffset", 48, 56),
            ("gdOffset", 56, 64),
            ("overHead", 64, 72),
            ("uncleanShutdown", 72, 73),
            ("singleEndLineChar", 73, 74),
            ("nonEndLineChar", 74, 75),
            ("doubleEndLineChar1", 75, 76),
            ("doubleEndLineChar2", 76, 77),
            ("compressAlgorithm", 77, 79),
        ],
    );
}

#[test]
fn vhd_truncated_at_every_footer_and_dynamic_header_field() {
    // The footer's copy at byte 0 (the one at the end is cut off).
    cut_in_every_field(
        &vhd(),
        0,
        "vhd footer",
        &[
            ("features", 8, 12),
            ("file_format_version", 12, 16),
            ("data_offset", 16, 24),
            ("time_stamp", 24, 28),
            ("creator_application", 28, 32),
            ("creator_version", 32, 36),
            ("creator_host_os", 36, 40),
            ("original_size", 40, 48),
            ("current_size", 48, 56),
            ("disk_geometry", 56, 60),
            ("disk_type", 60, 64),
            ("checksum", 64, 68),
            ("unique_id", 68, 84),
            ("saved_state", 84, 85),
            ("reserved", 85, 512),
        ],
    );
    cut_in_every_field(
        &vhd(),
        H_DYN,
        "vhd dynamic header at byte 512",
        &[
            ("cookie", 0, 8),
            ("data_offset", 8, 16),
            ("table_offset", 16, 24),
            ("header_version", 24, 28),
            ("max_table_entries", 28, 32),
            ("block_size", 32, 36),
            ("checksum", 36, 40),
            ("parent_unique_id", 40, 56),
            ("parent_time_stamp", 56, 60),
            ("reserved", 60, 64),
            ("parent_unicode_name", 64, 576),
            ("parent_locator_entries", 576, 768),
            ("reserved", 768, 1024),
        ],
    );
}
