//! Judging imports and calls: REDUCE, INST, OBJ, NEWOBJ(_EX), method calls on objects, and
//! files handed to a nested loader.

#[allow(unused_imports)]
use super::*;

/// [`judge`] for a later pickle of a stream, whose findings carry `member`.
pub(super) fn judge_member(
    m: &Machine<'_>,
    policy: &Policy,
    ctx: &Context,
    out: &mut Report,
    member: Option<&Segment>,
) {
    match member {
        Some(label) => ctx.scan.within(label, || judge(m, policy, ctx, out)),
        None => judge(m, policy, ctx, out),
    }
    side_files(m, out);
    memo_bomb(m, out);
}

/// A memo index no pickler writes, which makes the C unpickler fill gigabytes before it reads
/// on: loading the file runs the process out of memory, even if the stream breaks after it.
fn memo_bomb(m: &Machine<'_>, out: &mut Report) {
    let Some((pos, idx)) = m.memo_bomb else {
        return;
    };
    let op = m
        .data
        .get(pos)
        .and_then(|&b| crate::opcodes::Op::from_byte(b))
        .map_or("PUT", |o| o.name());
    out.push(Finding::new(
        FindingType::Malformed,
        Severity::High,
        pos as u64,
        format!(
            "{op} stores at memo index {idx}, where a pickler numbers entries from 0, at most one per byte before it: the C unpickler grows its memo table to {} MiB and clears it before it reads on",
            (idx as u128 * 16) >> 20
        ),
    ));
}

/// Turn what the machine recorded for one pickle into findings and a globals summary.
pub(super) fn judge(m: &Machine<'_>, policy: &Policy, ctx: &Context, out: &mut Report) {
    let j = Judged::new(m, policy, ctx);
    let mut used: Vec<u8> = vec![0; m.globals.len()];

    let first = out.findings.len();
    let mut passed = vec![false; m.globals.len()];
    let mut failed = vec![false; m.globals.len()];
    // Calls, in stream order: a call whose callable or target is trusted was judged before.
    let mut trusted: Vec<bool> = vec![false; m.calls.len()];
    for (ci, c) in m.calls.iter().enumerate() {
        trusted[ci] = judge_call(
            m,
            policy,
            ctx,
            &j,
            &mut used,
            &trusted,
            ci as CallId,
            c,
            out,
        );
        if let Value::Global(g) = c.callable {
            if trusted[ci] {
                passed[g as usize] = true;
            } else {
                failed[g as usize] = true;
            }
        }
    }

    let mut imports = Vec::new();
    // Imports (reported before the calls they feed).
    for (i, g) in m.globals.iter().enumerate() {
        let v = &j.verdicts[i];
        let mut f = if let Some(code) = g.ext {
            Finding::new(
                FindingType::ExtensionCode,
                Severity::High,
                g.pos,
                format!("{} {code}: imports whatever copyreg's extension registry maps code {code} to when loading", g.op.name()),
            )
        } else if g.computed {
            Finding::new(
                FindingType::UnknownImport,
                Severity::High,
                g.pos,
                "STACK_GLOBAL imports a name computed at load time".to_string(),
            )
        } else if v.danger.is_some() && v.allowed != 0 && passed[i] && !failed[i] {
            // A dangerous name the profile accepts only through argument rules, and every
            // call of it here met them.
            continue;
        } else if let Some(d) = &v.danger {
            Finding::new(
                FindingType::DangerousImport,
                d.severity,
                g.pos,
                format!(
                    "imports {}.{}: {} ({})",
                    g.module, g.name, d.description, d.category
                ),
            )
        } else if v.allowed == 0 {
            let why = match policy.mode {
                Mode::Strict => "strict mode allows no imports".to_string(),
                m => format!("not in the {} policy", m.as_str()),
            };
            Finding::new(
                FindingType::UnknownImport,
                Severity::Medium,
                g.pos,
                format!("imports {}.{}: {why}", g.module, g.name),
            )
        } else {
            continue;
        };
        if g.ext.is_none() {
            f.module = Some(g.module.clone());
            f.name = Some(g.name.clone());
        }
        if out.findings.len() + imports.len() < crate::report::MAX_FINDINGS {
            imports.push(f);
        } else {
            out.dropped += 1;
        }
    }

    out.findings.splice(first..first, imports);

    // Globals summary.
    for (i, g) in m.globals.iter().enumerate() {
        let mut u = Vec::new();
        if used[i] & uses::NEW != 0 {
            u.push(Use::New);
        }
        if used[i] & uses::CALL != 0 {
            u.push(Use::Call);
        }
        if u.is_empty() {
            u.push(Use::Value);
        }
        out.merge_global(GlobalUse {
            module: g.module.clone(),
            name: g.name.clone(),
            uses: u,
            count: 1,
        });
    }
}

