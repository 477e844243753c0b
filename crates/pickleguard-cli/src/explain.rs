//! `pickleguard explain FILE`: an annotated disassembly (position, opcode, argument, stack
//! effect in `pickletools` notation), a Python-like rendering of what loading would do, and
//! the findings marked on the lines they come from.
//!
//! The rendering replays the symbolic machine of the core ([`pickleguard::machine::Machine`]):
//! every import becomes `from module import name`, every call `_vN = f(args)`, BUILD
//! `_vN.__setstate__(state)`, persistent ids `persistent_load(pid)`. Nothing is executed.

use crate::cli::ExplainArgs;
use crate::output::finding_line;
use crate::scan::{load, FileResult};
use crate::term::{self, Style};
use crate::walk::{Source, STDIN};
use crate::{config, sarif, ExitStatus};
use pickleguard::internals::render;
use pickleguard::internals::Op;
use pickleguard::internals::{joblib_array_data, JoblibData};
use pickleguard::internals::{reader, Arg};
use pickleguard::internals::{CallId, GlobalId, StrId, Value};
use pickleguard::internals::{CallKind, Machine, MachineError, Outcome};
use pickleguard::{Finding, Limits, PickleStream, Policy, Report};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

/// `pickletools`' stack effect of an opcode: (stack before, stack after).
pub fn stack_effect(op: Op) -> (&'static str, &'static str) {
    match op {
        Op::INT => ("[]", "[int_or_bool]"),
        Op::BININT | Op::BININT1 | Op::BININT2 | Op::LONG | Op::LONG1 | Op::LONG4 => {
            ("[]", "[int]")
        }
        Op::STRING | Op::BINSTRING | Op::SHORT_BINSTRING => ("[]", "[bytes_or_str]"),
        Op::BINBYTES | Op::SHORT_BINBYTES | Op::BINBYTES8 => ("[]", "[bytes]"),
        Op::BYTEARRAY8 => ("[]", "[bytearray]"),
        Op::NEXT_BUFFER => ("[]", "[buffer]"),
        Op::READONLY_BUFFER => ("[buffer]", "[buffer]"),
        Op::NONE => ("[]", "[None]"),
        Op::NEWTRUE | Op::NEWFALSE => ("[]", "[bool]"),
        Op::UNICODE | Op::SHORT_BINUNICODE | Op::BINUNICODE | Op::BINUNICODE8 => ("[]", "[str]"),
        Op::FLOAT | Op::BINFLOAT => ("[]", "[float]"),
        Op::EMPTY_LIST => ("[]", "[list]"),
        Op::APPEND => ("[list, any]", "[list]"),
        Op::APPENDS => ("[list, mark, stackslice]", "[list]"),
        Op::LIST => ("[mark, stackslice]", "[list]"),
        Op::EMPTY_TUPLE => ("[]", "[tuple]"),
        Op::TUPLE => ("[mark, stackslice]", "[tuple]"),
        Op::TUPLE1 => ("[any]", "[tuple]"),
        Op::TUPLE2 => ("[any, any]", "[tuple]"),
        Op::TUPLE3 => ("[any, any, any]", "[tuple]"),
        Op::EMPTY_DICT => ("[]", "[dict]"),
        Op::DICT => ("[mark, stackslice]", "[dict]"),
        Op::SETITEM => ("[dict, any, any]", "[dict]"),
        Op::SETITEMS => ("[dict, mark, stackslice]", "[dict]"),
        Op::EMPTY_SET => ("[]", "[set]"),
        Op::ADDITEMS => ("[set, mark, stackslice]", "[set]"),
        Op::FROZENSET => ("[mark, stackslice]", "[frozenset]"),
        Op::POP => ("[any]", "[]"),
        Op::DUP => ("[any]", "[any, any]"),
        Op::MARK => ("[]", "[mark]"),
        Op::POP_MARK => ("[mark, stackslice]", "[]"),
        Op::GET | Op::BINGET | Op::LONG_BINGET => ("[]", "[any]"),
        Op::PUT | Op::BINPUT | Op::LONG_BINPUT => ("[]", "[]"),
        Op::MEMOIZE => ("[any]", "[any]"),
        Op::EXT1 | Op::EXT2 | Op::EXT4 | Op::GLOBAL => ("[]", "[any]"),
        Op::STACK_GLOBAL => ("[str, str]", "[any]"),
        Op::REDUCE | Op::BUILD | Op::NEWOBJ => ("[any, any]", "[any]"),
        Op::INST => ("[mark, stackslice]", "[any]"),
        Op::OBJ => ("[mark, any, stackslice]", "[any]"),
        Op::NEWOBJ_EX => ("[any, any, any]", "[any]"),
        Op::PROTO | Op::FRAME => ("[]", "[]"),
        Op::STOP => ("[any]", "[]"),
        Op::PERSID => ("[]", "[any]"),
        Op::BINPERSID => ("[any]", "[any]"),
    }
}

