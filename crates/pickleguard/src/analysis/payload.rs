//! Literal arguments: decoding chains, code strings, nested and encoded pickles.

#[allow(unused_imports)]
use super::*;

/// Look inside the arguments of a call that was not accepted: pickles handed to a loader,
/// code handed to an interpreter, and encoded forms of either (also when the decoding itself
/// happens while loading, e.g. `exec(base64.b64decode('...'))`).
pub(super) fn examine_literals(
    m: &Machine<'_>,
    policy: &Policy,
    ctx: &Context,
    j: &Judged<'_>,
    c: &CallNode,
    category: Option<Category>,
    out: &mut Report,
) {
    let Some(node) = m.args_of(c.args) else {
        return;
    };
    let name = render::render(m, c.callable);
    let cat = match category {
        None => 0u8,
        Some(Category::Deserialization) => 1,
        Some(Category::CodeExecution | Category::DebuggerRunner) => 2,
        Some(_) => 3,
    };
    for a in node.items.iter().copied() {
        let key = match a {
            Value::Str(i) => (0u8, i),
            Value::Bytes(i) | Value::ByteArray(i) => (1, i),
            Value::Call(i) => (2, i),
            _ => continue,
        };
        if !j.examined.borrow_mut().insert((key.0, key.1, cat)) {
            continue;
        }
        let Some(lit) = evaluate(m, j, a, 0) else {
            continue;
        };
        if let Some(how) = &lit.how {
            // Text as a str literal; anything else (a pickle) as the bytes it is.
            let shown = match std::str::from_utf8(&lit.bytes) {
                Ok(t) => render::str_lit(t, 160),
                Err(_) => {
                    let mut out = String::new();
                    render::py_bytes(&lit.bytes, &mut out, 160);
                    out
                }
            };
            let mut f = Finding::new(
                FindingType::Obfuscation,
                if category.is_some() {
                    Severity::Critical
                } else {
                    Severity::High
                },
                c.pos,
                format!("an argument of {name} is decoded while loading ({how}): {shown}"),
            );
            f.callable = Some(name.clone());
            out.push(f);
        }
        match category {
            Some(Category::Deserialization) => {
                // Protocol 0-2 pickles of bytes come through as latin-1 text.
                let blob = if lit.text {
                    latin1(&String::from_utf8_lossy(&lit.bytes))
                } else {
                    lit.bytes.clone()
                };
                nested_payload(
                    policy,
                    ctx,
                    c,
                    &name,
                    &blob,
                    "hands a serialized payload to",
                    out,
                );
                continue;
            }
            Some(Category::CodeExecution | Category::DebuggerRunner) => {
                code_string(c, &name, &String::from_utf8_lossy(&lit.bytes), out);
                continue;
            }
            _ => {}
        }
        obfuscated(policy, ctx, c, &name, &lit.bytes, 0, out);
    }
    if ctx.scan.budget.decode_limit_unreported() {
        limit_finding(out, c.pos as usize, Limit::DecodedArguments);
    }
}

/// A literal argument, possibly computed by decoding calls made while loading.
pub(super) struct Literal {
    pub(super) bytes: Vec<u8>,
    pub(super) text: bool,
    /// The decoding steps that produced it, if any.
    pub(super) how: Option<String>,
}