pub(super) fn call_finding(
    m: &Machine<'_>,
    kind: FindingType,
    sev: Severity,
    c: &CallNode,
    callable: String,
    desc: String,
) -> Finding {
    let mut f = Finding::new(kind, sev, c.pos, desc);
    if let Value::Global(g) = c.callable {
        let g = &m.globals[g as usize];
        if g.ext.is_none() {
            f.module = Some(g.module.clone());
            f.name = Some(g.name.clone());
        }
    }
    f.callable = Some(callable);
    f.args = Some(render_args(m, c.args));
    f
}

pub(super) fn call_text(m: &Machine<'_>, callable: &str, c: &CallNode) -> String {
    format!("{}({})", callable, render_args(m, c.args).join(", "))
}

/// Judge one call node; returns whether its result is a trusted object.
#[allow(clippy::too_many_arguments)]
pub(super) fn judge_call(
    m: &Machine<'_>,
    policy: &Policy,
    ctx: &Context,
    j: &Judged<'_>,
    used: &mut [u8],
    trusted: &[bool],
    id: CallId,
    c: &CallNode,
    out: &mut Report,
) -> bool {
    match c.kind {
        CallKind::Persistent => {
            if policy.mode == Mode::Strict {
                out.push(Finding::new(
                    FindingType::Disallowed,
                    Severity::Medium,
                    c.pos,
                    "persistent id: the loader's persistent_load hook is called (strict mode allows plain data only)".into(),
                ));
                return false;
            }
            true
        }
        CallKind::Build => judge_build(m, policy, j, trusted, c, out),
        CallKind::Method(method) => judge_method(m, j, trusted, c, method, out),
        CallKind::Reduce
        | CallKind::Inst
        | CallKind::Obj
        | CallKind::NewObj
        | CallKind::NewObjEx => {
            let want = match c.kind {
                CallKind::NewObj | CallKind::NewObjEx => uses::NEW,
                _ => uses::CALL,
            };
            match c.callable {
                Value::Global(g) => {
                    used[g as usize] |= want;
                    let v = &j.verdicts[g as usize];
                    let name = j.name(m, g);
                    mark_reconstructor_uses(m, j, used, v, c);
                    judge_global_call(
                        m,
                        policy,
                        ctx,
                        j,
                        trusted,
                        id,
                        c,
                        Some(g),
                        v,
                        want,
                        name,
                        out,
                    )
                }
                Value::Call(_) => {
                    if let Some((name, v)) = resolved_global(m, j, c.callable, 0) {
                        return judge_global_call(
                            m, policy, ctx, j, trusted, id, c, None, &v, want, &name, out,
                        );
                    }
                    let shown = render::render(m, c.callable);
                    let sev = if dangerous_value(m, j, c.callable, 0) {
                        Severity::Critical
                    } else {
                        Severity::High
                    };
                    let text = call_text(m, &shown, c);
                    out.push(call_finding(
                        m,
                        FindingType::DynamicCall,
                        sev,
                        c,
                        shown,
                        format!("calls {text}: the callable is made while loading"),
                    ));
                    examine_literals(m, policy, ctx, j, c, None, out);
                    false
                }
                _ => false,
            }
        }
    }
}

