//! `pickleguard explain FILE`: an annotated disassembly (position, opcode, argument, stack
//! effect in `pickletools` notation), a Python-like rendering of what loading would do, and
//! the findings marked on the lines they come from.
//!
//! Everything shown comes from the scan itself: its observer ([`pickleguard::ScanObserver`])
//! is shown each pickle the core's driver runs, joblib's reads included, and this module
//! writes it out: every import becomes `from module import name`, every call `_vN = f(args)`,
//! BUILD `_vN.__setstate__(state)`, persistent ids `persistent_load(pid)`. Literals are
//! written by the core's renderer. Nothing is executed.

use crate::cli::ExplainArgs;
use crate::output::finding_line;
use crate::scan::{load, FileResult};
use crate::term::{self, Style};
use crate::walk::{Source, STDIN};
use crate::{config, ExitStatus};
use pickleguard::{
    listed, shorten, str_lit, terminal_safe, CallKind, Finding, Graph, JoblibRead, MemberPath,
    NamedStyle, Op, PickleRun, PickleStream, Policy, Report, RunEnd, Scan, ScanObserver, Value,
};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

/// Longest Python-like line.
const LINE_WIDTH: usize = 400;

fn is_ident(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c == '_' || c.is_alphabetic())
        && cs.all(|c| c == '_' || c.is_alphanumeric())
}

/// Renders a pickle's values with names for globals and call results.
struct Renderer<'r> {
    g: Graph<'r>,
    /// Expression of each global.
    globals: Vec<String>,
    /// Variable of each call that produces a value.
    calls: Vec<Option<String>>,
}

impl Renderer<'_> {
    fn value(&self, v: Value, out: &mut String, depth: u32) {
        let style = NamedStyle {
            globals: &self.globals,
            calls: &self.calls,
        };
        self.g.write(v, &style, out, depth)
    }

    fn expr(&self, v: Value) -> String {
        let mut s = String::new();
        self.value(v, &mut s, 0);
        s
    }

    /// `(a, b)` for a literal tuple of arguments, `(*x)` otherwise.
    fn args(&self, args: Value, first: Option<&str>) -> String {
        let mut out = String::from("(");
        let mut n = 0;
        if let Some(f) = first {
            out.push_str(f);
            n += 1;
        }
        match args {
            Value::Tuple(_) => {
                if let Some((items, len)) = self.g.items(args) {
                    for a in items {
                        if n > 0 {
                            out.push_str(", ");
                        }
                        self.value(*a, &mut out, 1);
                        n += 1;
                    }
                    if len > items.len() {
                        out.push_str(", ...");
                    }
                }
            }
            other => {
                if n > 0 {
                    out.push_str(", ");
                }
                out.push('*');
                self.value(other, &mut out, 1);
            }
        }
        out.push(')');
        out
    }

    /// The items of a literal tuple or list.
    fn items(&self, v: Value) -> Vec<String> {
        match self.g.items(v) {
            Some((items, len)) => {
                let mut v: Vec<String> = items.iter().map(|x| self.expr(*x)).collect();
                if len > items.len() {
                    v.push("...".into());
                }
                v
            }
            None => vec![format!("*{}", self.expr(v))],
        }
    }
}

/// One line of the Python-like rendering.
#[derive(Clone)]
struct Line {
    pos: u64,
    text: String,
}

