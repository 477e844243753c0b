//! Runs the machine over every pickle of a stream and judges what it recorded against the
//! policy: imports, calls and their arguments, BUILDs, nested and encoded payloads.

use crate::decode;
use crate::machine::{CallKind, CallNode, Machine, Outcome};
use crate::policy::{uses, ArgPattern, GlobalVerdict, Mode, Policy, Rule};
use crate::render::{self, global_name, render_args};
use crate::report::{Finding, FindingType, GlobalUse, Report, Severity, Use};
use crate::value::{CallId, IdMap, IdSet, StrId, Value};
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// Analyses a serialized file found inside another (torch's `_load_from_bytes`, nested
/// `pickle.loads`, decoded payloads). The container layer installs one that sniffs formats.
pub type NestedScanner = fn(&[u8], &Policy, u32) -> Report;

/// What a stream analysis needs besides the policy.
#[derive(Clone, Copy)]
pub struct Context {
    pub depth: u32,
    /// Skip joblib's array bytes after a NumpyArrayWrapper BUILD, as joblib does.
    pub joblib: bool,
    /// A record of a TorchScript archive, which `torch.jit.load` (and `torch.load`, which hands
    /// such archives to it) reads with its C++ unpickler: see [`Policy::torchscript_verdict`].
    pub torchscript: bool,
    pub nested: NestedScanner,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            depth: 0,
            joblib: true,
            torchscript: false,
            // Nested files are whole files (a torch zip for `_load_from_bytes`, maybe
            // compressed): sniffed like any file, never read as raw pickles only.
            nested: crate::container::scan_nested,
        }
    }
}

/// Turns the plain-data fast path off (for the tests that prove it changes nothing).
#[doc(hidden)]
pub static DISABLE_FAST_PATH: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Analyse a raw pickle stream (one or several pickles back to back).
pub fn analyze_stream(data: &[u8], policy: &Policy, ctx: &Context) -> Report {
    // Decompression and argument-decoding budgets are per scan: open one here unless a
    // container scan (or an outer stream) already has.
    let _scope = crate::container::budget::Scope::enter(data.len() as u64, &policy.limits);
    let mut report = Report::new("raw_pickle");
    let mut m = Machine::new(data, policy.limits.clone());
    m.joblib = ctx.joblib;
    let mut pos = 0usize;
    let mut index: u64 = 0;
    let mut joblib_seen = false;
    // Byte ranges joblib reads as numeric array data (skipped by this view).
    let mut skipped: Vec<(u64, u64)> = Vec::new();
    loop {
        m.reset();
        let start = pos;
        let member = (index > 0).then(|| format!("pickle #{} at byte {}", index + 1, start));
        let mut sub = Report::new("raw_pickle");
        // Most pickles of plain data never import or call: check their shape without building
        // values, and build the graph only for those that need it.
        let ops_before = m.ops;
        m.set_shape_only(!DISABLE_FAST_PATH.load(std::sync::atomic::Ordering::Relaxed));
        let mut outcome = m.run(start);
        if let Outcome::NeedsGraph { .. } = outcome {
            m.reset();
            m.set_shape_only(false);
            m.ops = ops_before;
            outcome = m.run(start);
        }
        m.set_shape_only(false);
        while let Outcome::JoblibArray { next, wrapper } = outcome {
            joblib_seen = true;
            outcome = match joblib_array(&m, wrapper, next, policy, ctx, &mut sub, &mut skipped) {
                Ok(resume) => m.resume(resume),
                Err(o) => o,
            };
        }
        match outcome {
            Outcome::Stop { end, .. } => {
                judge_member(&m, policy, ctx, &mut sub, member.as_deref());
                report.absorb(sub, member.as_deref());
                if end >= data.len() {
                    break;
                }
                index += 1;
                if index >= policy.limits.max_pickles {
                    limit_finding(&mut report, end, "pickles per stream");
                    break;
                }
                pos = end;
            }
            Outcome::Error { pos: epos, err } => {
                if m.first_effect.is_none() {
                    if index == 0 {
                        report.format = "not_pickle".into();
                        report.stopped_by = Some(format!("not a pickle: {err} at byte {epos}"));
                    } else {
                        report.push(Finding::new(
                            FindingType::TrailingData,
                            Severity::Low,
                            start as u64,
                            format!(
                                "{} bytes after the last pickle are not a pickle ({err} at byte {epos}); no loader runs them",
                                data.len() - start
                            ),
                        ));
                    }
                    break;
                }
                judge_member(&m, policy, ctx, &mut sub, member.as_deref());
                sub.push(Finding::new(
                    FindingType::Malformed,
                    Severity::Medium,
                    epos as u64,
                    format!("the stream breaks here ({err}); everything before this point runs when it is loaded"),
                ));
                sub.complete = false;
                sub.stopped_by = Some(format!("malformed: {err} at byte {epos}"));
                report.absorb(sub, member.as_deref());
                break;
            }
            Outcome::Limit { pos: lpos, what } => {
                judge_member(&m, policy, ctx, &mut sub, member.as_deref());
                report.absorb(sub, member.as_deref());
                limit_finding(&mut report, lpos, what);
                break;
            }
            Outcome::JoblibArray { .. } | Outcome::NeedsGraph { .. } => {
                unreachable_outcome(&mut report)
            }
        }
    }
    if joblib_seen && report.format == "raw_pickle" {
        report.format = "joblib".into();
    }
    if joblib_seen && ctx.joblib {
        let plain = Context {
            joblib: false,
            ..*ctx
        };
        plain_view(&mut report, analyze_stream(data, policy, &plain), &skipped);
    }
    report.finish(policy.threshold);
    report
}