/// `copyreg._reconstructor(cls, base, state)` and `copyreg.__newobj__(cls, ...)` build `cls`.
pub(super) fn mark_reconstructor_uses(
    m: &Machine<'_>,
    j: &Judged<'_>,
    used: &mut [u8],
    v: &GlobalVerdict,
    c: &CallNode,
) {
    if v.module == "copyreg"
        && matches!(
            v.name.as_str(),
            "_reconstructor" | "__newobj__" | "__newobj_ex__"
        )
    {
        if let Some(args) = m.args_of(c.args) {
            if let Some(Value::Global(cls)) = args.items.first() {
                used[*cls as usize] |= uses::NEW;
                let _ = &j.verdicts[*cls as usize];
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn judge_global_call(
    m: &Machine<'_>,
    policy: &Policy,
    ctx: &Context,
    j: &Judged<'_>,
    trusted: &[bool],
    id: CallId,
    c: &CallNode,
    g: Option<u32>,
    v: &GlobalVerdict,
    want: u8,
    name: &str,
    out: &mut Report,
) -> bool {
    // A callable reached through getattr / partial is made at load time.
    let kind = if g.is_none() {
        FindingType::DynamicCall
    } else {
        FindingType::ReduceCall
    };
    let late = g
        .map(|g| &m.globals[g as usize])
        .map(|gr| gr.ext.is_some() || gr.computed)
        .unwrap_or(false);
    if late {
        out.push(call_finding(
            m,
            FindingType::DynamicCall,
            Severity::High,
            c,
            name.to_string(),
            format!(
                "calls {}: a global resolved only at load time",
                call_text(m, name, c)
            ),
        ));
        return false;
    }
    // INST / OBJ without arguments only create the instance.
    let no_args = m.args_of(c.args).map(|n| n.len == 0).unwrap_or(false);
    let permitted = v.allowed & want != 0
        || (matches!(c.kind, CallKind::Inst | CallKind::Obj)
            && no_args
            && v.allowed & uses::NEW != 0);
    if !permitted && out.full() {
        // The report lists no more findings and is already not safe: only count this one
        // (rendering a million refused calls took seconds of a decompression bomb's scan).
        out.dropped += 1;
        return false;
    }
    if let Some(d) = &v.danger {
        if !permitted {
            let text = call_text(m, name, c);
            out.push(call_finding(
                m,
                kind,
                d.severity,
                c,
                name.to_string(),
                format!("calls {text}: {}", d.description),
            ));
            examine_literals(m, policy, ctx, j, c, Some(d.category), out);
            return false;
        }
    }
    if !permitted {
        let text = call_text(m, name, c);
        let desc = if v.allowed == 0 {
            format!(
                "calls {text}, which the {} policy does not allow",
                policy.mode.as_str()
            )
        } else {
            format!(
                "calls {text}, but {}",
                uses::missing(qual(v), &describe_uses(v.allowed), want)
            )
        };
        out.push(call_finding(
            m,
            kind,
            Severity::Medium,
            c,
            name.to_string(),
            desc,
        ));
        examine_literals(m, policy, ctx, j, c, None, out);
        return false;
    }
    // An allowed name handed what its schema or rules refuse: "calls <call><why>".
    let refuse = |out: &mut Report, why: String| {
        let text = call_text(m, name, c);
        out.push(call_finding(
            m,
            kind,
            Severity::High,
            c,
            name.to_string(),
            format!("calls {text}{why}"),
        ));
    };
    // Keyword arguments (NEWOBJ_EX) flow into the constructor like positional ones: they must
    // fit its `data` schema, and argument rules describe positional arguments only.
    let kwargs = m
        .kwargs_of(id)
        .filter(|kw| !matches!(kw, Value::Dict(n) if m.arena.nodes[*n as usize].len == 0));
    if let Some(kw) = kwargs {
        let why = if v.has_rules {
            Some(format!(
                "keyword arguments, which the policy's rule for {} does not describe",
                qual(v)
            ))
        } else {
            data_misfit(m, j, Schema::of(v), kw, 0)
                .map(|why| format!("keyword arguments holding {why}"))
        };
        if let Some(why) = why {
            refuse(out, format!(" with {why}"));
            examine_literals(m, policy, ctx, j, c, None, out);
            return false;
        }
    }
    if let Some(why) = alloc::unbounded(m, j, qual(v), c, kwargs) {
        refuse(out, format!(": {why}"));
        return false;
    }
    // Allowed by name: argument rules, if any, must accept the arguments; else they must fit
    // the callee's `data` schema.
    let Some(rules) = v.has_rules.then(|| policy.rules_for(qual(v))).flatten() else {
        if let Some(why) = data_misfit(m, j, Schema::of(v), c.args, 0) {
            refuse(out, format!(", handing it {why}"));
            examine_literals(m, policy, ctx, j, c, None, out);
            return false;
        }
        return true;
    };
    let matching = rules
        .iter()
        .find(|r| rule_matches(m, j, trusted, r, c.args));
    let Some(r) = matching else {
        refuse(
            out,
            format!(
                " with arguments the policy's rule for {} does not accept",
                qual(v)
            ),
        );
        examine_literals(m, policy, ctx, j, c, None, out);
        return false;
    };
    if r.nested {
        return nested_file(m, policy, ctx, j, c, name, out);
    }
    if let Some([f, a]) = r.calls {
        if !judge_passed_call(m, policy, j, trusted, c, f, a, name, out) {
            return false;
        }
    }
    match qual(v) {
        "copyreg._reconstructor" => {
            constructor_strings(m, j, c, name, out) && judge_reconstructor_init(m, j, c, name, out)
        }
        "copyreg.__newobj__" | "copyreg.__newobj_ex__" => constructor_strings(m, j, c, name, out),
        "builtins.getattr" => judge_getattr(m, j, c, id, name, out),
        _ => true,
    }
}

/// The strings a `copyreg` constructor helper hands the class it builds must fit that class's
/// grammar (sympy's `__new__` sympifies them).
fn constructor_strings(
    m: &Machine<'_>,
    j: &Judged<'_>,
    c: &CallNode,
    name: &str,
    out: &mut Report,
) -> bool {
    let Some(args) = m.args_of(c.args) else {
        return false;
    };
    let Some((shown, cls)) = args
        .items
        .first()
        .and_then(|a| resolved_global(m, j, *a, 0))
    else {
        return false;
    };
    let schema = Schema::of(&cls);
    if schema.strings.is_none() {
        return true;
    }
    // `_reconstructor`'s base is a class, judged as `init`; what reaches `__new__` is the rest.
    let handed = if qual_is_reconstructor(name) { 2 } else { 1 };
    match args.items[handed.min(args.items.len())..]
        .iter()
        .find_map(|a| data_misfit(m, j, schema, *a, 0))
    {
        Some(why) => {
            out.push(call_finding(
                m,
                FindingType::ReduceCall,
                Severity::High,
                c,
                name.to_string(),
                format!("{name} builds {shown}, handing its __new__ {why}"),
            ));
            false
        }
        None => true,
    }
}

fn qual_is_reconstructor(name: &str) -> bool {
    name.ends_with("._reconstructor")
}

/// A helper that calls a callable it is given (`dill._dill._create_array(f, args, ...)`,
/// `torch._tensor._rebuild_from_type_v2(func, type, args, state)`): the inner call
/// `args[f](*args[a])` is judged like a call written in the pickle.
#[allow(clippy::too_many_arguments)]
fn judge_passed_call(
    m: &Machine<'_>,
    policy: &Policy,
    j: &Judged<'_>,
    trusted: &[bool],
    c: &CallNode,
    f: usize,
    a: usize,
    name: &str,
    out: &mut Report,
) -> bool {
    let args = m.args_of(c.args);
    let func = args.and_then(|n| n.items.get(f).copied());
    let inner = args.and_then(|n| n.items.get(a).copied());
    let verdict = func.and_then(|f| resolved_global(m, j, f, 0));
    let ok = match (&verdict, inner) {
        (Some((_, v)), Some(inner)) if v.allowed & uses::CALL != 0 && v.danger.is_none() => {
            match v.has_rules.then(|| policy.rules_for(qual(v))).flatten() {
                Some(rules) => rules.iter().any(|r| {
                    !r.nested && r.calls.is_none() && rule_matches(m, j, trusted, r, inner)
                }),
                None => data_misfit(m, j, Schema::of(v), inner, 0).is_none(),
            }
        }
        _ => false,
    };
    if !ok {
        let shown = func
            .map(|f| render::render(m, f))
            .unwrap_or_else(|| "?".into());
        out.push(call_finding(
            m,
            FindingType::DynamicCall,
            Severity::High,
            c,
            name.to_string(),
            format!(
                "{name} calls {shown} with the pickle's arguments: the policy does not allow that call"
            ),
        ));
    }
    ok
}

/// `getattr(X, 'name')`: accepted when what it reaches is something the policy allows:
/// `Cls.name` granted in the policy, `Cls.__new__` of a class granted `new`, an enum member
/// of a class whose entry says `members`, or a method of an object the pickle made that is
/// granted on that object's class. Calling the result is judged again as a call.
fn judge_getattr(
    m: &Machine<'_>,
    j: &Judged<'_>,
    c: &CallNode,
    id: CallId,
    name: &str,
    out: &mut Report,
) -> bool {
    let reached = resolved_global(m, j, Value::Call(id), 0);
    if let Some((_, v)) = &reached {
        if v.allowed != 0 && v.danger.is_none() {
            return true;
        }
    }
    if reached.is_none() && plain_receiver(m, c) {
        return true;
    }
    let text = call_text(m, name, c);
    let (sev, desc) = match &reached {
        Some((shown, v)) if v.danger.is_some() => (
            v.danger.as_ref().map(|d| d.severity).unwrap_or(Severity::High),
            format!("{text} reaches {shown}, which is dangerous"),
        ),
        Some((shown, v)) => (
            Severity::High,
            format!(
                "{text} reaches {shown}, which the policy does not allow (grant it: [[allow]] module = \"{}\", name = \"{}\", ops = [...])",
                v.module, v.name
            ),
        ),
        None => (
            Severity::High,
            format!("{text}: an attribute of something the policy cannot name"),
        ),
    };
    out.push(call_finding(
        m,
        FindingType::DynamicCall,
        sev,
        c,
        name.to_string(),
        desc,
    ));
    false
}

/// `getattr(<plain data>, '<public name>')`: a method or attribute of a string, bytes, number
/// or container that the pickle wrote itself, as `"a,b".split` and `[1].sort` pickle. Those
/// types' methods only compute on the value in memory; the bound method is a value, and a call
/// of it later in the pickle is judged as a callable made while loading.
fn plain_receiver(m: &Machine<'_>, c: &CallNode) -> bool {
    let Some(args) = m.args_of(c.args) else {
        return false;
    };
    if args.len != 2 || args.items.len() != 2 {
        return false;
    }
    let Value::Str(attr) = args.items[1] else {
        return false;
    };
    if str_len(m, attr) > 64 {
        return false;
    }
    let attr = m.arena.text(m.data, attr);
    let public = matches!(attr.chars().next(), Some(c) if c.is_ascii_alphabetic())
        && attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    public && plain_all_the_way(m, args.items[0], 0, &mut 4096)
}

/// Plain data to the leaves (no global, no object made by a call), within `budget` visits.
fn plain_all_the_way(m: &Machine<'_>, v: Value, depth: u32, budget: &mut u32) -> bool {
    if v.is_scalar_data() {
        return true;
    }
    if depth > 16 || *budget == 0 {
        return false;
    }
    *budget -= 1;
    match v.node() {
        Some(n) => {
            // Items past the kept ones are in `extra` unless they are scalars.
            let node = &m.arena.nodes[n as usize];
            node.all()
                .all(|x| plain_all_the_way(m, x, depth + 1, budget))
        }
        None => false,
    }
}

pub(super) fn describe_uses(bits: u8) -> String {
    let mut v = Vec::new();
    if bits & uses::NEW != 0 {
        v.push("a type to rebuild");
    }
    if bits & uses::CALL != 0 {
        v.push("a function to call");
    }
    if v.is_empty() {
        v.push("a value");
    }
    v.join(" or ")
}

/// A call whose bytes argument is a whole serialized file (torch's `_load_from_bytes`):
/// analyse that file; the call is fine when the file is.
pub(super) fn nested_file(
    m: &Machine<'_>,
    policy: &Policy,
    ctx: &Context,
    j: &Judged<'_>,
    c: &CallNode,
    name: &str,
    out: &mut Report,
) -> bool {
    let not_safe = |out: &mut Report, sev: Severity, format: &str| {
        out.push(call_finding(
            m,
            FindingType::NestedPickle,
            sev,
            c,
            name.to_string(),
            format!("{name} loads an embedded {format} file that is not safe"),
        ));
    };
    // The same (memoised) file handed to many calls is analysed once.
    let key = match m.args_of(c.args).and_then(|n| n.items.first().copied()) {
        Some(Value::Bytes(b) | Value::ByteArray(b)) => Some((1u8, b)),
        Some(Value::Call(b)) => Some((2u8, b)),
        _ => None,
    };
    if let Some(k) = key {
        if let Some((ok, sev, format)) = j.nested.borrow().get(&k) {
            if !ok {
                not_safe(out, *sev, format);
            }
            return *ok;
        }
    }
    let Some(bytes) = first_blob(m, j, c.args) else {
        return false;
    };
    if ctx.scan.depth() + 1 > policy.limits.max_nesting {
        limit_finding(out, c.pos as usize, Limit::NestingDepth);
        return false;
    }
    let label = Segment::NestedFile {
        callable: name.to_string(),
        at: c.pos,
    };
    let inner = ctx.scan.within(&label, || ctx.scan.nested(&bytes));
    let ok = inner.is_safe && inner.complete;
    let sev = inner.risk_level.max(Severity::High);
    if !ok {
        not_safe(out, sev, &inner.format);
    }
    if let Some(k) = key {
        j.nested
            .borrow_mut()
            .insert(k, (ok, sev, inner.format.clone()));
    }
    out.absorb(inner, Some(&label));
    ok
}

pub(super) fn first_blob<'d>(
    m: &'d Machine<'_>,
    j: &Judged<'_>,
    args: Value,
) -> Option<std::borrow::Cow<'d, [u8]>> {
    let node = m.args_of(args)?;
    match *node.items.first()? {
        Value::Bytes(b) | Value::ByteArray(b) => {
            Some(std::borrow::Cow::Borrowed(m.arena.blob(m.data, b)))
        }
        other => codecs_bytes(m, j, other).map(std::borrow::Cow::Owned),
    }
}

#[cfg(test)]
mod tests;