/// Bind every global of a pickle to a name and produce the import lines.
fn bind_globals(g: Graph<'_>) -> (Vec<String>, Vec<(u64, String)>) {
    let globals = g.globals();
    let mut exprs = Vec::with_capacity(globals.len());
    let mut lines = Vec::with_capacity(globals.len());
    // (module, first segment) -> bound local name; names taken; next suffix per first segment.
    let mut bound: HashMap<(&str, &str), String> = HashMap::new();
    let mut taken: HashSet<String> = HashSet::new();
    let mut suffix: HashMap<&str, usize> = HashMap::new();
    for (i, g) in globals.iter().enumerate() {
        if let Some(code) = g.ext {
            let var = format!("_ext{code}");
            lines.push((
                g.pos,
                format!("{var} = find_class(*copyreg._inverted_registry[{code}])  # extension code {code}"),
            ));
            exprs.push(var);
            continue;
        }
        if g.computed {
            let var = format!("_g{i}");
            let part = |s: &str| {
                if s == "?" {
                    "<computed>".to_string()
                } else {
                    str_lit(s, 60)
                }
            };
            lines.push((
                g.pos,
                format!(
                    "{var} = find_class({}, {})  # module and name computed while loading",
                    part(&g.module),
                    part(&g.name)
                ),
            ));
            exprs.push(var);
            continue;
        }
        let segs: Vec<&str> = g.name.split('.').collect();
        if !segs.iter().all(|s| is_ident(s)) {
            let var = format!("_g{i}");
            lines.push((
                g.pos,
                format!(
                    "{var} = find_class({}, {})",
                    str_lit(&g.module, 60),
                    str_lit(&g.name, 60)
                ),
            ));
            exprs.push(var);
            continue;
        }
        let first = segs[0];
        let local = match bound.get(&(g.module.as_str(), first)) {
            Some(n) => n.clone(),
            None => {
                let mut name = first.to_string();
                let k = suffix.entry(first).or_insert(2);
                while taken.contains(&name) {
                    name = format!("{first}_{k}");
                    *k += 1;
                }
                taken.insert(name.clone());
                bound.insert((g.module.as_str(), first), name.clone());
                name
            }
        };
        let import = if local == first {
            format!("from {} import {first}", g.module)
        } else {
            format!("from {} import {first} as {local}", g.module)
        };
        lines.push((g.pos, import));
        let mut expr = local;
        for s in &segs[1..] {
            expr.push('.');
            expr.push_str(s);
        }
        exprs.push(expr);
    }
    (exprs, lines)
}