/// Longest rendering of one inline argument in the listing.
const ARG_WIDTH: usize = 40;
/// Longest rendering of a string or bytes literal in the Python-like lines.
const LITERAL_WIDTH: usize = 100;
/// Longest Python-like line.
const LINE_WIDTH: usize = 400;
const MAX_DEPTH: u32 = 8;

fn shorten(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut t: String = s.chars().take(width.saturating_sub(3)).collect();
    t.push_str("...");
    t
}

/// A Python `str` literal of at most `width` characters, written as findings write it.
fn py_str(s: &str, width: usize) -> String {
    let mut out = String::new();
    render::py_str(s, &mut out, width);
    out
}

/// A Python `bytes` literal of at most `width` bytes, written as findings write it, with the
/// whole length when it is cut.
fn py_bytes(b: &[u8], width: usize) -> String {
    let mut out = String::new();
    render::py_bytes(b, &mut out, width);
    if b.len() > width {
        let _ = write!(out, " ({} bytes)", b.len());
    }
    out
}

/// The inline argument of an opcode, as the listing shows it.
pub fn format_arg(op: Op, arg: &Arg<'_>) -> String {
    let s = match *arg {
        Arg::None => String::new(),
        Arg::Int(i) => i.to_string(),
        Arg::U64(u) => u.to_string(),
        Arg::Bool(b) => if b { "True" } else { "False" }.into(),
        Arg::LongBytes(b) => pickleguard::internals::le_to_decimal(b),
        Arg::LongText(t) => pickleguard::internals::text_to_decimal(t),
        Arg::Float(f) => {
            let mut s = String::new();
            render::py_float(f, &mut s);
            s
        }
        Arg::Bytes(b) => py_bytes(b, ARG_WIDTH),
        Arg::Utf8(s) => py_str(s, ARG_WIDTH),
        Arg::Wtf8(b) => py_str(&reader::wtf8_lossy(b), ARG_WIDTH),
        Arg::Line(l) => match op {
            Op::STRING => match reader::decode_string_line(l) {
                Ok(b) => py_bytes(&b, ARG_WIDTH),
                Err(_) => py_bytes(l, ARG_WIDTH),
            },
            Op::UNICODE => py_str(
                &reader::raw_unicode_escape_decode(l).unwrap_or_default(),
                ARG_WIDTH,
            ),
            _ => py_str(&String::from_utf8_lossy(l), ARG_WIDTH),
        },
        Arg::Pair(m, n) => format!("{m} {n}"),
    };
    shorten(&s, ARG_WIDTH + 20)
}

fn is_ident(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c == '_' || c.is_alphabetic())
        && cs.all(|c| c == '_' || c.is_alphanumeric())
}

/// Renders the machine's values with names for globals and call results.
struct Renderer<'m, 'a> {
    m: &'m Machine<'a>,
    /// Expression of each global.
    globals: Vec<String>,
    /// Variable of each call that produces a value.
    calls: Vec<Option<String>>,
}

/// `explain`'s style: globals and call results by their names in the listing.
impl render::Style for Renderer<'_, '_> {
    fn budget(&self) -> usize {
        LINE_WIDTH * 2
    }

    fn max_depth(&self) -> u32 {
        MAX_DEPTH
    }

    fn text(&self, m: &Machine<'_>, id: StrId, out: &mut String) {
        render::str_literal(m, id, out, LITERAL_WIDTH)
    }

    fn blob(&self, b: &[u8], out: &mut String) {
        out.push_str(&py_bytes(b, LITERAL_WIDTH))
    }

    fn more(&self, hidden: usize, out: &mut String) {
        let _ = write!(out, ", ... {hidden} more");
    }