/// pickle.load (and torch.load, pandas.read_pickle) do not read joblib's array bytes: they run
/// them as opcodes. What only that view of a joblib stream does is reported too: everything it
/// does in bytes joblib skips as numeric data, and catalogued dangers anywhere (elsewhere the
/// views differ only by memo and stack context: a benign object array's nested pickle, run
/// in the outer context, imports nonsense names that fail to load).
fn plain_view(report: &mut Report, plain: Report, skipped: &[(u64, u64)]) {
    let seen: std::collections::HashSet<(FindingType, u64)> = report
        .findings
        .iter()
        .map(|f| (f.kind, f.position))
        .collect();
    let new: Vec<Finding> = plain
        .findings
        .into_iter()
        .filter(|f| {
            !matches!(
                f.kind,
                FindingType::Malformed | FindingType::TrailingData | FindingType::ResourceLimit
            ) && !seen.contains(&(f.kind, f.position))
                && (skipped.iter().any(|&(a, b)| (a..b).contains(&f.position))
                    || f.kind == FindingType::DangerousImport
                    || f.severity == Severity::Critical)
        })
        .collect();
    let Some(first) = new.first() else { return };
    report.push(Finding::new(
        FindingType::StructuralTamper,
        Severity::High,
        first.position,
        "joblib reads these bytes as array data, but pickle.load (torch.load, pandas.read_pickle) runs them as opcodes: the file does more when it is not loaded with joblib".into(),
    ));
    for mut f in new {
        f.member = Some(match f.member.take() {
            Some(m) => format!("read as a plain pickle/{m}"),
            None => "read as a plain pickle".into(),
        });
        report.push(f);
    }
}

fn unreachable_outcome(report: &mut Report) {
    report.complete = false;
    report.stopped_by = Some("internal: unexpected pause".into());
}

fn limit_finding(report: &mut Report, pos: usize, what: &str) {
    report.push(Finding::new(
        FindingType::ResourceLimit,
        Severity::High,
        pos as u64,
        format!("analysis stopped at the {what} limit: the rest of the stream was not checked"),
    ));
    report.complete = false;
    report.stopped_by = Some(format!("limit:{what}"));
}

/// What joblib reads at a `NumpyArrayWrapper`'s pause (see [`joblib_array_data`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoblibData {
    /// An object array: joblib unpickles a whole pickle that starts here.
    Objects,
    /// A numeric array: joblib reads the bytes up to `end` (padding included) as numbers.
    Numeric { end: usize },
}