/// The Python-like lines of one pickle run; its call results are named `{prefix}_vN`.
fn render_lines(g: Graph<'_>, stop: Option<u64>, prefix: &str) -> Vec<Line> {
    let (globals, global_lines) = bind_globals(g);
    let mut calls = Vec::with_capacity(g.calls().len());
    let mut k = 0;
    for c in g.calls() {
        let produces = !matches!(c.kind, CallKind::Build | CallKind::Method(_));
        calls.push(produces.then(|| {
            k += 1;
            format!("{prefix}_v{}", k - 1)
        }));
    }
    let r = Renderer { g, globals, calls };
    let mut call_lines = Vec::with_capacity(g.calls().len());
    for (i, c) in g.calls().iter().enumerate() {
        let var = r.calls[i].clone().unwrap_or_default();
        let f = r.expr(c.callable);
        let text = match c.kind {
            CallKind::Reduce | CallKind::Inst | CallKind::Obj => {
                format!("{var} = {f}{}", r.args(c.args, None))
            }
            CallKind::NewObj => format!("{var} = {f}.__new__{}", r.args(c.args, Some(&f))),
            CallKind::NewObjEx => {
                let mut a = r.args(c.args, Some(&f));
                if let Some(kw) = g.kwargs(i as u32) {
                    a.pop();
                    let _ = write!(a, ", **{})", r.expr(kw));
                }
                format!("{var} = {f}.__new__{a}")
            }
            CallKind::Build => {
                let state = r.expr(c.args);
                // pickle's default `__setstate__`: a dict of attributes, or a pair
                // (dict or None, dict of slots).
                let attr = match c.args {
                    Value::Dict(_) => true,
                    Value::Tuple(_) => g.items(c.args).is_some_and(|(items, len)| {
                        len == 2
                            && items.len() == 2
                            && matches!(items[0], Value::Dict(_) | Value::None)
                            && matches!(items[1], Value::Dict(_) | Value::None)
                    }),
                    _ => false,
                };
                if attr {
                    format!("{f}.__setstate__({state})  # BUILD: without __setstate__, the items become attributes")
                } else {
                    format!("{f}.__setstate__({state})  # BUILD")
                }
            }
            CallKind::Method(method) => match method.name() {
                "__setitem__" => {
                    let items = r.items(c.args);
                    let mut parts = Vec::new();
                    for pair in items.chunks(2) {
                        match pair {
                            [k, v] => parts.push(format!("{f}[{k}] = {v}")),
                            [x] => parts.push(format!("{f}.__setitem__({x})")),
                            _ => {}
                        }
                    }
                    parts.join("; ")
                }
                "append" | "add" => r
                    .items(c.args)
                    .iter()
                    .map(|x| format!("{f}.{}({x})", method.name()))
                    .collect::<Vec<_>>()
                    .join("; "),
                _ => format!("{f}.{}([{}])", method.name(), r.items(c.args).join(", ")),
            },
            CallKind::Persistent => format!("{var} = persistent_load({})", r.expr(c.args)),
        };
        call_lines.push((c.pos, text));
    }
    // Merge by position; at one position, the import comes before the call (INST).
    let mut lines: Vec<Line> = Vec::with_capacity(global_lines.len() + call_lines.len() + 1);
    let (mut gi, mut ci) = (0, 0);
    while gi < global_lines.len() || ci < call_lines.len() {
        let take_global = match (global_lines.get(gi), call_lines.get(ci)) {
            (Some(g), Some(c)) => g.0 <= c.0,
            (Some(_), None) => true,
            _ => false,
        };
        let (pos, text) = if take_global {
            gi += 1;
            global_lines[gi - 1].clone()
        } else {
            ci += 1;
            call_lines[ci - 1].clone()
        };
        lines.push(Line {
            pos,
            text: shorten(terminal_safe(&text).into_owned(), LINE_WIDTH),
        });
    }
    if let (Some(pos), Some(v)) = (stop, g.result()) {
        lines.push(Line {
            pos,
            text: shorten(
                terminal_safe(&format!("return {}", r.expr(v))).into_owned(),
                LINE_WIDTH,
            ),
        });
    }
    lines
}

/// The marks of the findings at `pos`; `findings` is sorted by position.
fn marks_at(findings: &[&Finding], pos: u64, style: Style, prefix: &str) -> String {
    let mut s = String::new();
    let from = findings.partition_point(|f| f.position < pos);
    for f in findings[from..].iter().take_while(|f| f.position == pos) {
        let _ = write!(
            s,
            "{}<- {} {}",
            if s.is_empty() { prefix } else { " " },
            style.severity(f.severity),
            f.kind.as_str()
        );
    }
    s
}

/// What joblib read at one of a pickle's pauses, as explain shows it.
enum Read {
    /// Numeric array bytes `at..end`.
    Numeric { at: usize, end: usize },
    /// An object array's own pickle at `at`, its lines; the outer pickle goes on at `end`.
    Objects {
        at: usize,
        end: usize,
        lines: Vec<Line>,
    },
}

/// One pickle as the scan's driver ran it, rendered.
struct Ran {
    start: usize,
    protocol: u8,
    acts: bool,
    reads: Vec<Read>,
    end: RunEnd,
    lines: Vec<Line>,
}

/// Collects, for each stream of the scan, the pickles its driver ran.
#[derive(Default)]
struct Observed {
    streams: RefCell<Vec<Vec<Ran>>>,
}

impl ScanObserver for Observed {
    fn stream(&self, stream: usize) {
        let mut streams = self.streams.borrow_mut();
        streams.truncate(stream);
        streams.resize_with(stream + 1, Vec::new);
    }

