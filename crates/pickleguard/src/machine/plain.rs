//! The shape-only run's inner loop. Plain data is most of every model file, and going through
//! the reader's `Arg` and `step`'s general dispatch cost about 12 ns per opcode there: this loop
//! decodes the opcodes plain data is made of straight from the bytes and applies them to the
//! same stack, marks and memo. Anything else, and any opcode that would fail or reach a limit,
//! is handed to [`Machine::one`] untouched, so errors, limits and `NeedsGraph` come from one
//! place and the outcome is the same as without this loop (tests/plain_loop.rs checks it).

use super::{Machine, Outcome};
use crate::opcodes::Op;
use crate::reader::{is_wtf8, long_bytes, Arg};
use crate::value::{NodeId, Value};

const MARK: u8 = Op::MARK as u8;
const POP: u8 = Op::POP as u8;
const POP_MARK: u8 = Op::POP_MARK as u8;
const DUP: u8 = Op::DUP as u8;
const NONE: u8 = Op::NONE as u8;
const NEWTRUE: u8 = Op::NEWTRUE as u8;
const NEWFALSE: u8 = Op::NEWFALSE as u8;
const BININT: u8 = Op::BININT as u8;
const BININT1: u8 = Op::BININT1 as u8;
const BININT2: u8 = Op::BININT2 as u8;
const LONG1: u8 = Op::LONG1 as u8;
const BINFLOAT: u8 = Op::BINFLOAT as u8;
const SHORT_BINUNICODE: u8 = Op::SHORT_BINUNICODE as u8;
const BINUNICODE: u8 = Op::BINUNICODE as u8;
const BINUNICODE8: u8 = Op::BINUNICODE8 as u8;
const SHORT_BINSTRING: u8 = Op::SHORT_BINSTRING as u8;
const BINSTRING: u8 = Op::BINSTRING as u8;
const SHORT_BINBYTES: u8 = Op::SHORT_BINBYTES as u8;
const BINBYTES: u8 = Op::BINBYTES as u8;
const BINBYTES8: u8 = Op::BINBYTES8 as u8;
const BYTEARRAY8: u8 = Op::BYTEARRAY8 as u8;
const EMPTY_TUPLE: u8 = Op::EMPTY_TUPLE as u8;
const EMPTY_LIST: u8 = Op::EMPTY_LIST as u8;
const EMPTY_DICT: u8 = Op::EMPTY_DICT as u8;
const EMPTY_SET: u8 = Op::EMPTY_SET as u8;
const TUPLE1: u8 = Op::TUPLE1 as u8;
const TUPLE2: u8 = Op::TUPLE2 as u8;
const TUPLE3: u8 = Op::TUPLE3 as u8;
const TUPLE: u8 = Op::TUPLE as u8;
const LIST: u8 = Op::LIST as u8;
const FROZENSET: u8 = Op::FROZENSET as u8;
const DICT: u8 = Op::DICT as u8;
const APPEND: u8 = Op::APPEND as u8;
const APPENDS: u8 = Op::APPENDS as u8;
const SETITEM: u8 = Op::SETITEM as u8;
const SETITEMS: u8 = Op::SETITEMS as u8;
const ADDITEMS: u8 = Op::ADDITEMS as u8;
const BINGET: u8 = Op::BINGET as u8;
const LONG_BINGET: u8 = Op::LONG_BINGET as u8;
const BINPUT: u8 = Op::BINPUT as u8;
const LONG_BINPUT: u8 = Op::LONG_BINPUT as u8;
const MEMOIZE: u8 = Op::MEMOIZE as u8;
const PROTO: u8 = Op::PROTO as u8;

/// What the containers that APPEND(S), SETITEM(S) and ADDITEMS fill in place must be.
#[derive(Clone, Copy, PartialEq)]
enum Fill {
    List,
    Dict,
    Set,
}

#[inline(always)]
fn slice(data: &[u8], at: usize, n: usize) -> Option<&[u8]> {
    data.get(at..at.checked_add(n)?)
}

