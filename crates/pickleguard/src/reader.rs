//! Zero-copy decoding of one opcode and its inline argument, with CPython `_pickle`'s rules
//! for what is a valid argument.

use crate::opcodes::{ArgKind, Op};

/// An opcode's inline argument. Byte and text payloads borrow from the input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg<'a> {
    None,
    /// uint1, uint2, int4, uint4 and the small forms of INT / GET / PUT.
    Int(i64),
    /// uint8 (FRAME, and the 8-byte lengths).
    U64(u64),
    /// `I01` / `I00`.
    Bool(bool),
    /// An integer too big for i64: LONG1/LONG4 as little-endian two's complement bytes.
    LongBytes(&'a [u8]),
    /// An integer too big for i64 written as text (INT, LONG), trimmed.
    LongText(&'a [u8]),
    Float(f64),
    /// Binary payloads: BINBYTES*, SHORT_BINBYTES, BYTEARRAY8, BINSTRING, SHORT_BINSTRING.
    Bytes(&'a [u8]),
    /// UTF-8 text already validated (BINUNICODE*, SHORT_BINUNICODE).
    Utf8(&'a str),
    /// Text that needs decoding: UTF-8 with lone surrogates (BINUNICODE with surrogatepass).
    Wtf8(&'a [u8]),
    /// A line without its newline: STRING (quoted, escaped), UNICODE (raw-unicode-escape),
    /// PERSID (ASCII).
    Line(&'a [u8]),
    /// GLOBAL / INST: module and name lines, both UTF-8.
    Pair(&'a str, &'a str),
}

/// One decoded instruction.
#[derive(Clone, Copy, Debug)]
pub struct Instr<'a> {
    pub op: Op,
    pub arg: Arg<'a>,
}

/// Why the reader stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    UnknownOpcode(u8),
    Truncated,
    BadArg(&'static str),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::UnknownOpcode(b) => write!(f, "invalid load key, {:#04x}", b),
            ReadError::Truncated => f.write_str("pickle data was truncated"),
            ReadError::BadArg(m) => f.write_str(m),
        }
    }
}

#[inline]
fn take(data: &[u8], at: usize, n: usize) -> Result<&[u8], ReadError> {
    let end = at.checked_add(n).ok_or(ReadError::Truncated)?;
    data.get(at..end).ok_or(ReadError::Truncated)
}

#[inline]
fn line(data: &[u8], at: usize) -> Result<(&[u8], usize), ReadError> {
    let rest = data.get(at..).ok_or(ReadError::Truncated)?;
    match rest.iter().position(|&b| b == b'\n') {
        Some(i) => Ok((&rest[..i], at + i + 1)),
        None => Err(ReadError::Truncated),
    }
}

fn u32le(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn u64le(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Decode the instruction at `pos`. Returns it and the position of the next one.
#[inline]
pub fn read_instr(data: &[u8], pos: usize) -> Result<(Instr<'_>, usize), ReadError> {
    let code = *data.get(pos).ok_or(ReadError::Truncated)?;
    let op = Op::from_byte(code).ok_or(ReadError::UnknownOpcode(code))?;
    let at = pos + 1;
    let (arg, next) = match op.arg_kind() {
        ArgKind::None => (Arg::None, at),
        ArgKind::Uint1 => (Arg::Int(take(data, at, 1)?[0] as i64), at + 1),
        ArgKind::Uint2 => {
            let b = take(data, at, 2)?;
            (Arg::Int(u16::from_le_bytes([b[0], b[1]]) as i64), at + 2)
        }
        ArgKind::Int4 => (Arg::Int(u32le(take(data, at, 4)?) as i32 as i64), at + 4),
        ArgKind::Uint4 => (Arg::Int(u32le(take(data, at, 4)?) as i64), at + 4),
        ArgKind::Uint8 => (Arg::U64(u64le(take(data, at, 8)?)), at + 8),
        ArgKind::Long1 => {
            let n = take(data, at, 1)?[0] as usize;
            let b = take(data, at + 1, n)?;
            (long_bytes(b), at + 1 + n)
        }
        ArgKind::Long4 => {
            let n = u32le(take(data, at, 4)?) as i32;
            if n < 0 {
                return Err(ReadError::BadArg("LONG pickle has negative byte count"));
            }
            let b = take(data, at + 4, n as usize)?;
            (long_bytes(b), at + 4 + n as usize)
        }
        ArgKind::String1 | ArgKind::Bytes1 => {
            let n = take(data, at, 1)?[0] as usize;
            (Arg::Bytes(take(data, at + 1, n)?), at + 1 + n)
        }
        ArgKind::String4 => {
            let n = u32le(take(data, at, 4)?) as i32;
            if n < 0 {
                return Err(ReadError::BadArg(
                    "BINSTRING pickle has negative byte count",
                ));
            }
            (
                Arg::Bytes(take(data, at + 4, n as usize)?),
                at + 4 + n as usize,
            )
        }
        ArgKind::Bytes4 => {
            let n = u32le(take(data, at, 4)?) as usize;
            (Arg::Bytes(take(data, at + 4, n)?), at + 4 + n)
        }
        ArgKind::Bytes8 | ArgKind::ByteArray8 => {
            let n = sized(u64le(take(data, at, 8)?))?;
            (Arg::Bytes(take(data, at + 8, n)?), at + 8 + n)
        }
        ArgKind::Unicode1 => {
            let n = take(data, at, 1)?[0] as usize;
            (utf8_arg(take(data, at + 1, n)?)?, at + 1 + n)
        }
        ArgKind::Unicode4 => {
            let n = u32le(take(data, at, 4)?) as usize;
            (utf8_arg(take(data, at + 4, n)?)?, at + 4 + n)
        }
        ArgKind::Unicode8 => {
            let n = sized(u64le(take(data, at, 8)?))?;
            (utf8_arg(take(data, at + 8, n)?)?, at + 8 + n)
        }
        ArgKind::Float8 => {
            let b = take(data, at, 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            (Arg::Float(f64::from_be_bytes(a)), at + 8)
        }
        ArgKind::DecimalNlShort => {
            let (l, next) = line(data, at)?;
            let arg = match op {
                Op::INT => parse_int_opcode(l)?,
                _ => memo_index(l)?,
            };
            (arg, next)
        }
        ArgKind::DecimalNlLong => {
            let (l, next) = line(data, at)?;
            if l.is_empty() {
                return Err(ReadError::BadArg("pickle data was truncated"));
            }
            let l = if l.last() == Some(&b'L') {
                &l[..l.len() - 1]
            } else {
                l
            };
            (
                parse_py_int(c_str(l), 0).ok_or(ReadError::BadArg("invalid literal for int()"))?,
                next,
            )
        }
        ArgKind::FloatNl => {
            let (l, next) = line(data, at)?;
            let s = std::str::from_utf8(c_str(l))
                .map_err(|_| ReadError::BadArg("could not convert string to float"))?;
            (Arg::Float(parse_c_float(s)?), next)
        }
        ArgKind::StringNl | ArgKind::StringNlNoEscape | ArgKind::UnicodeNl => {
            let (l, next) = line(data, at)?;
            if op == Op::STRING {
                decode_string_line(l)?;
            }
            if op == Op::PERSID && !l.is_ascii() {
                return Err(ReadError::BadArg(
                    "persistent IDs in protocol 0 must be ASCII strings",
                ));
            }
            (Arg::Line(l), next)
        }
        ArgKind::StringNlPair => {
            let (m, n1) = line(data, at)?;
            let (n, n2) = line(data, n1)?;
            let m = std::str::from_utf8(m)
                .map_err(|_| ReadError::BadArg("module name is not UTF-8"))?;
            let n = std::str::from_utf8(n)
                .map_err(|_| ReadError::BadArg("global name is not UTF-8"))?;
            (Arg::Pair(m, n), n2)
        }
    };
    Ok((Instr { op, arg }, next))
}

fn sized(n: u64) -> Result<usize, ReadError> {
    if n > isize::MAX as u64 {
        return Err(ReadError::BadArg("length exceeds system's maximum size"));
    }
    Ok(n as usize)
}

fn utf8_arg(b: &[u8]) -> Result<Arg<'_>, ReadError> {
    match std::str::from_utf8(b) {
        Ok(s) => Ok(Arg::Utf8(s)),
        Err(_) if is_wtf8(b) => Ok(Arg::Wtf8(b)),
        Err(_) => Err(ReadError::BadArg("'utf-8' codec can't decode bytes")),
    }
}

/// UTF-8 that is only invalid because it encodes surrogates (CPython decodes BINUNICODE with
/// `surrogatepass`).
pub(crate) fn is_wtf8(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        match std::str::from_utf8(&b[i..]) {
            Ok(_) => return true,
            Err(e) => {
                let bad = i + e.valid_up_to();
                let s = &b[bad..];
                if s.len() >= 3
                    && s[0] == 0xED
                    && (0xA0..=0xBF).contains(&s[1])
                    && (0x80..=0xBF).contains(&s[2])
                {
                    i = bad + 3;
                } else {
                    return false;
                }
            }
        }
    }
    true
}

pub(crate) fn long_bytes(b: &[u8]) -> Arg<'_> {
    if b.is_empty() {
        return Arg::Int(0);
    }
    if b.len() <= 8 {
        let neg = b[b.len() - 1] & 0x80 != 0;
        let mut a = if neg { [0xffu8; 8] } else { [0u8; 8] };
        a[..b.len()].copy_from_slice(b);
        return Arg::Int(i64::from_le_bytes(a));
    }
    Arg::LongBytes(b)
}

/// `INT`: CPython tries C `strtol(s, 0)` first (so `I010` is octal 8), then Python's `int(s, 0)`;
/// exactly `I00` / `I01` are the booleans.
fn parse_int_opcode(l: &[u8]) -> Result<Arg<'_>, ReadError> {
    if l.is_empty() {
        return Err(ReadError::BadArg("pickle data was truncated"));
    }
    // C string functions stop at a NUL: whatever follows it on the line is ignored.
    let t = c_str(l);
    let x = if t.is_empty() { Some(0) } else { c_strtol(t) };
    if let Some(x) = x {
        if l.len() == 2 && (x == 0 || x == 1) {
            return Ok(Arg::Bool(x == 1));
        }
        return Ok(Arg::Int(x));
    }
    parse_py_int(t, 0).ok_or(ReadError::BadArg("could not convert string to int"))
}

/// The part of a line C sees: up to the first NUL.
fn c_str(l: &[u8]) -> &[u8] {
    match l.iter().position(|&b| b == 0) {
        Some(i) => &l[..i],
        None => l,
    }
}

/// GET / PUT: `int(s, 10)`, must be a non-negative index.
fn memo_index(l: &[u8]) -> Result<Arg<'_>, ReadError> {
    match parse_py_int(c_str(l), 10) {
        Some(Arg::Int(i)) if i >= 0 => Ok(Arg::Int(i)),
        Some(Arg::Int(_)) => Err(ReadError::BadArg("negative memo index")),
        Some(_) => Err(ReadError::BadArg("memo index too large")),
        None => Err(ReadError::BadArg("invalid literal for int() with base 10")),
    }
}

