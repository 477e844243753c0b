//! NumPy `.npy` (format versions 1–3). `numpy.load(allow_pickle=True)` unpickles everything
//! after the header when the header's dtype holds Python objects; numeric arrays hold no
//! pickle. A header we cannot read is treated as possibly holding objects.

use super::pylit::{self, Lit};
use super::{analyze, Report};
use crate::policy::Policy;
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
        });
    };
    let objects = h.get("descr").map(|d| has_object(d, 0));
    let readings: Vec<&Lit> = h.get_all("descr");
    let any_objects = objects != Some(false) || readings.iter().any(|d| has_object(d, 0));
    let keys = h.repeated_keys();
    let repeated = (!keys.is_empty()).then(|| {
        format!(
            "keys {:?} repeated; descr readings: {}",
            keys,
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
    })
}

/// A dtype description, shortly, for a finding.
fn show(d: &Lit) -> String {
    let s = match d {
        Lit::Str(s) => format!("{s:?}"),
        other => format!("{other:?}"),
    };
    s.chars().take(80).collect()
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

pub fn scan(d: &[u8], policy: &Policy, depth: u32) -> Report {
    let mut r = Report::new("numpy_npy");
    let Some(h) = header(d) else {
        r.push(Finding::new(
            FindingType::Malformed,
            Severity::Low,
            0,
            "the .npy header cannot be read: numpy.load refuses the file".into(),
        ));
        return r;
    };
    if let Some(what) = &h.repeated {
        r.push(super::tamper(
            8,
            format!(
                "the .npy header dict repeats a key ({what}): numpy keeps the last value, readers that take the first see another array; the data is analysed if any reading holds objects"
            ),
        ));
    }
    if !h.any_objects {
        return r;
    }
    let end = h.end;
    let label = if h.objects.is_none() {
        format!("data after an unreadable .npy header at byte {end}")
    } else {
        format!("object array at byte {end}")
    };
    let sub = super::within(&label, || analyze(&d[end..], policy, depth + 1));
    r.absorb(sub, Some(&label));
    r
}