#[inline(always)]
fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(slice(data, at, 4)?.try_into().ok()?))
}

#[inline(always)]
fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(slice(data, at, 8)?.try_into().ok()?))
}

/// The text opcodes' check (CPython decodes with `surrogatepass`).
#[inline(always)]
fn text_ok(b: &[u8]) -> bool {
    b.is_ascii() || std::str::from_utf8(b).is_ok() || is_wtf8(b)
}

/// A length-prefixed payload: its bytes and the position after it.
#[inline(always)]
fn payload(data: &[u8], at: usize, width: usize) -> Option<(&[u8], usize)> {
    let n = match width {
        1 => *data.get(at)? as usize,
        4 => u32_at(data, at)? as usize,
        _ => usize::try_from(u64_at(data, at)?)
            .ok()
            .filter(|&n| n <= isize::MAX as usize)?,
    };
    let b = slice(data, at + width, n)?;
    Some((b, at + width + n))
}

impl<'a> Machine<'a> {
    /// [`Machine::run`] with the plain-data opcodes inline: `FULL` builds values as `step`
    /// does, otherwise this is a shape-only run.
    // Each mode's loop is a function of its own: inlined into `run` side by side, the two
    // shared registers and the shape-only loop lost a tenth of its speed.
    #[inline(never)]
    pub(super) fn run_plain<const FULL: bool>(&mut self, start: usize) -> Outcome {
        let mut pos = start;
        // Counted in a local, so the hot loop keeps it in a register.
        let mut ops = self.ops;
        // Past it the reader path checks the opcode limit and the clock.
        let mut max_ops = self.ops_bound();
        // The reader path checks every frame's end; FRAME itself goes there too.
        let mut frame_end = self.frame_end;
        loop {
            if ops < max_ops && pos < frame_end {
                if let Some(next) = self.plain::<FULL>(pos) {
                    ops += 1;
                    pos = next;
                    continue;
                }
            }
            self.ops = ops;
            match self.one_cold(pos) {
                Ok(next) => pos = next,
                Err(out) => return out,
            }
            ops = self.ops;
            max_ops = self.ops_bound();
            frame_end = self.frame_end;
        }
    }

    /// The reader path, kept out of the hot loop's code.
    #[cold]
    #[inline(never)]
    fn one_cold(&mut self, pos: usize) -> Result<usize, Outcome> {
        self.one(pos)
    }

