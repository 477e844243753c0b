//! Where one pickle ends: the bytes CPython's unpickler reads from a stream for one
//! `pickle.load` (up to and including STOP, or to the end of the FRAME holding the STOP: an
//! unpickler reading a file reads a frame whole), found without running anything. The Python
//! layer uses it to scan exactly what a load would consume, and to read a non-seekable
//! stream no further than the loader itself would.

use pickleguard::{ArgKind, Op};

/// What [`extent`] found.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Extent {
    /// The pickle's bytes end at this offset: after its STOP, or at the end of the frame the
    /// STOP is in.
    Complete(usize),
    /// The opcode at `pos` needs more input: `need` more bytes at least (`None`: a line).
    More { pos: usize, need: Option<u64> },
    /// The opcode at `pos` is invalid: the loader fails there.
    Invalid(usize),
}

fn le(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(a)
}

/// Bytes needed to complete an opcode starting at `pos` (whose argument begins at `at`), or
/// `Ok(next)` when it is complete.
enum Step {
    Next(usize),
    Need(u64),
    Line,
    Bad,
}

fn need_bytes(data: &[u8], at: usize, n: u64) -> Step {
    let have = (data.len() - at.min(data.len())) as u64;
    if have >= n {
        Step::Next(at + n as usize)
    } else {
        Step::Need(n - have)
    }
}

/// A counted payload: `width` length bytes, then that many bytes. `signed`: a negative
/// 4-byte length is an error, as in `_pickle`.
fn counted(data: &[u8], at: usize, width: usize, signed: bool) -> Step {
    match need_bytes(data, at, width as u64) {
        Step::Next(body) => {
            let raw = &data[at..body];
            let n = if signed {
                let v = i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
                if v < 0 {
                    return Step::Bad;
                }
                v as u64
            } else {
                le(raw)
            };
            need_bytes(data, body, n)
        }
        other => other,
    }
}

fn lines(data: &[u8], mut at: usize, count: usize) -> Step {
    for _ in 0..count {
        match data
            .get(at..)
            .and_then(|r| r.iter().position(|&b| b == b'\n'))
        {
            Some(i) => at += i + 1,
            None => return Step::Line,
        }
    }
    Step::Next(at)
}

/// Find the end of the pickle that starts at `start`, resuming at `from` (an opcode boundary
/// at or after `start` returned by an earlier call on a prefix of the same data).
pub fn extent(data: &[u8], from: usize) -> Extent {
    let mut pos = from;
    // End of the frame the walk is in (0: none); a resumed walk may start inside one whose
    // FRAME it did not see, which only makes it stop at the STOP.
    let mut frame_end = 0;
    loop {
        let Some(&code) = data.get(pos) else {
            return Extent::More { pos, need: Some(1) };
        };
        let Some(op) = Op::from_byte(code) else {
            return Extent::Invalid(pos);
        };
        let at = pos + 1;
        let step = match op.arg_kind() {
            ArgKind::None => Step::Next(at),
            ArgKind::Uint1 => need_bytes(data, at, 1),
            ArgKind::Uint2 => need_bytes(data, at, 2),
            ArgKind::Int4 | ArgKind::Uint4 => need_bytes(data, at, 4),
            ArgKind::Float8 => need_bytes(data, at, 8),
            ArgKind::Uint8 => match need_bytes(data, at, 8) {
                // FRAME: CPython reads the whole frame at once.
                Step::Next(body) if op == Op::FRAME => {
                    match need_bytes(data, body, le(&data[at..body])) {
                        Step::Need(n) => Step::Need(n),
                        Step::Next(end) => {
                            if pos >= frame_end {
                                frame_end = end;
                            }
                            Step::Next(body)
                        }
                        other => other,
                    }
                }
                other => other,
            },
            ArgKind::Long1 | ArgKind::String1 | ArgKind::Bytes1 | ArgKind::Unicode1 => {
                counted(data, at, 1, false)
            }
            ArgKind::Long4 | ArgKind::String4 => counted(data, at, 4, true),
            ArgKind::Bytes4 | ArgKind::Unicode4 => counted(data, at, 4, false),
            ArgKind::Bytes8 | ArgKind::Unicode8 | ArgKind::ByteArray8 => {
                counted(data, at, 8, false)
            }
            ArgKind::DecimalNlShort
            | ArgKind::DecimalNlLong
            | ArgKind::FloatNl
            | ArgKind::StringNl
            | ArgKind::StringNlNoEscape
            | ArgKind::UnicodeNl => lines(data, at, 1),
            ArgKind::StringNlPair => lines(data, at, 2),
        };
        match step {
            Step::Next(next) => {
                if op == Op::STOP {
                    return Extent::Complete(next.max(frame_end));
                }
                pos = next;
            }
            Step::Need(n) => return Extent::More { pos, need: Some(n) },
            Step::Line => return Extent::More { pos, need: None },
            Step::Bad => return Extent::Invalid(pos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_stop_and_asks_for_what_is_missing() {
        // protocol 2: PROTO 2, BININT1 5, STOP, then a second pickle.
        let p = b"\x80\x02K\x05.\x80\x02N.";
        assert_eq!(extent(p, 0), Extent::Complete(5));
        assert_eq!(extent(p, 5), Extent::Complete(9));
        assert_eq!(
            extent(&p[..3], 0),
            Extent::More {
                pos: 2,
                need: Some(1)
            }
        );
        // protocol 0 GLOBAL needs two lines.
        assert_eq!(extent(b"cos\nsys", 0), Extent::More { pos: 0, need: None });
        assert_eq!(extent(b"cos\nsystem\n.", 0), Extent::Complete(12));
        assert_eq!(extent(b"\xff", 0), Extent::Invalid(0));
        // BINUNICODE length 3 with one byte present.
        assert_eq!(
            extent(b"X\x03\x00\x00\x00a", 0),
            Extent::More {
                pos: 0,
                need: Some(2)
            }
        );
        // A FRAME asks for its whole body.
        let mut f = b"\x80\x04\x95".to_vec();
        f.extend_from_slice(&10u64.to_le_bytes());
        f.extend_from_slice(b"K\x01");
        assert_eq!(
            extent(&f, 0),
            Extent::More {
                pos: 2,
                need: Some(8)
            }
        );
        // A STOP inside a frame: the loader has read the whole frame.
        let mut g = b"\x80\x04\x95".to_vec();
        g.extend_from_slice(&6u64.to_le_bytes());
        g.extend_from_slice(b"K\x01.K\x02.");
        g.extend_from_slice(b"N.");
        assert_eq!(extent(&g, 0), Extent::Complete(17));
        assert_eq!(extent(&g, 17), Extent::Complete(19));
        // Negative BINSTRING length is an error.
        assert_eq!(extent(b"T\xff\xff\xff\xff", 0), Extent::Invalid(0));
    }
}
