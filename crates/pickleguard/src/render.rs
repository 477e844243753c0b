//! Python-like rendering of symbolic values and calls, for findings and `explain`.

use crate::machine::{CallKind, Machine};
use crate::opcodes::Op;
use crate::reader::{self, Arg};
use crate::value::{CallId, GlobalId, StrData, StrId, Value};
use std::borrow::Cow;
use std::fmt::Write;

/// Longest rendering of one argument.
pub const ARG_WIDTH: usize = 120;
const MAX_DEPTH: u32 = 6;

pub fn render(m: &Machine<'_>, v: Value) -> String {
    let mut out = String::new();
    write_value(m, v, &mut out, 0, &Finding);
    shorten(out, ARG_WIDTH)
}

pub fn shorten(mut s: String, width: usize) -> String {
    if s.chars().count() > width {
        let cut: String = s.chars().take(width.saturating_sub(3)).collect();
        s = cut + "...";
    }
    s
}

/// The name of a global as the stream wrote it.
pub fn global_name(m: &Machine<'_>, g: u32) -> String {
    let g = &m.globals[g as usize];
    if g.ext.is_some() {
        g.name.clone()
    } else {
        format!("{}.{}", g.module, g.name)
    }
}

/// Each positional argument of a call, rendered.
pub fn render_args(m: &Machine<'_>, args: Value) -> Vec<String> {
    match args {
        Value::Tuple(n) => {
            let node = &m.arena.nodes[n as usize];
            let mut v: Vec<String> = node.items.iter().map(|a| render(m, *a)).collect();
            if node.len as usize > node.items.len() {
                v.push(format!("... {} more", node.len as usize - node.items.len()));
            }
            v
        }
        other => vec![format!("*{}", render(m, other))],
    }
}

