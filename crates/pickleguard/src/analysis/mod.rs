//! Runs the machine over every pickle of a stream and judges what it recorded against the
//! policy: imports, calls and their arguments, BUILDs, nested and encoded payloads.

mod alloc;
mod build;
mod calls;
#[cfg(test)]
mod driver_tests;
mod judged;
mod ops;
mod payload;
mod schema;
mod side_files;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

#[allow(unused_imports)]
use build::*;
#[allow(unused_imports)]
use calls::*;
#[allow(unused_imports)]
use judged::*;
#[allow(unused_imports)]
use ops::*;
#[allow(unused_imports)]
use payload::*;
#[allow(unused_imports)]
use schema::*;
#[allow(unused_imports)]
use side_files::*;

use crate::context::observe::{Graph, JoblibStep, PickleRun, RunEnd};
use crate::context::ScanContext;
use crate::decode;
use crate::machine::{CallKind, CallNode, Machine, Outcome, Unpickler};
use crate::policy::{uses, ArgPattern, Category, GlobalVerdict, Mode, Policy, Rule};
use crate::render::{self, global_name, render_args};
use crate::report::{
    Finding, FindingType, GlobalUse, Limit, MemberPath, Report, Segment, Severity, StopReason, Use,
};
use crate::value::{CallId, IdMap, IdSet, StrId, Value};
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// What a stream analysis needs besides the policy: where the stream sits in the scan.
#[derive(Clone, Copy)]
pub(crate) struct Context<'s> {
    /// Skip joblib's array bytes after a NumpyArrayWrapper BUILD, as joblib does.
    pub(crate) joblib: bool,
    /// A record of a TorchScript archive, which `torch.jit.load` (and `torch.load`, which hands
    /// such archives to it) reads with its C++ unpickler: see [`Policy::torchscript_verdict`].
    pub(crate) torchscript: bool,
    /// The recorded stream this is the C unpickler's reading of (with joblib's reads), which
    /// the scan's observer is shown; `None` for the other readings and unrecorded streams.
    pub(crate) stream: Option<usize>,
    /// The scan: its budget, recorder and scanner for nested files (whole files, e.g. a torch
    /// zip for `_load_from_bytes`, maybe compressed: sniffed like any file).
    pub(crate) scan: &'s ScanContext<'s>,
}

impl<'s> Context<'s> {
    /// The context of a stream that is the scan's input.
    pub(crate) fn new(scan: &'s ScanContext<'s>) -> Context<'s> {
        Context {
            joblib: true,
            torchscript: false,
            stream: None,
            scan,
        }
    }
}

/// Note, on a report that passed, each global it accepted that a name-only `find_class`
/// refuses ([`Policy::judge_name_only`]): an unpickler that no scan of its stream precedes
/// falls back to that check (docs/security.md, "One decision") and would refuse the file
/// the scan calls safe. Informational (severity SAFE): the verdict stays the scan's.
pub fn note_name_only_refusals(report: &mut Report, policy: &Policy) {
    // A TorchScript archive is read by torch's C++ unpickler, never by a Python find_class.
    if !report.is_safe || report.format == "torchscript" {
        return;
    }
    let notes: Vec<Finding> = report
        .globals
        .iter()
        .filter(|g| policy.judge_name_only(&g.module, &g.name).refused)
        .map(|g| {
            let mut f = Finding::new(
                FindingType::RuntimeStricter,
                Severity::Safe,
                0,
                format!(
                    "{}.{} is accepted by how it is used here, but refused by a name-only \
                     find_class: an unpickler that pickleguard does not scan first (a direct \
                     joblib NumpyUnpickler, pandas or dill Unpickler, a pickle._Unpickler \
                     subclass with its own dispatch) refuses this file",
                    g.module, g.name
                ),
            );
            f.module = Some(g.module.clone());
            f.name = Some(g.name.clone());
            f
        })
        .collect();
    for f in notes {
        report.push(f);
    }
}

/// Analyse a raw pickle stream (one or several pickles back to back), as every loader reads
/// it: as bytes, from a file object, by the C and the pure-Python unpickler
/// ([`crate::readings`]).
pub(crate) fn analyze_stream(data: &[u8], policy: &Policy, ctx: &Context) -> Report {
    analyze_reading(data, policy, ctx, Unpickler::C, true)
}

