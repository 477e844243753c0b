//! Decimal text of integers too big for i64 (for the disassembly only; analysis never needs
//! their value).

/// Little-endian two's complement bytes to decimal.
pub fn le_to_decimal(b: &[u8]) -> String {
    let neg = b.last().map(|x| x & 0x80 != 0).unwrap_or(false);
    // Magnitude as little-endian bytes.
    let mut mag: Vec<u8> = if neg {
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
    let mut digits = Vec::new();
    while mag.iter().any(|&x| x != 0) {
        let mut rem: u32 = 0;
        for x in mag.iter_mut().rev() {
            let cur = (rem << 8) | *x as u32;
            *x = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    if neg {
        digits.push(b'-');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// Python int text (already validated by the reader) to plain decimal.
pub fn text_to_decimal(t: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(t)
        .chars()
        .filter(|c| *c != '_' && !c.is_whitespace())
        .collect();
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, s.trim_start_matches('+').to_string()),
    };
    let (radix, digits) = match body.get(..2).map(|p| p.to_ascii_lowercase()) {
        Some(p) if p == "0x" => (16u32, &body[2..]),
        Some(p) if p == "0o" => (8, &body[2..]),
        Some(p) if p == "0b" => (2, &body[2..]),
        _ => (10, &body[..]),
    };
    // Base conversion on a little-endian vector of decimal digits.
    let mut dec: Vec<u32> = vec![0];
    for c in digits.chars() {
        let d = c.to_digit(radix).unwrap_or(0);
        let mut carry = d;
        for x in dec.iter_mut() {
            let v = *x * radix + carry;
            *x = v % 10;
            carry = v / 10;
        }
        while carry > 0 {
            dec.push(carry % 10);
            carry /= 10;
        }
    }
    while dec.len() > 1 && dec.last() == Some(&0) {
        dec.pop();
    }
    let mut out: String = dec
        .iter()
        .rev()
        .map(|d| char::from(b'0' + *d as u8))
        .collect();
    if neg && out != "0" {
        out.insert(0, '-');
    }
    out
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
    }
}