    /// Apply the plain-data opcode at `pos` if it is one and it succeeds without reaching a
    /// limit; otherwise change nothing and return `None`.
    #[inline(always)]
    fn plain<const FULL: bool>(&mut self, pos: usize) -> Option<usize> {
        let data = self.data;
        let at = pos + 1;
        // A full run's value goes into the arena before it is pushed: the arena must not get
        // one the reader path then makes again.
        if FULL && self.stack.len() >= self.limits.max_stack {
            return None;
        }
        let (v, next) = match *data.get(pos)? {
            BININT1 => (Value::Int(*data.get(at)? as i64), at + 1),
            BININT2 => {
                let b = slice(data, at, 2)?;
                (Value::Int(u16::from_le_bytes([b[0], b[1]]) as i64), at + 2)
            }
            BININT => (Value::Int(u32_at(data, at)? as i32 as i64), at + 4),
            LONG1 => {
                let (b, next) = payload(data, at, 1)?;
                let v = match long_bytes(b) {
                    Arg::Int(i) => Value::Int(i),
                    _ => Value::BigInt,
                };
                (v, next)
            }
            BINFLOAT => {
                let b: [u8; 8] = slice(data, at, 8)?.try_into().ok()?;
                (Value::Float(f64::from_be_bytes(b)), at + 8)
            }
            NONE => (Value::None, at),
            NEWTRUE => (Value::Bool(true), at),
            NEWFALSE => (Value::Bool(false), at),
            // Shape-only values carry no ids: the arena hands out 0 for every one.
            SHORT_BINUNICODE | BINUNICODE | BINUNICODE8 => {
                let width = match data[pos] {
                    SHORT_BINUNICODE => 1,
                    BINUNICODE => 4,
                    _ => 8,
                };
                let (b, next) = payload(data, at, width)?;
                if !text_ok(b) {
                    return None;
                }
                let v = if FULL {
                    self.arena.str_span(next - b.len(), b.len())
                } else {
                    Value::Str(0)
                };
                (v, next)
            }
            SHORT_BINSTRING | BINSTRING => {
                let width = if data[pos] == SHORT_BINSTRING { 1 } else { 4 };
                if width == 4 && (u32_at(data, at)? as i32) < 0 {
                    return None;
                }
                let (b, next) = payload(data, at, width)?;
                let text = b.is_ascii() || std::str::from_utf8(b).is_ok();
                let v = match (FULL, text) {
                    (true, true) => self.arena.str_span(next - b.len(), b.len()),
                    (true, false) => self.arena.bytes_span(next - b.len(), b.len(), false),
                    (false, true) => Value::Str(0),
                    (false, false) => Value::Bytes(0),
                };
                (v, next)
            }
            SHORT_BINBYTES | BINBYTES | BINBYTES8 | BYTEARRAY8 => {
                let code = data[pos];
                let width = match code {
                    SHORT_BINBYTES => 1,
                    BINBYTES => 4,
                    _ => 8,
                };
                let (b, next) = payload(data, at, width)?;
                let v = if FULL {
                    self.arena
                        .bytes_span(next - b.len(), b.len(), code == BYTEARRAY8)
                } else if code == BYTEARRAY8 {
                    Value::ByteArray(0)
                } else {
                    Value::Bytes(0)
                };
                (v, next)
            }
            // The pickle's one `()` node is the reader path's to make.
            EMPTY_TUPLE if FULL => (Value::Tuple(self.empty_tuple?), at),
            EMPTY_TUPLE => (Value::Tuple(0), at),
            EMPTY_LIST => (Value::List(self.plain_node::<FULL>()?), at),
            EMPTY_DICT => (Value::Dict(self.plain_node::<FULL>()?), at),
            EMPTY_SET => (Value::Set(self.plain_node::<FULL>()?), at),
            // Only the dense part of the memo: a sparse entry is the reader path's.
            BINGET => ((*self.memo.dense.get(*data.get(at)? as usize)?)?, at + 1),
            LONG_BINGET => ((*self.memo.dense.get(u32_at(data, at)? as usize)?)?, at + 4),
            DUP => {
                if self.stack.len() <= self.fence() {
                    return None;
                }
                (*self.stack.last()?, at)
            }
            // The opcodes that do not push one new value return from their arm: one match
            // for all (a second match for these cost a tenth of the loop's speed).
            BINPUT | LONG_BINPUT | MEMOIZE => {
                let (idx, next) = match data[pos] {
                    BINPUT => (*data.get(at)? as u64, at + 1),
                    LONG_BINPUT => (u32_at(data, at)? as u64, at + 4),
                    _ => (self.memo.len, at),
                };
                if self.stack.len() <= self.fence()
                    || self.memo.len >= self.limits.max_memo
                    || super::memo_bomb(idx, pos)
                {
                    return None;
                }
                let v = *self.stack.last()?;
                if !self.memo.put_next(idx, v) {
                    self.memo.put_any(idx, v);
                }
                return Some(next);
            }
            MARK => {
                if self.marks.len() >= self.limits.max_marks {
                    return None;
                }
                self.marks.push(self.stack.len());
                return Some(at);
            }
            POP => {
                let len = self.stack.len();
                if self.marks.last() == Some(&len) {
                    self.marks.pop();
                } else if len > self.fence() {
                    self.stack.pop();
                } else {
                    return None;
                }
                return Some(at);
            }
            POP_MARK => {
                let k = self.marks.pop()?;
                self.stack.truncate(k);
                return Some(at);
            }
            TUPLE1 | TUPLE2 | TUPLE3 => {
                let n = (data[pos] - TUPLE1 + 1) as usize;
                let len = self.stack.len();
                if len < self.fence() + n {
                    return None;
                }
                let id = if FULL {
                    self.node_room()?;
                    self.node_from(len - n, false)
                } else {
                    self.stack.truncate(len - n);
                    0
                };
                self.stack.push(Value::Tuple(id));
                return Some(at);
            }
            TUPLE | LIST | FROZENSET | DICT => {
                let k = *self.marks.last()?;
                let code = data[pos];
                // An empty MARK ... TUPLE grows the stack by one.
                if self.stack.len() >= self.limits.max_stack
                    || (code == DICT && !(self.stack.len() - k).is_multiple_of(2))
                {
                    return None;
                }
                let id = if FULL {
                    self.node_room()?;
                    self.marks.pop();
                    self.node_from(k, code == DICT)
                } else {
                    self.marks.pop();
                    self.stack.truncate(k);
                    0
                };
                self.stack.push(match code {
                    TUPLE => Value::Tuple(id),
                    LIST => Value::List(id),
                    FROZENSET => Value::FrozenSet(id),
                    _ => Value::Dict(id),
                });
                return Some(at);
            }
            APPEND => {
                return self.fill::<FULL>(self.stack.len().checked_sub(1)?, Fill::List, false, at)
            }
            SETITEM => {
                return self.fill::<FULL>(self.stack.len().checked_sub(2)?, Fill::Dict, false, at)
            }
            APPENDS => return self.fill::<FULL>(*self.marks.last()?, Fill::List, true, at),
            SETITEMS => return self.fill::<FULL>(*self.marks.last()?, Fill::Dict, true, at),
            ADDITEMS => return self.fill::<FULL>(*self.marks.last()?, Fill::Set, true, at),
            PROTO => {
                let p = *data.get(at)?;
                if p > 5 {
                    return None;
                }
                self.proto = p;
                return Some(at + 1);
            }
            _ => return None,
        };
        // The limit is the reader path's to report.
        if self.stack.len() >= self.limits.max_stack {
            return None;
        }
        self.stack.push(v);
        Some(next)
    }

