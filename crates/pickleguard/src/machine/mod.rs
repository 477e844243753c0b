//! The symbolic stack machine: runs one pickle the way CPython's `_pickle` would (stack, MARK
//! metastack, memo), but every import and call becomes a node of a graph instead of happening.

use crate::limits::Limits;
use crate::opcodes::Op;
use crate::reader::{self, Arg, ReadError};
use crate::report::Limit;
use crate::value::{Arena, CallId, GlobalId, Node, NodeId, StrData, Value};
use std::collections::HashMap;

mod plain;

/// A global as the stream names it.
#[derive(Clone, Debug)]
pub struct GlobalRef {
    pub pos: u64,
    pub op: Op,
    pub module: String,
    pub name: String,
    /// The protocol in force (find_class walks dotted names from protocol 4 on).
    pub proto: u8,
    /// EXT1/2/4: the extension code; module and name are then unknown.
    pub ext: Option<i64>,
    /// STACK_GLOBAL whose operands are not literal strings.
    pub computed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// REDUCE: `callable(*args)`.
    Reduce,
    /// NEWOBJ: `cls.__new__(cls, *args)`.
    NewObj,
    /// NEWOBJ_EX: `cls.__new__(cls, *args, **kwargs)`.
    NewObjEx,
    /// INST: `cls(*args)` (or `cls.__new__(cls)` without arguments).
    Inst,
    /// OBJ: like INST with the class on the stack.
    Obj,
    /// BUILD: `target.__setstate__(state)` or attribute assignment; `callable` is the target.
    Build,
    /// APPEND(S) / SETITEM(S) / ADDITEMS on something that is not a plain container: a method
    /// call on the target.
    Method(Method),
    /// PERSID / BINPERSID: `persistent_load(pid)`.
    Persistent,
}

/// The method APPEND, APPENDS, SETITEM(S) or ADDITEMS calls on a target that is not a plain
/// container of its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Append,
    Extend,
    SetItem,
    Add,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Append => "append",
            Method::Extend => "extend",
            Method::SetItem => "__setitem__",
            Method::Add => "add",
        }
    }
}

/// One call of the graph. 48 bytes: a call-dense stream (a few bytes per call) holds up to
/// `max_calls` of them, so NEWOBJ_EX's rare keyword arguments live in `Machine::kwargs`.
#[derive(Clone, Debug)]
pub struct CallNode {
    pub pos: u64,
    pub kind: CallKind,
    pub callable: Value,
    pub args: Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MachineError {
    Read(ReadError),
    StackUnderflow,
    NoMark,
    MemoMissing(u64),
    UnsupportedProtocol(i64),
    StackGlobalNotStr,
    OddItems(&'static str),
    BadExtCode,
    /// GLOBAL / INST / STACK_GLOBAL naming a module that cannot be imported by name.
    NotImportable,
    BadText(&'static str),
    /// A configured bound was reached (the run ends in [`Outcome::Limit`]).
    Limit(Limit),
    /// A shape-only run met an opcode that needs the full graph ([`Outcome::NeedsGraph`]).
    NeedsGraph,
}

impl std::fmt::Display for MachineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MachineError::Read(e) => e.fmt(f),
            MachineError::StackUnderflow => f.write_str("unpickling stack underflow"),
            MachineError::NoMark => f.write_str("could not find MARK"),
            MachineError::MemoMissing(i) => write!(f, "Memo value not found at index {i}"),
            MachineError::UnsupportedProtocol(p) => write!(f, "unsupported pickle protocol: {p}"),
            MachineError::StackGlobalNotStr => f.write_str("STACK_GLOBAL requires str"),
            MachineError::OddItems(op) => write!(f, "odd number of items for {op}"),
            MachineError::BadExtCode => f.write_str("EXT specifies code <= 0"),
            MachineError::NotImportable => f.write_str("module name is not importable"),
            MachineError::BadText(m) => f.write_str(m),
            MachineError::Limit(l) => write!(f, "limit:{l}"),
            MachineError::NeedsGraph => f.write_str("needs-graph"),
        }
    }
}

/// How a run over one pickle ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// STOP at `pos`; the next pickle (if any) starts at `end`.
    Stop { pos: usize, end: usize },
    /// CPython stops with an error at `pos`.
    Error { pos: usize, err: MachineError },
    /// A configured limit was reached at `pos`.
    Limit { pos: usize, what: Limit },
    /// joblib: BUILD of a `NumpyArrayWrapper` (call `wrapper`) just ran; joblib's unpickler
    /// reads the array's bytes from the stream here and then goes on at `next`'s caller choice.
    JoblibArray { next: usize, wrapper: CallId },
    /// Shape-only run: the opcode at `pos` needs the full graph (it can import or call).
    NeedsGraph { pos: usize },
}

#[derive(Default)]
struct Memo {
    dense: Vec<Option<Value>>,
    sparse: HashMap<u64, Value>,
    len: u64,
}

const DENSE_MEMO: u64 = 1 << 28;

/// Longest module or name STACK_GLOBAL takes from the stack (longer ones cannot be imported).
const MAX_GLOBAL_TEXT: usize = 4096;

impl Memo {
    #[inline]
    fn put(&mut self, idx: u64, v: Value) {
        if !self.put_next(idx, v) {
            self.put_any(idx, v);
        }
    }

    /// `put` of the next index while nothing is sparse, as picklers number entries (0, 1,
    /// 2, ...): one push. `false`, having done nothing, in every other case.
    #[inline(always)]
    fn put_next(&mut self, idx: u64, v: Value) -> bool {
        let next = idx == self.dense.len() as u64
            && self.sparse.is_empty()
            && idx <= 2 * self.len + 4096
            && idx < DENSE_MEMO;
        if next {
            self.dense.push(Some(v));
            self.len += 1;
        }
        next
    }

