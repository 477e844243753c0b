//! A disassembly of every pickle in a stream: opcodes, positions, decoded arguments and the
//! globals CPython would resolve (for `pickleguard disasm`, `explain` and the differential tests).

use crate::limits::Limits;
use crate::machine::Machine;
use crate::opcodes::Op;
use crate::reader::{self, Arg};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value as Json;

/// One opcode of a disassembly.
#[derive(Debug, Serialize)]
pub struct DisOp {
    /// Its offset in the stream.
    pub pos: usize,
    /// Its name, as `pickletools` spells it.
    pub op: &'static str,
    /// Its decoded argument, as JSON (`null` when it has none).
    pub arg: Box<RawValue>,
}

/// One pickle of a disassembled stream.
#[derive(Debug, Serialize)]
pub struct DisPickle {
    /// Its offset in the stream.
    pub start: usize,
    /// Its opcodes, in order.
    pub ops: Vec<DisOp>,
}

/// Where and why a disassembly stopped before the end of the stream.
#[derive(Debug, Serialize)]
pub struct DisError {
    /// The offset of the opcode that could not be read or run.
    pub pos: usize,
    /// CPython's words for the error.
    pub message: String,
}

/// Every pickle of a stream, opcode by opcode (`pickleguard disasm`).
#[derive(Debug, Serialize)]
pub struct Disassembly {
    /// The pickles, in order.
    pub pickles: Vec<DisPickle>,
    /// The globals CPython would resolve, as (module, name).
    pub globals: Vec<(String, String)>,
    /// Why the disassembly stopped early, if it did.
    pub error: Option<DisError>,
}

fn hex(b: &[u8]) -> Json {
    let mut s = String::with_capacity(b.len() * 2);
    for c in b {
        s.push_str(&format!("{c:02x}"));
    }
    serde_json::json!({ "hex": s })
}

/// The JSON form of an argument (docs/report-schema.md, "Disassembly").
pub fn arg_json(op: Op, arg: &Arg<'_>) -> Box<RawValue> {
    let raw = |j: Json| serde_json::value::to_raw_value(&j).unwrap_or_else(|_| null());
    match *arg {
        Arg::Wtf8(b) => py_text(&reader::wtf8_codepoints(b)),
        Arg::Line(l) if op == Op::UNICODE => match reader::raw_unicode_escape_codepoints(l) {
            Some(cps) => py_text(&cps),
            None => null(),
        },
        _ => raw(arg_value(op, arg)),
    }
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".into()).expect("valid JSON")
}

/// The JSON form of an argument that needs no surrogates.
pub fn arg_value(op: Op, arg: &Arg<'_>) -> Json {
    match *arg {
        Arg::None => Json::Null,
        Arg::Int(i) => Json::from(i),
        Arg::U64(u) => Json::from(u),
        Arg::Bool(b) => Json::Bool(b),
        Arg::LongBytes(b) => Json::String(le_twos_complement_decimal(b)),
        Arg::LongText(t) => Json::String(crate::bigint::text_to_decimal(t)),
        Arg::Float(f) => serde_json::Number::from_f64(f)
            .map(Json::Number)
            .unwrap_or_else(|| Json::String(format!("{f}"))),
        Arg::Bytes(b) => hex(b),
        Arg::Utf8(s) => Json::String(s.to_string()),
        Arg::Wtf8(b) => Json::String(reader::wtf8_lossy(b)),
        Arg::Line(l) => match op {
            Op::STRING => match reader::decode_string_line(l) {
                Ok(b) => Json::String(b.iter().map(|&c| c as char).collect()),
                Err(_) => Json::Null,
            },
            Op::UNICODE => Json::String(reader::raw_unicode_escape_decode(l).unwrap_or_default()),
            _ => Json::String(String::from_utf8_lossy(l).into_owned()),
        },
        Arg::Pair(m, n) => Json::String(format!("{m} {n}")),
    }
}