    fn global(&self, _m: &Machine<'_>, g: GlobalId, out: &mut String) {
        match self.globals.get(g as usize) {
            Some(s) => out.push_str(s),
            None => out.push_str("<global>"),
        }
    }

    fn call(&self, _m: &Machine<'_>, c: CallId, out: &mut String, _depth: u32) {
        match self.calls.get(c as usize) {
            Some(Some(s)) => out.push_str(s),
            _ => out.push_str("<result>"),
        }
    }
}

impl Renderer<'_, '_> {
    fn value(&self, v: Value, out: &mut String, depth: u32) {
        render::write_value(self.m, v, out, depth, self)
    }

    fn expr(&self, v: Value) -> String {
        let mut s = String::new();
        self.value(v, &mut s, 0);
        s
    }

    /// `(a, b)` for a literal tuple of arguments, `(*x)` otherwise.
    fn args(&self, args: Value, first: Option<&str>) -> String {
        let mut out = String::from("(");
        let mut n = 0;
        if let Some(f) = first {
            out.push_str(f);
            n += 1;
        }
        match args {
            Value::Tuple(id) => {
                if let Some(node) = self.m.arena.nodes.get(id as usize) {
                    for a in &node.items {
                        if n > 0 {
                            out.push_str(", ");
                        }
                        self.value(*a, &mut out, 1);
                        n += 1;
                    }
                    if node.len as usize > node.items.len() {
                        out.push_str(", ...");
                    }
                }
            }
            other => {
                if n > 0 {
                    out.push_str(", ");
                }
                out.push('*');
                self.value(other, &mut out, 1);
            }
        }
        out.push(')');
        out
    }

    /// The items of a literal tuple or list.
    fn items(&self, v: Value) -> Vec<String> {
        match v.node().and_then(|n| self.m.arena.nodes.get(n as usize)) {
            Some(node) => {
                let mut v: Vec<String> = node.items.iter().map(|x| self.expr(*x)).collect();
                if node.len as usize > node.items.len() {
                    v.push("...".into());
                }
                v
            }
            None => vec![format!("*{}", self.expr(v))],
        }
    }
}

/// One line of the Python-like rendering.
struct Line {
    pos: u64,
    text: String,
}

/// Bind every global of the machine to a name and produce the import lines.
fn bind_globals(m: &Machine<'_>) -> (Vec<String>, Vec<(u64, String)>) {
    let mut exprs = Vec::with_capacity(m.globals.len());
    let mut lines = Vec::with_capacity(m.globals.len());
    // (module, first segment) -> bound local name; names taken; next suffix per first segment.
    let mut bound: HashMap<(&str, &str), String> = HashMap::new();
    let mut taken: HashSet<String> = HashSet::new();
    let mut suffix: HashMap<&str, usize> = HashMap::new();
    for (i, g) in m.globals.iter().enumerate() {
        if let Some(code) = g.ext {
            let var = format!("_ext{code}");
            lines.push((
                g.pos,
                format!("{var} = find_class(*copyreg._inverted_registry[{code}])  # extension code {code}"),
            ));
            exprs.push(var);
            continue;
        }
        if g.computed {
            let var = format!("_g{i}");
            let part = |s: &str| {
                if s == "?" {
                    "<computed>".to_string()
                } else {
                    py_str(s, 60)
                }
            };
            lines.push((
                g.pos,
                format!(
                    "{var} = find_class({}, {})  # module and name computed while loading",
                    part(&g.module),
                    part(&g.name)
                ),
            ));
            exprs.push(var);
            continue;
        }
        let segs: Vec<&str> = g.name.split('.').collect();
        if !segs.iter().all(|s| is_ident(s)) {
            let var = format!("_g{i}");
            lines.push((
                g.pos,
                format!(
                    "{var} = find_class({}, {})",
                    py_str(&g.module, 60),
                    py_str(&g.name, 60)
                ),
            ));
            exprs.push(var);
            continue;
        }
        let first = segs[0];
        let local = match bound.get(&(g.module.as_str(), first)) {
            Some(n) => n.clone(),
            None => {
                let mut name = first.to_string();
                let k = suffix.entry(first).or_insert(2);
                while taken.contains(&name) {
                    name = format!("{first}_{k}");
                    *k += 1;
                }
                taken.insert(name.clone());
                bound.insert((g.module.as_str(), first), name.clone());
                name
            }
        };
        let import = if local == first {
            format!("from {} import {first}", g.module)
        } else {
            format!("from {} import {first} as {local}", g.module)
        };
        lines.push((g.pos, import));
        let mut expr = local;
        for s in &segs[1..] {
            expr.push('.');
            expr.push_str(s);
        }
        exprs.push(expr);
    }
    (exprs, lines)
}

