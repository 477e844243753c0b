//! PyTorch's pre-zip formats, laid out as `torch/serialization.py` `_legacy_load` reads them.
//!
//! Legacy stream (`_use_new_zipfile_serialization=False`): five pickles (magic number,
//! protocol version, sys_info, the object pickle whose persistent ids name the storages, the
//! list of storage keys), then the raw storages (each an 8-byte little-endian element count and
//! the elements). torch.load stops after the storages: nothing after the fifth pickle is ever
//! unpickled, so the storage bytes are skipped, not parsed.
//!
//! Tar (torch < 0.4): members `sys_info`, `pickle` (the object pickle), `storages` (a count
//! pickle, then per storage a `(key, location, storage_type)` pickle and raw data, then a
//! storage-views pickle) and `tensors` (a count pickle, then per tensor a pickle and raw
//! dimensions).

use super::{analyze, Report};
use crate::context::ScanContext;
use crate::machine::{CallKind, Machine, Outcome};
use crate::opcodes::Op;
use crate::reader::{self, Arg};
use crate::report::{Finding, FindingType, Severity};
use crate::value::Value;
use std::collections::HashMap;

/// `torch.serialization.MAGIC_NUMBER` (0x1950a86a20f9469cfc6c) as LONG1 bytes and as text.
const MAGIC_LE: &[u8] = b"\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
const MAGIC_TEXT: &[u8] = b"119547037146038801333356";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A legacy torch stream: its first pickle is the magic number.
pub fn is_legacy(d: &[u8]) -> bool {
    let head = &d[..d.len().min(48)];
    contains(head, MAGIC_LE) || contains(head, MAGIC_TEXT)
}

/// Bytes per element of a legacy storage class (`torch.FloatStorage`, ...).
fn element_size(name: &str) -> Option<u64> {
    Some(match name {
        "DoubleStorage" | "LongStorage" | "ComplexFloatStorage" => 8,
        "FloatStorage" | "IntStorage" | "QInt32Storage" => 4,
        "HalfStorage" | "BFloat16Storage" | "ShortStorage" => 2,
        "ComplexDoubleStorage" => 16,
        "ByteStorage" | "CharStorage" | "BoolStorage" | "QInt8Storage" | "QUInt8Storage"
        | "QUInt4x2Storage" | "QUInt2x4Storage" | "UntypedStorage" => 1,
        n if n.starts_with("Float8") => 1,
        n if n.starts_with("UInt16") || n.starts_with("Int16") => 2,
        n if n.starts_with("UInt32") => 4,
        n if n.starts_with("UInt64") => 8,
        _ => return None,
    })
}

fn global_name(m: &Machine<'_>, v: Value) -> Option<String> {
    match v {
        Value::Global(g) => m.globals.get(g as usize).map(|g| g.name.clone()),
        _ => None,
    }
}

