//! Field layout of a 512-byte tar header block and the header checksum.
//! v7, ustar and GNU headers share the first 345 bytes. Only the fields b2d
//! reads or writes are named; linkname, uname and gname stay empty.

use std::ops::Range;

pub(crate) const NAME: Range<usize> = 0..100;
pub(crate) const MODE: Range<usize> = 100..108;
pub(crate) const UID: Range<usize> = 108..116;
pub(crate) const GID: Range<usize> = 116..124;
pub(crate) const SIZE: Range<usize> = 124..136;
pub(crate) const MTIME: Range<usize> = 136..148;
pub(crate) const CHKSUM: Range<usize> = 148..156;
pub(crate) const TYPEFLAG: usize = 156;
pub(crate) const MAGIC: Range<usize> = 257..263;
pub(crate) const VERSION: Range<usize> = 263..265;
pub(crate) const DEVMAJOR: Range<usize> = 329..337;
pub(crate) const DEVMINOR: Range<usize> = 337..345;
/// Only meaningful in ustar headers; GNU keeps timestamps here instead.
pub(crate) const PREFIX: Range<usize> = 345..500;

pub(crate) const USTAR_MAGIC: &[u8; 6] = b"ustar\0";
pub(crate) const USTAR_VERSION: &[u8; 2] = b"00";
pub(crate) const GNU_MAGIC: &[u8; 6] = b"ustar ";
pub(crate) const GNU_VERSION: &[u8; 2] = b" \0";

pub(crate) const TYPE_REG: u8 = b'0';
pub(crate) const TYPE_REG_OLD: u8 = 0;
pub(crate) const TYPE_DIR: u8 = b'5';

/// The sums of the header bytes with the checksum field counted as eight
/// spaces: (unsigned, signed). POSIX asks for the unsigned one; some old
/// writers used signed bytes, and common readers accept either.
pub(crate) fn checksums(block: &[u8; 512]) -> (u64, i64) {
    let mut unsigned = 0u64;
    let mut signed = 0i64;
    for (i, &b) in block.iter().enumerate() {
        let b = if CHKSUM.contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    (unsigned, signed)
}