    fn put_any(&mut self, idx: u64, v: Value) {
        // Dense while indices come roughly in order (as picklers write them), sparse for a
        // far-away index, so one huge LONG_BINPUT cannot allocate a huge vector. The vector
        // also stays within twice the entries stored: LONG_BINPUTs striding 4096 ahead each
        // grew it by 64 KB per 5 input bytes (4 GB from a 330 KB file).
        let fresh = if idx < DENSE_MEMO
            && idx <= self.dense.len() as u64 + 4096
            && idx <= 2 * self.len + 4096
        {
            let i = idx as usize;
            if i >= self.dense.len() {
                self.dense.resize(i + 1, None);
            }
            // An index first stored sparse moves to the dense slot.
            let was_sparse = !self.sparse.is_empty() && self.sparse.remove(&idx).is_some();
            self.dense[i].replace(v).is_none() && !was_sparse
        } else {
            self.sparse.insert(idx, v).is_none()
        };
        if fresh {
            self.len += 1;
        }
    }

    #[inline(always)]
    fn get(&self, idx: u64) -> Option<Value> {
        let dense = usize::try_from(idx)
            .ok()
            .and_then(|i| self.dense.get(i).copied().flatten());
        dense.or_else(|| self.sparse.get(&idx).copied())
    }
}

/// Whose rules a run follows where CPython's two unpicklers read a literal differently.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unpickler {
    /// `_pickle` (pickle.load(s), torch.load).
    #[default]
    C,
    /// `pickle._Unpickler` (joblib's and pandas' unpicklers subclass it).
    Python,
}

/// Where other readings of the same bytes may run differently from this one (kept across the
/// pickles of a stream; the analysis reruns the stream under those readings).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Divergence {
    /// A FLOAT line the C unpickler rejects and `float()` accepts (the first one's position).
    pub python: Option<usize>,
    /// An opcode that crosses the end of a FRAME, or a STOP with more of its frame after it:
    /// the C unpickler reading a file object drops the rest of a frame it read whole.
    pub file: bool,
}

/// State of one pickle's run. Reused across the pickles of a stream via `reset`.
pub struct Machine<'a> {
    pub data: &'a [u8],
    pub limits: Limits,
    pub arena: Arena,
    pub globals: Vec<GlobalRef>,
    pub calls: Vec<CallNode>,
    /// NEWOBJ_EX's keyword arguments, by call, in call order.
    pub kwargs: Vec<(CallId, Value)>,
    /// Oddities CPython tolerates but a scanner should mention (position, text).
    pub anomalies: Vec<(usize, &'static str)>,
    /// Position of the first opcode that can import or call (or exhaust the loader's memory).
    pub first_effect: Option<usize>,
    /// The first PUT whose memo index would make the C unpickler allocate out of proportion
    /// to the stream ([`memo_bomb`]): (position, index).
    pub memo_bomb: Option<(usize, u64)>,
    pub unpickler: Unpickler,
    pub divergence: Divergence,
    /// End of the FRAME the run is in (`usize::MAX`: none): frames nested in it change nothing.
    frame_end: usize,
    /// The one empty tuple of this pickle: CPython's `()` is a singleton and no opcode
    /// changes a tuple, so every EMPTY_TUPLE shares a node (a stream of `)R` calls made one
    /// node per call).
    empty_tuple: Option<NodeId>,
    /// Memo indices past what the C unpickler takes (pickle._Unpickler takes any int), by
    /// their digits: each gets its own key at 2^63 and above, where no other index lands.
    huge_memo: std::collections::HashMap<Vec<u8>, i64>,
    pub proto: u8,
    pub ops: u64,
    pub result: Option<Value>,
    /// Recognise joblib's NumpyArrayWrapper and hand control back after its BUILD.
    pub joblib: bool,
    /// Plain-data opcodes are decoded inline ([`Self::run_plain`]); off, every opcode goes
    /// through the reader (for the tests that prove both agree).
    #[doc(hidden)]
    pub plain_loop: bool,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: Memo,
    /// When the run must stop with the time limit (the scan's deadline).
    deadline: Option<std::time::Instant>,
    /// The opcode count at which the deadline is next looked at (`u64::MAX`: no deadline);
    /// the plain-data loop runs up to it without looking at the clock.
    next_time_check: u64,
}

/// Bytes the C unpickler's memo table may grow to for one PUT beyond what the stream holds.
pub const MEMO_BOMB_BYTES: u64 = 64 << 20;

/// Whether a PUT at `pos` storing at memo index `idx` makes the C unpickler allocate out of
/// proportion to the stream: it grows its memo table to `2 * idx` slots of 8 bytes and clears
/// each new slot (`_Unpickler_MemoPut`), so one LONG_BINPUT of a 4-byte index commits up to
/// 64 GB. A pickler numbers memo entries from 0, one per memoised object, so a real index is
/// below the position it is written at.
#[inline]
pub fn memo_bomb(idx: u64, pos: usize) -> bool {
    idx > pos as u64 && idx.saturating_mul(16) > MEMO_BOMB_BYTES
}

/// Opcodes run between two looks at the clock: a few microseconds of work.
const TIME_CHECK_OPS: u64 = 4096;

macro_rules! fail {
    ($e:expr) => {
        return Err($e)
    };
}

impl<'a> Machine<'a> {
    pub fn new(data: &'a [u8], limits: Limits) -> Self {
        Machine {
            data,
            limits,
            arena: Arena::default(),
            globals: Vec::new(),
            calls: Vec::new(),
            kwargs: Vec::new(),
            anomalies: Vec::new(),
            first_effect: None,
            memo_bomb: None,
            unpickler: Unpickler::C,
            divergence: Divergence::default(),
            frame_end: usize::MAX,
            empty_tuple: None,
            huge_memo: std::collections::HashMap::new(),
            proto: 0,
            ops: 0,
            result: None,
            joblib: false,
            plain_loop: true,
            stack: Vec::with_capacity(64),
            marks: Vec::new(),
            memo: Memo::default(),
            deadline: None,
            next_time_check: u64::MAX,
        }
    }

