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
    Safe,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Safe => "SAFE",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

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
    #[serde(rename = "type")]
    pub kind: FindingType,
    pub severity: Severity,
    pub description: String,
    pub position: u64,
    pub module: Option<String>,
    pub name: Option<String>,
    pub callable: Option<String>,
    pub args: Option<Vec<String>>,
    pub member: Option<MemberPath>,
}

impl Finding {
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
    New,
    Call,
    Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GlobalUse {
    pub module: String,
    pub name: String,
    pub uses: Vec<Use>,
    pub count: u64,
}

/// The result of analysing a file or a stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub format: String,
    pub is_safe: bool,
    pub risk_level: Severity,
    pub complete: bool,
    pub stopped_by: Option<StopReason>,
    pub findings: Vec<Finding>,
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

    pub fn has(&self, kind: FindingType) -> bool {
        self.findings.iter().any(|f| f.kind == kind)
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
