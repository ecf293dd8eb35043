//! Fixed-offset integer fields in on-disk structures. An offset past the
//! buffer reads as 0 instead of panicking, so a wrong constant can never
//! turn hostile input into a crash.

fn field<const N: usize>(b: &[u8], o: usize) -> [u8; N] {
    o.checked_add(N)
        .and_then(|end| b.get(o..end))
        .map_or([0; N], |s| s.try_into().unwrap_or([0; N]))
}

pub(crate) fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(field(b, o))
}
pub(crate) fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(field(b, o))
}
pub(crate) fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(field(b, o))
}
pub(crate) fn be16(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes(field(b, o))
}
pub(crate) fn be32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes(field(b, o))
}
pub(crate) fn be64(b: &[u8], o: usize) -> u64 {
    u64::from_be_bytes(field(b, o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_endians_and_zero_past_the_end() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(le16(&b, 0), 0x0201);
        assert_eq!(be16(&b, 0), 0x0102);
        assert_eq!(le32(&b, 4), 0x0807_0605);
        assert_eq!(be32(&b, 4), 0x0506_0708);
        assert_eq!(le64(&b, 0), 0x0807_0605_0403_0201);
        assert_eq!(be64(&b, 0), 0x0102_0304_0506_0708);
        assert_eq!(le32(&b, 6), 0);
        assert_eq!(be64(&b, usize::MAX), 0);
    }
}