/// C `strtol(s, &end, 0)` accepting the whole line; None when CPython would fall back.
fn c_strtol(l: &[u8]) -> Option<i64> {
    let mut i = 0;
    while i < l.len() && matches!(l[i], b' ' | b'\t' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let mut neg = false;
    if i < l.len() && (l[i] == b'+' || l[i] == b'-') {
        neg = l[i] == b'-';
        i += 1;
    }
    let (radix, start) = if l.len() > i + 1 && l[i] == b'0' && (l[i + 1] | 0x20) == b'x' {
        (16, i + 2)
    } else if i < l.len() && l[i] == b'0' {
        (8, i)
    } else {
        (10, i)
    };
    let digits = &l[start..];
    if digits.is_empty() || !digits.iter().all(|c| (*c as char).is_digit(radix)) {
        return None;
    }
    let s = std::str::from_utf8(digits).ok()?;
    let v = i128::from_str_radix(s, radix).ok()?;
    let v = if neg { -v } else { v };
    i64::try_from(v).ok()
}

/// Python's `int(s, base)` for base 0 or 10: surrounding whitespace, sign, prefixes (base 0),
/// single underscores between digits.
pub(crate) fn parse_py_int(l: &[u8], base: u32) -> Option<Arg<'_>> {
    let t = trim_ascii(l);
    let mut i = 0;
    let mut neg = false;
    if i < t.len() && (t[i] == b'+' || t[i] == b'-') {
        neg = t[i] == b'-';
        i += 1;
    }
    let mut radix = 10;
    if base == 0 && t.len() > i + 1 && t[i] == b'0' {
        match t[i + 1] | 0x20 {
            b'x' => radix = 16,
            b'o' => radix = 8,
            b'b' => radix = 2,
            _ => {}
        }
        if radix != 10 {
            i += 2;
            if i < t.len() && t[i] == b'_' {
                i += 1;
            }
        }
    }
    let digits = &t[i..];
    if digits.is_empty() || digits[0] == b'_' || digits[digits.len() - 1] == b'_' {
        return None;
    }
    let mut prev_us = false;
    for &c in digits {
        if c == b'_' {
            if prev_us {
                return None;
            }
            prev_us = true;
        } else if (c as char).is_digit(radix) {
            prev_us = false;
        } else {
            return None;
        }
    }
    // Base 0 forbids leading zeros in a non-zero decimal literal.
    if base == 0
        && radix == 10
        && digits.len() > 1
        && digits[0] == b'0'
        && digits.iter().any(|&c| c != b'0' && c != b'_')
    {
        return None;
    }

    // CPython refuses to convert more than 4300 digits in a base that is not a power of two.
    if !radix.is_power_of_two() && digits.iter().filter(|c| **c != b'_').count() > 4300 {
        return None;
    }
    let mut v: i128 = 0;
    for &c in digits {
        if c == b'_' {
            continue;
        }
        let d = (c as char).to_digit(radix)? as i128;
        v = match v.checked_mul(radix as i128).and_then(|v| v.checked_add(d)) {
            Some(v) if v <= i64::MAX as i128 + 1 => v,
            _ => return Some(Arg::LongText(t)),
        };
    }
    let v = if neg { -v } else { v };
    match i64::try_from(v) {
        Ok(x) => Some(Arg::Int(x)),
        Err(_) => Some(Arg::LongText(t)),
    }
}