    fn pickle(&self, run: &PickleRun<'_>) {
        let stop = match run.end {
            RunEnd::Stop { pos, .. } => Some(*pos as u64),
            _ => None,
        };
        let mut objects = 0;
        let reads = run
            .joblib
            .iter()
            .map(|r| match r {
                JoblibRead::Numeric { at, end } => Read::Numeric { at: *at, end: *end },
                JoblibRead::Objects {
                    at,
                    stop,
                    end,
                    graph,
                } => {
                    // Each block names its results apart (`_a1_v0`), so they never read as
                    // the outer ones.
                    objects += 1;
                    Read::Objects {
                        at: *at,
                        end: *end,
                        lines: render_lines(*graph, Some(*stop as u64), &format!("_a{objects}")),
                    }
                }
            })
            .collect();
        let ran = Ran {
            start: run.start,
            protocol: run.graph.protocol(),
            acts: run.graph.acts(),
            reads,
            end: run.end.clone(),
            lines: render_lines(run.graph, stop, ""),
        };
        let mut streams = self.streams.borrow_mut();
        if streams.len() <= run.stream {
            streams.resize_with(run.stream + 1, Vec::new);
        }
        streams[run.stream].push(ran);
    }
}

/// Explain one raw pickle stream (one or more pickles back to back) from the pickles the
/// scan's driver ran in it.
fn explain_stream(
    data: &[u8],
    runs: &[Ran],
    findings: &[&Finding],
    disassembly: bool,
    style: Style,
    out: &mut String,
) {
    let mut sorted: Vec<&Finding> = findings.to_vec();
    sorted.sort_by_key(|f| f.position);
    for (index, ran) in runs.iter().enumerate() {
        let start = ran.start;
        // joblib reads array data out of the stream between opcodes: the disassembly is cut
        // into the stretches the unpickler reads, each followed by what joblib reads there.
        let mut segments: Vec<(usize, usize, String)> = Vec::new();
        let mut seg_from = start;
        for read in &ran.reads {
            match read {
                Read::Numeric { at, end } => {
                    segments.push((
                        seg_from,
                        *at,
                        format!(
                            "bytes {at}..{end}: joblib array data ({} bytes), read by joblib as numbers, not run as opcodes",
                            end - at
                        ),
                    ));
                    seg_from = *end;
                }
                Read::Objects { at, end, .. } => {
                    segments.push((
                        seg_from,
                        *at,
                        format!("byte {at}: a joblib object array: joblib unpickles the pickle that follows"),
                    ));
                    segments.push((*at, *end, "end of the object array's pickle".into()));
                    seg_from = *end;
                }
            }
        }
        let (end, stopped, break_pos): (Option<usize>, Option<String>, Option<usize>) =
            match &ran.end {
                RunEnd::Stop { next, .. } => (Some(*next), None, None),
                RunEnd::Error { pos, message } => (
                    None,
                    Some(format!(
                        "loading stops here with an error: {} (byte {pos})",
                        terminal_safe(message)
                    )),
                    Some(*pos),
                ),
                RunEnd::Limit { pos, what } => (
                    None,
                    Some(format!(
                        "the analysis stops here: {what} limit (byte {pos})"
                    )),
                    Some(*pos),
                ),
            };
        if index > 0 && !ran.acts && end.is_none() {
            let _ = writeln!(
                out,
                "\n{} bytes after the last pickle (from byte {start}) are not a pickle: no loader runs them.",
                data.len() - start
            );
            break;
        }
        let _ = writeln!(
            out,
            "\n{}",
            style.bold(&format!(
                "pickle {} at byte {start} (protocol {})",
                index + 1,
                ran.protocol
            ))
        );
        let limit_end = end.or(break_pos.map(|p| p + 1)).unwrap_or(data.len());
        let lo = sorted.partition_point(|f| (f.position as usize) < start);
        let hi = sorted.partition_point(|f| (f.position as usize) < limit_end.max(start + 1));
        let in_range = &sorted[lo..hi.max(lo)];
        if disassembly {
            for (from, until, note) in &segments {
                disassemble(data, *from, Some(*until), None, in_range, style, out);
                let _ = writeln!(out, "  {}", style.dim(&format!("({note})")));
            }
            disassemble(data, seg_from, None, break_pos, in_range, style, out);
            if let Some(s) = &stopped {
                let _ = writeln!(out, "  {}", style.dim(&format!("({s})")));
            }
        }
        let _ = writeln!(out, "\n  {}", style.bold("What loading would do:"));
        let objects = ran
            .reads
            .iter()
            .filter(|r| matches!(r, Read::Objects { .. }))
            .count();
        if ran.lines.is_empty() && objects == 0 {
            let _ = writeln!(out, "  {}", style.dim("(nothing is imported or called)"));
        }
        // Each object array's block goes where joblib loads it, among the outer lines.
        let mut rest = &ran.lines[..];
        for read in &ran.reads {
            let Read::Objects { at, lines, .. } = read else {
                continue;
            };
            let before = rest.partition_point(|l| l.pos < *at as u64);
            write_lines(&rest[..before], in_range, style, out);
            rest = &rest[before..];
            let _ = writeln!(
                out,
                "  {}",
                style.dim(&format!(
                    "# joblib object array at byte {at}: its own pickle, loaded while the array is read"
                ))
            );
            if lines.is_empty() {
                let _ = writeln!(out, "  {}", style.dim("  (nothing is imported or called)"));
            }
            write_lines(lines, in_range, style, out);
            let _ = writeln!(out, "  {}", style.dim("# end of the object array"));
        }
        write_lines(rest, in_range, style, out);
        if let Some(s) = &stopped {
            if !ran.acts && index == 0 && matches!(ran.end, RunEnd::Error { .. }) {
                let _ = writeln!(
                    out,
                    "  {}",
                    style.dim(
                        "(not a pickle: it breaks before anything could be imported or called)"
                    )
                );
            } else {
                let _ = writeln!(out, "  {}", style.dim(&format!("# {s}")));
            }
        }
    }
}