/// The Python-like lines of one pickle run; its call results are named `{prefix}_vN`.
fn render_lines(m: &Machine<'_>, stop: Option<u64>, prefix: &str) -> Vec<Line> {
    let (globals, global_lines) = bind_globals(m);
    let mut calls = Vec::with_capacity(m.calls.len());
    let mut k = 0;
    for c in &m.calls {
        let produces = !matches!(c.kind, CallKind::Build | CallKind::Method(_));
        calls.push(produces.then(|| {
            k += 1;
            format!("{prefix}_v{}", k - 1)
        }));
    }
    let r = Renderer { m, globals, calls };
    let mut call_lines = Vec::with_capacity(m.calls.len());
    for (i, c) in m.calls.iter().enumerate() {
        let var = r.calls[i].clone().unwrap_or_default();
        let f = r.expr(c.callable);
        let text = match c.kind {
            CallKind::Reduce | CallKind::Inst | CallKind::Obj => {
                format!("{var} = {f}{}", r.args(c.args, None))
            }
            CallKind::NewObj => format!("{var} = {f}.__new__{}", r.args(c.args, Some(&f))),
            CallKind::NewObjEx => {
                let mut a = r.args(c.args, Some(&f));
                if let Some(kw) = m.kwargs_of(i as CallId) {
                    a.pop();
                    let _ = write!(a, ", **{})", r.expr(kw));
                }
                format!("{var} = {f}.__new__{a}")
            }
            CallKind::Build => {
                let state = r.expr(c.args);
                // pickle's default `__setstate__`: a dict of attributes, or a pair
                // (dict or None, dict of slots).
                let attr = match c.args {
                    Value::Dict(_) => true,
                    Value::Tuple(id) => m.arena.nodes.get(id as usize).is_some_and(|n| {
                        n.len == 2
                            && n.items.len() == 2
                            && matches!(n.items[0], Value::Dict(_) | Value::None)
                            && matches!(n.items[1], Value::Dict(_) | Value::None)
                    }),
                    _ => false,
                };
                if attr {
                    format!("{f}.__setstate__({state})  # BUILD: without __setstate__, the items become attributes")
                } else {
                    format!("{f}.__setstate__({state})  # BUILD")
                }
            }
            CallKind::Method(method) => match method.name() {
                "__setitem__" => {
                    let items = r.items(c.args);
                    let mut parts = Vec::new();
                    for pair in items.chunks(2) {
                        match pair {
                            [k, v] => parts.push(format!("{f}[{k}] = {v}")),
                            [x] => parts.push(format!("{f}.__setitem__({x})")),
                            _ => {}
                        }
                    }
                    parts.join("; ")
                }
                "append" | "add" => r
                    .items(c.args)
                    .iter()
                    .map(|x| format!("{f}.{}({x})", method.name()))
                    .collect::<Vec<_>>()
                    .join("; "),
                _ => format!("{f}.{}([{}])", method.name(), r.items(c.args).join(", ")),
            },
            CallKind::Persistent => format!("{var} = persistent_load({})", r.expr(c.args)),
        };
        call_lines.push((c.pos, text));
    }
    // Merge by position; at one position, the import comes before the call (INST).
    let mut lines: Vec<Line> = Vec::with_capacity(global_lines.len() + call_lines.len() + 1);
    let (mut gi, mut ci) = (0, 0);
    while gi < global_lines.len() || ci < call_lines.len() {
        let take_global = match (global_lines.get(gi), call_lines.get(ci)) {
            (Some(g), Some(c)) => g.0 <= c.0,
            (Some(_), None) => true,
            _ => false,
        };
        let (pos, text) = if take_global {
            gi += 1;
            global_lines[gi - 1].clone()
        } else {
            ci += 1;
            call_lines[ci - 1].clone()
        };
        lines.push(Line {
            pos,
            text: shorten(&text, LINE_WIDTH),
        });
    }
    if let (Some(pos), Some(v)) = (stop, m.result) {
        lines.push(Line {
            pos,
            text: shorten(&format!("return {}", r.expr(v)), LINE_WIDTH),
        });
    }
    lines
}

