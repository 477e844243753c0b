//! The verdict: findings, severities and the report a scan returns (schema in
//! docs/report-schema.md).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

mod finding_type;
mod member;
mod stop;
pub use finding_type::FindingType;
pub use member::{MemberPath, MemberView, Segment};
pub use stop::{Limit, StopReason};

/// How bad a finding is; a report's risk level is its worst finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// Nothing to worry about (informational findings).
    Safe,
    /// Worth knowing; loading is not refused for it alone under the default `fail_on`.
    Low,
    /// Suspicious: the default `fail_on`.
    Medium,
    /// Likely harmful, or not checked to the end.
    High,
    /// Runs code or commands when loaded.
    Critical,
}

impl Severity {
    /// The name reports use (`SAFE`, ..., `CRITICAL`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Safe => "SAFE",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// A severity from its name (any case).
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.to_ascii_uppercase().as_str() {
            "SAFE" => Severity::Safe,
            "LOW" => Severity::Low,
            "MEDIUM" => Severity::Medium,
            "HIGH" => Severity::High,
            "CRITICAL" => Severity::Critical,
            _ => return None,
        })
    }
}

/// One thing loading would do that the policy does not accept (or a reason the analysis is
/// incomplete).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// What it is about.
    #[serde(rename = "type")]
    pub kind: FindingType,
    /// How bad it is.
    pub severity: Severity,
    /// What loading would do, in words.
    pub description: String,
    /// The byte offset in the stream (or file) it refers to.
    pub position: u64,
    /// The module of the global concerned, if any.
    pub module: Option<String>,
    /// The global's name (or a limit's or format's name), if any.
    pub name: Option<String>,
    /// The callable of the call concerned, as text.
    pub callable: Option<String>,
    /// The call's arguments, rendered.
    pub args: Option<Vec<String>>,
    /// The path inside a container (members joined by `/`), `None` for the file itself.
    pub member: Option<MemberPath>,
}

impl Finding {
    /// The `RESOURCE_LIMIT` finding of an analysis the limit `what` stopped. Only the time
    /// limit is named in the finding ([`Limit::Time`]), so that a caller can tell a scan its
    /// deadline stopped ([`Report::stopped_by_time_limit`]).
    pub(crate) fn limit(position: u64, what: Limit, description: String) -> Self {
        let mut f = Finding::new(
            FindingType::ResourceLimit,
            Severity::High,
            position,
            description,
        );
        if what == Limit::Time {
            f.name = Some(what.name().to_string());
        }
        f
    }

    /// A finding with nothing but its kind, severity, position and description.
    pub fn new(kind: FindingType, severity: Severity, position: u64, description: String) -> Self {
        Finding {
            kind,
            severity,
            description,
            position,
            module: None,
            name: None,
            callable: None,
            args: None,
            member: None,
        }
    }
}

/// How a global is used in a stream (for profiles and `policy learn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Use {
    /// Instantiated without `__init__` (NEWOBJ, `copyreg.__newobj__`).
    New,
    /// Called.
    Call,
    /// Referenced or stored without being called.
    Value,
}

/// A global a stream imports, with how it is used: the report's summary of imports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GlobalUse {
    /// Its module.
    pub module: String,
    /// Its (possibly dotted) name.
    pub name: String,
    /// How it is used, sorted.
    pub uses: Vec<Use>,
    /// How many times it is imported.
    pub count: u64,
}

/// The result of analysing a file or a stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// What the file was found to be (`raw_pickle`, `pytorch_zip`, `not_pickle`, ...).
    pub format: String,
    /// Whether no finding reaches the policy's threshold (and the analysis is complete).
    pub is_safe: bool,
    /// The worst finding's severity.
    pub risk_level: Severity,
    /// Whether everything loading would run was analysed.
    pub complete: bool,
    /// Why the analysis is incomplete (`limit:...`, `malformed: ...`, `unscannable...`).
    pub stopped_by: Option<StopReason>,
    /// What loading would do that the policy does not accept, and why the analysis stopped.
    pub findings: Vec<Finding>,
    /// Every global the streams import.
    pub globals: Vec<GlobalUse>,
    /// Where each (module, name) sits in `globals`, so that merging stays linear in the number
    /// of globals (a stream of 100k distinct globals took minutes with a list search).
    #[serde(skip)]
    index: GlobalIndex,
    /// Findings not listed past [`MAX_FINDINGS`].
    #[serde(skip)]
    pub(crate) dropped: u64,
}

/// Findings listed per report. A stream of a million EXT1 opcodes (or imports, or calls)
/// would otherwise make a million findings: gigabytes of report for a 10 KB bz2 file (found by
/// the fuzzer). Past this the report says how many more there were, and is not safe.
pub const MAX_FINDINGS: usize = 10_000;

/// Derived data: never part of a report's identity.
#[derive(Clone, Debug, Default)]
struct GlobalIndex(HashMap<(String, String), usize>);

impl PartialEq for GlobalIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Report {
    /// An empty, complete, safe report of a file of `format`.
    pub fn new(format: &str) -> Self {
        Report {
            format: format.to_string(),
            is_safe: true,
            risk_level: Severity::Safe,
            complete: true,
            stopped_by: None,
            findings: Vec::new(),
            globals: Vec::new(),
            index: GlobalIndex::default(),
            dropped: 0,
        }
    }