/// The lines of "What loading would do", each with the marks of the findings at its position.
fn write_lines(lines: &[Line], findings: &[&Finding], style: Style, out: &mut String) {
    let width = lines
        .iter()
        .map(|l| l.text.chars().count())
        .max()
        .unwrap_or(0)
        .min(60);
    for l in lines {
        let marks = marks_at(findings, l.pos, style, "  # ");
        let pad = if marks.is_empty() {
            String::new()
        } else {
            " ".repeat(width.saturating_sub(l.text.chars().count()))
        };
        let _ = writeln!(out, "  {:>7}  {}{pad}{marks}", l.pos, l.text);
    }
}

/// Disassemble from `start` to the pickle's STOP, or up to `until` (exclusive) when given, or
/// to the instruction at `break_pos` where the machine stopped.
fn disassemble(
    data: &[u8],
    start: usize,
    until: Option<usize>,
    break_pos: Option<usize>,
    findings: &[&Finding],
    style: Style,
    out: &mut String,
) {
    let data = &data[..until.unwrap_or(data.len()).min(data.len())];
    if until.is_some() && start >= data.len() {
        return;
    }
    let stops = |op: Op| op == Op::STOP && until.is_none();
    // The argument column is as wide as the widest argument of this pickle (first pass).
    let mut arg_width = "argument".len();
    let mut p = start;
    while let Ok(ins) = listed(data, p) {
        let next = ins.next;
        arg_width = arg_width.max(terminal_safe(&ins.arg).chars().count());
        if stops(ins.op) || break_pos.is_some_and(|b| next > b) || next >= data.len() {
            break;
        }
        p = next;
    }
    let arg_width = arg_width + 2;
    let _ = writeln!(
        out,
        "\n  {:>7}  {:<22}{:<width$}  stack effect",
        "pos",
        "opcode",
        "argument",
        width = arg_width
    );
    let mut pos = start;
    let mut depth: usize = 0;
    loop {
        match listed(data, pos) {
            Ok(ins) => {
                let next = ins.next;
                let (before, after) = ins.op.stack_effect();
                if before.contains("mark") {
                    depth = depth.saturating_sub(1);
                }
                let indent = "  ".repeat(depth.min(6));
                let name = format!("{indent}{}", ins.op.name());
                let arg = terminal_safe(&ins.arg);
                let marks = marks_at(findings, pos as u64, style, "  ");
                let _ = writeln!(
                    out,
                    "  {:>7}  {:<22}{:<width$}  {before} -> {after}{marks}",
                    pos,
                    name,
                    arg,
                    width = arg_width
                );
                if ins.op == Op::MARK {
                    depth += 1;
                }
                if stops(ins.op) || break_pos == Some(pos) {
                    break;
                }
                if break_pos.is_some_and(|b| next > b) || (until.is_some() && next >= data.len()) {
                    break;
                }
                pos = next;
            }
            Err(e) => {
                let marks = marks_at(findings, pos as u64, style, "  ");
                let _ = writeln!(
                    out,
                    "  {:>7}  {}{marks}",
                    pos,
                    style.red(&format!("<cannot read: {}>", terminal_safe(&e)))
                );
                break;
            }
        }
    }
}

