//! What the C unpickler reads when it reads a file object instead of bytes.
//!
//! `pickle.loads` (and a file whose `peek` already shows a whole frame) reads a FRAME's body
//! in place: frames change nothing. Reading a file, `_pickle` reads a frame it cannot see
//! with one `read(n)` and serves opcodes from that buffer; an opcode that needs more than the
//! buffer still holds drops the rest of it and reads from the file, which is at the frame's
//! end (`_Unpickler_ReadImpl`, `_Unpickler_Readline`; counted bytes and bytearrays go through
//! `_Unpickler_ReadInto`, which keeps the rest). After a STOP inside such a frame, the next
//! `pickle.load` of the file starts at the frame's end (the pure-Python unpickler's too),
//! while a reused `Unpickler` object goes on inside the buffer. With `peek` (open files,
//! gzip) whether a frame is read whole depends on the stream's buffering, so each frame can
//! go either way.
//!
//! [`readings`] lists every such reading of a stream that differs from the bytes reading,
//! each as the bytes the unpickler consumes in order (FRAME opcodes left out, since the
//! reading has already applied them), so the ordinary analysis runs on it unchanged.

use crate::opcodes::{ArgKind, Op};

/// One reading: the bytes consumed, in order, and where each run of them sits in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    pub data: Vec<u8>,
    /// (offset in `data`, offset in the input) of each contiguous run, ascending.
    runs: Vec<(usize, usize)>,
    /// Where the first skip happened (the opcode whose read dropped bytes, or the STOP
    /// after which the next pickle starts further on), and what it was.
    pub first_skip: (usize, Skip),
}

/// Why a reading leaves out bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// An opcode's argument ran past the end of a frame read whole.
    Crossing,
    /// A STOP inside a frame: the next pickle starts at the frame's end.
    StopInFrame,
}

impl Reading {
    /// The input offset of an offset in [`Reading::data`].
    pub fn input_pos(&self, at: u64) -> u64 {
        let at = at as usize;
        let i = self.runs.partition_point(|&(v, _)| v <= at);
        match i.checked_sub(1).map(|i| self.runs[i]) {
            Some((v, r)) => (r + (at - v)) as u64,
            None => at as u64,
        }
    }
}

/// More readings than the bound: the caller reports a limit.
#[derive(Debug, PartialEq, Eq)]
pub struct TooMany;

