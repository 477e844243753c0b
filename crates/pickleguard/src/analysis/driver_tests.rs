//! The stream driver: pickles back to back, where a stream ends or breaks, limits, and
//! joblib's pauses with the plain-pickle view of the bytes they skip.

use super::testing::*;
use super::*;
use crate::context::{Options, ScanContext};

/// [`analyze_stream`] of `data` as the scan's input, under `policy`.
fn stream(data: &[u8], policy: &Policy) -> Report {
    let scan = ScanContext::new(
        policy,
        data,
        Options::default(),
        crate::container::scan_nested,
    );
    analyze_stream(data, policy, &Context::new(&scan))
}

fn evil() -> Vec<u8> {
    P::new()
        .g("posix", "system")
        .s("id")
        .op(&[TUPLE1, REDUCE])
        .done()
}

#[test]
fn a_later_pickle_of_the_stream_is_judged_as_its_own_member() {
    let first = P::new().i(1).done();
    let mut data = first.clone();
    data.extend_from_slice(&evil());
    let r = stream(&data, &ml());
    assert!(!r.is_safe);
    let f = finding(&r, FindingType::ReduceCall, "posix.system");
    assert!(
        f.position > first.len() as u64,
        "positions are the stream's: {}",
        f.position
    );
    assert_eq!(
        f.member.as_ref().unwrap().segments(),
        [Segment::LaterPickle {
            number: 2,
            at: first.len() as u64
        }]
    );
    // The first pickle's findings have no member.
    let mut data = evil();
    data.extend_from_slice(&P::new().i(1).done());
    let r = stream(&data, &ml());
    assert!(
        r.findings.iter().all(|f| f.member.is_none()),
        "{:#?}",
        r.findings
    );
}

#[test]
fn bytes_after_the_last_pickle_that_are_no_pickle_are_trailing_data() {
    let mut data = P::new().i(1).done();
    let at = data.len() as u64;
    data.extend_from_slice(b"\xff\xff\xff");
    let r = stream(&data, &ml());
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity, f.position),
        (FindingType::TrailingData, Severity::Low, at)
    );
    assert!(
        f.description
            .starts_with("3 bytes after the last pickle are not a pickle ("),
        "{}",
        f.description
    );
    assert!(r.complete);
}

#[test]
fn a_stream_that_breaks_before_any_effect_is_not_a_pickle() {
    let r = stream(b"{\"a\": 1}", &ml());
    assert_eq!(r.format, "not_pickle");
    assert!(r.findings.is_empty() && r.complete && r.is_safe, "{r:?}");
}

#[test]
fn a_stream_that_breaks_after_an_effect_reports_what_ran_before() {
    let mut data = evil();
    data.pop();
    let at = data.len() as u64;
    data.push(0xff);
    let r = stream(&data, &ml());
    assert_eq!(r.format, "raw_pickle");
    assert!(r.has(FindingType::ReduceCall), "{:#?}", r.findings);
    let f = finding(&r, FindingType::Malformed, "the stream breaks here (");
    assert_eq!((f.severity, f.position), (Severity::Medium, at));
    assert!(!r.complete);
    assert!(
        matches!(r.stopped_by, Some(StopReason::Malformed(_))),
        "{:?}",
        r.stopped_by
    );
}

#[test]
fn pickles_past_the_limit_are_not_read() {
    let one = P::new().i(1).done();
    let mut data = Vec::new();
    for _ in 0..3 {
        data.extend_from_slice(&one);
    }
    data.extend_from_slice(&evil());
    let mut policy = ml();
    policy.limits.max_pickles = 3;
    let r = stream(&data, &policy);
    assert!(
        !r.has(FindingType::ReduceCall),
        "the fourth pickle is not read: {:#?}",
        r.findings
    );
    let f = finding(
        &r,
        FindingType::ResourceLimit,
        "limit: the rest of the stream was not checked",
    );
    assert_eq!(f.position, 3 * one.len() as u64);
    assert!(!r.complete && !r.is_safe);
    assert_eq!(r.stopped_by, Some(Limit::PicklesPerStream.into()));
    policy.limits.max_pickles = 4;
    let r = stream(&data, &policy);
    assert!(r.has(FindingType::ReduceCall) && !r.has(FindingType::ResourceLimit));
}

#[test]
fn a_limit_inside_a_pickle_stops_the_stream_after_judging_what_ran() {
    let mut policy = ml();
    policy.limits.max_ops = 6;
    let mut data = evil();
    data.pop();
    data.extend([NONE; 20]);
    data.push(b'.');
    let r = stream(&data, &policy);
    assert!(r.has(FindingType::ReduceCall), "{:#?}", r.findings);
    assert!(r.has(FindingType::ResourceLimit));
    assert!(!r.complete);
    assert_eq!(r.stopped_by, Some(Limit::Opcodes.into()));
}

#[test]
fn an_unexpected_pause_leaves_the_report_incomplete() {
    let mut r = Report::new("raw_pickle");
    unreachable_outcome(&mut r);
    assert!(!r.complete);
    assert_eq!(
        r.stopped_by,
        Some(StopReason::Internal("unexpected pause".into()))
    );
}