/// A Python `str` literal of at most `budget` characters (then `...`): the one way a string
/// literal is written, in findings and in `explain`. Control characters (C0, DEL, C1) are
/// escaped, so what a scanned file holds never reaches a terminal raw.
pub fn py_str(s: &str, out: &mut String, budget: usize) {
    out.push('\'');
    for (i, c) in s.chars().enumerate() {
        if i >= budget {
            out.push_str("...");
            break;
        }
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // C0 and C1 controls and DEL, as Python's repr writes them: a scanned string
            // must not reach a terminal as a control sequence (U+009B is a CSI).
            c if (c as u32) < 0x20 || ('\u{7f}'..='\u{9f}').contains(&c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// A Python `bytes` literal of at most `budget` bytes (then `...`): the one way a bytes
/// literal is written, in findings and in `explain`.
pub fn py_bytes(b: &[u8], out: &mut String, budget: usize) {
    out.push_str("b'");
    for (i, &c) in b.iter().enumerate() {
        if i >= budget {
            out.push_str("...");
            break;
        }
        match c {
            b'\'' => out.push_str("\\'"),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            0x20..=0x7e => out.push(c as char),
            _ => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push('\'');
}

/// The string `id` as a literal of at most `budget` characters ([`py_str`]), decoding only
/// what is written.
pub fn str_literal(m: &Machine<'_>, id: StrId, out: &mut String, budget: usize) {
    py_str(&str_prefix(m, id, budget), out, budget)
}

/// At least `chars + 1` characters of a string (all of a shorter one), without decoding the
/// rest: a 1 MB literal rendered in 100k findings must not be validated 100k times.
fn str_prefix<'d>(m: &'d Machine<'_>, id: u32, chars: usize) -> Cow<'d, str> {
    match &m.arena.strs[id as usize] {
        StrData::Span(s, l) if *l > chars * 4 + 4 => {
            let b = &m.data[*s..*s + chars * 4 + 4];
            match std::str::from_utf8(b) {
                Ok(t) => Cow::Borrowed(t),
                // Cut inside a character: keep the whole ones.
                Err(e) if e.error_len().is_none() => {
                    Cow::Owned(String::from_utf8_lossy(&b[..e.valid_up_to()]).into_owned())
                }
                Err(_) => Cow::Owned(crate::reader::wtf8_lossy(b)),
            }
        }
        _ => m.arena.text(m.data, id),
    }
}

/// What differs between renderings of the same values: how literals, the items a container
/// did not keep, globals and call results are written, and how much is written. Findings use
/// the finding style (globals by name, calls as expressions); `explain` names globals and call
/// results after its listing.
pub trait Style {
    /// Output length after which a container stops and writes `...`.
    fn budget(&self) -> usize;
    /// Nesting depth at which a container or call is written as `...`.
    fn max_depth(&self) -> u32;
    fn text(&self, m: &Machine<'_>, id: StrId, out: &mut String);
    fn blob(&self, b: &[u8], out: &mut String);
    /// After the kept items of a container that holds `hidden` more.
    fn more(&self, hidden: usize, out: &mut String);
    fn global(&self, m: &Machine<'_>, g: GlobalId, out: &mut String);
    fn call(&self, m: &Machine<'_>, c: CallId, out: &mut String, depth: u32);
}

/// A float as Python's `repr` writes it.
pub fn py_float(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("nan")
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "inf" } else { "-inf" })
    } else {
        let _ = write!(out, "{f:?}");
    }
}

/// A value as Python source, in a style.
pub fn write_value<S: Style>(m: &Machine<'_>, v: Value, out: &mut String, depth: u32, s: &S) {
    if out.len() > s.budget() {
        out.push_str("...");
        return;
    }
    match v {
        Value::None => out.push_str("None"),
        Value::Bool(b) => out.push_str(if b { "True" } else { "False" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::BigInt => out.push_str("<big int>"),
        Value::Float(f) => py_float(f, out),
        Value::Str(id) => s.text(m, id, out),
        Value::Bytes(id) => s.blob(m.arena.blob(m.data, id), out),
        Value::ByteArray(id) => {
            out.push_str("bytearray(");
            s.blob(m.arena.blob(m.data, id), out);
            out.push(')');
        }
        Value::Buffer => out.push_str("<out-of-band buffer>"),
        Value::Global(g) => s.global(m, g, out),
        Value::Call(c) => s.call(m, c, out, depth),
        Value::Tuple(_) | Value::List(_) | Value::Dict(_) | Value::Set(_) | Value::FrozenSet(_) => {
            if depth >= s.max_depth() {
                out.push_str("...");
                return;
            }
            let Some(node) = v.node().and_then(|n| m.arena.nodes.get(n as usize)) else {
                out.push_str("...");
                return;
            };
            let (open, close) = match v {
                Value::Tuple(_) => ("(", ")"),
                Value::List(_) => ("[", "]"),
                Value::Dict(_) => ("{", "}"),
                Value::Set(_) if node.len == 0 => ("set(", ")"),
                Value::Set(_) => ("{", "}"),
                _ => ("frozenset({", "})"),
            };
            out.push_str(open);
            let pairs = matches!(v, Value::Dict(_));
            let step = if pairs { 2 } else { 1 };
            let mut i = 0;
            while i + step <= node.items.len() {
                if i > 0 {
                    out.push_str(", ");
                }
                if out.len() > s.budget() {
                    out.push_str("...");
                    break;
                }
                write_value(m, node.items[i], out, depth + 1, s);
                if pairs {
                    out.push_str(": ");
                    write_value(m, node.items[i + 1], out, depth + 1, s);
                }
                i += step;
            }
            if (node.len as usize) * step > node.items.len() {
                s.more(node.len as usize - node.items.len() / step, out);
            }
            if matches!(v, Value::Tuple(_)) && node.len == 1 {
                out.push(',');
            }
            out.push_str(close);
        }
    }
}

/// Findings' style: literals cut at [`ARG_WIDTH`], globals by name, calls as expressions.
struct Finding;

impl Style for Finding {
    fn budget(&self) -> usize {
        ARG_WIDTH * 2
    }

    fn max_depth(&self) -> u32 {
        MAX_DEPTH
    }

    fn text(&self, m: &Machine<'_>, id: StrId, out: &mut String) {
        str_literal(m, id, out, ARG_WIDTH)
    }

    fn blob(&self, b: &[u8], out: &mut String) {
        py_bytes(b, out, ARG_WIDTH)
    }

    fn more(&self, _hidden: usize, out: &mut String) {
        out.push_str(", ...");
    }

    fn global(&self, m: &Machine<'_>, g: GlobalId, out: &mut String) {
        out.push_str(&global_name(m, g))
    }

    fn call(&self, m: &Machine<'_>, c: CallId, out: &mut String, depth: u32) {
        if depth >= MAX_DEPTH {
            out.push_str("...");
            return;
        }
        let call = &m.calls[c as usize];
        match call.kind {
            CallKind::Persistent => {
                out.push_str("persistent_load(");
                write_value(m, call.args, out, depth + 1, self);
                out.push(')');
            }
            CallKind::Build => write_value(m, call.callable, out, depth + 1, self),
            CallKind::Method(method) => {
                write_value(m, call.callable, out, depth + 1, self);
                let _ = write!(out, ".{}", method.name());
                write_args(m, call.args, out, depth);
            }
            CallKind::NewObj | CallKind::NewObjEx => {
                write_value(m, call.callable, out, depth + 1, self);
                out.push_str(".__new__");
                write_args(m, call.args, out, depth);
            }
            _ => {
                write_value(m, call.callable, out, depth + 1, self);
                write_args(m, call.args, out, depth);
            }
        }
    }
}

fn write_args(m: &Machine<'_>, args: Value, out: &mut String, depth: u32) {
    match args {
        Value::Tuple(n) => {
            let node = &m.arena.nodes[n as usize];
            out.push('(');
            for (i, a) in node.items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(m, *a, out, depth + 1, &Finding);
            }
            if node.len as usize > node.items.len() {
                out.push_str(", ...");
            }
            out.push(')');
        }
        other => {
            out.push_str("(*");
            write_value(m, other, out, depth + 1, &Finding);
            out.push(')');
        }
    }
}

/// A Python `bytes` literal of at most `budget` bytes ([`py_bytes`]), followed by the whole
/// length when it is cut.
pub fn py_bytes_counted(b: &[u8], out: &mut String, budget: usize) {
    py_bytes(b, out, budget);
    if b.len() > budget {
        let _ = write!(out, " ({} bytes)", b.len());
    }
}

/// The listing style of `pickleguard explain`: globals and call results by the names its
/// listing binds them to, longer literals than findings, hidden items counted.
pub struct NamedStyle<'n> {
    /// The expression of each global (by [`GlobalId`]).
    pub globals: &'n [String],
    /// The variable of each call that produces a value (by [`CallId`]).
    pub calls: &'n [Option<String>],
}

impl NamedStyle<'_> {
    /// Longest string or bytes literal.
    const LITERAL_WIDTH: usize = 100;
    /// Output length after which a container stops.
    const BUDGET: usize = 800;
    const MAX_DEPTH: u32 = 8;
}

impl Style for NamedStyle<'_> {
    fn budget(&self) -> usize {
        Self::BUDGET
    }

    fn max_depth(&self) -> u32 {
        Self::MAX_DEPTH
    }

    fn text(&self, m: &Machine<'_>, id: StrId, out: &mut String) {
        str_literal(m, id, out, Self::LITERAL_WIDTH)
    }

    fn blob(&self, b: &[u8], out: &mut String) {
        py_bytes_counted(b, out, Self::LITERAL_WIDTH)
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

/// The inline argument of an opcode as a listing shows it: literals of at most
/// [`OP_ARG_WIDTH`] characters, the whole cut at `OP_ARG_WIDTH + 20`.
pub fn op_arg(op: Op, arg: &Arg<'_>) -> String {
    let str_lit = |s: &str| {
        let mut out = String::new();
        py_str(s, &mut out, OP_ARG_WIDTH);
        out
    };
    let bytes_lit = |b: &[u8]| {
        let mut out = String::new();
        py_bytes_counted(b, &mut out, OP_ARG_WIDTH);
        out
    };
    let s = match *arg {
        Arg::None => String::new(),
        Arg::Int(i) => i.to_string(),
        Arg::U64(u) => u.to_string(),
        Arg::Bool(b) => if b { "True" } else { "False" }.into(),
        Arg::LongBytes(b) => crate::bigint::le_to_decimal(b),
        Arg::LongText(t) => crate::bigint::text_to_decimal(t),
        Arg::Float(f) => {
            let mut s = String::new();
            py_float(f, &mut s);
            s
        }
        Arg::Bytes(b) => bytes_lit(b),
        Arg::Utf8(s) => str_lit(s),
        Arg::Wtf8(b) => str_lit(&reader::wtf8_lossy(b)),
        Arg::Line(l) => match op {
            Op::STRING => match reader::decode_string_line(l) {
                Ok(b) => bytes_lit(&b),
                Err(_) => bytes_lit(l),
            },
            Op::UNICODE => str_lit(&reader::raw_unicode_escape_decode(l).unwrap_or_default()),
            _ => str_lit(&String::from_utf8_lossy(l)),
        },
        Arg::Pair(m, n) => format!("{m} {n}"),
    };
    shorten(s, OP_ARG_WIDTH + 20)
}

/// Longest string or bytes literal in an opcode's argument ([`op_arg`]).
pub const OP_ARG_WIDTH: usize = 40;

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> String {
        let mut out = String::new();
        py_str(s, &mut out, 100);
        out
    }

    /// Every control character is escaped as Python's repr escapes it; printable text,
    /// from U+00A0 on, is written as is.
    #[test]
    fn str_literals_escape_every_control_character() {
        assert_eq!(lit("a\u{1b}[2Jb"), "'a\\x1b[2Jb'");
        assert_eq!(lit("\u{7f}"), "'\\x7f'");
        assert_eq!(
            lit("\u{80}\u{85}\u{9b}31m\u{9f}"),
            "'\\x80\\x85\\x9b31m\\x9f'"
        );
        assert_eq!(lit("\u{7e}\u{a0}é"), "'~\u{a0}é'");
        for c in (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32) {
            let out = lit(&c.to_string());
            assert!(out.chars().all(|o| !o.is_control()), "{c:?} -> {out:?}");
        }
    }

    /// Bytes literals already write every byte outside printable ASCII as `\xNN`.
    #[test]
    fn bytes_literals_escape_every_control_byte() {
        let mut out = String::new();
        py_bytes(b"\x1b\x7f\x9b", &mut out, 100);
        assert_eq!(out, "b'\\x1b\\x7f\\x9b'");
    }
}