    /// A new empty container node (0 in a shape-only run), unless that reaches the limit.
    #[inline(always)]
    fn plain_node<const FULL: bool>(&mut self) -> Option<NodeId> {
        if !FULL {
            return Some(0);
        }
        self.node_room()?;
        Some(self.arena.new_node(0))
    }

    /// `Some` when one more node stays within the limit (the reader path reports it).
    #[inline(always)]
    fn node_room(&self) -> Option<()> {
        (self.arena.nodes.len() < self.limits.max_nodes).then_some(())
    }

    /// `fill_at` for a plain container of the right kind: the items above `x` go into the
    /// container at `x - 1` (a mark at `x` is consumed when `marked`).
    #[inline(always)]
    fn fill<const FULL: bool>(
        &mut self,
        x: usize,
        want: Fill,
        marked: bool,
        next: usize,
    ) -> Option<usize> {
        let len = self.stack.len();
        let fence = if marked {
            self.marks.len().checked_sub(2).map_or(0, |i| self.marks[i])
        } else {
            self.fence()
        };
        if x > len || x <= fence {
            return None;
        }
        if len > x {
            if want == Fill::Dict && !(len - x).is_multiple_of(2) {
                return None;
            }
            if FULL {
                let id = match (want, self.stack[x - 1]) {
                    (Fill::List, Value::List(id))
                    | (Fill::Dict, Value::Dict(id))
                    | (Fill::Set, Value::Set(id)) => id,
                    _ => return None,
                };
                self.fill_own(id, x, want == Fill::Dict);
            } else {
                let ok = matches!(
                    (want, self.stack[x - 1]),
                    (Fill::List, Value::List(_))
                        | (Fill::Dict, Value::Dict(_))
                        | (Fill::Set, Value::Set(_))
                );
                if !ok {
                    return None;
                }
                self.stack.truncate(x);
            }
        }
        if marked {
            self.marks.pop();
        }
        Some(next)
    }
}
