//! The other readings of a stream. The main analysis follows the C unpickler reading bytes;
//! where another loader reads the same bytes differently, that reading is analysed too and
//! what it does is reported, since a payload any loader reaches is a payload:
//!
//! * `pickle._Unpickler` (joblib's `NumpyUnpickler`, pandas' compat unpickler) reads FLOAT
//!   lines with `float()`, which accepts lines the C unpickler rejects;
//! * the C unpickler reading a file object treats FRAMEs differently ([`crate::file_reading`]).

use crate::analysis::{analyze_reading, Context};
use crate::file_reading::{self, Skip};
use crate::machine::{Divergence, Unpickler};
use crate::policy::Policy;
use crate::report::{Finding, FindingType, MemberPath, Report, Segment, Severity};
use std::collections::HashSet;

/// File readings analysed per stream; past that the report is a RESOURCE_LIMIT. Real pickles
/// have none (no opcode crosses a frame, STOP ends the last frame).
const MAX_FILE_READINGS: usize = 16;

/// Analyse the readings `divergence` says may differ from `report`'s, and fold in what they do.
pub(crate) fn judge(
    report: &mut Report,
    data: &[u8],
    policy: &Policy,
    ctx: &Context,
    unpickler: Unpickler,
    divergence: Divergence,
    files: bool,
) {
    // The observer is shown the C unpickler's reading only.
    let ctx = &Context {
        stream: None,
        ..*ctx
    };
    if let (Some(at), Unpickler::C) = (divergence.python, unpickler) {
        let alt = analyze_reading(data, policy, ctx, Unpickler::Python, files);
        fold(
            report,
            alt,
            |p| p,
            Segment::PythonUnpicklerReading,
            Finding::new(
                FindingType::Malformed,
                Severity::Low,
                at as u64,
                "a line the C unpickler rejects but pickle._Unpickler (joblib, pandas) reads (a FLOAT by float(), a PUT or GET index past C's range by int()): those loaders go on past this point".into(),
            ),
        );
    }
    if !(divergence.file && files) {
        return;
    }
    // joblib reads with the pure-Python unpickler, which never reads across a frame.
    let plain = Context {
        joblib: false,
        ..*ctx
    };
    match file_reading::readings(data, MAX_FILE_READINGS) {
        Ok(readings) => {
            for r in readings {
                let alt = analyze_reading(&r.data, policy, &plain, unpickler, false);
                let (at, why) = r.first_skip;
                let (severity, text) = match why {
                    Skip::Crossing => (
                        Severity::Medium,
                        "an opcode runs past the end of its FRAME: the C unpickler reading a file object (pickle.load, torch.load) drops the rest of the frame and reads other bytes than pickle.loads",
                    ),
                    Skip::StopInFrame => (
                        Severity::Low,
                        "STOP inside a FRAME that goes on: the next pickle.load of a file starts at the frame's end, not after the STOP",
                    ),
                };
                let note = Finding::new(FindingType::Malformed, severity, at as u64, text.into());
                fold(
                    report,
                    alt,
                    |p| r.input_pos(p),
                    Segment::FileObjectReading,
                    note,
                );
            }
        }
        Err(file_reading::TooMany) => {
            report.push(Finding::new(
                FindingType::ResourceLimit,
                Severity::High,
                0,
                format!("more than {MAX_FILE_READINGS} ways to read this stream from a file object (opcodes across FRAME ends): not all were checked"),
            ));
            report.complete = false;
            report.stopped_by = Some(crate::report::Limit::FileReadings.into());
        }
    }
}

/// Whether a reading's report shows the stream importing or calling anything.
fn acts(r: &Report) -> bool {
    !r.globals.is_empty()
        || r.findings
            .iter()
            .any(|f| !matches!(f.kind, FindingType::Malformed | FindingType::TrailingData))
}

/// Add what another reading does that this report does not list yet (positions mapped back to
/// the input), labelled with the reading, and `note` saying why the readings differ.
fn fold(report: &mut Report, alt: Report, pos: impl Fn(u64) -> u64, label: Segment, note: Finding) {
    if report.format == "not_pickle" {
        if !acts(&alt) {
            return; // no loader runs anything here
        }
        report.format = "raw_pickle".into();
    }
    let seen: HashSet<(FindingType, u64, String)> = report
        .findings
        .iter()
        .map(|f| (f.kind, f.position, f.description.clone()))
        .collect();
    report.push(note);
    for mut f in alt.findings {
        if f.kind == FindingType::TrailingData {
            continue;
        }
        f.position = pos(f.position);
        if seen.contains(&(f.kind, f.position, f.description.clone())) {
            continue;
        }
        f.member = Some(MemberPath::under(&label, f.member.take()));
        report.push(f);
    }
    if !alt.complete {
        report.complete = false;
        if report.stopped_by.is_none() {
            report.stopped_by = alt.stopped_by;
        }
    }
    for g in alt.globals {
        report.merge_global(g);
    }
}