fn trim_ascii(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() || *first == 0x0b {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() || *last == 0x0b {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// `PyOS_string_to_double`: no surrounding whitespace, inf/nan words, no underscores.
fn parse_c_float(s: &str) -> Result<f64, ReadError> {
    let bad = ReadError::BadArg("could not convert string to float");
    if s.is_empty() || s.contains('_') || s.starts_with(|c: char| c.is_whitespace()) {
        return Err(bad);
    }
    let body = s.trim_start_matches(['+', '-']);
    if s.len() - body.len() > 1 {
        return Err(bad);
    }
    let lower = body.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ if body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')) =>
        {
            // PyOS_string_to_double raises OverflowError rather than returning inf.
            match body.parse::<f64>() {
                Ok(v) if v.is_finite() => v,
                _ => return Err(bad),
            }
        }
        _ => return Err(bad),
    };
    Ok(if s.starts_with('-') { -v } else { v })
}

/// `float(line)` as `pickle._Unpickler.load_float` calls it (joblib's and pandas' unpicklers
/// are that class): surrounding ASCII whitespace, underscores between digits, and overflow to
/// infinity are accepted where the C unpickler fails; a NUL is not.
pub fn parse_py_float(l: &[u8]) -> Option<f64> {
    let t = trim_ascii(l);
    if t.is_empty() {
        return None;
    }
    let mut s = String::with_capacity(t.len());
    for (i, &c) in t.iter().enumerate() {
        if c == b'_' {
            let digit = |j: Option<&u8>| j.is_some_and(|c| c.is_ascii_digit());
            if i == 0 || !digit(t.get(i - 1)) || !digit(t.get(i + 1)) {
                return None;
            }
            continue;
        }
        if !(c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'-')) {
            return None;
        }
        s.push(c as char);
    }
    let body = s.trim_start_matches(['+', '-']);
    if s.len() - body.len() > 1 {
        return None;
    }
    let v = match body.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ if body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')) =>
        {
            body.parse::<f64>().ok()?
        }
        _ => return None,
    };
    Some(if s.starts_with('-') { -v } else { v })
}