/// Evaluate a value that is a literal or a chain of pure decoding calls on literals.
pub(super) fn evaluate(m: &Machine<'_>, j: &Judged<'_>, v: Value, depth: u32) -> Option<Literal> {
    let lit = |bytes: Vec<u8>, text: bool| Literal {
        bytes,
        text,
        how: None,
    };
    match v {
        Value::Str(s) => {
            let t = m.arena.text(m.data, s);
            if !charge(j.budget, t.len()) {
                return None;
            }
            return Some(lit(t.into_owned().into_bytes(), true));
        }
        Value::Bytes(b) | Value::ByteArray(b) => {
            let b = m.arena.blob(m.data, b);
            if !charge(j.budget, b.len()) {
                return None;
            }
            return Some(lit(b.to_vec(), false));
        }
        Value::Call(_) if depth < 6 => {}
        _ => return None,
    }
    let Value::Call(c) = v else { return None };
    let call = &m.calls[c as usize];
    if call.kind != CallKind::Reduce {
        return None;
    }
    let args = m.args_of(call.args)?;
    let arg = |i: usize| {
        args.items
            .get(i)
            .copied()
            .and_then(|a| evaluate(m, j, a, depth + 1))
    };
    let text_arg = |i: usize| match args.items.get(i) {
        Some(Value::Str(s)) => Some(m.arena.text(m.data, *s).to_ascii_lowercase()),
        _ => None,
    };
    let chain = |inner: &Literal, step: &str| match &inner.how {
        Some(h) => format!("{h}, then {step}"),
        None => step.to_string(),
    };
    let max = j
        .policy
        .limits
        .max_decoded
        .min(j.budget.decoded_left() as usize);
    // `sep.join([...])` through getattr(sep, 'join').
    if let Value::Call(g) = call.callable {
        let gc = &m.calls[g as usize];
        let gargs = m.args_of(gc.args)?;
        if let (Value::Global(f), [Value::Str(sep), Value::Str(meth)]) =
            (gc.callable, gargs.items.as_slice())
        {
            if j.verdicts[f as usize].qualname() == "builtins.getattr"
                && m.arena.text(m.data, *meth) == "join"
            {
                let list = args.items.first().and_then(|l| l.node())?;
                let node = &m.arena.nodes[list as usize];
                let mut parts = Vec::new();
                for p in node.items.iter() {
                    parts.push(evaluate(m, j, *p, depth + 1)?.bytes);
                }
                let sep = m.arena.text(m.data, *sep).into_owned().into_bytes();
                let total = parts.iter().map(|p| p.len() + sep.len()).sum::<usize>();
                if !charge(j.budget, total) {
                    return None;
                }
                return Some(Literal {
                    bytes: parts.join(&sep[..]),
                    text: true,
                    how: Some("str.join".into()),
                });
            }
        }
        return None;
    }
    let Value::Global(f) = call.callable else {
        return None;
    };
    let q = j.verdicts[f as usize].qualname();
    let (step, out): (&str, Option<Vec<u8>>) = match q {
        "_codecs.encode" | "codecs.encode" | "_codecs.decode" | "codecs.decode" => {
            let inner = arg(0)?;
            let enc = text_arg(1).unwrap_or_else(|| "utf-8".into());
            let out = match enc.as_str() {
                "rot13" | "rot_13" => Some(rot13(&inner.bytes)),
                "base64" | "base64_codec" | "base_64" => decode::base64(&inner.bytes, max),
                "hex" | "hex_codec" => decode::unwrap_once(&inner.bytes, max)
                    .into_iter()
                    .find(|d| d.how == "hex")
                    .map(|d| d.bytes),
                "zlib" | "zlib_codec" | "zip" => decode::unwrap_once(&inner.bytes, max)
                    .into_iter()
                    .find(|d| d.how == "zlib")
                    .map(|d| d.bytes),
                "latin1" | "latin-1" | "iso-8859-1" => {
                    Some(latin1(&String::from_utf8_lossy(&inner.bytes)))
                }
                _ => Some(inner.bytes.clone()),
            };
            let step = if matches!(
                enc.as_str(),
                "latin1" | "latin-1" | "iso-8859-1" | "utf-8" | "utf8"
            ) {
                ""
            } else {
                "codecs"
            };
            if !out
                .as_ref()
                .map(|b| charge(j.budget, b.len()))
                .unwrap_or(true)
            {
                return None;
            }
            if step.is_empty() {
                return out.map(|b| Literal {
                    bytes: b,
                    text: false,
                    how: inner.how.clone(),
                });
            }
            let out = out?;
            return Some(Literal {
                bytes: out,
                text: true,
                how: Some(chain(&inner, &format!("codecs {enc}"))),
            });
        }
        "base64.b64decode"
        | "base64.standard_b64decode"
        | "base64.urlsafe_b64decode"
        | "base64.decodebytes"
        | "base64.decodestring"
        | "binascii.a2b_base64" => ("base64", arg(0).and_then(|i| decode::base64(&i.bytes, max))),
        "base64.b16decode"
        | "binascii.unhexlify"
        | "binascii.a2b_hex"
        | "builtins.bytes.fromhex"
        | "builtins.bytearray.fromhex" => (
            "hex",
            arg(0).and_then(|i| {
                decode::unwrap_once(&i.bytes, max)
                    .into_iter()
                    .find(|d| d.how == "hex")
                    .map(|d| d.bytes)
            }),
        ),
        "zlib.decompress" | "gzip.decompress" => (
            "zlib",
            arg(0).and_then(|i| {
                decode::unwrap_once(&i.bytes, max)
                    .into_iter()
                    .next()
                    .map(|d| d.bytes)
            }),
        ),
        _ => return None,
    };
    let inner = arg(0)?;
    let out = out?;
    if !charge(j.budget, out.len()) {
        return None;
    }
    Some(Literal {
        bytes: out,
        text: false,
        how: Some(chain(&inner, step)),
    })
}

pub(super) fn rot13(b: &[u8]) -> Vec<u8> {
    b.iter()
        .map(|&c| match c {
            b'a'..=b'z' => (c - b'a' + 13) % 26 + b'a',
            b'A'..=b'Z' => (c - b'A' + 13) % 26 + b'A',
            _ => c,
        })
        .collect()
}