/// The findings whose positions are offsets in the stream recorded as `member`.
fn findings_of<'r>(report: &'r Report, member: Option<&MemberPath>) -> Vec<&'r Finding> {
    report
        .findings
        .iter()
        .filter(|f| MemberPath::in_stream(f.member.as_ref(), member))
        .collect()
}

/// What explaining the pickle streams of one scanned file needs.
struct Streams<'a> {
    file: &'a [u8],
    report: &'a Report,
    /// The pickles the driver ran, by stream.
    runs: &'a [Vec<Ran>],
    disassembly: bool,
    style: Style,
}

impl Streams<'_> {
    /// A container: explain each pickle stream found in it, under the member path its
    /// findings carry.
    fn container(&self, format: &str, streams: &[PickleStream], out: &mut String) {
        let pickles: Vec<(usize, &PickleStream)> = streams
            .iter()
            .enumerate()
            .filter(|(_, s)| s.format != "not_pickle")
            .collect();
        let others = streams.len() - pickles.len();
        let _ = writeln!(
            out,
            "\n{}",
            self.style.dim(&format!(
                "This is {} {format} container with {} pickle stream{} inside{}: each is explained below.",
                article(format),
                pickles.len(),
                if pickles.len() == 1 { "" } else { "s" },
                if others > 0 {
                    format!(" ({others} other member{} not a pickle)", if others == 1 { " is" } else { "s are" })
                } else {
                    String::new()
                }
            ))
        );
        self.each(&pickles, out);
    }

    /// Each stream, by its number in the scan.
    fn each(&self, pickles: &[(usize, &PickleStream)], out: &mut String) {
        let style = self.style;
        for &(i, s) in pickles {
            let name = s
                .member
                .as_ref()
                .map_or("(the file itself)", MemberPath::as_str);
            let _ = writeln!(
                out,
                "\n{}",
                style.bold(&format!(
                    "== {} ({}, {} bytes)",
                    terminal_safe(name),
                    s.format,
                    s.len
                ))
            );
            match s.bytes(self.file) {
                Some(d) => {
                    let fs = findings_of(self.report, s.member.as_ref());
                    let runs = self.runs.get(i).map_or(&[][..], |r| &r[..]);
                    explain_stream(d, runs, &fs, self.disassembly, style, out);
                }
                None => {
                    let _ = writeln!(
                        out,
                        "  {}",
                        style.dim("(too large to keep for explain: its findings are listed below)")
                    );
                }
            }
        }
    }
}