    /// Whether the findings list is full ([`MAX_FINDINGS`]): further ones are only counted.
    pub fn full(&self) -> bool {
        self.findings.len() >= MAX_FINDINGS
    }

    /// Recompute `risk_level` and `is_safe` from the findings for a threshold.
    pub fn finish(&mut self, threshold: Severity) {
        let noted = |r: &Report| {
            r.findings.iter().any(|f| {
                f.kind == FindingType::ResourceLimit && f.name.as_deref() == Some("findings")
            })
        };
        if self.dropped > 0 && !noted(self) {
            let mut f = Finding::new(
                FindingType::ResourceLimit,
                Severity::High,
                0,
                format!(
                    "{} more findings are not listed (a report lists at most {MAX_FINDINGS}); the file is not safe to load",
                    self.dropped
                ),
            );
            f.name = Some("findings".into());
            self.findings.push(f);
            self.complete = false;
            if self.stopped_by.is_none() {
                self.stopped_by = Some(Limit::Findings.into());
            }
        }
        self.risk_level = self
            .findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Safe);
        self.is_safe = self.risk_level < threshold;
    }

    /// Fold another report (a member, a nested stream) into this one.
    pub fn absorb(&mut self, other: Report, member: Option<&Segment>) {
        for mut f in other.findings {
            if let Some(m) = member {
                f.member = Some(MemberPath::under(m, f.member.take()));
            }
            self.push(f);
        }
        self.dropped += other.dropped;
        if !other.complete {
            self.complete = false;
            if self.stopped_by.is_none() {
                self.stopped_by = other.stopped_by;
            }
        }
        for g in other.globals {
            self.merge_global(g);
        }
    }

    /// Carry over the limits that stopped `view`, another reading of the same bytes (`seg`)
    /// whose other findings this report leaves out: a loader that reads the bytes that way
    /// goes on where the analysis stopped, so what it does there was not checked, and this
    /// report is not complete (a view's findings are otherwise kept only when they show the
    /// view doing more, so a limit reached before its payload hid the payload).
    pub(crate) fn carry_limits(&mut self, view: &Report, seg: &Segment) {
        for f in view
            .findings
            .iter()
            .filter(|f| f.kind == FindingType::ResourceLimit)
        {
            let known = self
                .findings
                .iter()
                .any(|g| g.kind == f.kind && g.position == f.position);
            if known {
                continue;
            }
            let mut f = f.clone();
            f.member = Some(MemberPath::under(seg, f.member.take()));
            self.push(f);
            self.complete = false;
            if self.stopped_by.is_none() {
                self.stopped_by = view.stopped_by.clone().or(Some(StopReason::Internal(
                    "a reading stopped at a limit it does not name".into(),
                )));
            }
        }
    }

    /// Add a finding (counted, not listed, past [`MAX_FINDINGS`] unless it says why the
    /// analysis stopped).
    pub fn push(&mut self, f: Finding) {
        // Why an analysis stopped is always listed (each limit stops it: there are few).
        let reason =
            f.kind == FindingType::ResourceLimit && self.findings.len() < MAX_FINDINGS + 64;
        if self.full() && !reason {
            self.dropped += 1;
        } else {
            self.findings.push(f);
        }
    }

    /// Whether some finding is of `kind`.
    pub fn has(&self, kind: FindingType) -> bool {
        self.findings.iter().any(|f| f.kind == kind)
    }

    /// Whether the scan's deadline ([`crate::Scan::deadline`]) stopped some of its work: then
    /// the report is incomplete, and its verdict is that of a scan that ran out of time.
    pub fn stopped_by_time_limit(&self) -> bool {
        self.findings.iter().any(|f| {
            f.kind == FindingType::ResourceLimit && f.name.as_deref() == Some(Limit::Time.name())
        })
    }
}

impl Report {
    /// Add a global to the summary, or fold its uses and count into the entry it already has.
    pub(crate) fn merge_global(&mut self, g: GlobalUse) {
        let list = &mut self.globals;
        let index = &mut self.index.0;
        let fresh = |index: &HashMap<(String, String), usize>, list: &[GlobalUse]| {
            index.len() == list.len()
                && list
                    .last()
                    .map(|e| {
                        index.get(&(e.module.clone(), e.name.clone())) == Some(&(list.len() - 1))
                    })
                    .unwrap_or(true)
        };
        if !fresh(index, list) {
            // `globals` was built or changed without the index (deserialised, edited).
            index.clear();
            for (i, e) in list.iter().enumerate() {
                index.entry((e.module.clone(), e.name.clone())).or_insert(i);
            }
        }
        let key = (g.module.clone(), g.name.clone());
        match index.get(&key) {
            Some(&i) => {
                let e = &mut list[i];
                e.count += g.count;
                for u in g.uses {
                    if !e.uses.contains(&u) {
                        e.uses.push(u);
                    }
                }
                e.uses.sort();
            }
            None => {
                index.insert(key, list.len());
                list.push(g);
            }
        }
    }
}