    /// Stop runs with the time limit ([`Limit::Time`]) once `deadline` has passed (looked at
    /// every [`TIME_CHECK_OPS`] opcodes).
    pub(crate) fn set_deadline(&mut self, deadline: Option<std::time::Instant>) {
        self.deadline = deadline;
        self.next_time_check = match deadline {
            Some(_) => self.ops,
            None => u64::MAX,
        };
    }

    /// The opcode count a run may reach before [`Self::one`] must look (a limit or the clock).
    #[inline]
    fn ops_bound(&self) -> u64 {
        self.limits.max_ops.min(self.next_time_check)
    }

    /// Plain-data fast path: check the stream's shape (stack, marks, memo) exactly as the full
    /// run does, but keep no values; stop with `NeedsGraph` at the first opcode that can import
    /// or call (or a method call on a non-container), so the caller reruns the pickle in full.
    pub fn set_shape_only(&mut self, on: bool) {
        self.arena.shape = on;
        if !on {
            // A full run builds about one node and one call per 16-20 bytes of a model's
            // pickle: growing there by doubling copied and re-faulted both vectors. Capped
            // low, as the input may be mostly array bytes (a joblib dump): 64k of each
            // reserved 7 MB per analysis for a forest that makes 1,500, and mapping and
            // unmapping it cost more than the growth it saves.
            let want = (self.data.len() / 16).min(1 << 12);
            if self.arena.nodes.is_empty() {
                self.arena.nodes.reserve(want);
            }
            if self.calls.is_empty() {
                self.calls.reserve(want);
            }
        }
    }

    /// Forget everything of the previous pickle (a new `load()` starts with an empty memo).
    pub fn reset(&mut self) {
        self.arena.clear();
        self.globals.clear();
        self.calls.clear();
        self.kwargs.clear();
        self.anomalies.clear();
        self.first_effect = None;
        self.memo_bomb = None;
        self.frame_end = usize::MAX;
        self.empty_tuple = None;
        self.proto = 0;
        self.result = None;
        self.stack.clear();
        self.marks.clear();
        self.memo = Memo::default();
    }

    #[inline]
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    #[inline]
    fn pop(&mut self) -> Result<Value, MachineError> {
        if self.stack.len() <= self.fence() {
            fail!(MachineError::StackUnderflow);
        }
        Ok(self.stack.pop().unwrap_or(Value::None))
    }

    #[inline]
    fn marker(&mut self) -> Result<usize, MachineError> {
        self.marks.pop().ok_or(MachineError::NoMark)
    }

