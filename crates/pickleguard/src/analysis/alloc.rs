//! Calls that would allocate out of proportion to the file. Two shapes, both cheap to write
//! with allowed names only: a lazy sequence (`range`, and `enumerate` / `zip` / `reversed`
//! over one) handed to a callable that consumes it (`list(range(10**10))`, a `set`, a `dict`,
//! `bytes`, a `copyreg` init of a list), and a size handed to a constructor that fills it
//! (`bytearray(10**10)`, an ndarray's shape or a dtype's item size). What a library saves is
//! in the file, so a large object it rebuilds costs file bytes; neither shape is needed by a
//! real pickle, and either can exhaust a loading process's memory from a few dozen bytes.
//! Judged here, in one place, for every call, NEWOBJ and `copyreg` constructor a policy
//! allows by name.

use super::*;
use std::borrow::Cow;

/// Items a consumed lazy sequence may yield (each costs a pointer and usually an object).
pub(super) const MAX_CONSUMED_ITEMS: u64 = 1 << 20;
/// Bytes a constructor may be asked to allocate and fill from a size in the pickle.
pub(super) const MAX_SIZED_BYTES: u64 = 64 << 20;

/// The callables whose result stays lazy: handing them a lazy sequence consumes nothing.
const LAZY_MAKERS: [&str; 4] = [
    "builtins.range",
    "builtins.enumerate",
    "builtins.zip",
    "builtins.reversed",
];

enum Lazy {
    /// Not a lazy sequence: whatever it yields is in the file.
    No,
    Items(u64),
    /// A lazy sequence whose length the pickle does not state (a bound that is not a literal).
    Unknown,
}

/// Why calling `callee` (a policy-normalised qualified name) as `c` records it would allocate
/// without bound, if it would.
pub(super) fn unbounded(
    m: &Machine<'_>,
    j: &Judged<'_>,
    callee: &str,
    c: &CallNode,
    kwargs: Option<Value>,
) -> Option<String> {
    let args = positional(m, c.args);
    // The copyreg helpers call the class they are given: judge that inner call.
    let inner = |slot: usize| resolved_global(m, j, *args.get(slot)?, 0);
    match callee {
        "copyreg._reconstructor" => {
            let (_, base) = inner(1)?;
            let state = args.get(2).map(std::slice::from_ref).unwrap_or(&[]);
            return judge(m, j, base.qualname(), state, None);
        }
        "copyreg.__newobj__" => {
            let (_, cls) = inner(0)?;
            return judge(m, j, cls.qualname(), args.get(1..).unwrap_or(&[]), None);
        }
        "copyreg.__newobj_ex__" => {
            let (_, cls) = inner(0)?;
            let inner_args = args
                .get(1)
                .map(|a| positional(m, *a))
                .unwrap_or(Cow::Borrowed(&[]));
            return judge(m, j, cls.qualname(), &inner_args, args.get(2).copied());
        }
        _ => {}
    }
    judge(m, j, callee, &args, kwargs)
}

/// The items of an argument tuple (none for anything else), borrowed unless the tuple kept
/// some apart (`Node::extra`).
fn positional<'m>(m: &'m Machine<'_>, v: Value) -> Cow<'m, [Value]> {
    match m.args_of(v) {
        Some(n) if n.extra.is_empty() => Cow::Borrowed(&n.items[..]),
        Some(n) => Cow::Owned(n.items.iter().chain(n.extra.iter()).copied().collect()),
        None => Cow::Borrowed(&[]),
    }
}

