//! Which global a value stands for (a global, `getattr(<global>, name)`, a partial, a
//! legacy torch persistent id), and the per-pickle cache of their verdicts.

#[allow(unused_imports)]
use super::*;
use std::borrow::Cow;

/// Longest string taken as an identifier or attribute name by argument rules and attribute
/// walks (CPython has no limit, real names are short; longer ones fail the rule).
pub(super) const MAX_NAME: usize = 1024;

/// Byte length of a string value without decoding it.
pub(super) fn str_len(m: &Machine<'_>, s: u32) -> usize {
    match &m.arena.strs[s as usize] {
        crate::value::StrData::Span(_, l) => *l,
        crate::value::StrData::Owned(t) => t.len(),
    }
}

/// A value's identity for the caches below: (kind, id).
pub(super) type ValueKey = (u8, u32);

/// An embedded file's analysis: accepted, severity of the finding, format.
pub(super) type NestedVerdict = (bool, Severity, String);

/// Cache of per-global verdicts for one pickle.
pub(super) struct Judged<'p> {
    pub(super) verdicts: Vec<Rc<GlobalVerdict>>,
    /// Each global's name as the stream spells it (`posix.system`), made when first shown.
    pub(super) names: Vec<OnceCell<String>>,
    pub(super) policy: &'p Policy,
    /// The scan's argument-decoding budget.
    pub(super) budget: &'p crate::context::budget::Budget,
    /// Visits left for the structure walks (`dangerous_value`, `is_plain`) of this pickle:
    /// memoised values make a DAG whose paths grow exponentially with its depth, so the walks
    /// get a budget proportional to the pickle's graph.
    pub(super) steps: Cell<u64>,
    /// Literal arguments already examined (value kind, id, category): a memoised literal
    /// handed to many calls is looked into once.
    pub(super) examined: RefCell<IdSet<(u8, u32, u8)>>,
    /// The last BUILD applied to each call result (index into `m.calls`): only a partial
    /// needs it, so it is made on first use (a model's pickle has a BUILD per object).
    pub(super) builds: OnceCell<IdMap<CallId, usize>>,
    /// BUILD states already looked at (see `state_summary`), by node id (a node is one
    /// dict or one tuple): a vector, as a model's pickle looks at one per BUILD. 0: not yet,
    /// 1: no special attribute, 2: sets one.
    pub(super) states: Vec<Cell<u8>>,
    /// BUILD states' keys as findings show them, by node id (only states with a finding).
    pub(super) shown_states: RefCell<IdMap<u32, String>>,
    /// Files embedded in call arguments already analysed (`nested_file`): accepted or not, and
    /// the finding's severity and format.
    pub(super) nested: RefCell<IdMap<ValueKey, NestedVerdict>>,
    /// Containers already checked against the `data` schema (without a grammar): what does
    /// not fit, if anything; by node id, `None` while unchecked.
    pub(super) data: RefCell<Vec<Option<Option<String>>>>,
}

impl<'p> Judged<'p> {
    /// The cache for judging what `m` recorded of one pickle: each global's verdict (judged
    /// once per distinct name, as torch's C++ unpickler sees it in a TorchScript record).
    pub(super) fn new(m: &Machine<'_>, policy: &'p Policy, ctx: &Context<'p>) -> Judged<'p> {
        let mut cache: HashMap<(&str, &str), Rc<GlobalVerdict>> = HashMap::new();
        let verdicts: Vec<Rc<GlobalVerdict>> = m
            .globals
            .iter()
            .map(|g| {
                cache
                    .entry((g.module.as_str(), g.name.as_str()))
                    .or_insert_with(|| {
                        Rc::new(
                            ctx.torchscript
                                .then(|| policy.torchscript_verdict(&g.module, &g.name))
                                .flatten()
                                .unwrap_or_else(|| policy.judge(&g.module, &g.name)),
                        )
                    })
                    .clone()
            })
            .collect();
        Judged {
            verdicts,
            names: std::iter::repeat_with(OnceCell::new)
                .take(m.globals.len())
                .collect(),
            policy,
            budget: &ctx.scan.budget,
            steps: Cell::new(4096 + 64 * (m.calls.len() + m.arena.nodes.len()) as u64),
            examined: RefCell::new(IdSet::default()),
            builds: OnceCell::new(),
            states: vec![Cell::new(0); m.arena.nodes.len()],
            shown_states: RefCell::new(IdMap::default()),
            nested: RefCell::new(IdMap::default()),
            data: RefCell::new(vec![None; m.arena.nodes.len()]),
        }
    }
}

impl Judged<'_> {
    pub(super) fn name(&self, m: &Machine<'_>, g: u32) -> &str {
        self.names[g as usize].get_or_init(|| global_name(m, g))
    }

