//! BUILD: what setting state on an object runs, and which state keys are special.

#[allow(unused_imports)]
use super::*;

pub(super) fn judge_build(
    m: &Machine<'_>,
    policy: &Policy,
    j: &Judged<'_>,
    trusted: &[bool],
    c: &CallNode,
    out: &mut Report,
) -> bool {
    let state = state_summary(m, j, c.args);
    let has_dunder = state.dunder;
    let shown_keys = || state.shown(m, c.args);
    match c.callable {
        Value::Global(g) => {
            let name = j.name(m, g).to_string();
            let sev = if j.verdicts[g as usize].danger.is_some() {
                Severity::Critical
            } else {
                Severity::High
            };
            let mut f = Finding::new(
                FindingType::AttributeInjection,
                sev,
                c.pos,
                format!("BUILD sets attributes {} on {name} itself (a module, class or function), changing code that runs later", shown_keys()),
            );
            f.callable = Some(name);
            out.push(f);
            false
        }
        Value::Call(t) => {
            if has_dunder {
                let target = render::render(m, c.callable);
                out.push(Finding::new(
                    FindingType::AttributeInjection,
                    Severity::High,
                    c.pos,
                    format!("BUILD sets special attributes {} on {target}", shown_keys()),
                ));
                return false;
            }
            if policy.mode == Mode::Strict {
                return false;
            }
            if is_partial(m, j, t) && trusted[t as usize] {
                // BUILD on a functools.partial sets (func, args, keywords, dict): the new
                // func is what a later call runs, so it must be callable under the policy.
                let func = m.args_of(c.args).and_then(|n| n.items.first().copied());
                let ok = func
                    .and_then(|f| resolved_global(m, j, f, 0))
                    .map(|(_, v)| v.allowed & uses::CALL != 0 && v.danger.is_none())
                    .unwrap_or(false);
                if !ok {
                    let shown = func
                        .map(|f| render::render(m, f))
                        .unwrap_or_else(|| "?".into());
                    out.push(Finding::new(
                        FindingType::DynamicCall,
                        Severity::High,
                        c.pos,
                        format!("BUILD makes a functools.partial call {shown}, which the policy does not allow"),
                    ));
                }
                return ok;
            }
            trusted[t as usize] && judge_build_op(m, j, trusted, c, t, out)
        }
        _ => true,
    }
}

/// Attribute names Python itself looks up and calls (or that swap an object's type or dict):
/// setting one on an instance makes later loading or use run the planted value. Data dunders
/// such as `__doc__` or a library's `__networkx_cache__` are ordinary state.
pub(super) const SPECIAL_METHODS: &[&str] = &[
    "__setstate__",
    "__getstate__",
    "__reduce__",
    "__reduce_ex__",
    "__class__",
    "__dict__",
    "__getattr__",
    "__getattribute__",
    "__setattr__",
    "__delattr__",
    "__init__",
    "__new__",
    "__call__",
    "__del__",
    "__get__",
    "__set__",
    "__delete__",
    "__set_name__",
    "__eq__",
    "__ne__",
    "__hash__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__repr__",
    "__str__",
    "__format__",
    "__bytes__",
    "__bool__",
    "__len__",
    "__iter__",
    "__next__",
    "__reversed__",
    "__contains__",
    "__getitem__",
    "__setitem__",
    "__delitem__",
    "__missing__",
    "__enter__",
    "__exit__",
    "__index__",
    "__int__",
    "__float__",
    "__complex__",
    "__fspath__",
    "__init_subclass__",
    "__class_getitem__",
    "__instancecheck__",
    "__subclasscheck__",
    "__copy__",
    "__deepcopy__",
    "__getnewargs__",
    "__getnewargs_ex__",
    "__array__",
    "__array_wrap__",
    "__array_finalize__",
    "__array_ufunc__",
    "__array_function__",
    "__torch_function__",
    "__torch_dispatch__",
    "__await__",
    "__aiter__",
    "__anext__",
    "__aenter__",
    "__aexit__",
    "__add__",
    "__radd__",
    "__iadd__",
    "__mul__",
    "__matmul__",
    "__builtins__",
    "__globals__",
    "__code__",
    "__closure__",
    "__defaults__",
    "__kwdefaults__",
    "__wrapped__",
    "__func__",
    "__self__",
    "__import__",
    "__loader__",
    "__spec__",
];