/// The marks of the findings at `pos`; `findings` is sorted by position.
fn marks_at(findings: &[&Finding], pos: u64, style: Style, prefix: &str) -> String {
    let mut s = String::new();
    let from = findings.partition_point(|f| f.position < pos);
    for f in findings[from..].iter().take_while(|f| f.position == pos) {
        let _ = write!(
            s,
            "{}<- {} {}",
            if s.is_empty() { prefix } else { " " },
            style.severity(f.severity),
            f.kind.as_str()
        );
    }
    s
}

/// Explain one raw pickle stream (one or more pickles back to back).
pub fn explain_stream(
    data: &[u8],
    findings: &[&Finding],
    limits: &Limits,
    disassembly: bool,
    style: Style,
    out: &mut String,
) {
    let mut sorted: Vec<&Finding> = findings.to_vec();
    sorted.sort_by_key(|f| f.position);
    let mut m = Machine::new(data, limits.clone());
    m.joblib = true;
    let mut start = 0usize;
    let mut index = 0u64;
    while start < data.len() {
        m.reset();
        // joblib reads array data out of the stream between opcodes: the disassembly is cut
        // into the stretches the unpickler reads, each followed by what joblib reads there.
        let mut segments: Vec<(usize, usize, String)> = Vec::new();
        // Each object array's own pickle: where it starts, its STOP, its run.
        let mut object_arrays: Vec<(usize, u64, Machine)> = Vec::new();
        let mut seg_from = start;
        let mut outcome = m.run(start);
        while let Outcome::JoblibArray { next, wrapper } = outcome {
            let broken = |msg: &'static str| Outcome::Error {
                pos: next,
                err: MachineError::BadText(msg),
            };
            outcome = match joblib_array_data(&m, wrapper, next) {
                Ok(JoblibData::Numeric { end }) => {
                    segments.push((
                        seg_from,
                        next,
                        format!(
                            "bytes {next}..{end}: joblib array data ({} bytes), read by joblib as numbers, not run as opcodes",
                            end - next
                        ),
                    ));
                    seg_from = end;
                    m.resume(end)
                }
                Ok(JoblibData::Objects) => {
                    let mut inner = Machine::new(data, limits.clone());
                    inner.joblib = true;
                    match inner.run(next) {
                        Outcome::Stop { pos, end } => {
                            object_arrays.push((next, pos as u64, inner));
                            segments.push((
                                seg_from,
                                next,
                                format!("byte {next}: a joblib object array: joblib unpickles the pickle that follows"),
                            ));
                            segments.push((next, end, "end of the object array's pickle".into()));
                            seg_from = end;
                            m.resume(end)
                        }
                        _ => broken("joblib object array pickle is broken"),
                    }
                }
                Err(msg) => broken(msg),
            };
        }
        let (stop_pos, end, stopped): (Option<u64>, Option<usize>, Option<String>) = match &outcome
        {
            Outcome::Stop { pos, end } => (Some(*pos as u64), Some(*end), None),
            Outcome::Error { pos, err } => (
                None,
                None,
                Some(format!(
                    "loading stops here with an error: {err} (byte {pos})"
                )),
            ),
            Outcome::Limit { pos, what } => (
                None,
                None,
                Some(format!(
                    "the analysis stops here: {what} limit (byte {pos})"
                )),
            ),
            // Followed above; a pause can only end in one of the other outcomes.
            Outcome::JoblibArray { next, .. } => {
                (None, None, Some(format!("joblib array at byte {next}")))
            }
            // Only shape-only runs pause here; explain always runs in full.
            Outcome::NeedsGraph { pos } => {
                (None, None, Some(format!("incomplete run at byte {pos}")))
            }
        };
        let break_pos = match &outcome {
            Outcome::Error { pos, .. } | Outcome::Limit { pos, .. } => Some(*pos),
            Outcome::JoblibArray { next, .. } => Some(*next),
            Outcome::NeedsGraph { pos } => Some(*pos),
            Outcome::Stop { .. } => None,
        };
        if index > 0 && m.first_effect.is_none() && end.is_none() {
            let _ = writeln!(
                out,
                "\n{} bytes after the last pickle (from byte {start}) are not a pickle: no loader runs them.",
                data.len() - start
            );
            break;
        }
        let _ = writeln!(
            out,
            "\n{}",
            style.bold(&format!(
                "pickle {} at byte {start} (protocol {})",
                index + 1,
                m.proto
            ))
        );
        let limit_end = end.or(break_pos.map(|p| p + 1)).unwrap_or(data.len());
        let lo = sorted.partition_point(|f| (f.position as usize) < start);
        let hi = sorted.partition_point(|f| (f.position as usize) < limit_end.max(start + 1));
        let in_range = &sorted[lo..hi.max(lo)];
        if disassembly {
            for (from, until, note) in &segments {
                disassemble(data, *from, Some(*until), None, in_range, style, out);
                let _ = writeln!(out, "  {}", style.dim(&format!("({note})")));
            }
            disassemble(data, seg_from, None, break_pos, in_range, style, out);
            if let Some(s) = &stopped {
                let _ = writeln!(out, "  {}", style.dim(&format!("({s})")));
            }
        }
        let _ = writeln!(out, "\n  {}", style.bold("What loading would do:"));
        let lines = render_lines(&m, stop_pos, "");
        if lines.is_empty() && object_arrays.is_empty() {
            let _ = writeln!(out, "  {}", style.dim("(nothing is imported or called)"));
        }
        // Each object array's block goes where joblib loads it, among the outer lines.
        let mut rest = &lines[..];
        // Each block names its results apart (`_a1_v0`), so they never read as the outer ones.
        for (n, (at, stop, inner)) in object_arrays.iter().enumerate() {
            let before = rest.partition_point(|l| l.pos < *at as u64);
            write_lines(&rest[..before], in_range, style, out);
            rest = &rest[before..];
            let lines = render_lines(inner, Some(*stop), &format!("_a{}", n + 1));
            let _ = writeln!(
                out,
                "  {}",
                style.dim(&format!(
                    "# joblib object array at byte {at}: its own pickle, loaded while the array is read"
                ))
            );
            if lines.is_empty() {
                let _ = writeln!(out, "  {}", style.dim("  (nothing is imported or called)"));
            }
            write_lines(&lines, in_range, style, out);
            let _ = writeln!(out, "  {}", style.dim("# end of the object array"));
        }
        write_lines(rest, in_range, style, out);
        if let Some(s) = &stopped {
            if m.first_effect.is_none() && index == 0 && matches!(outcome, Outcome::Error { .. }) {
                let _ = writeln!(
                    out,
                    "  {}",
                    style.dim(
                        "(not a pickle: it breaks before anything could be imported or called)"
                    )
                );
            } else {
                let _ = writeln!(out, "  {}", style.dim(&format!("# {s}")));
            }
        }
        match end {
            Some(e) if e < data.len() => {
                start = e;
                index += 1;
            }
            _ => break,
        }
    }
}

