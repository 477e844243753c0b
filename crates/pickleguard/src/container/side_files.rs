//! Side files: files a loader opens because the pickle names them. joblib's legacy
//! `NDArrayWrapper` makes `joblib.load` call `numpy.load(<dir>/<filename>, allow_pickle=True)`;
//! `ZNDArrayWrapper` reads `<dir>/<filename>` as raw zlib data. The stream analysis reports
//! each reference as an `UNSCANNABLE` finding (module `joblib.numpy_pickle[_compat]`, name the
//! wrapper, `args[0]` the file name as written). A caller that knows where the pickle lives
//! settles those references with [`settle`]: the side file is scanned and its findings join
//! the report; the reference stays, lowered to LOW, to say the side file was followed.

use crate::policy::Policy;
use crate::report::{FindingType, Report, Severity};

/// The wrappers whose state names a side file, and whether the loader can unpickle it.
fn wrapper(module: Option<&str>, name: Option<&str>) -> Option<bool> {
    match (module?, name?) {
        ("joblib.numpy_pickle" | "joblib.numpy_pickle_compat", "NDArrayWrapper") => Some(true),
        ("joblib.numpy_pickle" | "joblib.numpy_pickle_compat", "ZNDArrayWrapper") => Some(false),
        _ => None,
    }
}

/// The side files a report names (file names as written in the pickle; `?` when computed).
pub fn referenced(report: &Report) -> Vec<String> {
    report
        .findings
        .iter()
        .filter(|f| f.kind == FindingType::Unscannable)
        .filter(|f| wrapper(f.module.as_deref(), f.name.as_deref()).is_some())
        .filter_map(|f| f.args.as_ref()?.first().cloned())
        .collect()
}

/// Follow every side-file reference of `report`: `open(name)` returns the bytes of the file
/// the loader would open for `name` (next to the pickle, as `os.path.join(dirname, name)`), or
/// `None` when there is none (the reference then stays as it is). Side files that can be
/// unpickled are scanned with `policy`; their findings are added under member
/// `side file <name>`. The verdict is recomputed.
pub fn settle<B: AsRef<[u8]>>(
    report: &mut Report,
    policy: &Policy,
    mut open: impl FnMut(&str) -> Option<B>,
) {
    let mut subs = Vec::new();
    for f in report.findings.iter_mut() {
        if f.kind != FindingType::Unscannable {
            continue;
        }
        let Some(unpickled) = wrapper(f.module.as_deref(), f.name.as_deref()) else {
            continue;
        };
        let Some(name) = f.args.as_ref().and_then(|a| a.first()).cloned() else {
            continue;
        };
        if name == "?" {
            continue;
        }
        let Some(bytes) = open(&name) else { continue };
        f.severity = Severity::Low;
        f.description
            .push_str(" (followed: its findings are listed under \"side file\")");
        if unpickled && !subs.iter().any(|(n, _)| n == &name) {
            subs.push((name, crate::scan_bytes(bytes.as_ref(), policy)));
        }
    }
    for (name, sub) in subs {
        report.absorb(sub, Some(&crate::report::Segment::SideFile { name }));
    }
    report.finish(policy.threshold);
}
