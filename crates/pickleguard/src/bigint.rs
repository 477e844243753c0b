//! Decimal text of integers too big for i64 (for the disassembly only; analysis never needs
//! their value).
//!
//! Conversion to decimal is quadratic, so a number whose decimal form would pass
//! [`MAX_DECIMAL_DIGITS`] is written in hexadecimal (`0x...`, exact too) instead: a 1 MB LONG4
//! took hours to print. CPython itself refuses `str()` of ints above 4300 digits by default.

/// Longest decimal form produced (2**70000, 21,073 digits, still converts).
pub const MAX_DECIMAL_DIGITS: usize = 25_000;

const CHUNK: u64 = 1_000_000_000;

/// Decimal digits of a little-endian base-2^32 magnitude (destroyed).
fn limbs_to_decimal(mut limbs: Vec<u32>) -> String {
    let mut chunks: Vec<u32> = Vec::new();
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
    while !limbs.is_empty() {
        let mut rem: u64 = 0;
        for x in limbs.iter_mut().rev() {
            let cur = (rem << 32) | *x as u64;
            *x = (cur / CHUNK) as u32;
            rem = cur % CHUNK;
        }
        chunks.push(rem as u32);
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
    }
    let mut out = String::new();
    match chunks.split_last() {
        None => out.push('0'),
        Some((top, rest)) => {
            out.push_str(&top.to_string());
            for c in rest.iter().rev() {
                out.push_str(&format!("{c:09}"));
            }
        }
    }
    out
}

/// Little-endian two's complement bytes to decimal (hexadecimal above the digit cap).
pub fn le_to_decimal(b: &[u8]) -> String {
    let neg = b.last().map(|x| x & 0x80 != 0).unwrap_or(false);
    // Magnitude as little-endian bytes.
    let mag: Vec<u8> = if neg {
        let mut v: Vec<u8> = b.iter().map(|x| !x).collect();
        for x in v.iter_mut() {
            let (r, carry) = x.overflowing_add(1);
            *x = r;
            if !carry {
                break;
            }
        }
        v
    } else {
        b.to_vec()
    };
    // 8 bits are log10(256) = 2.408 decimal digits.
    let body = if mag.len() * 2409 / 1000 > MAX_DECIMAL_DIGITS {
        let hex: String = mag.iter().rev().map(|x| format!("{x:02x}")).collect();
        let hex = hex.trim_start_matches('0');
        format!("0x{}", if hex.is_empty() { "0" } else { hex })
    } else {
        let limbs = mag
            .chunks(4)
            .map(|c| {
                let mut a = [0u8; 4];
                a[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(a)
            })
            .collect();
        limbs_to_decimal(limbs)
    };
    if neg && body != "0" {
        format!("-{body}")
    } else {
        body
    }
}

/// Python int text (already validated by the reader) to plain decimal (hexadecimal, octal or
/// binary as written, normalised, above the digit cap).
pub fn text_to_decimal(t: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(t)
        .chars()
        .filter(|c| *c != '_' && !c.is_whitespace())
        .collect();
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, s.trim_start_matches('+').to_string()),
    };
    let (radix, digits, prefix) = match body.get(..2).map(|p| p.to_ascii_lowercase()) {
        Some(p) if p == "0x" => (16u32, &body[2..], "0x"),
        Some(p) if p == "0o" => (8, &body[2..], "0o"),
        Some(p) if p == "0b" => (2, &body[2..], "0b"),
        _ => (10, &body[..], ""),
    };
    let bits_per_digit = match radix {
        16 => 4.0,
        8 => 3.0,
        2 => 1.0,
        _ => std::f64::consts::LOG2_10,
    };
    let out = if digits.len() as f64 * bits_per_digit * std::f64::consts::LOG10_2
        > MAX_DECIMAL_DIGITS as f64
    {
        let d = digits.trim_start_matches('0').to_ascii_lowercase();
        format!("{prefix}{}", if d.is_empty() { "0" } else { &d })
    } else {
        // Horner's rule on base-2^32 limbs, several input digits at a time.
        let per = match radix {
            16 => 7,
            8 => 10,
            2 => 31,
            _ => 9,
        };
        let mut limbs: Vec<u32> = vec![0];
        let ds: Vec<u32> = digits
            .chars()
            .map(|c| c.to_digit(radix).unwrap_or(0))
            .collect();
        for group in ds.chunks(per) {
            let mut mul: u64 = 1;
            let mut add: u64 = 0;
            for d in group {
                mul *= radix as u64;
                add = add * radix as u64 + *d as u64;
            }
            let mut carry = add;
            for x in limbs.iter_mut() {
                let v = *x as u64 * mul + carry;
                *x = v as u32;
                carry = v >> 32;
            }
            if carry > 0 {
                limbs.push(carry as u32);
            }
        }
        limbs_to_decimal(limbs)
    };
    if neg && out != "0" && out != "0x0" && out != "0o0" && out != "0b0" {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(
            le_to_decimal(&[0, 0, 0, 0, 0, 0, 0, 0x80, 0]),
            "9223372036854775808"
        );
        assert_eq!(le_to_decimal(&[0xff; 9]), "-1");
        assert_eq!(
            text_to_decimal(b"0x10000000000000000"),
            "18446744073709551616"
        );
        assert_eq!(
            text_to_decimal(b"-99999999999999999999"),
            "-99999999999999999999"
        );
        assert_eq!(le_to_decimal(&[]), "0");
        assert_eq!(le_to_decimal(&[0x80]), "-128");
        assert_eq!(text_to_decimal(b"0b1_01"), "5");
        assert_eq!(text_to_decimal(b"-0"), "0");
        assert_eq!(
            text_to_decimal(b"1234567890123456789012345"),
            "1234567890123456789012345"
        );
        // Above the cap: exact, in hexadecimal.
        let mut big = vec![0u8; 20_000];
        big.push(1);
        let h = le_to_decimal(&big);
        assert!(
            h.starts_with("0x1") && h.len() == 2 + 1 + 40_000,
            "{}",
            &h[..10]
        );
        assert!(
            text_to_decimal(&[b"0x".as_slice(), &[b'F'; 30_000]].concat()).starts_with("0xfff")
        );
    }
}