/// The stream as `unpickler` reads it from memory, then the other readings where they differ
/// (file readings only if `files`): see [`crate::readings`].
pub(crate) fn analyze_reading(
    data: &[u8],
    policy: &Policy,
    ctx: &Context,
    unpickler: Unpickler,
    files: bool,
) -> Report {
    let mut report = Report::new("raw_pickle");
    let mut m = Machine::new(data, policy.limits.clone());
    m.set_deadline(ctx.scan.budget.deadline());
    m.joblib = ctx.joblib;
    m.unpickler = unpickler;
    // The reading the observer (if any) is shown, and what it is shown besides the machine.
    let observed = ctx
        .stream
        .zip(ctx.scan.observer())
        .filter(|_| unpickler == Unpickler::C);
    let mut steps: Vec<JoblibStep<'_>> = Vec::new();
    let mut pos = 0usize;
    let mut index: u64 = 0;
    let mut joblib_seen = false;
    // Byte ranges joblib reads as numeric array data (skipped by this view).
    let mut skipped: Vec<(u64, u64)> = Vec::new();
    loop {
        m.reset();
        let start = pos;
        let member = (index > 0).then(|| Segment::LaterPickle {
            number: index + 1,
            at: start as u64,
        });
        let mut sub = Report::new("raw_pickle");
        // Most pickles of plain data never import or call: check their shape without building
        // values, and build the graph only for those that need it.
        let ops_before = m.ops;
        m.set_shape_only(ctx.scan.fast_path);
        let mut outcome = m.run(start);
        if let Outcome::NeedsGraph { .. } = outcome {
            m.reset();
            m.set_shape_only(false);
            m.ops = ops_before;
            outcome = m.run(start);
        }
        m.set_shape_only(false);
        steps.clear();
        let mut keep = observed.is_some().then_some(&mut steps);
        while let Outcome::JoblibArray { next, wrapper } = outcome {
            joblib_seen = true;
            let read = JoblibArray {
                wrapper,
                next,
                skipped: &mut skipped,
                steps: keep.as_deref_mut(),
            };
            outcome = match joblib_array(&m, read, policy, ctx, &mut sub) {
                Ok(resume) => m.resume(resume),
                Err(o) => o,
            };
        }
        if let (Some((stream, observer)), Some(end)) = (observed, RunEnd::of(&outcome)) {
            let reads: Vec<_> = steps.iter().map(JoblibStep::view).collect();
            observer.pickle(&PickleRun {
                stream,
                index,
                start,
                graph: Graph::new(&m),
                joblib: &reads,
                end: &end,
            });
        }
        match outcome {
            Outcome::Stop { end, .. } => {
                judge_member(&m, policy, ctx, &mut sub, member.as_ref());
                report.absorb(sub, member.as_ref());
                if end >= data.len() {
                    break;
                }
                index += 1;
                if index >= policy.limits.max_pickles {
                    limit_finding(&mut report, end, Limit::PicklesPerStream);
                    break;
                }
                pos = end;
            }
            Outcome::Error { pos: epos, err } => {
                if m.first_effect.is_none() {
                    if index == 0 {
                        // The loader stops at the break and nothing before it can run: the
                        // analysis saw all that loading does (complete, nothing stopped it),
                        // the same for a config.json and a cut pickle (docs/report-schema.md).
                        report.format = "not_pickle".into();
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
                judge_member(&m, policy, ctx, &mut sub, member.as_ref());
                sub.push(Finding::new(
                    FindingType::Malformed,
                    Severity::Medium,
                    epos as u64,
                    format!("the stream breaks here ({err}); everything before this point runs when it is loaded"),
                ));
                sub.complete = false;
                sub.stopped_by = Some(StopReason::Malformed(format!("{err} at byte {epos}")));
                report.absorb(sub, member.as_ref());
                break;
            }
            Outcome::Limit { pos: lpos, what } => {
                judge_member(&m, policy, ctx, &mut sub, member.as_ref());
                report.absorb(sub, member.as_ref());
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
            stream: None,
            ..*ctx
        };
        plain_view(&mut report, analyze_stream(data, policy, &plain), &skipped);
    }
    let divergence = m.divergence;
    crate::readings::judge(&mut report, data, policy, ctx, unpickler, divergence, files);
    report.finish(policy.threshold);
    report
}

/// pickle.load (and torch.load, pandas.read_pickle) do not read joblib's array bytes: they run
/// them as opcodes. What only that view of a joblib stream does is reported too: everything it
/// does in bytes joblib skips as numeric data, and catalogued dangers anywhere (elsewhere the
/// views differ only by memo and stack context: a benign object array's nested pickle, run
/// in the outer context, imports nonsense names that fail to load).
fn plain_view(report: &mut Report, plain: Report, skipped: &[(u64, u64)]) {
    report.carry_limits(&plain, &Segment::PlainPickleReading);
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
        f.member = Some(MemberPath::under(
            &Segment::PlainPickleReading,
            f.member.take(),
        ));
        report.push(f);
    }
}

fn unreachable_outcome(report: &mut Report) {
    report.complete = false;
    report.stopped_by = Some(StopReason::Internal("unexpected pause".into()));
}

fn limit_finding(report: &mut Report, pos: usize, what: Limit) {
    report.push(Finding::limit(
        pos as u64,
        what,
        format!("analysis stopped at the {what} limit: the rest of the stream was not checked"),
    ));
    report.complete = false;
    report.stopped_by = Some(what.into());
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
    // One walk of the state for the three keys: this runs for every array of a model.
    let [shape, dtype, alignment] =
        dict_get_all(m, state, ["shape", "dtype", "numpy_array_alignment_bytes"]);
    let shape = shape.ok_or("joblib array wrapper without shape")?;
    let dtype = dtype.ok_or("joblib array wrapper without dtype")?;
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
    if let Some(Value::Int(_)) = alignment {
        let pad = *m.data.get(next).ok_or("joblib array padding truncated")? as u128;
        at += 1 + pad;
    }
    let end = at + count.saturating_mul(itemsize as u128);
    if end > m.data.len() as u128 {
        return Err("joblib array data truncated");
    }
    Ok(JoblibData::Numeric { end: end as usize })
}

/// One pause of the driver at a joblib array: the wrapper's call, where the unpickler paused,
/// and where what joblib reads is kept.
struct JoblibArray<'k, 'd> {
    wrapper: CallId,
    next: usize,
    /// The numeric arrays' bytes.
    skipped: &'k mut Vec<(u64, u64)>,
    /// Each read, for the observer (`None`: unobserved).
    steps: Option<&'k mut Vec<JoblibStep<'d>>>,
}

/// joblib reads a NumpyArrayWrapper's array straight from the stream: skip exactly the bytes
/// it reads (or analyse the pickle it loads for object arrays). Returns where the pickle goes on;
/// the numeric array's bytes are added to `read.skipped`.
fn joblib_array<'d>(
    m: &Machine<'d>,
    read: JoblibArray<'_, 'd>,
    policy: &Policy,
    ctx: &Context,
    sub: &mut Report,
) -> Result<usize, Outcome> {
    let next = read.next;
    let fail = |msg: &'static str| Outcome::Error {
        pos: next,
        err: crate::machine::MachineError::BadText(msg),
    };
    match joblib_array_data(m, read.wrapper, next).map_err(fail)? {
        JoblibData::Objects => {
            let (stopped, rep, inner) = single_pickle(m.data, next, policy, ctx);
            sub.absorb(rep, Some(&Segment::JoblibObjectArray { at: next as u64 }));
            let (stop, end) =
                stopped.ok_or_else(|| fail("joblib object array pickle is broken"))?;
            if let Some(steps) = read.steps {
                steps.push(JoblibStep::Objects {
                    at: next,
                    stop,
                    end,
                    machine: inner,
                });
            }
            Ok(end)
        }
        JoblibData::Numeric { end } => {
            read.skipped.push((next as u64, end as u64));
            if let Some(steps) = read.steps {
                steps.push(JoblibStep::Numeric { at: next, end });
            }
            Ok(end)
        }
    }
}