    pub(super) fn builds(&self, m: &Machine<'_>) -> &IdMap<CallId, usize> {
        self.builds.get_or_init(|| {
            let mut builds = IdMap::default();
            for (i, c) in m.calls.iter().enumerate() {
                if let (CallKind::Build, Value::Call(t)) = (c.kind, c.callable) {
                    builds.insert(t, i);
                }
            }
            builds
        })
    }

    /// Spend one visit of a structure walk; false when none are left.
    pub(super) fn step(&self) -> bool {
        let s = self.steps.get();
        if s == 0 {
            return false;
        }
        self.steps.set(s - 1);
        true
    }
}

/// Take `n` bytes (plus a per-step cost) from the scan's argument-decoding budget.
pub(super) fn charge(budget: &crate::context::budget::Budget, n: usize) -> bool {
    budget.take_decoded(n as u64 + 64)
}

/// A global a value stands for: the global itself, or `getattr(<global>, '<literal>')`
/// (an attribute walk done at load time, judged like the dotted name it reaches).
/// The name comes borrowed from the cache of global names when the value is a global: this
/// runs for every call and BUILD of a model's pickle.
pub(super) fn resolved_global<'j>(
    m: &Machine<'_>,
    j: &'j Judged<'_>,
    v: Value,
    depth: u32,
) -> Option<(Cow<'j, str>, Rc<GlobalVerdict>)> {
    match v {
        Value::Global(g) => {
            let gr = &m.globals[g as usize];
            if gr.ext.is_some() || gr.computed {
                return None;
            }
            Some((Cow::Borrowed(j.name(m, g)), j.verdicts[g as usize].clone()))
        }
        Value::Call(c) if depth < 8 && m.calls[c as usize].kind == CallKind::Persistent => {
            // Legacy torch files save a module's class as the persistent id
            // ('module', cls, source_file, source); torch's persistent_load returns cls.
            let pid = m.args_of(m.calls[c as usize].args)?;
            match pid.items.as_slice() {
                [Value::Str(tag), cls, ..] if m.arena.text(m.data, *tag) == "module" => {
                    resolved_global(m, j, *cls, depth + 1)
                }
                _ => None,
            }
        }
        Value::Call(c) if depth < 8 && is_partial(m, j, c) => {
            // partial(f) with no bound arguments calls f; bound ones would bypass f's rules.
            let call = &m.calls[c as usize];
            let built = j
                .builds(m)
                .get(&c)
                .and_then(|&b| m.args_of(m.calls[b].args));
            let (func, bound) = match built {
                Some(state) => (
                    state.items.first().copied()?,
                    state
                        .items
                        .get(1)
                        .copied()
                        .and_then(|a| m.args_of(a))
                        .map(|n| n.len)
                        .unwrap_or(0),
                ),
                None => {
                    let args = m.args_of(call.args)?;
                    (args.items.first().copied()?, args.len.saturating_sub(1))
                }
            };
            let (shown, verdict) = resolved_global(m, j, func, depth + 1)?;
            if bound > 0 && j.policy.rules_for(verdict.qualname()).is_some() {
                return None;
            }
            Some((format!("functools.partial({shown})").into(), verdict))
        }
        Value::Call(c) if depth < 8 => {
            let call = &m.calls[c as usize];
            if call.kind != CallKind::Reduce {
                return None;
            }
            let Value::Global(f) = call.callable else {
                return None;
            };
            if j.verdicts[f as usize].qualname() != "builtins.getattr" {
                return None;
            }
            let args = m.args_of(call.args)?;
            if args.len != 2 {
                return None;
            }
            let Value::Str(attr) = args.items[1] else {
                return None;
            };
            // No real attribute name is this long; resolving one per call would be quadratic
            // for a memoised megabyte string (unresolved: judged as a dynamic call).
            if str_len(m, attr) > MAX_NAME {
                return None;
            }
            let attr = m.arena.text(m.data, attr);
            // An attribute of an object the pickle made is judged as the attribute of the
            // class that made it: `getattr(obj, 'save')` is `Cls.save`, a bound method.
            let (shown, base) = match args.items[0] {
                Value::Call(o) => {
                    let (shown, class) = maker(m, j, o, depth + 1)?;
                    (format!("<{shown} object>").into(), class)
                }
                other => resolved_global(m, j, other, depth + 1)?,
            };
            let mut verdict = j
                .policy
                .judge(&base.module, &format!("{}.{attr}", base.name));
            if verdict.danger.is_none() && !matches!(args.items[0], Value::Call(_)) {
                if attr == "__new__" && base.danger.is_none() && base.allowed & uses::NEW != 0 {
                    // `Cls.__new__(Cls, ...)` is how NEWOBJ rebuilds a type: the type's `new`,
                    // with the type's schema.
                    verdict.allowed |= uses::CALL | uses::NEW;
                    verdict.behaviour = base.behaviour.clone();
                } else if base.behaviour.as_ref().is_some_and(|b| b.members)
                    && base.danger.is_none()
                    && base.allowed != 0
                    && is_public_name(&attr)
                {
                    // An enum member by name: a value, never a callable.
                    verdict.allowed |= uses::VALUE;
                }
            }
            Some((format!("{shown}.{attr}").into(), Rc::new(verdict)))
        }
        _ => None,
    }
}