    fn node_from(&mut self, start: usize, pairs: bool) -> NodeId {
        if self.arena.shape {
            self.stack.truncate(start);
            return 0;
        }
        let n = self.stack.len() - start;
        let id = self.arena.new_node(n);
        let node: &mut Node = &mut self.arena.nodes[id as usize];
        if pairs {
            let mut it = self.stack.drain(start..);
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                node.push_pair(k, v);
            }
        } else {
            for v in self.stack.drain(start..) {
                node.push(v);
            }
        }
        id
    }

    /// SETITEMS on an object: as `node_from`, and every key spelled like a dunder is kept
    /// (past the items a node keeps, scalars are dropped): the object's `__setitem__` may turn
    /// keys into attributes, and the analysis checks them all.
    fn method_pairs(&mut self, start: usize) -> NodeId {
        if self.arena.shape {
            self.stack.truncate(start);
            return 0;
        }
        let n = self.stack.len() - start;
        let id = self.arena.new_node(n);
        let (stack, arena, data) = (&mut self.stack, &mut self.arena, self.data);
        let mut it = stack.drain(start..);
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let dunder = matches!(k, Value::Str(s) if {
                let b = arena.text_bytes(data, s);
                b.len() > 4 && b.starts_with(b"__") && b.ends_with(b"__")
            });
            let node = &mut arena.nodes[id as usize];
            if dunder && node.items.len() >= crate::value::KEEP_ITEMS * 2 {
                node.len += 1;
                node.extra.push(k);
                node.extra.push(v);
            } else {
                node.push_pair(k, v);
            }
        }
        id
    }

    fn tuple_of(&mut self, items: &[Value]) -> Value {
        let id = self.arena.new_node(items.len());
        for v in items {
            self.arena.nodes[id as usize].push(*v);
        }
        Value::Tuple(id)
    }

    fn call(
        &mut self,
        pos: usize,
        kind: CallKind,
        callable: Value,
        args: Value,
        kwargs: Option<Value>,
    ) -> Result<Value, MachineError> {
        if self.arena.shape {
            // A method call on something that is not a plain container: the full run judges it.
            fail!(MachineError::NeedsGraph);
        }
        if self.calls.len() >= self.limits.max_calls {
            fail!(MachineError::Limit(Limit::Calls));
        }
        let id = self.calls.len() as CallId;
        self.calls.push(CallNode {
            pos: pos as u64,
            kind,
            callable,
            args,
        });
        if let Some(kw) = kwargs {
            self.kwargs.push((id, kw));
        }
        Ok(Value::Call(id))
    }

    fn global(
        &mut self,
        pos: usize,
        op: Op,
        module: String,
        name: String,
        ext: Option<i64>,
        computed: bool,
    ) -> Value {
        self.globals.push(GlobalRef {
            pos: pos as u64,
            op,
            module,
            name,
            proto: self.proto,
            ext,
            computed,
        });
        Value::Global((self.globals.len() - 1) as GlobalId)
    }

    /// `pickle._Unpickler` (the pure-Python unpickler, an entry point too) reads the last line
    /// of the input without its newline and still drops one character (`readline()[:-1]`):
    /// `cos\nsystem` imports `os` and looks up `syste`, `cos\n` imports `os`, a PERSID line at
    /// the end calls persistent_load. (The C unpickler stops with "pickle data was truncated";
    /// inside a FRAME the Python one stops too, which is not modelled: reported either way.)
    /// Returns whether the truncated opcode at `pos` imports or calls; records it unless this
    /// is a shape-only run.
    fn truncated_tail(&mut self, pos: usize) -> bool {
        fn readline(b: &[u8]) -> (&[u8], &[u8]) {
            match b.iter().position(|&c| c == b'\n') {
                Some(i) => (&b[..i], &b[i + 1..]),
                None => (&b[..b.len().saturating_sub(1)], &[]),
            }
        }
        let data = self.data;
        let Some(op) = data.get(pos).and_then(|b| Op::from_byte(*b)) else {
            return false;
        };
        let rest = &data[pos + 1..];
        let shape = self.arena.shape;
        match op {
            Op::GLOBAL | Op::INST => {
                let (m, rest) = readline(rest);
                let (n, _) = readline(rest);
                let (Ok(m), Ok(n)) = (std::str::from_utf8(m), std::str::from_utf8(n)) else {
                    return false;
                };
                // INST decodes its lines as ASCII, GLOBAL as UTF-8; `__import__` needs a name.
                if (op == Op::INST && !(m.is_ascii() && n.is_ascii())) || !is_dotted_name(m) {
                    return false;
                }
                if !shape {
                    self.global(pos, op, m.to_string(), n.to_string(), None, false);
                }
            }
            Op::PERSID => {
                let (l, _) = readline(rest);
                if !l.is_ascii() {
                    return false;
                }
                if !shape {
                    let pid = self
                        .arena
                        .str_owned(String::from_utf8_lossy(l).into_owned());
                    let _ = self.call(pos, CallKind::Persistent, Value::None, pid, None);
                }
            }
            _ => return false,
        }
        if !shape && self.first_effect.is_none() {
            self.first_effect = Some(pos);
        }
        true
    }

    fn too_long(&self, v: Value) -> bool {
        match v {
            Value::Str(id) => match &self.arena.strs[id as usize] {
                StrData::Span(_, l) => *l > MAX_GLOBAL_TEXT,
                StrData::Owned(t) => t.len() > MAX_GLOBAL_TEXT,
            },
            _ => false,
        }
    }

    /// The start of a string value, for a name too long to keep whole.
    fn text_prefix(&self, v: Value) -> String {
        match self.text_of(v) {
            Some(t) => {
                let mut p: String = t.chars().take(200).collect();
                p.push_str("...");
                p
            }
            None => "?".into(),
        }
    }

    fn text_of(&self, v: Value) -> Option<String> {
        match v {
            Value::Str(id) => Some(self.arena.text(self.data, id).into_owned()),
            _ => None,
        }
    }

    /// Run one pickle from `start` until STOP, an error, a limit or a joblib array.
    pub fn run(&mut self, start: usize) -> Outcome {
        if self.plain_loop {
            return if self.arena.shape {
                self.run_plain::<false>(start)
            } else {
                self.run_plain::<true>(start)
            };
        }
        let mut pos = start;
        loop {
            match self.one(pos) {
                Ok(next) => pos = next,
                Err(out) => return out,
            }
        }
    }

    /// One opcode at `pos` through the reader and [`Self::step`], with every limit check:
    /// the position of the next opcode, or why the run stops here.
    #[inline]
    fn one(&mut self, pos: usize) -> Result<usize, Outcome> {
        if self.ops >= self.next_time_check {
            self.next_time_check = self.ops.saturating_add(TIME_CHECK_OPS);
            if self
                .deadline
                .is_some_and(|d| std::time::Instant::now() >= d)
            {
                return Err(Outcome::Limit {
                    pos,
                    what: Limit::Time,
                });
            }
        }
        if self.ops >= self.limits.max_ops {
            return Err(Outcome::Limit {
                pos,
                what: Limit::Opcodes,
            });
        }
        self.ops += 1;
        if pos >= self.frame_end {
            // The last opcode ended past the frame's end: read from a file, its bytes differ.
            self.divergence.file |= pos > self.frame_end;
            self.frame_end = usize::MAX;
        }
        let read = match reader::read_instr(self.data, pos) {
            Err(e) => self.python_float(pos, e),
            ok => ok,
        };
        let (ins, next) = match read {
            Ok(x) => x,
            Err(e) => {
                // Whatever failed to read inside a frame may read differently from a file
                // (outside one, a file reader reads the same bytes).
                self.divergence.file |= self.frame_end != usize::MAX && pos < self.frame_end;
                if e == ReadError::Truncated && self.truncated_tail(pos) && self.arena.shape {
                    return Err(Outcome::NeedsGraph { pos });
                }
                return Err(Outcome::Error {
                    pos,
                    err: MachineError::Read(e),
                });
            }
        };
        if next > self.frame_end {
            self.divergence.file = true;
        }
        let effect = ins.op.can_import_or_call();
        if self.arena.shape && (effect || matches!(ins.op, Op::PERSID | Op::BINPERSID)) {
            return Err(Outcome::NeedsGraph { pos });
        }
        match self.step(ins.op, ins.arg, pos, next) {
            // Only an opcode that ran can have imported or called something.
            Ok(None) => {
                if effect && self.first_effect.is_none() {
                    self.first_effect = Some(pos);
                }
            }
            Ok(Some(out)) => {
                if effect && self.first_effect.is_none() {
                    self.first_effect = Some(pos);
                }
                if let Outcome::Stop { end, .. } = out {
                    // A loader reading a file goes on at the frame's end, not here.
                    self.divergence.file |= self.frame_end != usize::MAX
                        && end < self.frame_end
                        && end < self.data.len();
                }
                return Err(out);
            }
            Err(MachineError::NeedsGraph) => return Err(Outcome::NeedsGraph { pos }),
            Err(MachineError::Limit(what)) => return Err(Outcome::Limit { pos, what }),
            Err(err) => return Err(Outcome::Error { pos, err }),
        }
        let what = if self.stack.len() > self.limits.max_stack {
            Limit::StackDepth
        } else if self.globals.len() > self.limits.max_globals {
            Limit::Imports
        } else if self.memo.len > self.limits.max_memo {
            Limit::MemoSize
        } else if self.arena.nodes.len() > self.limits.max_nodes {
            Limit::Containers
        } else {
            return Ok(next);
        };
        Err(Outcome::Limit { pos, what })
    }

    fn step(
        &mut self,
        op: Op,
        arg: Arg<'a>,
        pos: usize,
        next: usize,
    ) -> Result<Option<Outcome>, MachineError> {
        let data = self.data;
        match op {
            Op::MARK => {
                if self.marks.len() >= self.limits.max_marks {
                    fail!(MachineError::Limit(Limit::MarkDepth));
                }
                self.marks.push(self.stack.len());
            }
            Op::STOP => {
                let v = self.pop()?;
                self.result = Some(v);
                return Ok(Some(Outcome::Stop { pos, end: next }));
            }
            Op::POP => {
                if self.marks.last() == Some(&self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop()?;
                }
            }
            Op::POP_MARK => {
                let k = self.marker()?;
                self.stack.truncate(k);
            }
            Op::DUP => {
                if self.stack.len() <= self.fence() {
                    fail!(MachineError::StackUnderflow);
                }
                let v = *self.stack.last().unwrap_or(&Value::None);
                self.stack.push(v);
            }
            Op::FLOAT | Op::BINFLOAT => {
                let Arg::Float(f) = arg else {
                    return Err(bad_arg());
                };
                self.stack.push(Value::Float(f));
            }
            Op::INT | Op::BININT | Op::BININT1 | Op::BININT2 | Op::LONG | Op::LONG1 | Op::LONG4 => {
                self.stack.push(match arg {
                    Arg::Int(i) => Value::Int(i),
                    Arg::Bool(b) => Value::Bool(b),
                    _ => Value::BigInt,
                });
            }
            Op::NONE => self.stack.push(Value::None),
            Op::NEWTRUE => self.stack.push(Value::Bool(true)),
            Op::NEWFALSE => self.stack.push(Value::Bool(false)),
            Op::STRING => {
                let Arg::Line(l) = arg else {
                    return Err(bad_arg());
                };
                let b = reader::decode_string_line(l).map_err(MachineError::Read)?;
                let v = match String::from_utf8(b) {
                    Ok(s) => self.arena.str_owned(s),
                    Err(e) => self.arena.bytes_owned(e.into_bytes()),
                };
                self.stack.push(v);
            }
            Op::BINSTRING | Op::SHORT_BINSTRING => {
                let Arg::Bytes(b) = arg else {
                    return Err(bad_arg());
                };
                let start = offset_in(data, b);
                let v = if std::str::from_utf8(b).is_ok() {
                    self.arena.str_span(start, b.len())
                } else {
                    self.arena.bytes_span(start, b.len(), false)
                };
                self.stack.push(v);
            }
            Op::UNICODE => {
                let Arg::Line(l) = arg else {
                    return Err(bad_arg());
                };
                let s = reader::raw_unicode_escape_decode(l)
                    .ok_or(MachineError::BadText("truncated \\uXXXX escape"))?;
                let v = self.arena.str_owned(s);
                self.stack.push(v);
            }
            Op::BINUNICODE | Op::SHORT_BINUNICODE | Op::BINUNICODE8 => {
                let (b, _) = match arg {
                    Arg::Utf8(s) => (s.as_bytes(), true),
                    Arg::Wtf8(b) => (b, false),
                    _ => return Err(bad_arg()),
                };
                let v = self.arena.str_span(offset_in(data, b), b.len());
                self.stack.push(v);
            }
            Op::BINBYTES | Op::SHORT_BINBYTES | Op::BINBYTES8 | Op::BYTEARRAY8 => {
                let Arg::Bytes(b) = arg else {
                    return Err(bad_arg());
                };
                let v = self
                    .arena
                    .bytes_span(offset_in(data, b), b.len(), op == Op::BYTEARRAY8);
                self.stack.push(v);
            }
            Op::NEXT_BUFFER => self.stack.push(Value::Buffer),
            Op::READONLY_BUFFER => {
                if self.stack.len() <= self.fence() {
                    fail!(MachineError::StackUnderflow);
                }
            }
            Op::EMPTY_TUPLE => {
                let id = match self.empty_tuple {
                    Some(id) if !self.arena.shape => id,
                    _ => {
                        let id = self.arena.new_node(0);
                        if !self.arena.shape {
                            self.empty_tuple = Some(id);
                        }
                        id
                    }
                };
                self.stack.push(Value::Tuple(id));
            }
            Op::TUPLE1 | Op::TUPLE2 | Op::TUPLE3 => {
                let n = match op {
                    Op::TUPLE1 => 1,
                    Op::TUPLE2 => 2,
                    _ => 3,
                };
                if self.stack.len() < self.fence() + n {
                    fail!(MachineError::StackUnderflow);
                }
                let start = self.stack.len() - n;
                let id = self.node_from(start, false);
                self.stack.push(Value::Tuple(id));
            }
            Op::TUPLE | Op::LIST | Op::FROZENSET => {
                let k = self.marker()?;
                let id = self.node_from(k, false);
                self.stack.push(match op {
                    Op::TUPLE => Value::Tuple(id),
                    Op::LIST => Value::List(id),
                    _ => Value::FrozenSet(id),
                });
            }
            Op::DICT => {
                let k = self.marker()?;
                if !(self.stack.len() - k).is_multiple_of(2) {
                    fail!(MachineError::OddItems("DICT"));
                }
                let id = self.node_from(k, true);
                self.stack.push(Value::Dict(id));
            }
            Op::EMPTY_LIST => {
                let id = self.arena.new_node(0);
                self.stack.push(Value::List(id));
            }
            Op::EMPTY_DICT => {
                let id = self.arena.new_node(0);
                self.stack.push(Value::Dict(id));
            }
            Op::EMPTY_SET => {
                let id = self.arena.new_node(0);
                self.stack.push(Value::Set(id));
            }
            Op::APPEND => {
                let x = self.stack.len().wrapping_sub(1);
                self.fill_at(x, pos, Method::Append)?;
            }
            Op::APPENDS => {
                let x = self.marker()?;
                self.fill_at(x, pos, Method::Extend)?;
            }
            Op::SETITEM => {
                let x = self.stack.len().wrapping_sub(2);
                self.fill_at(x, pos, Method::SetItem)?;
            }
            Op::SETITEMS => {
                let x = self.marker()?;
                self.fill_at(x, pos, Method::SetItem)?;
            }
            Op::ADDITEMS => {
                let x = self.marker()?;
                self.fill_at(x, pos, Method::Add)?;
            }
            Op::GET | Op::BINGET | Op::LONG_BINGET => {
                let Arg::Int(i) = arg else {
                    return Err(bad_arg());
                };
                let v = self
                    .memo
                    .get(i as u64)
                    .ok_or(MachineError::MemoMissing(i as u64))?;
                self.stack.push(v);
            }
            Op::PUT | Op::BINPUT | Op::LONG_BINPUT => {
                let Arg::Int(i) = arg else {
                    return Err(bad_arg());
                };
                if self.stack.len() <= self.fence() {
                    fail!(MachineError::StackUnderflow);
                }
                let v = *self.stack.last().unwrap_or(&Value::None);
                if i >= 0 && memo_bomb(i as u64, pos) && self.memo_bomb.is_none() {
                    // The table is allocated and cleared when the opcode runs, whatever
                    // breaks after it.
                    self.memo_bomb = Some((pos, i as u64));
                    self.first_effect.get_or_insert(pos);
                }
                self.memo.put(i as u64, v);
            }
            Op::MEMOIZE => {
                if self.stack.len() <= self.fence() {
                    fail!(MachineError::StackUnderflow);
                }
                let v = *self.stack.last().unwrap_or(&Value::None);
                let idx = self.memo.len;
                self.memo.put(idx, v);
            }
            Op::PROTO => {
                let Arg::Int(p) = arg else {
                    return Err(bad_arg());
                };
                if p > 5 {
                    fail!(MachineError::UnsupportedProtocol(p));
                }
                self.proto = p as u8;
            }
            Op::FRAME => {
                let Arg::U64(n) = arg else {
                    return Err(bad_arg());
                };
                if n > (data.len() - next) as u64 {
                    self.anomalies
                        .push((pos, "FRAME claims more bytes than the stream holds"));
                } else if self.frame_end != usize::MAX {
                    // Inside a frame: a file reader goes to its end for a frame past it.
                    self.divergence.file |= next + n as usize > self.frame_end;
                } else if n > 0 {
                    self.frame_end = next + n as usize;
                }
            }
            Op::GLOBAL => {
                let Arg::Pair(m, n) = arg else {
                    return Err(bad_arg());
                };
                // find_class is called (and fails) even for a name that cannot be imported.
                let v = self.global(pos, op, m.to_string(), n.to_string(), None, false);
                if !is_dotted_name(m) {
                    fail!(MachineError::NotImportable);
                }
                self.stack.push(v);
            }
            Op::STACK_GLOBAL => {
                let name = self.pop()?;
                let module = self.pop()?;
                if self.too_long(module) {
                    // No importable module path is that long (PATH_MAX): the import fails.
                    // Copying a memoised megabyte name at every STACK_GLOBAL was quadratic
                    // in time and memory, so keep a prefix for the report.
                    let m = self.text_prefix(module);
                    let n = self.text_prefix(name);
                    self.global(pos, op, m, n, None, false);
                    fail!(MachineError::NotImportable);
                }
                if self.too_long(name) {
                    // The module is imported (its top-level code runs) before the attribute
                    // lookup fails: that import is an effect and is judged.
                    let m = self.text_of(module).unwrap_or_else(|| "?".into());
                    let computed = !is_dotted_name(&m);
                    let n = self.text_prefix(name);
                    let v = self.global(pos, op, m, n, None, computed);
                    self.stack.push(v);
                    return Ok(None);
                }
                let v = match (self.text_of(module), self.text_of(name)) {
                    (Some(m), Some(n)) => {
                        if !is_dotted_name(&m) {
                            fail!(MachineError::NotImportable);
                        }
                        self.global(pos, op, m, n, None, false)
                    }
                    _ => {
                        let dynamic = |v: Value| matches!(v, Value::Call(_) | Value::Str(_));
                        if !dynamic(module) || !dynamic(name) {
                            fail!(MachineError::StackGlobalNotStr);
                        }
                        let m = self.text_of(module).unwrap_or_else(|| "?".into());
                        let n = self.text_of(name).unwrap_or_else(|| "?".into());
                        self.global(pos, op, m, n, None, true)
                    }
                };
                self.stack.push(v);
            }
            Op::INST => {
                let Arg::Pair(m, n) = arg else {
                    return Err(bad_arg());
                };
                // pickle._Unpickler calls find_class before it looks for the MARK (the C
                // unpickler after): `ios\nsystem\n` without a MARK imports os there.
                let cls = self.global(pos, op, m.to_string(), n.to_string(), None, false);
                if !is_dotted_name(m) {
                    fail!(MachineError::NotImportable);
                }
                let k = match self.marker() {
                    Ok(k) => k,
                    Err(e) => {
                        self.first_effect.get_or_insert(pos);
                        return Err(e);
                    }
                };
                let args = self.node_from(k, false);
                let v = self.call(pos, CallKind::Inst, cls, Value::Tuple(args), None)?;
                self.stack.push(v);
            }
            Op::OBJ => {
                let k = self.marker()?;
                if self.stack.len() <= k {
                    fail!(MachineError::StackUnderflow);
                }
                let cls = self.stack[k];
                let args = self.node_from(k + 1, false);
                self.stack.truncate(k);
                let v = self.call(pos, CallKind::Obj, cls, Value::Tuple(args), None)?;
                self.stack.push(v);
            }
            Op::EXT1 | Op::EXT2 | Op::EXT4 => {
                let Arg::Int(code) = arg else {
                    return Err(bad_arg());
                };
                if code <= 0 {
                    fail!(MachineError::BadExtCode);
                }
                let v = self.global(
                    pos,
                    op,
                    "?".into(),
                    format!("<extension code {code}>"),
                    Some(code),
                    false,
                );
                self.stack.push(v);
            }
            Op::REDUCE => {
                let args = self.pop()?;
                let f = self.pop()?;
                let v = self.call(pos, CallKind::Reduce, f, args, None)?;
                self.stack.push(v);
            }
            Op::NEWOBJ => {
                let args = self.pop()?;
                let cls = self.pop()?;
                let v = self.call(pos, CallKind::NewObj, cls, args, None)?;
                self.stack.push(v);
            }
            Op::NEWOBJ_EX => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                let cls = self.pop()?;
                let v = self.call(pos, CallKind::NewObjEx, cls, args, Some(kwargs))?;
                self.stack.push(v);
            }
            Op::BUILD => {
                let state = self.pop()?;
                if self.stack.len() <= self.fence() {
                    fail!(MachineError::StackUnderflow);
                }
                let target = *self.stack.last().unwrap_or(&Value::None);
                self.call(pos, CallKind::Build, target, state, None)?;
                if self.joblib {
                    if let Value::Call(c) = target {
                        if self.is_joblib_wrapper(c) {
                            return Ok(Some(Outcome::JoblibArray { next, wrapper: c }));
                        }
                    }
                }
            }
            Op::PERSID => {
                let Arg::Line(l) = arg else {
                    return Err(bad_arg());
                };
                let pid = self
                    .arena
                    .str_owned(String::from_utf8_lossy(l).into_owned());
                let v = self.call(pos, CallKind::Persistent, Value::None, pid, None)?;
                self.stack.push(v);
            }
            Op::BINPERSID => {
                let pid = self.pop()?;
                let v = self.call(pos, CallKind::Persistent, Value::None, pid, None)?;
                self.stack.push(v);
            }
        }
        Ok(None)
    }

    /// APPEND(S), SETITEM(S) and ADDITEMS as `do_append` / `do_setitems` / `load_additems` do
    /// them: the target at `x - 1`, the items above it. A plain container of the right kind
    /// takes the items; anything else gets a method call (`append`, `extend`,
    /// `__setitem__`, `add`) that the analysis judges.
    fn fill_at(&mut self, x: usize, pos: usize, method: Method) -> Result<(), MachineError> {
        let pairs = method == Method::SetItem;
        let len = self.stack.len();
        // The target must be above the fence: `](Na` is "unexpected MARK found" in CPython.
        if x > len || x <= self.fence() {
            fail!(MachineError::StackUnderflow);
        }
        if len == x {
            return Ok(());
        }
        if pairs && !(len - x).is_multiple_of(2) {
            fail!(MachineError::OddItems("SETITEMS"));
        }
        let target = self.stack[x - 1];
        let own = match (method, target) {
            (Method::SetItem, Value::Dict(id))
            | (Method::Add, Value::Set(id))
            | (Method::Append | Method::Extend, Value::List(id)) => Some(id),
            _ => None,
        };
        match own {
            Some(id) => self.fill_own(id, x, pairs),
            None => {
                let items = if pairs {
                    self.method_pairs(x)
                } else {
                    self.node_from(x, false)
                };
                let args = if pairs {
                    Value::Dict(items)
                } else {
                    Value::Tuple(items)
                };
                self.call(pos, CallKind::Method(method), target, args, None)?;
            }
        }
        Ok(())
    }

    /// The items above `x` go into the container node `id` (the target of a fill opcode
    /// that CPython fills in place).
    #[inline]
    fn fill_own(&mut self, id: NodeId, x: usize, pairs: bool) {
        if !self.arena.shape {
            let len = self.stack.len();
            let node = &mut self.arena.nodes[id as usize];
            reserve_items(node, len - x);
            if pairs {
                for kv in self.stack[x..len].chunks_exact(2) {
                    node.push_pair(kv[0], kv[1]);
                }
            } else {
                for v in &self.stack[x..len] {
                    node.push(*v);
                }
            }
        }
        self.stack.truncate(x);
    }

    fn is_joblib_wrapper(&self, c: CallId) -> bool {
        let call = &self.calls[c as usize];
        if let Value::Global(g) = call.callable {
            let g = &self.globals[g as usize];
            return g.module == "joblib.numpy_pickle" && g.name == "NumpyArrayWrapper";
        }
        false
    }

    /// Push a value produced outside the stream (joblib's array) after a `JoblibArray` pause.
    pub fn replace_top(&mut self, v: Value) {
        if let Some(t) = self.stack.last_mut() {
            *t = v;
        }
    }

    /// The stack, the mark positions and the memo's entry count (for the tests that compare
    /// the plain-data loop with the reader path).
    #[doc(hidden)]
    pub fn state(&self) -> (&[Value], &[usize], u64) {
        (&self.stack, &self.marks, self.memo.len)
    }

    /// Continue a paused run (the bytes before `at` were not opcodes).
    pub fn resume(&mut self, at: usize) -> Outcome {
        if at >= self.frame_end {
            self.frame_end = usize::MAX;
        }
        self.run(at)
    }

    /// A PUT or GET index too large for the C unpickler (`e`), which `int()` reads: under
    /// [`Unpickler::Python`] a memo key of its own, under C a divergence.
    #[cold]
    fn python_memo_index(
        &mut self,
        pos: usize,
        e: ReadError,
    ) -> Result<(reader::Instr<'a>, usize), ReadError> {
        let data = self.data;
        let rest = &data[pos + 1..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return Err(e);
        };
        let line = &rest[..nl];
        let digits: Vec<u8> = line
            .iter()
            .copied()
            .filter(|b| b.is_ascii_digit())
            .skip_while(|&b| b == b'0')
            .collect();
        if line.contains(&b'-') || digits.is_empty() || digits.len() > 4300 {
            return Err(e);
        }
        if self.unpickler == Unpickler::C {
            self.divergence.python.get_or_insert(pos);
            return Err(e);
        }
        let next = -1 - self.huge_memo.len() as i64;
        let key = *self.huge_memo.entry(digits).or_insert(next);
        let op = if data[pos] == Op::PUT as u8 {
            Op::PUT
        } else {
            Op::GET
        };
        let ins = reader::Instr {
            op,
            arg: Arg::Int(key),
        };
        Ok((ins, pos + 2 + nl))
    }

    /// A FLOAT line the C unpickler rejects (`e`) but `float()` reads: read so under
    /// [`Unpickler::Python`], noted as a divergence under C.
    #[cold]
    fn python_float(
        &mut self,
        pos: usize,
        e: ReadError,
    ) -> Result<(reader::Instr<'a>, usize), ReadError> {
        let data = self.data;
        if e == ReadError::BadArg("memo index too large")
            && matches!(data.get(pos), Some(&b) if b == Op::PUT as u8 || b == Op::GET as u8)
        {
            return self.python_memo_index(pos, e);
        }
        if !matches!(e, ReadError::BadArg(_)) || data.get(pos) != Some(&(Op::FLOAT as u8)) {
            return Err(e);
        }
        let rest = &data[pos + 1..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return Err(e);
        };
        let Some(v) = reader::parse_py_float(&rest[..nl]) else {
            return Err(e);
        };
        if self.unpickler == Unpickler::C {
            self.divergence.python.get_or_insert(pos);
            return Err(e);
        }
        let ins = reader::Instr {
            op: Op::FLOAT,
            arg: Arg::Float(v),
        };
        Ok((ins, pos + 2 + nl))
    }

    /// The keyword arguments of a NEWOBJ_EX call.
    pub fn kwargs_of(&self, c: CallId) -> Option<Value> {
        let i = self.kwargs.binary_search_by_key(&c, |&(id, _)| id).ok()?;
        Some(self.kwargs[i].1)
    }

    /// The tuple of a call's positional arguments, when it is a literal tuple.
    pub fn args_of(&self, v: Value) -> Option<&Node> {
        match v {
            Value::Tuple(n) => Some(&self.arena.nodes[n as usize]),
            _ => None,
        }
    }

    pub fn make_tuple(&mut self, items: &[Value]) -> Value {
        self.tuple_of(items)
    }
}

