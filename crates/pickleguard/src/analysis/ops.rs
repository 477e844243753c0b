//! Operations on objects the pickle made: BUILD, SETITEM(S) and APPEND(S)/ADDITEMS on objects
//! that are not plain containers, and `copyreg._reconstructor`'s `base.__init__`. Each runs a
//! method of the object's class, so the class must be granted the operation (see
//! docs/policy-format.md) and what flows in must fit the operation's schema.

#[allow(unused_imports)]
use super::*;
use crate::machine::Method;
use crate::policy::Op;

/// How a user allows an operation the policy refused (said in every such finding).
pub(super) fn fix_hint(class: &GlobalVerdict, op: Op) -> String {
    let (m, n) = (&class.module, &class.name);
    format!(
        "if {m}.{n}'s {} is known to be safe with this data: [[allow]] module = \"{m}\", name = \"{n}\", ops = [\"{}\"] with reviewed/note in a version 2 policy file, or --allow {m}:{n} / register_safe_class",
        op.runs(),
        op.as_str()
    )
}

/// The operation a fill opcode's method call is.
fn method_op(method: Method) -> Op {
    match method {
        Method::SetItem => Op::SetItem,
        Method::Append | Method::Extend | Method::Add => Op::Append,
    }
}

/// APPEND(S) / SETITEM(S) / ADDITEMS on an object the pickle made: the target must be trusted,
/// its class granted `setitem` / `append`, and the items must fit its schema.
pub(super) fn judge_method(
    m: &Machine<'_>,
    j: &Judged<'_>,
    trusted: &[bool],
    c: &CallNode,
    method: Method,
    out: &mut Report,
) -> bool {
    let name = method.name();
    let target = match c.callable {
        Value::Call(t) if trusted[t as usize] => t,
        _ => {
            let target = render::render(m, c.callable);
            let sev = if dangerous_value(m, j, c.callable, 0) {
                Severity::Critical
            } else {
                Severity::High
            };
            let mut f = call_finding(
                m,
                FindingType::DynamicCall,
                sev,
                c,
                format!("{target}.{name}"),
                format!("calls {target}.{name}(...) on an object that is not a plain container"),
            );
            f.module = None;
            f.name = None;
            out.push(f);
            return false;
        }
    };
    if m.calls[target as usize].kind == CallKind::Persistent {
        // The loader's persistent_load hook made it (torch storages): not a class of the policy.
        return true;
    }
    if method == Method::SetItem && sets_special_name(m, c.args) {
        // A custom __setitem__ may turn keys into attributes (transformers' ModelOutput does):
        // a key naming a special method would plant it on the object.
        let target = render::render(m, c.callable);
        let mut f = call_finding(
            m,
            FindingType::AttributeInjection,
            Severity::High,
            c,
            format!("{target}.{name}"),
            format!("SETITEMS hands {target}.{name} a key that names a special method"),
        );
        f.module = None;
        f.name = None;
        out.push(f);
        return false;
    }
    let op = method_op(method);
    let Some((shown, class)) = maker(m, j, target, 0) else {
        return refuse_unknown(m, c, op, name, out);
    };
    if class.allowed & op.bit() == 0 || class.danger.is_some() {
        let mut f = call_finding(
            m,
            FindingType::DynamicCall,
            Severity::High,
            c,
            format!("{shown}.{name}"),
            format!(
                "{} on a {shown} object runs {shown}.{name}: the policy does not allow `{}` on {shown}; {}",
                fill_opcode(method),
                op.as_str(),
                fix_hint(&class, op)
            ),
        );
        f.module = Some(class.module.clone());
        f.name = Some(class.name.clone());
        out.push(f);
        return false;
    }
    if let Some(why) = data_misfit(m, j, Schema::of(&class), c.args, 0) {
        let mut f = call_finding(
            m,
            FindingType::DynamicCall,
            Severity::High,
            c,
            format!("{shown}.{name}"),
            format!("{} hands {shown}.{name} {why}", fill_opcode(method)),
        );
        f.module = Some(class.module.clone());
        f.name = Some(class.name.clone());
        out.push(f);
        return false;
    }
    true
}

/// Whether a SETITEM(S) key is a string naming a special method (`__class__`, `__reduce__`).
fn sets_special_name(m: &Machine<'_>, args: Value) -> bool {
    let Value::Dict(n) = args else {
        return false;
    };
    let node = &m.arena.nodes[n as usize];
    // Pairs, flattened: kept items first, then the pairs past them that are not scalars.
    node.items
        .chunks(2)
        .chain(node.extra.chunks(2))
        .any(|kv| matches!(kv[0], Value::Str(k) if names_special_method(m, k)))
}

fn fill_opcode(method: Method) -> &'static str {
    match method {
        Method::SetItem => "SETITEMS",
        Method::Append | Method::Extend => "APPENDS",
        Method::Add => "ADDITEMS",
    }
}