/// Python's `codecs.escape_decode` (STRING), as bytes. None on an invalid `\x` escape.
pub fn escape_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let Some(&e) = s.get(i) else {
            return None; // trailing backslash: "Trailing \ in string"
        };
        i += 1;
        match e {
            b'\n' => {}
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b't' => out.push(9),
            b'n' => out.push(10),
            b'r' => out.push(13),
            b'v' => out.push(11),
            b'a' => out.push(7),
            b'0'..=b'7' => {
                let mut v = (e - b'0') as u32;
                for _ in 0..2 {
                    match s.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            b'x' => {
                let h = s.get(i..i + 2)?;
                let v = u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
                out.push(v);
                i += 2;
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// Python's `raw_unicode_escape` decoding (UNICODE) as code points: `\uXXXX` and
/// `\UXXXXXXXX`, other bytes are latin-1. Lone surrogates are kept (Python allows them).
pub fn raw_unicode_escape_codepoints(s: &[u8]) -> Option<Vec<u32>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'\\' && i + 1 < s.len() && (s[i + 1] == b'u' || s[i + 1] == b'U') {
            // Only an unescaped backslash starts an escape: count the run before it.
            let mut run = 0;
            let mut j = i;
            while j > 0 && s[j - 1] == b'\\' {
                run += 1;
                j -= 1;
            }
            if run % 2 == 0 {
                let n = if s[i + 1] == b'u' { 4 } else { 8 };
                let h = s.get(i + 2..i + 2 + n)?;
                let v = u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
                if v > 0x10FFFF {
                    return None;
                }
                out.push(v);
                i += 2 + n;
                continue;
            }
        }
        out.push(c as u32);
        i += 1;
    }
    Some(out)
}

/// Text of code points; surrogates become U+FFFD (Rust strings cannot hold them).
pub fn codepoints_lossy(cps: &[u32]) -> String {
    cps.iter()
        .map(|&c| char::from_u32(c).unwrap_or('\u{FFFD}'))
        .collect()
}

/// `raw_unicode_escape` decoding to a Rust string (surrogates replaced).
pub fn raw_unicode_escape_decode(s: &[u8]) -> Option<String> {
    raw_unicode_escape_codepoints(s).map(|c| codepoints_lossy(&c))
}

/// Code points of UTF-8 that may encode surrogates (CPython's `surrogatepass`).
pub fn wtf8_codepoints(b: &[u8]) -> Vec<u32> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as u32;
        let (n, init) = match b[i] {
            0x00..=0x7f => (0, c),
            0xc0..=0xdf => (1, c & 0x1f),
            0xe0..=0xef => (2, c & 0x0f),
            _ => (3, c & 0x07),
        };
        let mut v = init;
        for k in 1..=n {
            v = (v << 6) | (*b.get(i + k).unwrap_or(&0x80) as u32 & 0x3f);
        }
        out.push(v);
        i += 1 + n;
    }
    out
}