fn bad_arg() -> MachineError {
    MachineError::BadText("internal: argument of unexpected shape")
}

/// One allocation for the items a container is about to receive, not one per doubling.
#[inline]
fn reserve_items(node: &mut Node, incoming: usize) {
    let room = (crate::value::KEEP_ITEMS * 2).saturating_sub(node.items.len());
    node.items.reserve(incoming.min(room));
}

/// Where a borrowed slice starts inside the input.
#[inline]
fn offset_in(data: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - data.as_ptr() as usize
}

/// A module name `__import__` could accept: dotted identifiers.
pub fn is_dotted_name(m: &str) -> bool {
    !m.is_empty()
        && m.split('.').all(|seg| {
            let mut cs = seg.chars();
            match cs.next() {
                Some(c) if c == '_' || c.is_alphabetic() => {
                    cs.all(|c| c == '_' || c.is_alphanumeric())
                }
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_node_stays_small() {
        // A 6 KB bz2 of `)R` calls inflates to up to `max_calls` of these (docs/security.md).
        assert_eq!(std::mem::size_of::<CallNode>(), 48);
    }

    #[test]
    fn newobj_ex_keeps_its_kwargs() {
        // cls = builtins.object; object.__new__(object, *(), **{}) twice, then a REDUCE.
        let data = b"\x80\x04\x8c\x08builtins\x8c\x06object\x93\x94)}\x92h\x00)}\x92h\x00)R.";
        let mut m = Machine::new(data, Limits::default());
        assert!(matches!(m.run(0), Outcome::Stop { .. }));
        assert_eq!(m.calls.len(), 3);
        assert!(m.kwargs_of(0).is_some() && m.kwargs_of(1).is_some());
        assert_eq!(m.kwargs_of(2), None);
        assert!(matches!(m.kwargs_of(1), Some(Value::Dict(_))));
    }
}
