//! Undo the wrappings payloads hide in (base64, hex, zlib, gzip) and recognise Python code in
//! strings, so that nested payloads can be analysed too.

use flate2::read::{GzDecoder, ZlibDecoder};
use std::io::Read;

/// One decoding step that produced something.
#[derive(Debug)]
pub struct Decoded {
    pub how: &'static str,
    pub bytes: Vec<u8>,
}

const MIN_ENCODED: usize = 16;

/// Decode `input` by each wrapping it could be in, bounded by `max_out` bytes of output.
pub fn unwrap_once(input: &[u8], max_out: usize) -> Vec<Decoded> {
    let mut out = Vec::new();
    if let Some(b) = inflate(input, max_out) {
        out.push(b);
    }
    let trimmed = trim(input);
    if trimmed.len() >= MIN_ENCODED {
        if trimmed.len().is_multiple_of(2) && trimmed.iter().all(|c| c.is_ascii_hexdigit()) {
            if let Some(b) = hex(trimmed) {
                out.push(Decoded {
                    how: "hex",
                    bytes: b,
                });
            }
        } else if let Some(b) = base64(trimmed, max_out) {
            out.push(Decoded {
                how: "base64",
                bytes: b,
            });
        }
    }
    out
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map(|i| i + 1)
        .unwrap_or(s);
    &b[s..e.max(s)]
}

fn inflate(input: &[u8], max_out: usize) -> Option<Decoded> {
    let mut buf = Vec::new();
    if input.len() >= 2 && input[0] == 0x1f && input[1] == 0x8b {
        let r = GzDecoder::new(input)
            .take(max_out as u64)
            .read_to_end(&mut buf);
        return r.ok().filter(|n| *n > 0).map(|_| Decoded {
            how: "gzip",
            bytes: buf,
        });
    }
    if input.len() >= 2
        && input[0] & 0x0f == 8
        && (u16::from(input[0]) << 8 | u16::from(input[1])) % 31 == 0
    {
        let r = ZlibDecoder::new(input)
            .take(max_out as u64)
            .read_to_end(&mut buf);
        return r.ok().filter(|n| *n > 0).map(|_| Decoded {
            how: "zlib",
            bytes: buf,
        });
    }
    None
}

fn hex(s: &[u8]) -> Option<Vec<u8>> {
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

fn b64val(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    })
}

/// Standard or URL-safe base64, whitespace ignored, padding optional.
pub fn base64(s: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut seen_pad = false;
    let mut n = 0usize;
    for &c in s {
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == b'=' {
            seen_pad = true;
            continue;
        }
        if seen_pad {
            return None;
        }
        let v = b64val(c)?;
        n += 1;
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
            if out.len() > max_out {
                return None;
            }
        }
    }
    if n % 4 == 1 {
        return None;
    }
    Some(out)
}

/// Words that make a string look like Python code worth reporting.
const CODE_MARKERS: &[&str] = &[
    "import ",
    "__import__",
    "exec(",
    "eval(",
    "compile(",
    "system(",
    "popen",
    "subprocess",
    "open(",
    "os.",
    "sys.",
    "builtins",
    "getattr(",
    "lambda",
    "__class__",
    "__globals__",
    "__builtins__",
    "socket",
    "urllib",
    "pickle",
    "marshal",
    "base64",
    "b64decode",
    "fromhex",
    "decompress",
];

/// The code markers a string contains.
pub fn code_markers(text: &str) -> Vec<&'static str> {
    CODE_MARKERS
        .iter()
        .copied()
        .filter(|m| text.contains(m))
        .collect()
}

/// Modules a code string imports (`import a, b`, `from a import b`, `__import__('a')`).
pub fn imported_modules(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.split([';', '\n']) {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("import ") {
            for part in rest.split(',') {
                if let Some(name) = part.split_whitespace().next() {
                    out.push(name.to_string());
                }
            }
        } else if let Some(rest) = l.strip_prefix("from ") {
            if let Some(name) = rest.split_whitespace().next() {
                out.push(name.to_string());
            }
        }
    }
    let mut rest = text;
    while let Some(i) = rest.find("__import__(") {
        let after = &rest[i + 11..];
        let name: String = after
            .trim_start_matches(['\'', '"', ' '])
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
        rest = after;
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_wrappings() {
        let d = unwrap_once(b"aW1wb3J0IG9zOyBvcy5zeXN0ZW0oJ2lkJyk=", 1 << 20);
        assert_eq!(d[0].how, "base64");
        assert_eq!(d[0].bytes, b"import os; os.system('id')");
        let d = unwrap_once(b"696d706f7274206f73", 1 << 20);
        assert_eq!(d[0].bytes, b"import os");
        assert!(unwrap_once(b"short", 1 << 20).is_empty());
        assert_eq!(
            imported_modules("import os, sys; __import__('subprocess')"),
            vec!["os", "subprocess", "sys"]
        );
    }
}