pub(super) fn latin1(t: &str) -> Vec<u8> {
    t.chars()
        .map(|c| if (c as u32) < 256 { c as u8 } else { b'?' })
        .collect()
}

/// Code that runs nothing: empty, blank, or one name (evaluating a name calls nothing). Such
/// literals are the other arguments of code runners (`compile`'s mode `"exec"`, an empty
/// globals name), not code worth a finding; the call itself is judged on its own.
fn inert_code(t: &str) -> bool {
    let t = t.trim();
    let name = |s: &str| {
        s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !s.as_bytes().first().is_some_and(u8::is_ascii_digit)
    };
    // `<string>`, compile's usual file name, is no Python at all (a syntax error).
    let placeholder = t
        .strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .is_some_and(name);
    t.is_empty() || name(t) || placeholder
}

pub(super) fn code_string(c: &CallNode, name: &str, t: &str, out: &mut Report) {
    if inert_code(t) {
        return;
    }
    let imports = decode::imported_modules(t);
    let mut desc = format!("passes Python code to {name}: {}", render::str_lit(t, 160));
    if !imports.is_empty() {
        desc.push_str(&format!(" (imports {})", imports.join(", ")));
    }
    let mut f = Finding::new(FindingType::CodeString, Severity::Critical, c.pos, desc);
    f.callable = Some(name.to_string());
    out.push(f);
}

pub(super) fn nested_payload(
    policy: &Policy,
    ctx: &Context,
    c: &CallNode,
    name: &str,
    blob: &[u8],
    verb: &str,
    out: &mut Report,
) {
    if ctx.scan.depth() + 1 > policy.limits.max_nesting {
        limit_finding(out, c.pos as usize, Limit::NestingDepth);
        return;
    }
    let label = Segment::NestedIn {
        callable: name.to_string(),
        at: c.pos,
    };
    let inner = ctx.scan.within(&label, || ctx.scan.nested(blob));
    let mut f = Finding::new(
        FindingType::NestedPickle,
        inner.risk_level.max(Severity::High),
        c.pos,
        format!(
            "{verb} {name}: an embedded {} of {} bytes, analysed too (risk {})",
            inner.format,
            blob.len(),
            inner.risk_level.as_str()
        ),
    );
    f.callable = Some(name.to_string());
    out.push(f);
    out.absorb(inner, Some(&label));
}

pub(super) fn obfuscated(
    policy: &Policy,
    ctx: &Context,
    c: &CallNode,
    name: &str,
    raw: &[u8],
    level: u32,
    out: &mut Report,
) {
    if level >= 3 {
        return;
    }
    let max = policy
        .limits
        .max_decoded
        .min(ctx.scan.budget.decoded_left() as usize);
    for d in decode::unwrap_once(raw, max) {
        if !charge(&ctx.scan.budget, d.bytes.len()) {
            return;
        }
        let text = std::str::from_utf8(&d.bytes).ok();
        let markers = text.map(decode::code_markers).unwrap_or_default();
        if !markers.is_empty() {
            let shown = render::str_lit(text.unwrap_or_default(), 160);
            let mut f = Finding::new(
                FindingType::Obfuscation,
                Severity::High,
                c.pos,
                format!("an argument of {name} is {}-encoded code: {shown}", d.how),
            );
            f.callable = Some(name.to_string());
            out.push(f);
        } else if looks_like_pickle(&d.bytes) {
            if ctx.scan.depth() + 1 > policy.limits.max_nesting {
                limit_finding(out, c.pos as usize, Limit::NestingDepth);
                return;
            }
            let label = Segment::DecodedArgument {
                how: d.how.to_string(),
                callable: name.to_string(),
                at: c.pos,
            };
            let inner = ctx.scan.within(&label, || ctx.scan.nested(&d.bytes));
            let mut f = Finding::new(
                FindingType::Obfuscation,
                inner.risk_level.max(Severity::High),
                c.pos,
                format!(
                    "an argument of {name} is a {}-encoded pickle (risk {})",
                    d.how,
                    inner.risk_level.as_str()
                ),
            );
            f.callable = Some(name.to_string());
            out.push(f);
            out.absorb(inner, Some(&label));
        } else {
            obfuscated(policy, ctx, c, name, &d.bytes, level + 1, out);
        }
    }
}

pub(super) fn looks_like_pickle(b: &[u8]) -> bool {
    matches!(b, [0x80, 1..=5, ..])
        || b.ends_with(b".")
            && b.first()
                .map(|c| crate::opcodes::Op::from_byte(*c).is_some())
                .unwrap_or(false)
}

#[cfg(test)]
mod tests;