/// Whether a string is the name of one of the [`SPECIAL_METHODS`].
// Inlined: it runs for every key of every BUILD state, and most keys fail the first checks.
#[inline]
pub(super) fn names_special_method(m: &Machine<'_>, k: StrId) -> bool {
    let raw = m.arena.text_bytes(m.data, k);
    raw.len() > 4 && raw.starts_with(b"__") && raw.ends_with(b"__") && is_special_method(m, k)
}

#[inline(never)]
fn is_special_method(m: &Machine<'_>, k: StrId) -> bool {
    SPECIAL_METHODS.contains(&m.arena.text(m.data, k).as_ref())
}

/// A BUILD state: whether it sets a special attribute, and its keys as findings show them
/// (made only when a finding needs them).
pub(super) struct StateSummary<'a, 'p> {
    pub(super) dunder: bool,
    j: &'a Judged<'p>,
}

/// Computed once per state value (one memoised state of 40k keys applied by 100k BUILDs),
/// cached without an allocation: a model's pickle has a BUILD per object.
pub(super) fn state_summary<'a, 'p>(
    m: &Machine<'_>,
    j: &'a Judged<'p>,
    state: Value,
) -> StateSummary<'a, 'p> {
    let slot = match state {
        Value::Dict(n) | Value::Tuple(n) => j.states.get(n as usize),
        _ => None,
    };
    if let Some(known) = slot.map(Cell::get).filter(|&s| s != 0) {
        return StateSummary {
            dunder: known == 2,
            j,
        };
    }
    let mut dunder = false;
    for_state_keys(m, state, |k| {
        dunder = names_special_method(m, k);
        !dunder
    });
    if let Some(slot) = slot {
        slot.set(if dunder { 2 } else { 1 });
    }
    StateSummary { dunder, j }
}

impl StateSummary<'_, '_> {
    pub(super) fn shown(&self, m: &Machine<'_>, state: Value) -> String {
        let key = match state {
            Value::Dict(n) | Value::Tuple(n) => Some(n),
            _ => None,
        };
        if let Some(s) = key.and_then(|k| self.j.shown_states.borrow().get(&k).cloned()) {
            return s;
        }
        let mut keys = String::new();
        for_state_keys(m, state, |k| {
            if !keys.is_empty() {
                keys.push_str(", ");
            }
            keys.push_str(&m.arena.text(m.data, k));
            keys.len() <= 120
        });
        let shown = if keys.is_empty() {
            "(from its state)".to_string()
        } else {
            render::shorten(keys, 120)
        };
        if let Some(k) = key {
            self.j.shown_states.borrow_mut().insert(k, shown.clone());
        }
        shown
    }
}

/// Each attribute name a BUILD state sets (a dict, or `(dict, slotstate)`), until `f` says stop.
pub(super) fn for_state_keys(m: &Machine<'_>, state: Value, mut f: impl FnMut(StrId) -> bool) {
    let dicts: &[Value] = match state {
        Value::Tuple(n) if m.arena.nodes[n as usize].len == 2 => &m.arena.nodes[n as usize].items,
        _ => std::slice::from_ref(&state),
    };
    for d in dicts {
        if let Value::Dict(n) = *d {
            let node = &m.arena.nodes[n as usize];
            for kv in node.items.chunks(2).chain(node.extra.chunks(2)) {
                if let Value::Str(s) = kv[0] {
                    if !f(s) {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