/// What joblib reads from the stream after the `NumpyArrayWrapper` call `wrapper` paused the
/// machine at `next` (`Outcome::JoblibArray`), or why joblib would fail there.
pub fn joblib_array_data(
    m: &Machine<'_>,
    wrapper: CallId,
    next: usize,
) -> Result<JoblibData, &'static str> {
    let state = m
        .calls
        .iter()
        .rev()
        .find(|c| c.kind == CallKind::Build && c.callable == Value::Call(wrapper))
        .map(|c| c.args)
        .ok_or("joblib array wrapper without state")?;
    let shape = dict_get(m, state, "shape").ok_or("joblib array wrapper without shape")?;
    let dtype = dict_get(m, state, "dtype").ok_or("joblib array wrapper without dtype")?;
    let (itemsize, hasobject) = dtype_info(m, dtype).ok_or("joblib array dtype not understood")?;
    if hasobject {
        return Ok(JoblibData::Objects);
    }
    let mut count: u128 = 1;
    match shape {
        Value::Tuple(n) => {
            let node = &m.arena.nodes[n as usize];
            if node.len as usize != node.items.len() {
                return Err("joblib array shape too long");
            }
            for d in &node.items {
                match d {
                    Value::Int(i) if *i >= 0 => count = count.saturating_mul(*i as u128),
                    _ => return Err("joblib array shape is not a tuple of ints"),
                }
            }
        }
        _ => return Err("joblib array shape is not a tuple"),
    }
    let mut at = next as u128;
    if let Some(Value::Int(_)) = dict_get(m, state, "numpy_array_alignment_bytes") {
        let pad = *m.data.get(next).ok_or("joblib array padding truncated")? as u128;
        at += 1 + pad;
    }
    let end = at + count.saturating_mul(itemsize as u128);
    if end > m.data.len() as u128 {
        return Err("joblib array data truncated");
    }
    Ok(JoblibData::Numeric { end: end as usize })
}

/// joblib reads a NumpyArrayWrapper's array straight from the stream: skip exactly the bytes
/// it reads (or analyse the pickle it loads for object arrays). Returns where the pickle goes on;
/// the numeric array's bytes are added to `skipped`.
fn joblib_array(
    m: &Machine<'_>,
    wrapper: CallId,
    next: usize,
    policy: &Policy,
    ctx: &Context,
    sub: &mut Report,
    skipped: &mut Vec<(u64, u64)>,
) -> Result<usize, Outcome> {
    let fail = |msg: &'static str| Outcome::Error {
        pos: next,
        err: crate::machine::MachineError::BadText(msg),
    };
    match joblib_array_data(m, wrapper, next).map_err(fail)? {
        JoblibData::Objects => {
            let (end, rep) = single_pickle(m.data, next, policy, ctx);
            sub.absorb(rep, Some(&format!("joblib object array at byte {next}")));
            end.ok_or_else(|| fail("joblib object array pickle is broken"))
        }
        JoblibData::Numeric { end } => {
            skipped.push((next as u64, end as u64));
            Ok(end)
        }
    }
}

/// Analyse exactly one pickle starting at `start`; returns where it ended (None if broken).
fn single_pickle(
    data: &[u8],
    start: usize,
    policy: &Policy,
    ctx: &Context,
) -> (Option<usize>, Report) {
    let mut m = Machine::new(data, policy.limits.clone());
    m.joblib = ctx.joblib;
    let mut sub = Report::new("raw_pickle");
    let out = m.run(start);
    judge(&m, policy, ctx, &mut sub);
    match out {
        Outcome::Stop { end, .. } => (Some(end), sub),
        Outcome::Error { pos, err } => {
            sub.push(Finding::new(
                FindingType::Malformed,
                Severity::Medium,
                pos as u64,
                format!("the stream breaks here ({err})"),
            ));
            sub.complete = false;
            (None, sub)
        }
        _ => {
            limit_finding(&mut sub, start, "nested joblib pickle");
            (None, sub)
        }
    }
}

fn dict_get(m: &Machine<'_>, d: Value, key: &str) -> Option<Value> {
    let Value::Dict(n) = d else { return None };
    let node = &m.arena.nodes[n as usize];
    node.items
        .chunks(2)
        .chain(node.extra.chunks(2))
        .find(|kv| matches!(kv[0], Value::Str(s) if m.arena.text_is(m.data, s, key)))
        .map(|kv| kv[1])
}