fn text(m: &Machine<'_>, v: Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(m.arena.text(m.data, s).into_owned()),
        Value::Bytes(b) => Some(String::from_utf8_lossy(m.arena.blob(m.data, b)).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn tuple_items(m: &Machine<'_>, v: Value) -> Option<Vec<Value>> {
    match v {
        Value::Tuple(n) => m.arena.nodes.get(n as usize).map(|n| n.items.clone()),
        _ => None,
    }
}

/// Every string literal of one pickle, in order (the storage keys list: it may be longer than
/// the machine keeps of a list).
fn strings(d: &[u8], start: usize, end: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut p = start;
    while p < end {
        let Ok((ins, next)) = reader::read_instr(d, p) else {
            break;
        };
        match ins.arg {
            Arg::Utf8(s) => out.push(s.to_string()),
            Arg::Bytes(b) => out.push(String::from_utf8_lossy(b).into_owned()),
            Arg::Line(l) if matches!(ins.op, Op::STRING) => {
                if let Ok(b) = reader::decode_string_line(l) {
                    out.push(String::from_utf8_lossy(&b).into_owned());
                }
            }
            Arg::Line(l) if matches!(ins.op, Op::UNICODE) => {
                if let Some(s) = reader::raw_unicode_escape_decode(l) {
                    out.push(s);
                }
            }
            _ => {}
        }
        if next <= p {
            break;
        }
        p = next;
    }
    out
}

pub fn scan_legacy(cx: &ScanContext<'_>, d: &[u8]) -> Report {
    let policy = cx.policy;
    let mut m = Machine::new(d, policy.limits.clone());
    m.set_deadline(cx.budget.deadline());
    let mut ends: Vec<usize> = Vec::new();
    let mut sizes: HashMap<String, u64> = HashMap::new();
    let mut pos = 0usize;
    for i in 0..5 {
        m.reset();
        match m.run(pos) {
            Outcome::Stop { end, .. } => {
                if i == 3 {
                    for c in m.calls.iter().filter(|c| c.kind == CallKind::Persistent) {
                        let Some(items) = tuple_items(&m, c.args) else {
                            continue;
                        };
                        if items.len() >= 3 && text(&m, items[0]).as_deref() == Some("storage") {
                            let es = global_name(&m, items[1]).and_then(|n| element_size(&n));
                            if let (Some(es), Some(key)) = (es, text(&m, items[2])) {
                                sizes.insert(key, es);
                            }
                        }
                    }
                }
                ends.push(end);
                pos = end;
            }
            _ => break,
        }
    }
    // torch.load unpickles exactly these five; with fewer, it stops where the stream breaks.
    let upto = if ends.len() == 5 { ends[4] } else { d.len() };
    let mut r = analyze(cx, &d[..upto]);
    r.format = "pytorch_legacy".into();
    if ends.len() == 5 {
        // Walk the storages: count, then count × element size bytes, in key order.
        let keys = strings(d, ends[3], ends[4]);
        let mut p = ends[4] as u64;
        let mut walked = true;
        for k in &keys {
            let (Some(es), Some(n)) = (sizes.get(k), u64_at(d, p)) else {
                walked = false;
                break;
            };
            p = p.saturating_add(8).saturating_add(n.saturating_mul(*es));
            if p > d.len() as u64 {
                walked = false;
                break;
            }
        }
        if walked && p < d.len() as u64 {
            r.push(Finding::new(
                FindingType::TrailingData,
                Severity::Low,
                p,
                format!(
                    "{} bytes after the last tensor storage; torch.load never reads them",
                    d.len() as u64 - p
                ),
            ));
        }
    }
    r
}

fn u64_at(d: &[u8], p: u64) -> Option<u64> {
    let p = usize::try_from(p).ok()?;
    Some(u64::from_le_bytes(
        d.get(p..p.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Runs the pickles of a tar member one at a time, analysing each.
struct Walker<'a> {
    d: &'a [u8],
    cx: &'a ScanContext<'a>,
    m: Machine<'a>,
    r: Report,
}

impl<'a> Walker<'a> {
    fn new(cx: &'a ScanContext<'a>, d: &'a [u8]) -> Self {
        let mut m = Machine::new(d, cx.policy.limits.clone());
        m.set_deadline(cx.budget.deadline());
        Walker {
            d,
            cx,
            m,
            r: Report::new("pytorch_tar"),
        }
    }

    /// Analyse the pickle at `pos`; Some(end) when it ends with STOP (the machine then holds
    /// its result).
    fn pickle(&mut self, pos: usize) -> Option<usize> {
        if pos >= self.d.len() {
            return None;
        }
        self.m.reset();
        let out = self.m.run(pos);
        let end = match out {
            Outcome::Stop { end, .. } => Some(end),
            _ => None,
        };
        let slice = &self.d[pos..end.unwrap_or(self.d.len())];
        let label = crate::report::Segment::TorchPickle { at: pos as u64 };
        let sub = self.cx.within(&label, || analyze(self.cx, slice));
        self.r.absorb(sub, Some(&label));
        end
    }

    fn int_result(&self) -> Option<i64> {
        match self.m.result? {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }
}

/// The `storages` member of a legacy torch tar.
pub fn scan_tar_storages<'a>(cx: &'a ScanContext<'a>, d: &'a [u8]) -> Report {
    let mut w = Walker::new(cx, d);
    let Some(mut p) = w.pickle(0) else {
        return w.r;
    };
    let n = w.int_result().unwrap_or(0).max(0);
    for _ in 0..n {
        let Some(end) = w.pickle(p) else {
            return w.r;
        };
        let es =
            w.m.result
                .and_then(|v| tuple_items(&w.m, v))
                .and_then(|t| t.get(2).copied())
                .and_then(|t| global_name(&w.m, t))
                .and_then(|n| element_size(&n));
        // An unknown storage type makes torch.load fail here: nothing after it is read.
        let (Some(es), Some(count)) = (es, u64_at(d, end as u64)) else {
            return w.r;
        };
        let next = (end as u64)
            .saturating_add(8)
            .saturating_add(count.saturating_mul(es));
        if next > d.len() as u64 {
            return w.r;
        }
        p = next as usize;
    }
    // The storage views.
    w.pickle(p);
    w.r
}

/// The `tensors` member of a legacy torch tar.
pub fn scan_tar_tensors<'a>(cx: &'a ScanContext<'a>, d: &'a [u8]) -> Report {
    let mut w = Walker::new(cx, d);
    let Some(mut p) = w.pickle(0) else {
        return w.r;
    };
    let n = w.int_result().unwrap_or(0).max(0);
    for _ in 0..n {
        let Some(end) = w.pickle(p) else {
            return w.r;
        };
        // ndim (int32), 4 unused bytes, sizes and strides (int64 each), storage offset.
        let Some(ndim) = d
            .get(end..end + 4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        else {
            return w.r;
        };
        if ndim < 0 {
            return w.r;
        }
        let next = end as u64 + 8 + 16 * ndim as u64 + 8;
        if next > d.len() as u64 {
            return w.r;
        }
        p = next as usize;
    }
    w.r
}

#[cfg(test)]
mod tests;