/// The lines of "What loading would do", each with the marks of the findings at its position.
fn write_lines(lines: &[Line], findings: &[&Finding], style: Style, out: &mut String) {
    let width = lines
        .iter()
        .map(|l| l.text.chars().count())
        .max()
        .unwrap_or(0)
        .min(60);
    for l in lines {
        let marks = marks_at(findings, l.pos, style, "  # ");
        let pad = if marks.is_empty() {
            String::new()
        } else {
            " ".repeat(width.saturating_sub(l.text.chars().count()))
        };
        let _ = writeln!(out, "  {:>7}  {}{pad}{marks}", l.pos, l.text);
    }
}

/// Disassemble from `start` to the pickle's STOP, or up to `until` (exclusive) when given, or
/// to the instruction at `break_pos` where the machine stopped.
fn disassemble(
    data: &[u8],
    start: usize,
    until: Option<usize>,
    break_pos: Option<usize>,
    findings: &[&Finding],
    style: Style,
    out: &mut String,
) {
    let data = &data[..until.unwrap_or(data.len()).min(data.len())];
    if until.is_some() && start >= data.len() {
        return;
    }
    let stops = |op: Op| op == Op::STOP && until.is_none();
    // The argument column is as wide as the widest argument of this pickle (first pass).
    let mut arg_width = "argument".len();
    let mut p = start;
    while let Ok((ins, next)) = reader::read_instr(data, p) {
        arg_width = arg_width.max(format_arg(ins.op, &ins.arg).chars().count());
        if stops(ins.op) || break_pos.is_some_and(|b| next > b) || next >= data.len() {
            break;
        }
        p = next;
    }
    let arg_width = arg_width + 2;
    let _ = writeln!(
        out,
        "\n  {:>7}  {:<22}{:<width$}  stack effect",
        "pos",
        "opcode",
        "argument",
        width = arg_width
    );
    let mut pos = start;
    let mut depth: usize = 0;
    loop {
        match reader::read_instr(data, pos) {
            Ok((ins, next)) => {
                let (before, after) = stack_effect(ins.op);
                if before.contains("mark") {
                    depth = depth.saturating_sub(1);
                }
                let indent = "  ".repeat(depth.min(6));
                let name = format!("{indent}{}", ins.op.name());
                let arg = format_arg(ins.op, &ins.arg);
                let marks = marks_at(findings, pos as u64, style, "  ");
                let _ = writeln!(
                    out,
                    "  {:>7}  {:<22}{:<width$}  {before} -> {after}{marks}",
                    pos,
                    name,
                    arg,
                    width = arg_width
                );
                if ins.op == Op::MARK {
                    depth += 1;
                }
                if stops(ins.op) || break_pos == Some(pos) {
                    break;
                }
                if break_pos.is_some_and(|b| next > b) || (until.is_some() && next >= data.len()) {
                    break;
                }
                pos = next;
            }
            Err(e) => {
                let marks = marks_at(findings, pos as u64, style, "  ");
                let _ = writeln!(
                    out,
                    "  {:>7}  {}{marks}",
                    pos,
                    style.red(&format!("<cannot read: {e}>"))
                );
                break;
            }
        }
    }
}