/// A public attribute name (an enum member's).
fn is_public_name(t: &str) -> bool {
    let mut cs = t.chars();
    matches!(cs.next(), Some(c) if c.is_alphabetic()) && cs.all(|c| c.is_alphanumeric() || c == '_')
}

/// The class (or callable) whose methods run when the object call `c` made receives BUILD,
/// SETITEMS or APPENDS, and whose attributes `getattr(obj, name)` reaches: the class of
/// NEWOBJ, `copyreg._reconstructor` / `__newobj__` / `__newobj_ex__`'s first argument, the
/// type of `getattr(Cls, '__new__')`, else the callable (a v2 entry grants `build` etc. on a
/// function for the object it returns, with the review of that object's methods).
pub(super) fn maker<'j>(
    m: &Machine<'_>,
    j: &'j Judged<'_>,
    c: CallId,
    depth: u32,
) -> Option<(Cow<'j, str>, Rc<GlobalVerdict>)> {
    if depth > 8 {
        return None;
    }
    let call = &m.calls[c as usize];
    if !matches!(
        call.kind,
        CallKind::Reduce | CallKind::Inst | CallKind::Obj | CallKind::NewObj | CallKind::NewObjEx
    ) {
        return None;
    }
    let (shown, v) = resolved_global(m, j, call.callable, depth + 1)?;
    if matches!(
        v.qualname(),
        "copyreg._reconstructor" | "copyreg.__newobj__" | "copyreg.__newobj_ex__"
    ) {
        let first = m.args_of(call.args)?.items.first().copied()?;
        return resolved_global(m, j, first, depth + 1);
    }
    if let Some(cls) = v.name.strip_suffix(".__new__") {
        let class = j.policy.judge(&v.module, cls);
        return Some((format!("{}.{cls}", v.module).into(), Rc::new(class)));
    }
    Some((shown, v))
}

/// Whether call `c` built a `functools.partial`.
pub(super) fn is_partial(m: &Machine<'_>, j: &Judged<'_>, c: CallId) -> bool {
    let call = &m.calls[c as usize];
    matches!(call.callable, Value::Global(f) if call.kind == CallKind::Reduce && j.verdicts[f as usize].qualname() == "functools.partial")
}

/// The bytes `_codecs.encode('<latin-1 text>', 'latin1')` makes (how protocols 0-2 write bytes).
pub(super) fn codecs_bytes(m: &Machine<'_>, j: &Judged<'_>, v: Value) -> Option<Vec<u8>> {
    let Value::Call(c) = v else { return None };
    let call = &m.calls[c as usize];
    let Value::Global(f) = call.callable else {
        return None;
    };
    if call.kind != CallKind::Reduce || j.verdicts[f as usize].qualname() != "_codecs.encode" {
        return None;
    }
    let args = m.args_of(call.args)?;
    match args.items.first()? {
        Value::Str(s) => Some(latin1(&m.arena.text(m.data, *s))),
        _ => None,
    }
}

pub(super) fn qual(v: &GlobalVerdict) -> &str {
    v.qualname()
}

#[cfg(test)]
mod tests;
