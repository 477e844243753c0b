//! `--format jsonl`: one JSON object per file, written as soon as the file is judged (in the
//! order scans finish, not path order), then one summary object (docs/report-schema.md).

use crate::output::{FileEntry, Summary, TOOL};
use crate::scan::{FileResult, Outcome};
use pickleguard::Policy;
use serde::Serialize;
use std::io::Write;
use std::sync::Mutex;

#[derive(Serialize)]
struct FileLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    entry: FileEntry<'a>,
}

#[derive(Serialize)]
struct SummaryLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    schema_version: u32,
    tool: crate::output::Tool,
    mode: &'static str,
    fail_on: &'static str,
    configs: &'a [crate::config::ConfigUse],
    links: &'a [crate::walk::LinkNote],
    summary: Summary,
}

/// Writes lines from any thread; the first write error (other than a closed pipe, which
/// means the reader has seen enough) is kept and reported at the end.
pub struct Writer<'w> {
    out: Mutex<(Box<dyn Write + Send + 'w>, Option<std::io::Error>)>,
}

impl<'w> Writer<'w> {
    pub fn new(out: Box<dyn Write + Send + 'w>) -> Writer<'w> {
        Writer {
            out: Mutex::new((out, None)),
        }
    }

    fn line(&self, value: &impl Serialize) {
        let Ok(mut text) = serde_json::to_vec(value) else {
            return;
        };
        text.push(b'\n');
        let mut guard = match self.out.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let (out, err) = &mut *guard;
        if err.is_none() {
            if let Err(e) = crate::write_all_quiet(out.as_mut(), &text) {
                *err = Some(e);
            }
        }
    }

    /// One file's line.
    pub fn file(&self, f: &FileResult) {
        self.line(&FileLine {
            kind: "file",
            entry: FileEntry::of(f),
        });
    }

    /// The closing summary line; returns the first write error.
    pub fn finish(self, outcome: &Outcome, policy: &Policy) -> Result<(), String> {
        self.line(&SummaryLine {
            kind: "summary",
            schema_version: crate::output::SCHEMA_VERSION,
            tool: TOOL,
            mode: policy.mode.as_str(),
            fail_on: policy.threshold.as_str(),
            configs: &outcome.configs,
            links: &outcome.links,
            summary: Summary::of(outcome),
        });
        let (_, err) = match self.out.into_inner() {
            Ok(v) => v,
            Err(p) => p.into_inner(),
        };
        match err {
            Some(e) => Err(format!("writing the report: {e}")),
            None => Ok(()),
        }
    }
}