/// Item size and "holds objects" of a pickled `numpy.dtype`.
fn dtype_info(m: &Machine<'_>, dtype: Value) -> Option<(u64, bool)> {
    let Value::Call(c) = dtype else { return None };
    let call = &m.calls[c as usize];
    let args = m.args_of(call.args)?;
    let Value::Str(s) = *args.items.first()? else {
        return None;
    };
    let spec = m.arena.text(m.data, s).into_owned();
    let state = m
        .calls
        .iter()
        .find(|b| b.kind == CallKind::Build && b.callable == dtype)
        .and_then(|b| m.args_of(b.args));
    let mut elsize: Option<u64> = None;
    let mut hasobject = spec.starts_with('O');
    if let Some(st) = state {
        if let Some(Value::Int(e)) = st.items.get(5) {
            if *e > 0 {
                elsize = Some(*e as u64);
            }
        }
        if let Some(Value::Int(flags)) = st.items.get(7) {
            hasobject |= flags & 1 != 0;
        }
    }
    if hasobject {
        return Some((8, true));
    }
    if let Some(e) = elsize {
        return Some((e, false));
    }
    let kind = spec.chars().next()?;
    let digits: String = spec
        .chars()
        .skip(1)
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let n: u64 = digits.parse().ok()?;
    Some((if kind == 'U' { n * 4 } else { n }, false))
}

/// Longest string taken as an identifier or attribute name by argument rules and attribute
/// walks (CPython has no limit, real names are short; longer ones fail the rule).
const MAX_NAME: usize = 1024;

/// Byte length of a string value without decoding it.
fn str_len(m: &Machine<'_>, s: u32) -> usize {
    match &m.arena.strs[s as usize] {
        crate::value::StrData::Span(_, l) => *l,
        crate::value::StrData::Owned(t) => t.len(),
    }
}

/// A value's identity for the caches below: (kind, id).
type ValueKey = (u8, u32);

/// An embedded file's analysis: accepted, severity of the finding, format.
type NestedVerdict = (bool, Severity, String);

/// Cache of per-global verdicts for one pickle.
struct Judged<'p> {
    verdicts: Vec<Rc<GlobalVerdict>>,
    /// Each global's name as the stream spells it (`posix.system`), made when first shown.
    names: Vec<OnceCell<String>>,
    policy: &'p Policy,
    /// Visits left for the structure walks (`dangerous_value`, `is_plain`) of this pickle:
    /// memoised values make a DAG whose paths grow exponentially with its depth, so the walks
    /// get a budget proportional to the pickle's graph.
    steps: Cell<u64>,
    /// Literal arguments already examined (value kind, id, category): a memoised literal
    /// handed to many calls is looked into once.
    examined: RefCell<IdSet<(u8, u32, u8)>>,
    /// The last BUILD applied to each call result (index into `m.calls`).
    builds: IdMap<CallId, usize>,
    /// BUILD states already looked at (see `state_summary`).
    states: RefCell<IdMap<ValueKey, Rc<StateSummary>>>,
    /// Files embedded in call arguments already analysed (`nested_file`): accepted or not, and
    /// the finding's severity and format.
    nested: RefCell<IdMap<ValueKey, NestedVerdict>>,
}

impl Judged<'_> {
    fn name(&self, m: &Machine<'_>, g: u32) -> &str {
        self.names[g as usize].get_or_init(|| global_name(m, g))
    }

    /// Spend one visit of a structure walk; false when none are left.
    fn step(&self) -> bool {
        let s = self.steps.get();
        if s == 0 {
            return false;
        }
        self.steps.set(s - 1);
        true
    }
}

/// Take `n` bytes (plus a per-step cost) from the scan's argument-decoding budget.
fn charge(n: usize) -> bool {
    crate::container::budget::take_decoded(n as u64 + 64)
}

/// A global a value stands for: the global itself, or `getattr(<global>, '<literal>')`
/// (an attribute walk done at load time, judged like the dotted name it reaches).
fn resolved_global(
    m: &Machine<'_>,
    j: &Judged<'_>,
    v: Value,
    depth: u32,
) -> Option<(String, Rc<GlobalVerdict>)> {
    match v {
        Value::Global(g) => {
            let gr = &m.globals[g as usize];
            if gr.ext.is_some() || gr.computed {
                return None;
            }
            Some((j.name(m, g).to_string(), j.verdicts[g as usize].clone()))
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
            let built = j.builds.get(&c).and_then(|&b| m.args_of(m.calls[b].args));
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
            Some((format!("functools.partial({shown})"), verdict))
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
            let (shown, base) = resolved_global(m, j, args.items[0], depth + 1)?;
            let mut verdict = j
                .policy
                .judge(&base.module, &format!("{}.{attr}", base.name));
            if attr == "__new__" && base.danger.is_none() && base.allowed & uses::NEW != 0 {
                // `Cls.__new__(Cls, ...)` is how NEWOBJ rebuilds a type: the type's `new`.
                verdict.allowed |= uses::CALL | uses::NEW;
            }
            Some((format!("{shown}.{attr}"), Rc::new(verdict)))
        }
        _ => None,
    }
}