fn judge(
    m: &Machine<'_>,
    j: &Judged<'_>,
    callee: &str,
    args: &[Value],
    kwargs: Option<Value>,
) -> Option<String> {
    let kw = keyword_values(m, kwargs);
    if !LAZY_MAKERS.contains(&callee) {
        let all = args.iter().copied().chain(kw.iter().map(|(_, v)| *v));
        for v in all {
            let why = match lazy_len(m, j, v, 0) {
                Lazy::No => continue,
                Lazy::Items(n) if n <= MAX_CONSUMED_ITEMS => continue,
                Lazy::Items(n) => format!("{n} items"),
                Lazy::Unknown => "a number of items the file does not state".to_string(),
            };
            return Some(format!(
                "it would consume {}, a lazy sequence of {why} (more than {MAX_CONSUMED_ITEMS}), \
                 allocating out of proportion to the file",
                render::render(m, v)
            ));
        }
    }
    let arg = |i: usize, name: &str| {
        args.get(i).copied().or_else(|| {
            kw.iter()
                .find(|(k, _)| k.as_deref() == Some(name))
                .map(|(_, v)| *v)
        })
    };
    let (bytes, what) = match callee {
        "builtins.bytes" | "builtins.bytearray" => match arg(0, "source")? {
            Value::Int(n) => (Some(n.max(0) as u64), "a size"),
            Value::BigInt => (None, "a size"),
            _ => return None,
        },
        "numpy.ndarray" => (
            array_bytes(m, arg(0, "shape"), arg(1, "dtype"))?,
            "a shape and dtype",
        ),
        "numpy.core.multiarray._reconstruct" | "numpy._core.multiarray._reconstruct" => (
            array_bytes(m, arg(1, "shape"), arg(2, "dtype"))?,
            "a shape and dtype",
        ),
        // _mareconstruct(subtype, baseclass, baseshape, basetype) makes the data and the mask.
        "numpy.ma.core._mareconstruct" => (
            array_bytes(m, arg(2, "baseshape"), arg(3, "basetype"))?,
            "a shape and dtype",
        ),
        "numpy.dtype" => (item_size(m, arg(0, "dtype")?)?, "a dtype"),
        _ => return None,
    };
    match bytes {
        Some(n) if n <= MAX_SIZED_BYTES => None,
        Some(n) => Some(format!(
            "it is handed {what} asking for about {n} bytes (more than {MAX_SIZED_BYTES}), \
             allocated out of proportion to the file"
        )),
        None => Some(format!(
            "it is handed {what} asking for more bytes than a 64-bit size holds, \
             allocated out of proportion to the file"
        )),
    }
}

/// The length of the lazy sequence `v` is, if it is one.
fn lazy_len(m: &Machine<'_>, j: &Judged<'_>, v: Value, depth: u32) -> Lazy {
    let Value::Call(c) = v else {
        return Lazy::No;
    };
    let call = &m.calls[c as usize];
    if depth > 16 || !matches!(call.kind, CallKind::Reduce | CallKind::NewObj) {
        return Lazy::No;
    }
    // The common case, a global called directly, without building its shown name.
    let resolved;
    let maker = match call.callable {
        Value::Global(g) => j.verdicts[g as usize].qualname(),
        other => match resolved_global(m, j, other, 0) {
            Some((_, v)) => {
                resolved = v;
                resolved.qualname()
            }
            None => return Lazy::No,
        },
    };
    let args: &[Value] = m.args_of(call.args).map(|n| &n.items[..]).unwrap_or(&[]);
    match maker {
        "builtins.range" => range_len(args),
        "builtins.enumerate" | "builtins.reversed" => match args.first() {
            Some(&a) => lazy_len(m, j, a, depth + 1),
            None => Lazy::No,
        },
        "builtins.zip" => {
            // As long as its shortest argument: lazy only when every argument is.
            let mut shortest: Option<Lazy> = None;
            for &a in args {
                shortest = Some(match (shortest, lazy_len(m, j, a, depth + 1)) {
                    (_, Lazy::No) => return Lazy::No,
                    (None, l) => l,
                    (Some(Lazy::Items(x)), Lazy::Items(y)) => Lazy::Items(x.min(y)),
                    (Some(Lazy::Items(x)), Lazy::Unknown)
                    | (Some(Lazy::Unknown), Lazy::Items(x)) => Lazy::Items(x),
                    (Some(_), _) => Lazy::Unknown,
                });
            }
            shortest.unwrap_or(Lazy::No)
        }
        _ => Lazy::No,
    }
}