fn refuse_unknown(m: &Machine<'_>, c: &CallNode, op: Op, name: &str, out: &mut Report) -> bool {
    let target = render::render(m, c.callable);
    let mut f = call_finding(
        m,
        FindingType::DynamicCall,
        Severity::High,
        c,
        format!("{target}.{name}"),
        format!(
            "`{}` on {target}, whose class the policy cannot tell: it runs unknown code",
            op.as_str()
        ),
    );
    f.module = None;
    f.name = None;
    out.push(f);
    false
}

/// BUILD on an object the pickle made (not a partial): its class must be granted `build`
/// and the state must fit: the entry's per-key patterns, the rest `data`.
pub(super) fn judge_build_op(
    m: &Machine<'_>,
    j: &Judged<'_>,
    trusted: &[bool],
    c: &CallNode,
    target: CallId,
    out: &mut Report,
) -> bool {
    if m.calls[target as usize].kind == CallKind::Persistent {
        return true;
    }
    let Some((shown, class)) = maker(m, j, target, 0) else {
        let target = render::render(m, c.callable);
        out.push(Finding::new(
            FindingType::AttributeInjection,
            Severity::High,
            c.pos,
            format!("BUILD on {target}, whose class the policy cannot tell: its __setstate__ is unknown code"),
        ));
        return false;
    };
    let push = |out: &mut Report, desc: String| {
        let mut f = Finding::new(FindingType::AttributeInjection, Severity::High, c.pos, desc);
        f.module = Some(class.module.clone());
        f.name = Some(class.name.clone());
        f.callable = Some(format!("{shown}.__setstate__"));
        out.push(f);
    };
    if class.allowed & uses::BUILD == 0 || class.danger.is_some() {
        push(
            out,
            format!(
                "BUILD on a {shown} object runs its __setstate__ (or sets its attributes): the policy does not allow `build` on {shown}; {}",
                fix_hint(&class, Op::Build)
            ),
        );
        return false;
    }
    let schema = Schema::of(&class);
    let keyed = class
        .behaviour
        .as_ref()
        .map(|b| &b.state[..])
        .unwrap_or(&[]);
    for (key, pattern) in keyed {
        let value = state_value(m, c.args, key);
        let ok = match value {
            Some(v) => arg_matches(m, j, trusted, pattern, v),
            None => true,
        };
        if !ok {
            push(
                out,
                format!(
                    "BUILD hands {shown}.__setstate__ a `{key}` its code would run or parse, and the value does not fit the policy's pattern for it"
                ),
            );
            return false;
        }
    }
    if let Some(why) = data_misfit(m, j, schema, c.args, 0) {
        push(out, format!("BUILD hands {shown}.__setstate__ {why}"));
        return false;
    }
    true
}

/// The value of `key` in a BUILD state (a dict, or the dict of `(dict, slotstate)`).
fn state_value(m: &Machine<'_>, state: Value, key: &str) -> Option<Value> {
    let dicts: &[Value] = match state {
        Value::Tuple(n) if m.arena.nodes[n as usize].len == 2 => &m.arena.nodes[n as usize].items,
        _ => std::slice::from_ref(&state),
    };
    dicts.iter().find_map(|&d| dict_get(m, d, key))
}

/// `copyreg._reconstructor(cls, base, state)`: unless `base` is `object`, CPython runs
/// `base.__init__(obj, state)`: `base` must be granted `init`, and `state` fit its schema.
pub(super) fn judge_reconstructor_init(
    m: &Machine<'_>,
    j: &Judged<'_>,
    c: &CallNode,
    name: &str,
    out: &mut Report,
) -> bool {
    let Some(args) = m.args_of(c.args) else {
        return false;
    };
    let (Some(base), state) = (args.items.get(1).copied(), args.items.get(2).copied()) else {
        return false;
    };
    let Some((shown, base)) = resolved_global(m, j, base, 0) else {
        return false;
    };
    if base.qualname() == "builtins.object" {
        return true;
    }
    let push = |out: &mut Report, desc: String| {
        out.push(call_finding(
            m,
            FindingType::ReduceCall,
            Severity::High,
            c,
            name.to_string(),
            desc,
        ));
    };
    if base.allowed & uses::INIT == 0 || base.danger.is_some() {
        push(
            out,
            format!(
                "{name} runs {shown}.__init__(obj, state) with the pickle's state: the policy does not allow `init` on {shown}; {}",
                fix_hint(&base, Op::Init)
            ),
        );
        return false;
    }
    if let Some(why) = state.and_then(|s| data_misfit(m, j, Schema::of(&base), s, 0)) {
        push(out, format!("{name} hands {shown}.__init__ {why}"));
        return false;
    }
    true
}

#[cfg(test)]
mod tests;