/// Whether call `c` built a `functools.partial`.
fn is_partial(m: &Machine<'_>, j: &Judged<'_>, c: CallId) -> bool {
    let call = &m.calls[c as usize];
    matches!(call.callable, Value::Global(f) if call.kind == CallKind::Reduce && j.verdicts[f as usize].qualname() == "functools.partial")
}

/// The bytes `_codecs.encode('<latin-1 text>', 'latin1')` makes (how protocols 0-2 write bytes).
fn codecs_bytes(m: &Machine<'_>, j: &Judged<'_>, v: Value) -> Option<Vec<u8>> {
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

fn qual(v: &GlobalVerdict) -> &str {
    v.qualname()
}

/// [`judge`] for a later pickle of a stream, whose findings carry `member`.
fn judge_member(
    m: &Machine<'_>,
    policy: &Policy,
    ctx: &Context,
    out: &mut Report,
    member: Option<&str>,
) {
    match member {
        Some(label) => crate::container::within(label, || judge(m, policy, ctx, out)),
        None => judge(m, policy, ctx, out),
    }
    side_files(m, out);
}

/// joblib's legacy array wrappers name a file next to the pickle that `joblib.load` opens
/// when it rebuilds them: `NDArrayWrapper` through `numpy.load(allow_pickle=True)` (so an
/// object `.npy` there is unpickled), `ZNDArrayWrapper` as raw zlib data. What is in that file
/// is not in this one: each reference is a finding (`UNSCANNABLE`, MEDIUM for a file that can
/// be unpickled, LOW for raw data) whose `args` hold the file name as written, so a directory
/// scan and the run-time guard can check the side file itself (docs/containers.md).
fn side_files(m: &Machine<'_>, out: &mut Report) {
    for c in &m.calls {
        let (CallKind::Build, Value::Call(t)) = (c.kind, c.callable) else {
            continue;
        };
        let Value::Global(g) = m.calls[t as usize].callable else {
            continue;
        };
        let g = &m.globals[g as usize];
        let unpickled = match (g.module.as_str(), g.name.as_str()) {
            ("joblib.numpy_pickle" | "joblib.numpy_pickle_compat", "NDArrayWrapper") => true,
            ("joblib.numpy_pickle" | "joblib.numpy_pickle_compat", "ZNDArrayWrapper") => false,
            _ => continue,
        };
        let name = match dict_get(m, c.args, "filename") {
            Some(Value::Str(s)) => Some(m.arena.text(m.data, s).into_owned()),
            _ => None,
        };
        let what = if unpickled {
            "joblib.load hands it to numpy.load(allow_pickle=True), which unpickles an object array"
        } else {
            "joblib.load reads it as zlib-compressed array data"
        };
        let mut f = Finding::new(
            FindingType::Unscannable,
            if unpickled { Severity::Medium } else { Severity::Low },
            c.pos,
            match &name {
                Some(n) => format!("the pickle names the side file {n:?}: {what}; it is not part of this file, scan it too"),
                None => format!("the pickle names a side file computed at load time: {what}; it cannot be checked"),
            },
        );
        f.module = Some(g.module.clone());
        f.name = Some(g.name.clone());
        f.args = Some(vec![name.unwrap_or_else(|| "?".into())]);
        out.push(f);
    }
}

/// Turn what the machine recorded for one pickle into findings and a globals summary.
fn judge(m: &Machine<'_>, policy: &Policy, ctx: &Context, out: &mut Report) {
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
    let mut builds = IdMap::default();
    for (i, c) in m.calls.iter().enumerate() {
        if let (CallKind::Build, Value::Call(t)) = (c.kind, c.callable) {
            builds.insert(t, i);
        }
    }
    let j = Judged {
        verdicts,
        names: std::iter::repeat_with(OnceCell::new)
            .take(m.globals.len())
            .collect(),
        policy,
        steps: Cell::new(4096 + 64 * (m.calls.len() + m.arena.nodes.len()) as u64),
        examined: RefCell::new(IdSet::default()),
        builds,
        states: RefCell::new(IdMap::default()),
        nested: RefCell::new(IdMap::default()),
    };
    let mut used: Vec<u8> = vec![0; m.globals.len()];

    let first = out.findings.len();
    let mut passed = vec![false; m.globals.len()];
    let mut failed = vec![false; m.globals.len()];
    // Calls, in stream order: a call whose callable or target is trusted was judged before.
    let mut trusted: Vec<bool> = vec![false; m.calls.len()];
    for (ci, c) in m.calls.iter().enumerate() {
        trusted[ci] = judge_call(m, policy, ctx, &j, &mut used, &trusted, c, out);
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

fn call_finding(
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

fn call_text(m: &Machine<'_>, callable: &str, c: &CallNode) -> String {
    format!("{}({})", callable, render_args(m, c.args).join(", "))
}

/// Judge one call node; returns whether its result is a trusted object.
#[allow(clippy::too_many_arguments)]
fn judge_call(
    m: &Machine<'_>,
    policy: &Policy,
    ctx: &Context,
    j: &Judged<'_>,
    used: &mut [u8],
    trusted: &[bool],
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
        CallKind::Method(method) => {
            let name = method.name();
            let ok = match c.callable {
                Value::Call(t) => trusted[t as usize],
                _ => false,
            };
            if !ok {
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
                    format!(
                        "calls {target}.{name}(...) on an object that is not a plain container"
                    ),
                );
                f.module = None;
                f.name = None;
                out.push(f);
            }
            ok
        }
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
                    judge_global_call(m, policy, ctx, j, trusted, c, Some(g), v, want, name, out)
                }
                Value::Call(_) => {
                    if let Some((name, v)) = resolved_global(m, j, c.callable, 0) {
                        return judge_global_call(
                            m, policy, ctx, j, trusted, c, None, &v, want, &name, out,
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
fn mark_reconstructor_uses(
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
fn judge_global_call(
    m: &Machine<'_>,
    policy: &Policy,
    ctx: &Context,
    j: &Judged<'_>,
    trusted: &[bool],
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
            examine_literals(m, policy, ctx, j, c, Some(&d.category), out);
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
                "calls {text}, but the policy allows {} only as {}",
                qual(v),
                describe_uses(v.allowed)
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
    // Allowed by name: argument rules, if any, must accept the arguments.
    if let Some(rules) = v.has_rules.then(|| policy.rules_for(qual(v))).flatten() {
        let matching = rules
            .iter()
            .find(|r| rule_matches(m, j, trusted, r, c.args));
        match matching {
            None => {
                let text = call_text(m, name, c);
                out.push(call_finding(
                    m,
                    kind,
                    Severity::High,
                    c,
                    name.to_string(),
                    format!(
                        "calls {text} with arguments the policy's rule for {} does not accept",
                        qual(v)
                    ),
                ));
                examine_literals(m, policy, ctx, j, c, None, out);
                return false;
            }
            Some(r) if r.nested => return nested_file(m, policy, ctx, j, c, name, out),
            Some(_) => {}
        }
    }
    true
}

fn describe_uses(bits: u8) -> String {
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
fn nested_file(
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
    if ctx.depth + 1 > policy.limits.max_nesting {
        limit_finding(out, c.pos as usize, "nesting depth");
        return false;
    }
    let label = format!("{name} at byte {}", c.pos);
    let inner = crate::container::within(&label, || (ctx.nested)(&bytes, policy, ctx.depth + 1));
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

fn first_blob<'d>(
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

fn judge_build(
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
            trusted[t as usize]
        }
        _ => true,
    }
}

/// Attribute names Python itself looks up and calls (or that swap an object's type or dict):
/// setting one on an instance makes later loading or use run the planted value. Data dunders
/// such as `__doc__` or a library's `__networkx_cache__` are ordinary state.
const SPECIAL_METHODS: &[&str] = &[
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

/// A BUILD state: whether it sets a special attribute, and its keys as findings show them
/// (made only when a finding needs them).
struct StateSummary {
    dunder: bool,
    shown: OnceCell<String>,
}

/// Computed once per state value (one memoised state of 40k keys applied by 100k BUILDs).
fn state_summary(m: &Machine<'_>, j: &Judged<'_>, state: Value) -> Rc<StateSummary> {
    let key = match state {
        Value::Dict(n) => Some((0u8, n)),
        Value::Tuple(n) => Some((1u8, n)),
        _ => None,
    };
    if let Some(k) = key {
        if let Some(r) = j.states.borrow().get(&k) {
            return r.clone();
        }
    }
    let mut dunder = false;
    for_state_keys(m, state, |k| {
        let raw = m.arena.text_bytes(m.data, k);
        dunder = raw.len() > 4
            && raw.starts_with(b"__")
            && raw.ends_with(b"__")
            && SPECIAL_METHODS.contains(&m.arena.text(m.data, k).as_ref());
        !dunder
    });
    let r = Rc::new(StateSummary {
        dunder,
        shown: OnceCell::new(),
    });
    if let Some(k) = key {
        j.states.borrow_mut().insert(k, r.clone());
    }
    r
}

impl StateSummary {
    fn shown(&self, m: &Machine<'_>, state: Value) -> &str {
        self.shown.get_or_init(|| {
            let mut keys = String::new();
            for_state_keys(m, state, |k| {
                if !keys.is_empty() {
                    keys.push_str(", ");
                }
                keys.push_str(&m.arena.text(m.data, k));
                keys.len() <= 120
            });
            if keys.is_empty() {
                "(from its state)".into()
            } else {
                render::shorten(keys, 120)
            }
        })
    }
}

/// Each attribute name a BUILD state sets (a dict, or `(dict, slotstate)`), until `f` says stop.
fn for_state_keys(m: &Machine<'_>, state: Value, mut f: impl FnMut(StrId) -> bool) {
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

fn rule_matches(m: &Machine<'_>, j: &Judged<'_>, trusted: &[bool], r: &Rule, args: Value) -> bool {
    let Some(node) = m.args_of(args) else {
        return false;
    };
    if node.len as usize != node.items.len() {
        return false;
    }
    let n = node.items.len();
    let rest = matches!(r.args.last(), Some(ArgPattern::OneOf(v)) if v.is_empty());
    if n < r.min_args || (!rest && n > r.args.len()) {
        return false;
    }
    node.items.iter().enumerate().all(|(i, a)| {
        let p = r.args.get(i).or(r.args.last()).unwrap_or(&ArgPattern::Any);
        arg_matches(m, j, trusted, p, *a)
    })
}

fn arg_matches(
    m: &Machine<'_>,
    j: &Judged<'_>,
    trusted: &[bool],
    p: &ArgPattern,
    v: Value,
) -> bool {
    match p {
        ArgPattern::Any => true,
        ArgPattern::Data => is_plain(m, j, v, 0),
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
        ArgPattern::OneOf(ps) => {
            ps.is_empty() || ps.iter().any(|p| arg_matches(m, j, trusted, p, v))
        }
    }
}

/// Plain data all the way down (no global, no call result).
fn is_plain(m: &Machine<'_>, j: &Judged<'_>, v: Value, depth: u32) -> bool {
    if v.is_scalar_data() {
        return true;
    }
    // Out of depth or of visits: not shown to be plain (fail closed).
    if depth > 32 || !j.step() {
        return false;
    }
    match v.node() {
        Some(n) => {
            let node = &m.arena.nodes[n as usize];
            node.all().all(|x| is_plain(m, j, x, depth + 1))
        }
        None => false,
    }
}

/// Whether a value made at load time traces back to something in the dangerous catalogue
/// (`getattr(__import__('os'), 'system')`).
fn dangerous_value(m: &Machine<'_>, j: &Judged<'_>, v: Value, depth: u32) -> bool {
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

/// Look inside the arguments of a call that was not accepted: pickles handed to a loader,
/// code handed to an interpreter, and encoded forms of either (also when the decoding itself
/// happens while loading, e.g. `exec(base64.b64decode('...'))`).
fn examine_literals(
    m: &Machine<'_>,
    policy: &Policy,
    ctx: &Context,
    j: &Judged<'_>,
    c: &CallNode,
    category: Option<&str>,
    out: &mut Report,
) {
    let Some(node) = m.args_of(c.args) else {
        return;
    };
    let name = render::render(m, c.callable);
    let cat = match category {
        None => 0u8,
        Some("deserialization") => 1,
        Some("code execution") | Some("debugger/profiler runner") => 2,
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
            let shown = render::shorten(format!("{:?}", String::from_utf8_lossy(&lit.bytes)), 160);
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
            Some("deserialization") => {
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
            Some("code execution") | Some("debugger/profiler runner") => {
                code_string(c, &name, &String::from_utf8_lossy(&lit.bytes), out);
                continue;
            }
            _ => {}
        }
        obfuscated(policy, ctx, c, &name, &lit.bytes, 0, out);
    }
    if crate::container::budget::decode_limit_unreported() {
        limit_finding(out, c.pos as usize, "decoded-arguments budget");
    }
}

/// A literal argument, possibly computed by decoding calls made while loading.
struct Literal {
    bytes: Vec<u8>,
    text: bool,
    /// The decoding steps that produced it, if any.
    how: Option<String>,
}

/// Evaluate a value that is a literal or a chain of pure decoding calls on literals.
fn evaluate(m: &Machine<'_>, j: &Judged<'_>, v: Value, depth: u32) -> Option<Literal> {
    let lit = |bytes: Vec<u8>, text: bool| Literal {
        bytes,
        text,
        how: None,
    };
    match v {
        Value::Str(s) => {
            let t = m.arena.text(m.data, s);
            if !charge(t.len()) {
                return None;
            }
            return Some(lit(t.into_owned().into_bytes(), true));
        }
        Value::Bytes(b) | Value::ByteArray(b) => {
            let b = m.arena.blob(m.data, b);
            if !charge(b.len()) {
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
        .min(crate::container::budget::decoded_left() as usize);
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
                if !charge(total) {
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
            if !out.as_ref().map(|b| charge(b.len())).unwrap_or(true) {
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
    if !charge(out.len()) {
        return None;
    }
    Some(Literal {
        bytes: out,
        text: false,
        how: Some(chain(&inner, step)),
    })
}

fn rot13(b: &[u8]) -> Vec<u8> {
    b.iter()
        .map(|&c| match c {
            b'a'..=b'z' => (c - b'a' + 13) % 26 + b'a',
            b'A'..=b'Z' => (c - b'A' + 13) % 26 + b'A',
            _ => c,
        })
        .collect()
}

fn latin1(t: &str) -> Vec<u8> {
    t.chars()
        .map(|c| if (c as u32) < 256 { c as u8 } else { b'?' })
        .collect()
}

fn code_string(c: &CallNode, name: &str, t: &str, out: &mut Report) {
    let imports = decode::imported_modules(t);
    let mut desc = format!(
        "passes Python code to {name}: {}",
        render::shorten(format!("{t:?}"), 160)
    );
    if !imports.is_empty() {
        desc.push_str(&format!(" (imports {})", imports.join(", ")));
    }
    let mut f = Finding::new(FindingType::CodeString, Severity::Critical, c.pos, desc);
    f.callable = Some(name.to_string());
    out.push(f);
}

fn nested_payload(
    policy: &Policy,
    ctx: &Context,
    c: &CallNode,
    name: &str,
    blob: &[u8],
    verb: &str,
    out: &mut Report,
) {
    if ctx.depth + 1 > policy.limits.max_nesting {
        limit_finding(out, c.pos as usize, "nesting depth");
        return;
    }
    let label = format!("nested in {name} at byte {}", c.pos);
    let inner = crate::container::within(&label, || (ctx.nested)(blob, policy, ctx.depth + 1));
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

fn obfuscated(
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
        .min(crate::container::budget::decoded_left() as usize);
    for d in decode::unwrap_once(raw, max) {
        if !charge(d.bytes.len()) {
            return;
        }
        let text = std::str::from_utf8(&d.bytes).ok();
        let markers = text.map(decode::code_markers).unwrap_or_default();
        if !markers.is_empty() {
            let shown = render::shorten(format!("{:?}", text.unwrap_or_default()), 160);
            let mut f = Finding::new(
                FindingType::Obfuscation,
                Severity::High,
                c.pos,
                format!("an argument of {name} is {}-encoded code: {shown}", d.how),
            );
            f.callable = Some(name.to_string());
            out.push(f);
        } else if looks_like_pickle(&d.bytes) {
            if ctx.depth + 1 > policy.limits.max_nesting {
                limit_finding(out, c.pos as usize, "nesting depth");
                return;
            }
            let label = format!("{}-decoded argument of {name} at byte {}", d.how, c.pos);
            let inner =
                crate::container::within(&label, || (ctx.nested)(&d.bytes, policy, ctx.depth + 1));
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

fn looks_like_pickle(b: &[u8]) -> bool {
    matches!(b, [0x80, 1..=5, ..])
        || b.ends_with(b".")
            && b.first()
                .map(|c| crate::opcodes::Op::from_byte(*c).is_some())
                .unwrap_or(false)
}