/// Whether a member label (relative to a stream) names a place in that same stream: another
/// pickle of it, a joblib object array's pickle inside it, or its plain-pickle reading.
fn same_stream(rel: &str) -> bool {
    rel.split('/').all(|part| {
        let object_array = part
            .strip_prefix("joblib object array at byte ")
            .is_some_and(sarif::digits);
        sarif::later_pickle(part) || object_array || part == "read as a plain pickle"
    })
}

/// The findings whose positions are offsets in the stream recorded as `member`.
fn findings_of<'r>(report: &'r Report, member: Option<&str>) -> Vec<&'r Finding> {
    report
        .findings
        .iter()
        .filter(|f| {
            let rel = match (f.member.as_deref(), member) {
                (None, None) => return true,
                (Some(fm), None) => fm,
                (None, Some(_)) => return false,
                (Some(fm), Some(sm)) if fm == sm => return true,
                (Some(fm), Some(sm)) => match fm.strip_prefix(sm).and_then(|r| r.strip_prefix('/'))
                {
                    Some(rel) => rel,
                    None => return false,
                },
            };
            same_stream(rel)
        })
        .collect()
}

/// What explaining the pickle streams of one scanned file needs.
struct Streams<'a> {
    file: &'a [u8],
    report: &'a Report,
    policy: &'a Policy,
    disassembly: bool,
    style: Style,
}

impl Streams<'_> {
    /// A container: explain each pickle stream found in it, under the member path its
    /// findings carry.
    fn container(&self, format: &str, streams: &[PickleStream], out: &mut String) {
        let pickles: Vec<&PickleStream> = streams
            .iter()
            .filter(|s| s.format != "not_pickle")
            .collect();
        let others = streams.len() - pickles.len();
        let _ = writeln!(
            out,
            "\n{}",
            self.style.dim(&format!(
                "This is {} {format} container with {} pickle stream{} inside{}: each is explained below.",
                article(format),
                pickles.len(),
                if pickles.len() == 1 { "" } else { "s" },
                if others > 0 {
                    format!(" ({others} other member{} not a pickle)", if others == 1 { " is" } else { "s are" })
                } else {
                    String::new()
                }
            ))
        );
        self.each(&pickles, out);
    }

    fn each(&self, pickles: &[&PickleStream], out: &mut String) {
        let style = self.style;
        for s in pickles {
            let name = s.member.as_deref().unwrap_or("(the file itself)");
            let _ = writeln!(
                out,
                "\n{}",
                style.bold(&format!("== {name} ({}, {} bytes)", s.format, s.len))
            );
            match s.bytes(self.file) {
                Some(d) => {
                    let fs = findings_of(self.report, s.member.as_deref());
                    explain_stream(d, &fs, &self.policy.limits, self.disassembly, style, out);
                }
                None => {
                    let _ = writeln!(
                        out,
                        "  {}",
                        style.dim("(too large to keep for explain: its findings are listed below)")
                    );
                }
            }
        }
    }
}

