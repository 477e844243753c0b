//! joblib's legacy array wrappers name a file next to the pickle that `joblib.load` opens when
//! it rebuilds them: `NDArrayWrapper` through `numpy.load(allow_pickle=True)` (so an object
//! `.npy` there is unpickled), `ZNDArrayWrapper` as raw zlib data. What is in that file is not
//! in this one: each reference is a finding (`UNSCANNABLE`, MEDIUM for a file that can be
//! unpickled, LOW for raw data) whose `args` hold the file name as written, so a directory
//! scan and the run-time guard can check the side file itself (docs/containers.md).

#[allow(unused_imports)]
use super::*;

pub(super) fn side_files(m: &Machine<'_>, out: &mut Report) {
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
            if unpickled {
                Severity::Medium
            } else {
                Severity::Low
            },
            c.pos,
            match &name {
                Some(n) => format!(
                    "the pickle names the side file {}: {what}; it is not part of this file, scan it too",
                    render::name_lit(n)
                ),
                None => format!(
                    "the pickle names a side file computed at load time: {what}; it cannot be checked"
                ),
            },
        );
        f.module = Some(g.module.clone());
        f.name = Some(g.name.clone());
        f.args = Some(vec![name.unwrap_or_else(|| "?".into())]);
        out.push(f);
    }
}

#[cfg(test)]
mod tests;