/// Every reading of `data` by the C unpickler from a file object that differs from reading
/// it as bytes, at most `max` of them.
pub fn readings(data: &[u8], max: usize) -> Result<Vec<Reading>, TooMany> {
    let mut out: Vec<Reading> = Vec::new();
    // Depth-first over the choices (frame read whole or not; next pickle at the frame's end
    // or after the STOP): each prefix is run once with the default for later choices.
    let mut todo: Vec<Vec<bool>> = vec![Vec::new()];
    let mut runs = 0;
    while let Some(prefix) = todo.pop() {
        runs += 1;
        if runs > max.saturating_mul(4).max(8) {
            return Err(TooMany);
        }
        let mut w = Walk::new(data, &prefix);
        w.run();
        for i in prefix.len()..w.taken.len() {
            let mut p = w.taken[..i].to_vec();
            p.push(!w.taken[i]);
            todo.push(p);
        }
        if let Some(first_skip) = w.first_skip {
            let r = Reading {
                data: w.out,
                runs: w.runs,
                first_skip,
            };
            if !out.contains(&r) {
                if out.len() == max {
                    return Err(TooMany);
                }
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// The frame whose body the unpickler may serve reads from; whether it read that body whole
/// is decided when a read first runs past `end`.
#[derive(Clone, Copy)]
struct Frame {
    end: usize,
}

struct Walk<'a> {
    data: &'a [u8],
    pos: usize,
    frame: Option<Frame>,
    out: Vec<u8>,
    runs: Vec<(usize, usize)>,
    decisions: &'a [bool],
    taken: Vec<bool>,
    first_skip: Option<(usize, Skip)>,
    op_pos: usize,
}

impl<'a> Walk<'a> {
    fn new(data: &'a [u8], decisions: &'a [bool]) -> Self {
        Walk {
            data,
            pos: 0,
            frame: None,
            out: Vec::new(),
            runs: Vec::new(),
            decisions,
            taken: Vec::new(),
            first_skip: None,
            op_pos: 0,
        }
    }

    /// The next choice: the given one, else `true` (skip), recorded either way.
    fn choose(&mut self) -> bool {
        let d = self
            .decisions
            .get(self.taken.len())
            .copied()
            .unwrap_or(true);
        self.taken.push(d);
        d
    }

    fn skip_to_frame_end(&mut self, why: Skip) {
        if let Some(f) = self.frame.take() {
            self.pos = f.end;
            self.first_skip.get_or_insert((self.op_pos, why));
        }
    }

    /// A read of `n` bytes (`Some(n)`) or of a line (`None`) that may run past the frame:
    /// decide whether the frame was read whole (then the rest of it is dropped).
    fn before_read(&mut self, n: Option<usize>) {
        let Some(f) = self.frame else { return };
        if self.pos >= f.end {
            self.frame = None;
            return;
        }
        let fits = match n {
            Some(n) => self.pos.checked_add(n).is_some_and(|e| e <= f.end),
            None => self.data[self.pos..f.end].contains(&b'\n'),
        };
        if fits {
            return;
        }
        if self.choose() {
            self.skip_to_frame_end(Skip::Crossing);
        } else {
            self.frame = None;
        }
    }

    fn emit(&mut self, at: usize, n: usize) {
        let v = self.out.len();
        match self.runs.last() {
            Some(&(lv, lr)) if lr + (v - lv) == at => {}
            _ => self.runs.push((v, at)),
        }
        self.out.extend_from_slice(&self.data[at..at + n]);
    }

    /// `_Unpickler_Read`: `n` bytes, or None at the end of the input (emitted as far as
    /// they go, so the analysis sees the same truncation).
    fn read(&mut self, n: usize, emit: bool) -> Option<usize> {
        self.before_read(Some(n));
        self.take(n, emit)
    }

    /// `_Unpickler_ReadInto`: the rest of the buffer, then the file, which is contiguous.
    fn read_into(&mut self, n: usize) -> Option<usize> {
        if let Some(f) = self.frame {
            if self.pos.checked_add(n).is_none_or(|e| e > f.end) {
                self.frame = None;
            }
        }
        self.take(n, true)
    }

    fn take(&mut self, n: usize, emit: bool) -> Option<usize> {
        let at = self.pos;
        let avail = self.data.len() - at;
        if n > avail {
            if emit {
                self.emit(at, avail);
            }
            self.pos = self.data.len();
            return None;
        }
        if emit {
            self.emit(at, n);
        }
        self.pos = at + n;
        Some(at)
    }

    fn readline(&mut self) -> Option<()> {
        self.before_read(None);
        let at = self.pos;
        match self.data[at..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.emit(at, i + 1);
                self.pos = at + i + 1;
                Some(())
            }
            None => {
                self.emit(at, self.data.len() - at);
                self.pos = self.data.len();
                None
            }
        }
    }

    fn uint(&mut self, width: usize, emit: bool) -> Option<u64> {
        let at = self.read(width, emit)?;
        let mut a = [0u8; 8];
        a[..width].copy_from_slice(&self.data[at..at + width]);
        Some(u64::from_le_bytes(a))
    }

    /// Walk the stream's pickles until the input ends or one fails to read.
    fn run(&mut self) {
        while self.pos < self.data.len() {
            if self.opcode().is_none() {
                return;
            }
        }
    }

    fn opcode(&mut self) -> Option<()> {
        self.before_read(Some(1));
        self.op_pos = self.pos;
        let code = self.data[self.pos];
        let Some(op) = Op::from_byte(code) else {
            self.emit(self.pos, 1);
            return None;
        };
        if op == Op::FRAME {
            self.pos += 1;
            return self.frame_op();
        }
        self.take(1, true)?;
        match op.arg_kind() {
            ArgKind::None => {
                if op == Op::STOP {
                    self.after_stop();
                }
            }
            ArgKind::Uint1 => drop(self.read(1, true)?),
            ArgKind::Uint2 => drop(self.read(2, true)?),
            ArgKind::Int4 | ArgKind::Uint4 => drop(self.read(4, true)?),
            ArgKind::Uint8 | ArgKind::Float8 => drop(self.read(8, true)?),
            ArgKind::Long1 | ArgKind::String1 | ArgKind::Unicode1 => {
                let n = self.uint(1, true)?;
                self.read(n as usize, true)?;
            }
            ArgKind::Bytes1 => {
                let n = self.uint(1, true)?;
                self.read_into(n as usize)?;
            }
            ArgKind::Long4 | ArgKind::String4 => {
                let n = self.uint(4, true)? as u32 as i32;
                if n < 0 {
                    return None;
                }
                self.read(n as usize, true)?;
            }
            ArgKind::Unicode4 => {
                let n = self.uint(4, true)?;
                self.read(n as usize, true)?;
            }
            ArgKind::Bytes4 => {
                let n = self.uint(4, true)?;
                self.read_into(n as usize)?;
            }
            ArgKind::Unicode8 => {
                let n = usize::try_from(self.uint(8, true)?).ok()?;
                self.read(n, true)?;
            }
            ArgKind::Bytes8 | ArgKind::ByteArray8 => {
                let n = usize::try_from(self.uint(8, true)?).ok()?;
                self.read_into(n)?;
            }
            ArgKind::DecimalNlShort
            | ArgKind::DecimalNlLong
            | ArgKind::FloatNl
            | ArgKind::StringNl
            | ArgKind::StringNlNoEscape
            | ArgKind::UnicodeNl => self.readline()?,
            ArgKind::StringNlPair => {
                self.readline()?;
                self.readline()?;
            }
        }
        Some(())
    }

    /// `load_frame`: the 8-byte length, then the body is read (or found in the buffer).
    fn frame_op(&mut self) -> Option<()> {
        let n = self.uint(8, false)?;
        if n > isize::MAX as u64 {
            // OverflowError: nothing after it runs. Keep the byte so the analysis fails too.
            self.emit(self.op_pos, 1);
            return None;
        }
        let n = n as usize;
        if n == 0 {
            return Some(());
        }
        if let Some(f) = self.frame {
            if self.pos < f.end && self.pos + n <= f.end {
                return Some(()); // inside the buffer already
            }
        }
        self.before_read(Some(n));
        if n > self.data.len() - self.pos {
            // The read comes up short: the unpickler fails at this FRAME.
            self.emit(self.op_pos, 1);
            return None;
        }
        self.frame = Some(Frame { end: self.pos + n });
        Some(())
    }

    /// After a STOP inside a frame: a new `load()` starts at the frame's end when the frame
    /// was read whole; a reused unpickler (or a frame seen through `peek`) goes on here.
    fn after_stop(&mut self) {
        let Some(f) = self.frame else { return };
        if self.pos >= f.end {
            self.frame = None;
            return;
        }
        if self.choose() {
            self.skip_to_frame_end(Skip::StopInFrame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = vec![0x95];
        v.extend_from_slice(&(body.len() as u64).to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    fn datas(s: &[u8]) -> Vec<Vec<u8>> {
        readings(s, 16)
            .unwrap()
            .into_iter()
            .map(|r| r.data)
            .collect()
    }

    #[test]
    fn framed_pickles_without_tricks_read_the_same() {
        let mut s = b"\x80\x04".to_vec();
        s.extend(frame(b"K\x01K\x02\x86q\x00."));
        assert!(datas(&s).is_empty());
    }

    #[test]
    fn a_line_past_the_frame_end_drops_the_rest_of_the_frame() {
        let mut s = b"\x80\x04".to_vec();
        s.extend(frame(b"I12"));
        s.extend_from_slice(b"34\n.");
        let r = readings(&s, 16).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].data, b"\x80\x04I34\n.");
        assert_eq!(r[0].first_skip, (11, Skip::Crossing));
        // "34\n" sits at input offset 14.
        assert_eq!(r[0].input_pos(3), 14);
    }

    #[test]
    fn counted_bytes_read_on_into_the_file() {
        let mut s = b"\x80\x04".to_vec();
        s.extend(frame(b"C\x04ab"));
        s.extend_from_slice(b"cd.");
        assert!(datas(&s).is_empty());
        let mut u = b"\x80\x04".to_vec();
        u.extend(frame(b"\x8c\x04ab"));
        u.extend_from_slice(b"cdef.");
        assert_eq!(datas(&u), vec![b"\x80\x04\x8c\x04cdef.".to_vec()]);
    }

    #[test]
    fn stop_in_a_frame_starts_the_next_pickle_at_its_end() {
        let mut s = b"\x80\x04".to_vec();
        s.extend(frame(b"K\x01.K\x02."));
        s.extend_from_slice(b"K\x03.");
        assert_eq!(datas(&s), vec![b"\x80\x04K\x01.K\x03.".to_vec()]);
    }

    #[test]
    fn choices_multiply_and_are_bounded() {
        let mut s = Vec::new();
        for _ in 0..12 {
            s.extend(frame(b"I1"));
            s.extend_from_slice(b"2\n0");
        }
        s.push(b'.');
        assert_eq!(readings(&s, 16), Err(TooMany));
        let mut two = Vec::new();
        for _ in 0..2 {
            two.extend(frame(b"I1"));
            two.extend_from_slice(b"2\n0");
        }
        // Each frame read whole or not: three readings besides the bytes one.
        assert_eq!(readings(&two, 16).unwrap().len(), 3);
    }
}