/// Explain a whole file: its verdict, each pickle, the findings.
pub fn explain_bytes(
    name: &str,
    data: &[u8],
    policy: &Policy,
    disassembly: bool,
    style: Style,
) -> (String, Report) {
    let observed = Observed::default();
    let (report, streams) = Scan::new(policy).observe(&observed).file_with_streams(data);
    let runs = observed.streams.into_inner();
    let mut out = String::new();
    let result = FileResult {
        path: name.to_string(),
        report: report.clone(),
        error: None,
        bytes: data.len() as u64,
        hub: None,
    };
    let verdict = if report.is_safe {
        style.green("SAFE")
    } else {
        style.red("UNSAFE")
    };
    let level = if report.risk_level == pickleguard::Severity::Safe {
        String::new()
    } else {
        format!("{}, ", style.severity(report.risk_level))
    };
    let _ = writeln!(
        out,
        "{}: {verdict} ({level}{}, {} bytes; mode {}, fail on {})",
        style.bold(&terminal_safe(&result.path)),
        report.format,
        data.len(),
        policy.mode.as_str(),
        policy.threshold.as_str()
    );
    let in_file = findings_of(&report, None);
    let ctx = Streams {
        file: data,
        report: &report,
        runs: &runs,
        disassembly,
        style,
    };
    match report.format.as_str() {
        "raw_pickle" | "joblib" | "not_pickle" => {
            if report.format == "not_pickle" {
                let _ = writeln!(
                    out,
                    "{}",
                    style.dim(&format!(
                        "Not a pickle: {}",
                        terminal_safe(
                            &report
                                .stopped_by
                                .as_ref()
                                .map_or("no pickle opcodes".into(), |s| s.render())
                        )
                    ))
                );
            } else {
                // The file itself is the scan's first stream.
                let own = streams.iter().position(|s| s.member.is_none());
                let file_runs = own.and_then(|i| runs.get(i)).map_or(&[][..], |r| &r[..]);
                explain_stream(data, file_runs, &in_file, disassembly, style, &mut out);
                // Pickles embedded in this one (bytes handed to pickle.loads and the like).
                let nested: Vec<(usize, &PickleStream)> = streams
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.member.is_some() && s.format != "not_pickle")
                    .collect();
                if !nested.is_empty() {
                    let _ = writeln!(
                        out,
                        "\n{}",
                        style.dim(&format!(
                            "{} embedded pickle stream{} (analysed as loading would unpickle them):",
                            nested.len(),
                            if nested.len() == 1 { "" } else { "s" }
                        ))
                    );
                    ctx.each(&nested, &mut out);
                }
            }
        }
        other => ctx.container(other, &streams, &mut out),
    }
    let _ = writeln!(out, "\n{}", style.bold("Findings:"));
    if report.findings.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for f in &report.findings {
        out.push_str(&finding_line(f, style));
        out.push('\n');
    }
    (out, report)
}

/// `pickleguard explain`.
pub fn command(a: &ExplainArgs) -> Result<ExitStatus, String> {
    let eff = config::build(&a.policy, None)?;
    let (source, name) = if a.path.as_os_str() == "-" {
        (Source::Stream(None), STDIN.to_string())
    } else {
        let shown = terminal_safe(&a.path.display().to_string()).into_owned();
        let meta = std::fs::metadata(&a.path).map_err(|e| format!("{shown}: {e}"))?;
        if meta.is_dir() {
            return Err(format!(
                "{shown}: is a directory (explain takes one file; use scan for trees)"
            ));
        }
        let src = if meta.is_file() {
            Source::File(a.path.clone())
        } else {
            Source::Stream(Some(a.path.clone()))
        };
        (src, a.path.display().to_string())
    };
    let data = load(&source).map_err(|e| format!("{}: {e}", terminal_safe(&name)))?;
    let style = Style {
        on: term::use_color(a.color, false),
    };
    let (text, report) = explain_bytes(&name, &data, &eff.policy, !a.no_disassembly, style);
    term::write_stdout(text.as_bytes())?;
    Ok(ExitStatus::safe_if(
        report.is_safe || eff.policy.mode == pickleguard::Mode::Audit,
    ))
}

/// "a" or "an" before a format name ("an unscannable container", "a pytorch_zip container").
fn article(word: &str) -> &'static str {
    match word.bytes().next() {
        Some(b'a' | b'e' | b'i' | b'o' | b'u') => "an",
        _ => "a",
    }
}
