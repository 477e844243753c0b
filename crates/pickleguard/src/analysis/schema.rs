//! Argument rules and the `data` schema: what may flow into an operation.

#[allow(unused_imports)]
use super::*;
use crate::policy::{Grammar, MAX_GRAMMAR_LEN};

/// Deepest container nesting the `data` schema follows (deeper is refused: not shown to be data).
const MAX_DATA_DEPTH: u32 = 200;

/// The schema an operation applies to what flows in: `data`, with strings of a grammar when
/// the class's entry names one.
#[derive(Clone, Copy, Default)]
pub(super) struct Schema {
    pub(super) strings: Option<Grammar>,
}

impl Schema {
    pub(super) fn of(v: &GlobalVerdict) -> Schema {
        Schema {
            strings: v.behaviour.as_ref().and_then(|b| b.strings),
        }
    }
}

/// Whether `v` fits the `data` schema; else what does not (for the finding). Plain data,
/// containers of fitting values, objects made by calls (each judged where it is made), and
/// globals the policy allows to be stored: `value`, or `call` (a stored function is a call
/// deferred to its first use).
pub(super) fn data_misfit(
    m: &Machine<'_>,
    j: &Judged<'_>,
    schema: Schema,
    v: Value,
    depth: u32,
) -> Option<String> {
    match v {
        Value::Str(s) => {
            let g = schema.strings?;
            let ok = str_len(m, s) <= MAX_GRAMMAR_LEN * 4 && g.accepts(&m.arena.text(m.data, s));
            (!ok).then(|| {
                format!(
                    "the string {} (not of the `{}` grammar its code parses)",
                    render::str_lit(&m.arena.text(m.data, s), 80),
                    g.as_str()
                )
            })
        }
        _ if v.is_scalar_data() => None,
        Value::Call(_) => None,
        Value::Global(g) => {
            let gr = &m.globals[g as usize];
            let verdict = &j.verdicts[g as usize];
            let ok = gr.ext.is_none()
                && !gr.computed
                && verdict.danger.is_none()
                && verdict.allowed & (uses::VALUE | uses::CALL) != 0;
            (!ok).then(|| {
                format!(
                    "the global {} (stored, it is called later: the policy allows it neither as `call` nor as a `value`)",
                    j.name(m, g)
                )
            })
        }
        _ => {
            let n = v.node()?;
            if depth > MAX_DATA_DEPTH {
                return Some("containers nested too deep to check".into());
            }
            let memo = schema.strings.is_none();
            if memo {
                if let Some(Some(r)) = j.data.borrow().get(n as usize) {
                    return r.clone();
                }
            }
            let node = &m.arena.nodes[n as usize];
            // Most items of a model's state are scalars or objects made by calls, which fit
            // without a look (strings too, unless a grammar applies): the recursion is for
            // the rest.
            let r = node
                .all()
                .filter(|x| match x {
                    Value::Str(_) => schema.strings.is_some(),
                    Value::Call(_) => false,
                    _ => !x.is_scalar_data(),
                })
                .find_map(|x| data_misfit(m, j, schema, x, depth + 1));
            if memo {
                if let Some(slot) = j.data.borrow_mut().get_mut(n as usize) {
                    *slot = Some(r.clone());
                }
            }
            r
        }
    }
}

/// Whether the arguments fit a rule (`...` last: any further arguments, each `data`).
pub(super) fn rule_matches(
    m: &Machine<'_>,
    j: &Judged<'_>,
    trusted: &[bool],
    r: &Rule,
    args: Value,
) -> bool {
    let Some(node) = m.args_of(args) else {
        return false;
    };
    if node.len as usize != node.items.len() {
        return false;
    }
    let n = node.items.len();
    let rest = r.args.last() == Some(&ArgPattern::Rest);
    let fixed = r.args.len() - usize::from(rest);
    if n < r.min_args || (!rest && n > r.args.len()) {
        return false;
    }
    node.items
        .iter()
        .enumerate()
        .all(|(i, a)| match r.args.get(i) {
            Some(p) if i < fixed => arg_matches(m, j, trusted, p, *a),
            _ => data_misfit(m, j, Schema::default(), *a, 0).is_none(),
        })
}