/// A joblib stream: a NumpyArrayWrapper of `n` items of `dtype`, with `extra` state items,
/// its array bytes `array` after the BUILD, then STOP. Returns the stream and where the
/// array's bytes start.
fn joblib(dtype: &str, n: u8, extra: fn(P) -> P, array: &[u8]) -> (Vec<u8>, usize) {
    let p = P::new()
        .g("joblib.numpy_pickle", "NumpyArrayWrapper")
        .op(&[EMPTY_TUPLE, NEWOBJ, EMPTY_DICT, MARK])
        .s("shape")
        .i(n)
        .op(&[TUPLE1])
        .s("dtype")
        .g("numpy", "dtype")
        .s(dtype)
        .op(&[0x89, 0x88, 0x87, REDUCE])
        .s("order")
        .s("C");
    let p = extra(p).op(&[SETITEMS, BUILD]);
    let at = p.at() as usize;
    (p.op(array).done(), at)
}

/// The hidden payload: what `pickle.load` runs in the array's bytes (the POP leaves the
/// wrapper for STOP).
fn hidden() -> Vec<u8> {
    P::bare()
        .g("posix", "system")
        .s("id")
        .op(&[TUPLE1, REDUCE, POP])
        .0
}

#[test]
fn joblib_skips_a_numeric_arrays_bytes_and_the_plain_view_runs_them() {
    let payload = hidden();
    let (data, at) = joblib("u1", payload.len() as u8, |p| p, &payload);
    let r = stream(&data, &ml());
    assert_eq!(r.format, "joblib");
    let tamper = finding(
        &r,
        FindingType::StructuralTamper,
        "joblib reads these bytes as array data",
    );
    assert_eq!(
        (tamper.severity, tamper.position),
        (Severity::High, at as u64)
    );
    let call = finding(&r, FindingType::ReduceCall, "posix.system");
    assert_eq!(
        call.member.as_ref().unwrap().segments(),
        [Segment::PlainPickleReading]
    );
    // Harmless numbers: joblib's reading is the whole story.
    let (data, _) = joblib("u1", 4, |p| p, &[1, 2, 3, 4]);
    let r = stream(&data, &ml());
    assert_eq!(r.format, "joblib");
    assert!(!r.has(FindingType::StructuralTamper), "{:#?}", r.findings);
    assert!(!r.has(FindingType::Malformed), "{:#?}", r.findings);
}

#[test]
fn joblib_reads_what_the_wrapper_state_says() {
    let data_of = |dtype: &str, n: u8, extra: fn(P) -> P, array: &[u8]| {
        let (data, at) = joblib(dtype, n, extra, array);
        let r = judge_pause(&data);
        (r, at)
    };
    // n items of the dtype's size.
    let (r, at) = data_of("u1", 3, |p| p, &[0, 0, 0]);
    assert_eq!(r, Ok(JoblibData::Numeric { end: at + 3 }));
    let (r, at) = data_of("f8", 2, |p| p, &[0; 16]);
    assert_eq!(r, Ok(JoblibData::Numeric { end: at + 16 }));
    let (r, at) = data_of("U2", 1, |p| p, &[0; 8]);
    assert_eq!(r, Ok(JoblibData::Numeric { end: at + 8 }));
    // Alignment: a padding length byte, then the padding.
    let (r, at) = data_of(
        "u1",
        2,
        |p| p.s("numpy_array_alignment_bytes").i(8),
        &[3, 0, 0, 0, 9, 9],
    );
    assert_eq!(
        r,
        Ok(JoblibData::Numeric {
            end: at + 1 + 3 + 2
        })
    );
    // An object array is a pickle of its own.
    let (r, _) = data_of("O8", 1, |p| p, &P::new().i(1).done());
    assert_eq!(r, Ok(JoblibData::Objects));
    // Fewer bytes than the array holds.
    let (r, _) = data_of("u1", 200, |p| p, &[0; 4]);
    assert_eq!(r, Err("joblib array data truncated"));
}

#[test]
fn a_joblib_object_array_is_a_pickle_of_its_own() {
    let (data, at) = joblib("O8", 1, |p| p, &evil());
    let r = stream(&data, &ml());
    assert_eq!(r.format, "joblib");
    let call = finding(&r, FindingType::ReduceCall, "posix.system");
    assert_eq!(
        call.member.as_ref().unwrap().segments(),
        [Segment::JoblibObjectArray { at: at as u64 }]
    );
    // A broken one breaks the stream where it starts.
    let mut broken = evil();
    broken.pop();
    broken.push(0xff);
    let (data, at) = joblib("O8", 1, |p| p, &broken);
    let r = stream(&data, &ml());
    let f = finding(
        &r,
        FindingType::Malformed,
        "joblib object array pickle is broken",
    );
    assert_eq!(f.position, at as u64);
    assert!(!r.complete);
}

/// [`joblib_array_data`] at the stream's first pause.
fn judge_pause(data: &[u8]) -> Result<JoblibData, &'static str> {
    let mut m = Machine::new(data, ml().limits);
    m.joblib = true;
    match m.run(0) {
        Outcome::JoblibArray { next, wrapper } => joblib_array_data(&m, wrapper, next),
        other => panic!("no pause: {other:?}"),
    }
}

