//! Human size strings: `512`, `20G`, `2T`, `1.5G`, `100MiB`.
//!
//! Suffixes are binary (K = 1024), as docker-machine's `--*-disk-size` and
//! `qemu-img` read them. A bare number is bytes.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size {input:?}: {why} (examples: 20G, 2T, 512M, 1.5G)")]
pub struct SizeError {
    pub input: String,
    pub why: &'static str,
}

/// Parse a size such as `20G` into bytes.
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let err = |why| SizeError {
        input: input.to_string(),
        why,
    };
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(err("no number"));
    }
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        "P" | "PB" | "PIB" => 50,
        _ => return Err(err("unknown unit")),
    };
    let mult = 1u128 << shift;
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(err("malformed number"));
    }
    if frac.len() > 9 {
        return Err(err("too many decimals"));
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| err("number too large"))?
    };
    let mut bytes = int
        .checked_mul(mult)
        .ok_or_else(|| err("number too large"))?;
    if !frac.is_empty() {
        let digits: u128 = frac.parse().map_err(|_| err("malformed number"))?;
        let scale = 10u128.pow(frac.len() as u32);
        let part = digits * mult;
        if part % scale != 0 {
            return Err(err("not a whole number of bytes"));
        }
        bytes += part / scale;
    }
    u64::try_from(bytes).map_err(|_| err("number too large"))
}

/// Bytes as the shortest exact binary unit (`2T`, `1536M`, `1000`).
pub struct Human(pub u64);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u32); 5] = [("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10)];
        for (name, shift) in UNITS {
            if self.0 != 0 && self.0 % (1u64 << shift) == 0 {
                return write!(f, "{}{}", self.0 >> shift, name);
            }
        }
        write!(f, "{}", self.0)
    }
}

/// Bytes in GiB for people: `20 GiB`, `1.5 GiB`.
pub fn gib(bytes: u64) -> String {
    let g = bytes as f64 / (1u64 << 30) as f64;
    if g.fract() == 0.0 {
        format!("{g:.0} GiB")
    } else {
        format!("{g:.1} GiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_sizes() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("20G").unwrap(), 20 << 30);
        assert_eq!(parse_size("2T").unwrap(), 2 << 40);
        assert_eq!(parse_size("2t").unwrap(), 2 << 40);
        assert_eq!(parse_size("100MiB").unwrap(), 100 << 20);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size(" 64K ").unwrap(), 64 << 10);
    }

    #[test]
    fn rejects_bad_sizes_naming_the_input() {
        for bad in [
            "",
            "G",
            "20X",
            "1.2.3G",
            "99999999999P",
            "0.0000000001K",
            "-1G",
        ] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        assert_eq!(
            parse_size("1.1").unwrap_err().why,
            "not a whole number of bytes"
        );
    }

    #[test]
    fn human_round_trips() {
        for s in ["2T", "1536M", "1000", "20G", "64K"] {
            assert_eq!(Human(parse_size(s).unwrap()).to_string(), s);
        }
    }
}
