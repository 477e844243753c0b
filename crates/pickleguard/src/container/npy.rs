//! NumPy `.npy` (format versions 1–3). `numpy.load(allow_pickle=True)` unpickles everything
//! after the header when the header's dtype holds Python objects; numeric arrays hold no
//! pickle. A header we cannot read is treated as possibly holding objects.

use super::pylit::{self, Lit};
use super::{analyze, Report};
use crate::context::ScanContext;
use crate::render::{self, name_lit, py_str};
use crate::report::{Finding, FindingType, Severity};

pub const MAGIC: &[u8] = b"\x93NUMPY";

/// What a `.npy` header says.
pub(crate) struct Header {
    /// Where the array data starts.
    pub end: usize,
    /// Whether the dtype numpy uses (the last `descr`, as `ast.literal_eval` builds the
    /// dict) holds objects; `None`: the header cannot be read.
    pub objects: Option<bool>,
    /// Keys the header dict gives more than once, with every `descr` reading: numpy keeps the
    /// last value, other readers the first.
    pub repeated: Option<String>,
    /// Some reading of a repeated `descr` holds objects.
    pub any_objects: bool,
    /// Why numpy refuses the header (then `numpy.load` and `safe_load` load nothing).
    pub refused: Option<Refusal>,
}

/// A header numpy refuses, or may refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a literal this reader parses: numpy refuses it unless `ast.literal_eval` reads a
    /// spelling this reader does not (escapes, implicit concatenation).
    Unparsed,
    /// A dict numpy's `_read_array_header` refuses, and why.
    Numpy(&'static str),
}

pub(crate) fn header(d: &[u8]) -> Option<Header> {
    let major = *d.get(6)?;
    let (len, at): (usize, usize) = match major {
        1 => (
            u16::from_le_bytes(d.get(8..10)?.try_into().ok()?) as usize,
            10,
        ),
        2 | 3 => (
            u32::from_le_bytes(d.get(8..12)?.try_into().ok()?) as usize,
            12,
        ),
        _ => return None,
    };
    let end = at.checked_add(len)?;
    let text = d.get(at..end)?;
    let text = if major == 3 {
        String::from_utf8_lossy(text).into_owned()
    } else {
        text.iter().map(|&b| b as char).collect()
    };
    let Some(h) = pylit::parse(&text) else {
        return Some(Header {
            end,
            objects: None,
            repeated: None,
            any_objects: true,
            refused: Some(Refusal::Unparsed),
        });
    };
    let refused = numpy_refuses(&h);
    let objects = h.get("descr").map(|d| has_object(d, 0));
    let readings: Vec<&Lit> = h.get_all("descr");
    let any_objects = objects != Some(false) || readings.iter().any(|d| has_object(d, 0));
    let keys = h.repeated_keys();
    let repeated = (!keys.is_empty()).then(|| {
        format!(
            "keys [{}] repeated; descr readings: {}",
            keys.iter()
                .map(|k| name_lit(k))
                .collect::<Vec<_>>()
                .join(", "),
            readings
                .iter()
                .map(|d| format!(
                    "{} ({})",
                    show(d),
                    if has_object(d, 0) {
                        "objects"
                    } else {
                        "numeric"
                    }
                ))
                .collect::<Vec<_>>()
                .join(", then ")
        )
    });
    Some(Header {
        end,
        objects,
        repeated,
        any_objects,
        refused,
    })
}

/// Why numpy's `_read_array_header` refuses a header dict that parsed, if it does: exactly
/// the keys `descr`, `fortran_order` and `shape`, a bool and a tuple of numbers. (A `descr`
/// numpy cannot turn into a dtype is not checked here; it counts as objects above.)
fn numpy_refuses(h: &Lit) -> Option<Refusal> {
    numpy_refusal(h).map(Refusal::Numpy)
}

fn numpy_refusal(h: &Lit) -> Option<&'static str> {
    let Lit::Dict(items) = h else {
        return Some("the header is not a dict");
    };
    let mut keys: Vec<&str> = items
        .iter()
        .map(|(k, _)| match k {
            Lit::Str(s) => s.as_str(),
            _ => "",
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    if keys != ["descr", "fortran_order", "shape"] {
        return Some("the header dict's keys are not descr, fortran_order and shape");
    }
    if !matches!(h.get("fortran_order"), Some(Lit::Bool(_))) {
        return Some("fortran_order is not a bool");
    }
    match h.get("shape") {
        Some(Lit::Tuple(t)) if t.iter().all(|x| matches!(x, Lit::Num)) => None,
        _ => Some("shape is not a tuple of integers"),
    }
}

/// A dtype description, shortly, for a finding: as Python writes it (the header keeps no
/// number's value: `<number>`).
fn show(d: &Lit) -> String {
    fn write(d: &Lit, out: &mut String) {
        let items = |items: &mut dyn Iterator<Item = &Lit>, out: &mut String| {
            for (i, x) in items.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(x, out);
            }
        };
        match d {
            Lit::Str(s) => py_str(s, out, 80),
            Lit::Num => out.push_str("<number>"),
            Lit::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
            Lit::None => out.push_str("None"),
            Lit::Tuple(t) => {
                out.push('(');
                items(&mut t.iter(), out);
                if t.len() == 1 {
                    out.push(',');
                }
                out.push(')');
            }
            Lit::List(l) => {
                out.push('[');
                items(&mut l.iter(), out);
                out.push(']');
            }
            Lit::Dict(kv) => {
                out.push('{');
                for (i, (k, v)) in kv.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write(k, out);
                    out.push_str(": ");
                    write(v, out);
                }
                out.push('}');
            }
        }
    }
    let mut s = String::new();
    write(d, &mut s);
    render::shorten(s, 80)
}

