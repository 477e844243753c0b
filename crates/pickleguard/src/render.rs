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

/// Whether Python's `repr` escapes `c`: C0 and C1 controls, DEL, and the invisible characters
/// that can make a terminal or an editor show text other than what it holds (no-break and
/// other spaces, the soft hyphen, zero-width characters, line and paragraph separators, bidi
/// embeddings, overrides and isolates, the byte order mark, tag characters). Python also
/// escapes unassigned and private-use code points; those are written as is here, as they
/// cannot move the cursor or reorder text.
fn hidden(c: char) -> bool {
    matches!(c as u32,
        0..=0x1f
        | 0x7f..=0xa0
        | 0xad
        | 0x061c
        | 0x1680
        | 0x180e
        | 0x2000..=0x200f
        | 0x2028..=0x202f
        | 0x205f..=0x206f
        | 0x3000
        | 0xfeff
        | 0xfff9..=0xfffb
        | 0xe0000..=0xe007f)
}

/// The escape Python's `repr` writes for a [`hidden`] character.
fn push_escape(c: char, out: &mut String) {
    let _ = match c {
        '\t' => out.write_str("\\t"),
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        c if (c as u32) < 0x100 => write!(out, "\\x{:02x}", c as u32),
        c if (c as u32) < 0x10000 => write!(out, "\\u{:04x}", c as u32),
        c => write!(out, "\\U{:08x}", c as u32),
    };
}