/// `len(range(*args))` when every bound is a literal that fits 64 bits.
fn range_len(args: &[Value]) -> Lazy {
    let mut ints = [0i128; 3];
    for (slot, a) in ints.iter_mut().zip(args) {
        match a {
            Value::Int(n) => *slot = *n as i128,
            Value::Bool(b) => *slot = *b as i128,
            _ => return Lazy::Unknown,
        }
    }
    let (start, stop, step) = match args.len() {
        1 => (0, ints[0], 1),
        2 => (ints[0], ints[1], 1),
        3 => (ints[0], ints[1], ints[2]),
        _ => return Lazy::No,
    };
    let n = match step {
        0 => 0,
        s if s > 0 && stop > start => (stop - start + s - 1) / s,
        s if s < 0 && start > stop => (start - stop - s - 1) / -s,
        _ => 0,
    };
    Lazy::Items(n.min(u64::MAX as i128) as u64)
}

/// Bytes an array of `shape` and `dtype` takes: `Some(None)` for more than 64 bits hold,
/// `None` when the shape is no literal size (the call's schema judges it then).
fn array_bytes(m: &Machine<'_>, shape: Option<Value>, dtype: Option<Value>) -> Option<Option<u64>> {
    let items = match shape? {
        Value::Int(n) => Some(n.max(0) as u64),
        Value::BigInt => None,
        Value::Tuple(t) | Value::List(t) => {
            let node = &m.arena.nodes[t as usize];
            let mut p: Option<u64> = Some(1);
            for d in node.items.iter().chain(node.extra.iter()) {
                p = match d {
                    Value::Int(n) => p.and_then(|p| p.checked_mul(n.max(&0).unsigned_abs())),
                    Value::BigInt => None,
                    _ => return None,
                };
            }
            p
        }
        _ => return None,
    };
    // An item is at least a pointer (object arrays are filled with None when made).
    let size = match dtype {
        Some(d) => item_size(m, d).unwrap_or(Some(8)),
        None => Some(8),
    };
    Some(match (items, size) {
        (Some(i), Some(s)) => i.checked_mul(s.max(8)),
        _ => None,
    })
}

/// An upper estimate of the item size a dtype literal names: every number in it counts as a
/// size (`U10`, `V16`, `S1000`), summed over fields and multiplied by 4 for the widest
/// character; a subarray (`(1000,)O`) multiplies its counts. `None` when `v` is no literal.
fn item_size(m: &Machine<'_>, v: Value) -> Option<Option<u64>> {
    let text = match v {
        Value::Str(s) => m.arena.text(m.data, s).into_owned(),
        Value::Bytes(b) => String::from_utf8_lossy(m.arena.blob(m.data, b)).into_owned(),
        _ => return None,
    };
    let mut total: Option<u64> = Some(8);
    let mut factor: Option<u64> = Some(1);
    let mut digits = String::new();
    let mut in_sub = false;
    for ch in text.chars().chain(std::iter::once(' ')) {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        if !digits.is_empty() {
            let n: Option<u64> = digits.parse().ok();
            digits.clear();
            if in_sub {
                factor = factor.zip(n).and_then(|(f, n)| f.checked_mul(n.max(1)));
            } else {
                let field = n
                    .and_then(|n| n.checked_mul(4))
                    .zip(factor)
                    .and_then(|(n, f)| n.checked_mul(f));
                total = total.zip(field).and_then(|(t, x)| t.checked_add(x));
                factor = Some(1);
            }
        }
        match ch {
            '(' => in_sub = true,
            ')' => in_sub = false,
            ',' if !in_sub => factor = Some(1),
            _ => {}
        }
    }
    if factor != Some(1) {
        // A subarray of a named type (`(1000,)O`, `(3,)float64`): count it at 8 bytes an item.
        total = total
            .zip(factor)
            .and_then(|(t, f)| t.checked_add(f.checked_mul(8)?));
    }
    Some(total)
}

/// The (name, value) pairs of a keyword-argument dict; names that are not literal strings
/// come as `None`.
fn keyword_values(m: &Machine<'_>, kwargs: Option<Value>) -> Vec<(Option<String>, Value)> {
    let Some(Value::Dict(n)) = kwargs else {
        return Vec::new();
    };
    let node = &m.arena.nodes[n as usize];
    let mut out: Vec<(Option<String>, Value)> = node
        .items
        .chunks(2)
        .filter_map(|kv| match kv {
            [Value::Str(k), v] => Some((Some(m.arena.text(m.data, *k).into_owned()), *v)),
            [_, v] => Some((None, *v)),
            _ => None,
        })
        .collect();
    out.extend(node.extra.iter().map(|v| (None, *v)));
    out
}