/// A JSON string for Python text, lone surrogates included (as `\\udXXX` escapes, which
/// Python's json module reads back as the same str).
fn py_text(cps: &[u32]) -> Box<RawValue> {
    if cps.iter().all(|&c| char::from_u32(c).is_some()) {
        let s = Json::String(reader::codepoints_lossy(cps));
        return serde_json::value::to_raw_value(&s).unwrap_or_else(|_| null());
    }
    let mut lit = String::from("\"");
    for &c in cps {
        match char::from_u32(c) {
            Some('"') => lit.push_str("\\\""),
            Some('\\') => lit.push_str("\\\\"),
            Some(ch) if (ch as u32) >= 0x20 && (ch as u32) < 0x7f => lit.push(ch),
            Some(ch) => {
                let mut buf = [0u16; 2];
                for u in ch.encode_utf16(&mut buf) {
                    lit.push_str(&format!("\\u{:04x}", u));
                }
            }
            None => lit.push_str(&format!("\\u{:04x}", c)),
        }
    }
    lit.push('"');
    RawValue::from_string(lit).unwrap_or_else(|_| null())
}

fn le_twos_complement_decimal(b: &[u8]) -> String {
    crate::bigint::le_to_decimal(b)
}

/// Disassemble every pickle in `data`.
pub fn disassemble(data: &[u8]) -> Disassembly {
    let mut out = Disassembly {
        pickles: Vec::new(),
        globals: Vec::new(),
        error: None,
    };
    let mut start = 0;
    while start < data.len() {
        let mut ops = Vec::new();
        let mut pos = start;
        let mut stopped = None;
        loop {
            match reader::read_instr(data, pos) {
                Ok((ins, next)) => {
                    ops.push(DisOp {
                        pos,
                        op: ins.op.name(),
                        arg: arg_json(ins.op, &ins.arg),
                    });
                    pos = next;
                    if ins.op == Op::STOP {
                        stopped = Some(next);
                        break;
                    }
                }
                Err(e) => {
                    out.error = Some(DisError {
                        pos,
                        message: e.to_string(),
                    });
                    break;
                }
            }
        }
        // Globals as CPython resolves them through find_class, from the machine. (EXT codes
        // resolve through a registry this process cannot see; machine errors that are not
        // decoding errors belong to the analysis, not the disassembly.)
        let mut m = Machine::new(data, Limits::default());
        m.joblib = false;
        let _ = m.run(start);
        // The disassembly is the C unpickler's view: a GLOBAL cut at the end of the input is a
        // decoding error there (the machine records what pickle._Unpickler would import).
        let cut = out.error.as_ref().map(|e| e.pos).unwrap_or(usize::MAX);
        out.globals.extend(
            m.globals
                .iter()
                .filter(|g| g.ext.is_none() && (g.pos as usize) < cut)
                .map(|g| {
                    if g.computed {
                        ("?".to_string(), "?".to_string())
                    } else {
                        (g.module.clone(), g.name.clone())
                    }
                }),
        );
        out.pickles.push(DisPickle { start, ops });
        match stopped {
            Some(next) if out.error.is_none() => start = next,
            _ => break,
        }
    }
    out
}

/// One instruction of a listing (`pickleguard explain`).
#[derive(Clone, Debug)]
pub struct Listed {
    /// Its opcode.
    pub op: Op,
    /// Its inline argument as the listing writes it ([`crate::render::op_arg`]).
    pub arg: String,
    /// Where the next instruction starts.
    pub next: usize,
}

/// The instruction at `pos` of `data` as a listing shows it, or why it cannot be read.
pub fn listed(data: &[u8], pos: usize) -> Result<Listed, String> {
    match reader::read_instr(data, pos) {
        Ok((ins, next)) => Ok(Listed {
            op: ins.op,
            arg: crate::render::op_arg(ins.op, &ins.arg),
            next,
        }),
        Err(e) => Err(e.to_string()),
    }
}