/// Text from a scanned file (a path, a member name, a global's module, a finding's
/// description) made safe to print on a terminal: every [`hidden`] character is written as
/// Python's `repr` escapes it (`\x1b`, `\n`, `\u202e`), so a name can neither send a control
/// sequence, reorder what is shown, nor start a line of its own. Everything else, backslashes
/// and quotes included, is kept. Every human-readable writer of the command line and the
/// Python package's messages use it; JSON and SARIF carry the text as it is.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) {
            push_escape(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The quote Python's `repr` puts around text with these characters: `'`, unless the text
/// holds a `'` and no `"`.
fn quote_of(chars: impl Iterator<Item = char>) -> char {
    let (mut single, mut double) = (false, false);
    for c in chars {
        single |= c == '\'';
        double |= c == '"';
    }
    if single && !double {
        '"'
    } else {
        '\''
    }
}

/// A Python `str` literal of at most `budget` characters (then `...`), as Python's `repr`
/// writes it (the quotes chosen on what is written): the one way a string literal is
/// written, in findings and in `explain`. [`hidden`] characters are escaped, so what a
/// scanned file holds never reaches a terminal raw.
pub fn py_str(s: &str, out: &mut String, budget: usize) {
    let quote = quote_of(s.chars().take(budget));
    out.push(quote);
    for (i, c) in s.chars().enumerate() {
        if i >= budget {
            out.push_str("...");
            break;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if hidden(c) => push_escape(c, out),
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// [`py_str`] into a new string; `usize::MAX` writes all of `s` (a name, which a finding
/// shows whole).
pub fn str_lit(s: &str, budget: usize) -> String {
    let mut out = String::new();
    py_str(s, &mut out, budget);
    out
}

/// A name from a scanned file (an archive member, a side file) as a whole `str` literal.
pub fn name_lit(s: &str) -> String {
    str_lit(s, usize::MAX)
}

/// A Python `bytes` literal of at most `budget` bytes (then `...`), as Python's `repr` writes
/// it: the one way a bytes literal is written, in findings and in `explain`.
pub fn py_bytes(b: &[u8], out: &mut String, budget: usize) {
    let quote = quote_of(b.iter().take(budget).map(|&c| c as char));
    out.push('b');
    out.push(quote);
    for (i, &c) in b.iter().enumerate() {
        if i >= budget {
            out.push_str("...");
            break;
        }
        match c {
            b'\\' => out.push_str("\\\\"),
            c if c as char == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(c as char),
            b'\t' | b'\n' | b'\r' => push_escape(c as char, out),
            _ => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push(quote);
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

    /// `repr(bytes(range(256)))` and `repr(''.join(map(chr, range(256))))`, as CPython 3
    /// writes them.
    const PY_BYTES_REPR: &str = r##"b'\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\x7f\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98\x99\x9a\x9b\x9c\x9d\x9e\x9f\xa0\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8\xa9\xaa\xab\xac\xad\xae\xaf\xb0\xb1\xb2\xb3\xb4\xb5\xb6\xb7\xb8\xb9\xba\xbb\xbc\xbd\xbe\xbf\xc0\xc1\xc2\xc3\xc4\xc5\xc6\xc7\xc8\xc9\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2\xd3\xd4\xd5\xd6\xd7\xd8\xd9\xda\xdb\xdc\xdd\xde\xdf\xe0\xe1\xe2\xe3\xe4\xe5\xe6\xe7\xe8\xe9\xea\xeb\xec\xed\xee\xef\xf0\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8\xf9\xfa\xfb\xfc\xfd\xfe\xff'"##;
    const PY_STR_REPR: &str = r##"'\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\x7f\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98\x99\x9a\x9b\x9c\x9d\x9e\x9f\xa0¡¢£¤¥¦§¨©ª«¬\xad®¯°±²³´µ¶·¸¹º»¼½¾¿ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖ×ØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõö÷øùúûüýþÿ'"##;

    #[test]
    fn bytes_literals_are_python_reprs() {
        let all: Vec<u8> = (0..=255).collect();
        let mut out = String::new();
        py_bytes(&all, &mut out, 256);
        assert_eq!(out, PY_BYTES_REPR);
        let bytes = |b: &[u8]| {
            let mut out = String::new();
            py_bytes(b, &mut out, 100);
            out
        };
        assert_eq!(bytes(b"it's"), r#"b"it's""#);
        assert_eq!(bytes(b"'\""), r#"b'\'"'"#);
        assert_eq!(bytes(b"\t\r\n\x0b"), r"b'\t\r\n\x0b'");
    }

    #[test]
    fn str_literals_are_python_reprs() {
        let all: String = (0u32..256).filter_map(char::from_u32).collect();
        assert_eq!(str_lit(&all, 256), PY_STR_REPR);
        assert_eq!(lit("it's"), r#""it's""#);
        assert_eq!(lit("'\""), r#"'\'"'"#);
        // The quote is chosen on what is written, as Python would for the cut string.
        let mut out = String::new();
        py_str("ab'\"", &mut out, 3);
        assert_eq!(out, r#""ab'...""#);
        // repr('\u202e\U000e0041\u2066x\xad\xa0\xe9')
        assert_eq!(
            lit("\u{202e}\u{e0041}\u{2066}x\u{ad}\u{a0}\u{e9}"),
            r"'\u202e\U000e0041\u2066x\xad\xa0é'"
        );
    }

    /// Every C0 and C1 control, DEL and bidi control is escaped; nothing else is touched.
    #[test]
    fn terminal_text_escapes_what_a_terminal_would_act_on() {
        assert_eq!(
            terminal_safe("a\u{1b}]0;pwn\u{7}\u{9b}2J.pkl"),
            r"a\x1b]0;pwn\x07\x9b2J.pkl"
        );
        assert_eq!(terminal_safe("x\ny\rz\tw"), r"x\ny\rz\tw");
        assert_eq!(
            terminal_safe("\u{202a}\u{202e}\u{2066}\u{2069}"),
            r"\u202a\u202e\u2066\u2069"
        );
        let kept = r#"C:\dir\it's "é" 名前"#;
        assert!(matches!(terminal_safe(kept), Cow::Borrowed(k) if k == kept));
        for c in (0u32..0x20)
            .chain(0x7f..0xa0)
            .chain(0x202a..0x202f)
            .chain(0x2066..0x206a)
            .filter_map(char::from_u32)
        {
            let raw = format!("a{c}b");
            let out = terminal_safe(&raw);
            assert!(
                out.starts_with('a') && out.ends_with('b') && out.len() > 3,
                "{c:?} -> {out:?}"
            );
            assert!(
                out.chars().all(|o| !o.is_control() && !hidden(o)),
                "{c:?} -> {out:?}"
            );
            // Escaping twice changes nothing: text already shown safely stays as it is.
            assert_eq!(terminal_safe(&out), out);
        }
    }
}