/// Whether a dtype description (`descr_to_dtype`'s input) can hold objects. Anything that is
/// not a plain typestring counts as objects.
fn has_object(d: &Lit, depth: u32) -> bool {
    if depth > 32 {
        return true;
    }
    match d {
        Lit::Str(s) => !plain_typestr(s),
        // (base dtype, shape): a subarray.
        Lit::Tuple(t) if t.len() == 2 => has_object(&t[0], depth + 1),
        Lit::List(fields) => fields.iter().any(|f| match f {
            // (name, dtype) or (name, dtype, shape); the name may be (title, name).
            Lit::Tuple(t) if t.len() == 2 || t.len() == 3 => has_object(&t[1], depth + 1),
            _ => true,
        }),
        _ => true,
    }
}

/// A numeric / string / void typestring (`<f8`, `|b1`, `<U5`, `<M8[ns]`, `|V16`).
fn plain_typestr(s: &str) -> bool {
    let s = s.trim_start_matches(['<', '>', '|', '=']);
    let s = match s.find('[') {
        Some(i) if s.ends_with(']') => &s[..i],
        _ => s,
    };
    let mut c = s.chars();
    let Some(kind) = c.next() else { return false };
    let digits = c.as_str();
    "biufcmMSUVa?".contains(kind) && digits.chars().all(|x| x.is_ascii_digit())
        || matches!(
            s,
            "bool"
                | "int8"
                | "int16"
                | "int32"
                | "int64"
                | "uint8"
                | "uint16"
                | "uint32"
                | "uint64"
                | "float16"
                | "float32"
                | "float64"
                | "complex64"
                | "complex128"
        )
}

pub fn scan(cx: &ScanContext<'_>, d: &[u8]) -> Report {
    let (mut r, h) = scan_header(d);
    let Some(h) = h else {
        return r;
    };
    if !h.any_objects {
        return r;
    }
    let end = h.end;
    let label = if h.objects.is_none() {
        crate::report::Segment::NpyAfterBadHeader { at: end as u64 }
    } else {
        crate::report::Segment::NpyObjectArray { at: end as u64 }
    };
    let sub = cx.within(&label, || cx.deeper(|| analyze(cx, &d[end..])));
    r.absorb(sub, Some(&label));
    r
}

/// What the header alone says (every finding of [`scan`] but the data's), and the header.
pub(crate) fn scan_header(d: &[u8]) -> (Report, Option<Header>) {
    let mut r = Report::new("numpy_npy");
    let Some(h) = header(d) else {
        r.push(Finding::new(
            FindingType::Malformed,
            Severity::Low,
            0,
            "the .npy header cannot be read: numpy.load refuses the file".into(),
        ));
        return (r, None);
    };
    if let Some(what) = &h.repeated {
        r.push(super::tamper(
            8,
            format!(
                "the .npy header dict repeats a key ({what}): numpy keeps the last value, readers that take the first see another array; the data is analysed if any reading holds objects"
            ),
        ));
    }
    if let Some(refusal) = h.refused {
        // numpy.load raises before reading any data, and safe_load refuses the file: said
        // here so that the scan and the load tell one story. LOW: nothing can run through
        // numpy; the data is still analysed below, for readers that skip the header check.
        let desc = match refusal {
            Refusal::Numpy(why) => format!(
                "numpy.load refuses this .npy header ({why}): it loads nothing, and safe_load \
                 refuses the file; the data after the header is analysed for other readers"
            ),
            Refusal::Unparsed => "this .npy header is not a literal pickleguard parses: \
                 numpy.load and safe_load refuse it unless ast.literal_eval reads it; the data \
                 after it is analysed as an object array"
                .to_string(),
        };
        r.push(Finding::new(FindingType::Malformed, Severity::Low, 8, desc));
    }
    (r, Some(h))
}

#[cfg(test)]
mod tests;