pub(super) fn arg_matches(
    m: &Machine<'_>,
    j: &Judged<'_>,
    trusted: &[bool],
    p: &ArgPattern,
    v: Value,
) -> bool {
    match p {
        ArgPattern::Data | ArgPattern::Rest => data_misfit(m, j, Schema::default(), v, 0).is_none(),
        ArgPattern::Never => false,
        ArgPattern::Grammar(g) => match v {
            Value::Str(s) => {
                str_len(m, s) <= MAX_GRAMMAR_LEN * 4 && g.accepts(&m.arena.text(m.data, s))
            }
            _ => false,
        },
        ArgPattern::GlobalIs(names) => resolved_global(m, j, v, 0)
            .map(|(_, g)| names.iter().any(|n| n == g.qualname()))
            .unwrap_or(false),
        ArgPattern::Made(names) => match v {
            Value::Call(c) if trusted.get(c as usize).copied().unwrap_or(false) => {
                let call = &m.calls[c as usize];
                matches!(
                    call.kind,
                    CallKind::Reduce | CallKind::NewObj | CallKind::NewObjEx
                ) && resolved_global(m, j, call.callable, 0)
                    .map(|(_, g)| names.iter().any(|n| n == g.qualname()))
                    .unwrap_or(false)
            }
            _ => false,
        },
        ArgPattern::Str => matches!(v, Value::Str(_)),
        ArgPattern::Bytes => {
            matches!(v, Value::Bytes(_) | Value::ByteArray(_)) || codecs_bytes(m, j, v).is_some()
        }
        ArgPattern::Int => matches!(v, Value::Int(_) | Value::BigInt),
        ArgPattern::Float => matches!(v, Value::Float(_)),
        ArgPattern::Bool => matches!(v, Value::Bool(_)),
        ArgPattern::None => v == Value::None,
        ArgPattern::Tuple => matches!(v, Value::Tuple(_)),
        ArgPattern::List => matches!(v, Value::List(_)),
        ArgPattern::Dict => matches!(v, Value::Dict(_)),
        ArgPattern::IntTuple => match v {
            Value::Tuple(n) => {
                let node = &m.arena.nodes[n as usize];
                node.extra.is_empty()
                    && node
                        .items
                        .iter()
                        .all(|x| matches!(x, Value::Int(_) | Value::BigInt))
            }
            _ => false,
        },
        ArgPattern::Ident => match v {
            Value::Str(s) if str_len(m, s) <= MAX_NAME => {
                let t = m.arena.text(m.data, s);
                !t.is_empty()
                    && !t.starts_with('_')
                    && t.chars().all(|c| c.is_alphanumeric() || c == '_')
            }
            _ => false,
        },
        ArgPattern::Exact(t) => {
            matches!(v, Value::Str(s) if str_len(m, s) <= 4 * t.len() + 4 && m.arena.text(m.data, s) == t.as_str())
        }
        ArgPattern::Global | ArgPattern::GlobalCall | ArgPattern::GlobalNew => {
            let bits = match p {
                ArgPattern::GlobalCall => uses::CALL,
                ArgPattern::GlobalNew => uses::NEW,
                _ => uses::ALL,
            };
            resolved_global(m, j, v, 0)
                .map(|(_, g)| g.allowed & bits != 0 && g.danger.is_none())
                .unwrap_or(false)
        }
        ArgPattern::Instance => {
            matches!(v, Value::Call(c) if trusted.get(c as usize).copied().unwrap_or(false))
        }
        ArgPattern::Attr => match v {
            Value::Str(s) if str_len(m, s) <= MAX_NAME => {
                let t = m.arena.text(m.data, s);
                !t.is_empty()
                    && !t.starts_with("__")
                    && !t.chars().next().map(|c| c.is_ascii_digit()).unwrap_or(true)
                    && t.chars().all(|c| c.is_alphanumeric() || c == '_')
            }
            _ => false,
        },
        ArgPattern::Persistent => {
            matches!(v, Value::Call(c) if m.calls[c as usize].kind == CallKind::Persistent)
        }
        ArgPattern::OneOf(ps) => ps.iter().any(|p| arg_matches(m, j, trusted, p, v)),
    }
}

/// Whether a value made at load time traces back to something in the dangerous catalogue
/// (`getattr(__import__('os'), 'system')`).
pub(super) fn dangerous_value(m: &Machine<'_>, j: &Judged<'_>, v: Value, depth: u32) -> bool {
    // Only picks CRITICAL over HIGH for a call that is flagged anyway.
    if depth > 16 || !j.step() {
        return false;
    }
    match v {
        Value::Global(g) => j.verdicts[g as usize].danger.is_some(),
        Value::Call(c) => {
            let call = &m.calls[c as usize];
            dangerous_value(m, j, call.callable, depth + 1)
                || dangerous_value(m, j, call.args, depth + 1)
        }
        Value::Tuple(n) | Value::List(n) => m.arena.nodes[n as usize]
            .all()
            .any(|x| dangerous_value(m, j, x, depth + 1)),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