/// Explain a whole file: its verdict, each pickle, the findings.
pub fn explain_bytes(
    name: &str,
    data: &[u8],
    policy: &Policy,
    disassembly: bool,
    style: Style,
) -> (String, Report) {
    let (report, streams) = pickleguard::scan_with_streams(data, policy);
    let mut out = String::new();
    let result = FileResult {
        path: name.to_string(),
        report: report.clone(),
        error: None,
        bytes: data.len() as u64,
        hub: None,
    };
    let verdict = if report.is_safe {
        style.green("SAFE")
    } else {
        style.red("UNSAFE")
    };
    let level = if report.risk_level == pickleguard::Severity::Safe {
        String::new()
    } else {
        format!("{}, ", style.severity(report.risk_level))
    };
    let _ = writeln!(
        out,
        "{}: {verdict} ({level}{}, {} bytes; mode {}, fail on {})",
        style.bold(&result.path),
        report.format,
        data.len(),
        policy.mode.as_str(),
        policy.threshold.as_str()
    );
    let in_file = findings_of(&report, None);
    let ctx = Streams {
        file: data,
        report: &report,
        policy,
        disassembly,
        style,
    };
    match report.format.as_str() {
        "raw_pickle" | "joblib" | "not_pickle" => {
            if report.format == "not_pickle" {
                let _ = writeln!(
                    out,
                    "{}",
                    style.dim(&format!(
                        "Not a pickle: {}",
                        report.stopped_by.as_deref().unwrap_or("no pickle opcodes")
                    ))
                );
            } else {
                explain_stream(data, &in_file, &policy.limits, disassembly, style, &mut out);
                // Pickles embedded in this one (bytes handed to pickle.loads and the like).
                let nested: Vec<&PickleStream> = streams
                    .iter()
                    .filter(|s| s.member.is_some() && s.format != "not_pickle")
                    .collect();
                if !nested.is_empty() {
                    let _ = writeln!(
                        out,
                        "\n{}",
                        style.dim(&format!(
                            "{} embedded pickle stream{} (analysed as loading would unpickle them):",
                            nested.len(),
                            if nested.len() == 1 { "" } else { "s" }
                        ))
                    );
                    ctx.each(&nested, &mut out);
                }
            }
        }
        other => ctx.container(other, &streams, &mut out),
    }
    let _ = writeln!(out, "\n{}", style.bold("Findings:"));
    if report.findings.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for f in &report.findings {
        out.push_str(&finding_line(f, style));
        out.push('\n');
    }
    (out, report)
}

/// `pickleguard explain`.
pub fn command(a: &ExplainArgs) -> Result<ExitStatus, String> {
    let eff = config::build(&a.policy, None)?;
    let (source, name) = if a.path.as_os_str() == "-" {
        (Source::Stream(None), STDIN.to_string())
    } else {
        let meta = std::fs::metadata(&a.path).map_err(|e| format!("{}: {e}", a.path.display()))?;
        if meta.is_dir() {
            return Err(format!(
                "{}: is a directory (explain takes one file; use scan for trees)",
                a.path.display()
            ));
        }
        let src = if meta.is_file() {
            Source::File(a.path.clone())
        } else {
            Source::Stream(Some(a.path.clone()))
        };
        (src, a.path.display().to_string())
    };
    let data = load(&source).map_err(|e| format!("{name}: {e}"))?;
    let style = Style {
        on: term::use_color(a.color, false),
    };
    let (text, report) = explain_bytes(&name, &data, &eff.policy, !a.no_disassembly, style);
    term::write_stdout(text.as_bytes())?;
    Ok(ExitStatus::safe_if(
        report.is_safe || eff.policy.mode == pickleguard::Mode::Audit,
    ))
}

/// "a" or "an" before a format name ("an unscannable container", "a pytorch_zip container").
fn article(word: &str) -> &'static str {
    match word.bytes().next() {
        Some(b'a' | b'e' | b'i' | b'o' | b'u') => "an",
        _ => "a",
    }
}
