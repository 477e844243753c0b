//! One file's judgement may not take a whole run down. The core is meant never to panic
//! (DESIGN.md); if it does on some file anyway, that file is reported not safe with an error
//! naming what happened, and every other file of the scan, batch or stream is still judged.
//! Every way a file is judged (a local scan, `--format jsonl`, a cluster batch, Python's
//! `scan_file(cache=)`) goes through [`crate::judge::Judge`], which runs the judgement here.

use crate::scan::FileResult;
use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

/// What `stopped_by` says of a file whose judgement panicked (docs/report-schema.md).
pub const STOPPED_BY: pickleguard::StopReason = pickleguard::StopReason::InternalError;

/// Run `judge`, the judgement of the file reported as `display`; a panic in it becomes that
/// file's failed, not-safe result.
pub fn judged<T>(
    display: &str,
    judge: impl FnOnce() -> T,
    failed: impl FnOnce(FileResult) -> T,
) -> T {
    // AssertUnwindSafe: after a panic nothing the judgement touched is used again for this
    // file; the policy is only read, and the verdict cache stores only complete judgements
    // (a panicking one never completes).
    match panic::catch_unwind(AssertUnwindSafe(judge)) {
        Ok(r) => r,
        Err(payload) => failed(panicked(display, payload.as_ref())),
    }
}

fn panicked(display: &str, payload: &(dyn Any + Send)) -> FileResult {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    let mut r = FileResult::failed(
        display.to_string(),
        format!(
            "internal error: the analysis of this file failed ({what}); it was not checked to \
             the end and is reported not safe (a pickleguard bug: please report it)"
        ),
    );
    r.report.stopped_by = Some(STOPPED_BY);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{exit_code, Outcome};
    use crate::ExitStatus;
    use pickleguard::{Mode, Policy, Report};
    use rayon::prelude::*;

    fn ok(path: &str) -> FileResult {
        let mut report = Report::new("raw_pickle");
        report.finish(Policy::new(Mode::Ml).threshold);
        FileResult {
            path: path.into(),
            report,
            error: None,
            bytes: 1,
            hub: None,
        }
    }

    fn judge(path: &str) -> FileResult {
        judged(
            path,
            || match path {
                "b.pkl" => panic!("boom in {path}"),
                "c.pkl" => std::panic::panic_any(7u32),
                p => ok(p),
            },
            |f| f,
        )
    }

    #[test]
    fn a_panic_is_a_failed_not_safe_result_naming_it() {
        let r = judge("b.pkl");
        assert_eq!(r.path, "b.pkl");
        assert!(!r.report.is_safe);
        assert!(!r.report.complete);
        assert_eq!(r.report.stopped_by, Some(STOPPED_BY));
        let e = r.error.expect("an error");
        assert!(e.starts_with("internal error"), "{e}");
        assert!(e.contains("boom in b.pkl"), "{e}");
        // A payload that is not text still fails the file.
        let r = judge("c.pkl");
        assert!(!r.report.is_safe);
        assert!(r.error.expect("an error").contains("no message"));
    }

    #[test]
    fn the_other_files_of_a_parallel_run_are_judged_and_the_exit_code_says_error() {
        let names = ["a.pkl", "b.pkl", "c.pkl", "d.pkl"];
        let files: Vec<FileResult> = names.par_iter().map(|p| judge(p)).collect();
        let judged_ok: Vec<&str> = files
            .iter()
            .filter(|f| f.error.is_none())
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(judged_ok, ["a.pkl", "d.pkl"]);
        let outcome = Outcome {
            files,
            skipped_links: 0,
            loops: 0,
            duplicates: 0,
            links: Vec::new(),
            configs: Vec::new(),
            cache: None,
        };
        assert_eq!(outcome.errors(), 2);
        assert_eq!(exit_code(&outcome, Mode::Ml), ExitStatus::Error);
        // Audit mode reports unsafe files with exit 0, but never a file it could not judge.
        assert_eq!(exit_code(&outcome, Mode::Audit), ExitStatus::Error);
    }
}