#[cfg(test)]
mod tests {
    use super::{range_len, Lazy, MAX_CONSUMED_ITEMS};
    use crate::policy::{Mode, Policy};
    use crate::value::Value;

    fn verdict(body: &[u8]) -> (bool, String) {
        let mut data = vec![0x80, 2];
        data.extend_from_slice(body);
        data.push(b'.');
        let r = crate::analyze_pickle(&data, &Policy::new(Mode::Ml));
        let text = r
            .findings
            .iter()
            .map(|f| f.description.clone())
            .collect::<Vec<_>>()
            .join("; ");
        (r.is_safe, text)
    }

    fn int(n: i32) -> Vec<u8> {
        let mut v = vec![b'J'];
        v.extend_from_slice(&n.to_le_bytes());
        v
    }

    fn call1(module: &str, name: &str, arg: &[u8]) -> Vec<u8> {
        let mut v = format!("c{module}\n{name}\n").into_bytes();
        v.extend_from_slice(arg);
        v.extend_from_slice(&[0x85, b'R']);
        v
    }

    #[test]
    fn range_lengths_follow_python() {
        let len = |a: &[i64]| match range_len(&a.iter().map(|&n| Value::Int(n)).collect::<Vec<_>>())
        {
            Lazy::Items(n) => n,
            _ => u64::MAX,
        };
        assert_eq!(len(&[10]), 10);
        assert_eq!(len(&[-3]), 0);
        assert_eq!(len(&[2, 10]), 8);
        assert_eq!(len(&[0, 10, 3]), 4);
        assert_eq!(len(&[10, 0, -3]), 4);
        assert_eq!(len(&[0, 10, -1]), 0);
        assert_eq!(len(&[0, 10, 0]), 0);
        assert_eq!(len(&[i64::MIN, i64::MAX]), u64::MAX);
        assert!(matches!(range_len(&[Value::BigInt]), Lazy::Unknown));
    }

    #[test]
    fn consuming_a_long_lazy_sequence_is_refused() {
        let big = call1("builtins", "range", &int(1 << 30));
        for consumer in ["list", "tuple", "set", "frozenset", "bytes"] {
            let (safe, text) = verdict(&call1("builtins", consumer, &big));
            assert!(
                !safe && text.contains("lazy sequence"),
                "{consumer}: {text}"
            );
        }
        let e = call1("builtins", "enumerate", &big);
        let (safe, text) = verdict(&call1("builtins", "dict", &e));
        assert!(!safe && text.contains("lazy sequence"), "{text}");
        // Stored, a range is data; consumed at its stated small length, it is too.
        assert!(verdict(&big).0);
        let small = call1("builtins", "range", &int(MAX_CONSUMED_ITEMS as i32));
        assert!(verdict(&call1("builtins", "list", &small)).0);
        // A lazy sequence handed to another lazy maker stays lazy.
        assert!(verdict(&call1("builtins", "reversed", &big)).0);
    }

    #[test]
    fn sizes_and_shapes_beyond_the_bound_are_refused() {
        for name in ["bytes", "bytearray"] {
            let (safe, text) = verdict(&call1("builtins", name, &int(1 << 30)));
            assert!(
                !safe && text.contains("out of proportion"),
                "{name}: {text}"
            );
            assert!(verdict(&call1("builtins", name, &int(4096))).0);
        }
        let reconstruct = |shape: i32, dtype: &str| {
            let mut v = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n".to_vec();
            v.extend_from_slice(&int(shape));
            v.push(0x85);
            v.push(b'X');
            v.extend_from_slice(&(dtype.len() as u32).to_le_bytes());
            v.extend_from_slice(dtype.as_bytes());
            v.extend_from_slice(&[0x87, b'R']);
            v
        };
        assert!(verdict(&reconstruct(0, "b")).0);
        assert!(!verdict(&reconstruct(1 << 28, "O")).0);
        assert!(!verdict(&reconstruct(2, "(100000000,)O")).0);
        assert!(!verdict(&reconstruct(1, "V2000000000")).0);
        assert!(verdict(&reconstruct(16, "<U10")).0);
    }
}