/// The STRING opcode's argument, as CPython decodes it (quotes stripped, escapes decoded).
pub fn decode_string_line(l: &[u8]) -> Result<Vec<u8>, ReadError> {
    let n = l.len();
    if n >= 2 && l[0] == l[n - 1] && (l[0] == b'\'' || l[0] == b'"') {
        escape_decode(&l[1..n - 1]).ok_or(ReadError::BadArg("invalid \\x escape in STRING"))
    } else {
        Err(ReadError::BadArg(
            "the STRING opcode argument must be quoted",
        ))
    }
}

/// Lossy text of a WTF-8 argument.
pub fn wtf8_lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(data: &[u8]) -> Result<(Instr<'_>, usize), ReadError> {
        read_instr(data, 0)
    }

    #[test]
    fn ints() {
        assert_eq!(first(b"I01\n").unwrap().0.arg, Arg::Bool(true));
        assert_eq!(first(b"I00\n").unwrap().0.arg, Arg::Bool(false));
        assert_eq!(first(b"I1\n").unwrap().0.arg, Arg::Int(1));
        assert_eq!(first(b"I010\n").unwrap().0.arg, Arg::Int(8));
        assert_eq!(first(b"I-42\n").unwrap().0.arg, Arg::Int(-42));
        assert!(matches!(
            first(b"I99999999999999999999\n").unwrap().0.arg,
            Arg::LongText(_)
        ));
        assert!(first(b"Iabc\n").is_err());
        assert!(first(b"I12").is_err());
        assert_eq!(first(b"J\xff\xff\xff\xff").unwrap().0.arg, Arg::Int(-1));
        assert_eq!(first(b"\x8a\x02\xff\x7f").unwrap().0.arg, Arg::Int(0x7fff));
        assert_eq!(first(b"\x8a\x01\xff").unwrap().0.arg, Arg::Int(-1));
        assert_eq!(first(b"L12L\n").unwrap().0.arg, Arg::Int(12));
    }

    #[test]
    fn strings() {
        assert_eq!(decode_string_line(b"'a\\x41\\n'").unwrap(), b"aA\n");
        assert!(decode_string_line(b"abc").is_err());
        assert_eq!(
            raw_unicode_escape_decode(b"a\\u0041\xe9").unwrap(),
            "aA\u{e9}"
        );
        assert_eq!(
            first(b"X\x02\x00\x00\x00hi").unwrap().0.arg,
            Arg::Utf8("hi")
        );
        assert!(matches!(
            first(b"X\x03\x00\x00\x00\xed\xa0\x80").unwrap().0.arg,
            Arg::Wtf8(_)
        ));
        assert!(first(b"X\x01\x00\x00\x00\xff").is_err());
    }

    #[test]
    fn truncation_and_lengths() {
        assert_eq!(
            first(b"B\xff\xff\xff\xff").unwrap_err(),
            ReadError::Truncated
        );
        assert_eq!(
            first(b"\x8e\xff\xff\xff\xff\xff\xff\xff\xff").unwrap_err(),
            ReadError::BadArg("length exceeds system's maximum size")
        );
        assert_eq!(first(b"\xff").unwrap_err(), ReadError::UnknownOpcode(0xff));
        assert!(first(b"T\xff\xff\xff\xff").is_err());
    }

    #[test]
    fn floats() {
        assert_eq!(first(b"F1.5\n").unwrap().0.arg, Arg::Float(1.5));
        assert_eq!(
            first(b"F-inf\n").unwrap().0.arg,
            Arg::Float(f64::NEG_INFINITY)
        );
        assert!(first(b"F 1.5\n").is_err());
        assert!(first(b"F1_0\n").is_err());
        for (line, want) in [
            (&b"1e500"[..], f64::INFINITY),
            (b" 1.5", 1.5),
            (b"1.5 ", 1.5),
            (b"\t2\r", 2.0),
            (b"1_0", 10.0),
            (b"1_0.2_5e1_0", 10.25e10),
            (b"-iNfInItY", f64::NEG_INFINITY),
        ] {
            assert_eq!(parse_py_float(line), Some(want), "{line:?}");
        }
        for bad in [
            &b"1.5\x00x"[..],
            b"0x10",
            b"1__0",
            b"_1",
            b"1_",
            b"1_.0",
            b"",
            b"+-1",
        ] {
            assert_eq!(parse_py_float(bad), None, "{bad:?}");
        }
        assert!(parse_py_float(b"nan").unwrap().is_nan());
    }
}