/// Analyse exactly one pickle starting at `start`; returns where its STOP is and where it
/// ended (None if broken), and its run.
fn single_pickle<'d>(
    data: &'d [u8],
    start: usize,
    policy: &Policy,
    ctx: &Context,
) -> (Option<(usize, usize)>, Report, Box<Machine<'d>>) {
    let mut m = Box::new(Machine::new(data, policy.limits.clone()));
    m.set_deadline(ctx.scan.budget.deadline());
    m.joblib = ctx.joblib;
    let mut sub = Report::new("raw_pickle");
    let out = m.run(start);
    judge(&m, policy, ctx, &mut sub);
    let stopped = match out {
        Outcome::Stop { pos, end } => Some((pos, end)),
        Outcome::Error { pos, err } => {
            sub.push(Finding::new(
                FindingType::Malformed,
                Severity::Medium,
                pos as u64,
                format!("the stream breaks here ({err})"),
            ));
            sub.complete = false;
            None
        }
        _ => {
            limit_finding(&mut sub, start, Limit::NestedJoblibPickle);
            None
        }
    };
    (stopped, sub, m)
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

/// [`dict_get`] of each of `keys`, in one walk of the dict.
fn dict_get_all<const N: usize>(m: &Machine<'_>, d: Value, keys: [&str; N]) -> [Option<Value>; N] {
    let mut found = [None; N];
    let Value::Dict(n) = d else { return found };
    let node = &m.arena.nodes[n as usize];
    for kv in node.items.chunks(2).chain(node.extra.chunks(2)) {
        let Value::Str(s) = kv[0] else { continue };
        let text = m.arena.text_bytes(m.data, s);
        for (key, slot) in keys.iter().zip(found.iter_mut()) {
            if slot.is_none() && text == key.as_bytes() {
                *slot = Some(kv[1]);
            }
        }
    }
    found
}

/// Item size and "holds objects" of a pickled `numpy.dtype`.
fn dtype_info(m: &Machine<'_>, dtype: Value) -> Option<(u64, bool)> {
    let Value::Call(c) = dtype else { return None };
    let call = &m.calls[c as usize];
    let args = m.args_of(call.args)?;
    let Value::Str(s) = *args.items.first()? else {
        return None;
    };
    let spec = m.arena.text(m.data, s);
    // A BUILD of the dtype comes after the call that made it: searching from there finds
    // the same first one without walking every call before (once per array of a model).
    let state = m.calls[c as usize..]
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
    let rest = &spec[kind.len_utf8()..];
    let digits = rest
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    let n: u64 = rest[..digits].parse().ok()?;
    Some((if kind == 'U' { n * 4 } else { n }, false))
}