#[test]
fn a_wrapper_state_joblib_cannot_read_breaks_the_stream() {
    let bad = |shape: fn(P) -> P| {
        let p = P::new()
            .g("joblib.numpy_pickle", "NumpyArrayWrapper")
            .op(&[EMPTY_TUPLE, NEWOBJ, EMPTY_DICT, MARK])
            .s("shape");
        let p = shape(p)
            .s("dtype")
            .g("numpy", "dtype")
            .s("u1")
            .op(&[TUPLE1, REDUCE, SETITEMS, BUILD])
            .done();
        judge_pause(&p)
    };
    assert_eq!(bad(|p| p.i(1)), Err("joblib array shape is not a tuple"));
    assert_eq!(
        bad(|p| p.s("x").op(&[TUPLE1])),
        Err("joblib array shape is not a tuple of ints")
    );
    let no_dtype = P::new()
        .g("joblib.numpy_pickle", "NumpyArrayWrapper")
        .op(&[EMPTY_TUPLE, NEWOBJ, EMPTY_DICT, BUILD])
        .done();
    assert_eq!(
        judge_pause(&no_dtype),
        Err("joblib array wrapper without shape")
    );
    // The driver: the stream breaks where joblib fails.
    let r = stream(&no_dtype, &ml());
    let f = finding(
        &r,
        FindingType::Malformed,
        "joblib array wrapper without shape",
    );
    assert_eq!(f.position, no_dtype.len() as u64 - 1);
    assert!(!r.complete);
}

#[test]
fn the_plain_view_adds_what_runs_in_skipped_bytes_and_catalogued_dangers_anywhere() {
    let f = |kind, severity, position| Finding::new(kind, severity, position, String::new());
    let mut joblib_view = Report::new("joblib");
    joblib_view.push(f(FindingType::ReduceCall, Severity::Medium, 5));
    let mut plain = Report::new("raw_pickle");
    plain.push(f(FindingType::ReduceCall, Severity::Medium, 5)); // seen already
    plain.push(f(FindingType::UnknownImport, Severity::Medium, 12)); // in the skipped bytes
    plain.push(f(FindingType::UnknownImport, Severity::Medium, 40)); // outside, not dangerous
    plain.push(f(FindingType::DangerousImport, Severity::High, 41)); // a danger anywhere
    plain.push(f(FindingType::ReduceCall, Severity::Critical, 42)); // critical anywhere
    plain.push(f(FindingType::Malformed, Severity::Medium, 13)); // the plain reading's break
    plain_view(&mut joblib_view, plain, &[(10, 20)]);
    let got: Vec<_> = joblib_view
        .findings
        .iter()
        .map(|f| (f.kind, f.position, f.member.is_some()))
        .collect();
    assert_eq!(
        got,
        [
            (FindingType::ReduceCall, 5, false),
            (FindingType::StructuralTamper, 12, false),
            (FindingType::UnknownImport, 12, true),
            (FindingType::DangerousImport, 41, true),
            (FindingType::ReduceCall, 42, true),
        ]
    );
    // Nothing new: no tamper finding.
    let mut joblib_view = Report::new("joblib");
    let mut plain = Report::new("raw_pickle");
    plain.push(f(FindingType::UnknownImport, Severity::Medium, 40));
    plain_view(&mut joblib_view, plain, &[(10, 20)]);
    assert!(joblib_view.findings.is_empty());
    // The plain reading stopped at a limit (in bytes joblib skips): what pickle.load does past
    // it was not checked, so the joblib view is not complete either.
    let mut joblib_view = Report::new("joblib");
    let mut plain = Report::new("raw_pickle");
    plain.push(f(FindingType::ResourceLimit, Severity::High, 15));
    plain.complete = false;
    plain.stopped_by = Some(crate::report::Limit::StackDepth.into());
    plain_view(&mut joblib_view, plain, &[(10, 20)]);
    assert!(!joblib_view.complete);
    assert_eq!(
        joblib_view.stopped_by,
        Some(crate::report::Limit::StackDepth.into())
    );
    let got: Vec<_> = joblib_view
        .findings
        .iter()
        .map(|f| (f.kind, f.position, f.member.as_ref().map(|m| m.to_string())))
        .collect();
    assert_eq!(
        got,
        [(
            FindingType::ResourceLimit,
            15,
            Some("read as a plain pickle".to_string())
        )]
    );
}

#[test]
fn name_only_refusals_are_not_noted_on_torchscript_records() {
    let split = P::new()
        .g("builtins", "getattr")
        .s("a,b")
        .s("split")
        .op(&[TUPLE2, REDUCE])
        .done();
    let mut r = crate::analyze_pickle(&split, &ml());
    r.findings
        .retain(|f| f.kind != FindingType::RuntimeStricter);
    let mut ts = r.clone();
    note_name_only_refusals(&mut r, &ml());
    assert_eq!(r.findings.len(), 1);
    ts.format = "torchscript".into();
    note_name_only_refusals(&mut ts, &ml());
    assert!(ts.findings.is_empty());
}
