//! Why an analysis stopped before the end: the bounds that can stop a scan, and a report's
//! `stopped_by`. Each is rendered to its report string here and nowhere else
//! (docs/report-schema.md: `limit:<name>`, `malformed: ...`, `unscannable`, ...).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A bound that stopped an analysis (a `RESOURCE_LIMIT` finding names it); its name is the
/// `<name>` of `stopped_by` `limit:<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Opcodes per input (`Limits::max_ops`).
    Opcodes,
    /// Values on the stack at once.
    StackDepth,
    /// Imports in one pickle.
    Imports,
    /// Memo entries.
    MemoSize,
    /// Containers built in one pickle.
    Containers,
    /// Calls in one pickle.
    Calls,
    /// MARKs open at once.
    MarkDepth,
    /// Pickles one after another in a single stream.
    PicklesPerStream,
    /// Pickles nested inside pickles, or containers inside containers.
    NestingDepth,
    /// Bytes the analysis may produce by decoding call arguments.
    DecodedArguments,
    /// A joblib object array's own pickle stopped at a bound.
    NestedJoblibPickle,
    /// Decompressed bytes per input byte, over a scan.
    CompressionRatio,
    /// Decompressed bytes, over a scan.
    DecompressedSize,
    /// Members of one archive.
    ArchiveMembers,
    /// Findings listed per report (`MAX_FINDINGS`).
    Findings,
    /// Ways to read a stream from a file object.
    FileReadings,
    /// Bytes read from a stream (a FIFO, a device).
    StreamSize,
    /// The command line's `--max-size`.
    MaxSize,
    /// The command line's `--timeout`.
    Timeout,
    /// The scan's deadline (`crate::Scan::deadline`): a scan it stops says "analysis stopped
    /// at the time limit" in a `RESOURCE_LIMIT` finding named `time`, and its `stopped_by` is
    /// `limit:time` (`Report::stopped_by_time_limit`). Not one of the policy's limits: a
    /// deadline is an instant, chosen per scan.
    Time,
    /// A Python loader's own bound on what it decompresses before it loads.
    MaxDecompressedSize,
}

impl Limit {
    /// Every limit, for lookups by name.
    pub const ALL: [Limit; 21] = [
        Limit::Opcodes,
        Limit::StackDepth,
        Limit::Imports,
        Limit::MemoSize,
        Limit::Containers,
        Limit::Calls,
        Limit::MarkDepth,
        Limit::PicklesPerStream,
        Limit::NestingDepth,
        Limit::DecodedArguments,
        Limit::NestedJoblibPickle,
        Limit::CompressionRatio,
        Limit::DecompressedSize,
        Limit::ArchiveMembers,
        Limit::Findings,
        Limit::FileReadings,
        Limit::StreamSize,
        Limit::MaxSize,
        Limit::Timeout,
        Limit::Time,
        Limit::MaxDecompressedSize,
    ];

    /// The name findings and `stopped_by` give the limit.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Opcodes => "opcodes",
            Limit::StackDepth => "stack depth",
            Limit::Imports => "imports",
            Limit::MemoSize => "memo size",
            Limit::Containers => "containers",
            Limit::Calls => "calls",
            Limit::MarkDepth => "mark depth",
            Limit::PicklesPerStream => "pickles per stream",
            Limit::NestingDepth => "nesting depth",
            Limit::DecodedArguments => "decoded-arguments budget",
            Limit::NestedJoblibPickle => "nested joblib pickle",
            Limit::CompressionRatio => "compression ratio",
            Limit::DecompressedSize => "decompressed size",
            Limit::ArchiveMembers => "archive members",
            Limit::Findings => "findings",
            Limit::FileReadings => "file readings",
            Limit::StreamSize => "stream size",
            Limit::MaxSize => "max_size",
            Limit::Timeout => "timeout",
            Limit::Time => "time",
            Limit::MaxDecompressedSize => "max_decompressed_size",
        }
    }

    /// The limit called `name` ([`Limit::name`]).
    pub fn from_name(name: &str) -> Option<Limit> {
        Limit::ALL.into_iter().find(|l| l.name() == name)
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a report is not complete (`Report::stopped_by`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// A bound was reached: `limit:<name>`.
    Limit(Limit),
    /// The stream breaks (`malformed: <why> at byte <n>`); holds what follows the prefix.
    Malformed(String),
    /// A container pickleguard cannot open: `unscannable`, or `unscannable: <format>`.
    Unscannable(Option<String>),
    /// The bytes sniffed as a zip hold neither a central directory nor a local header.
    NotAZip,
    /// The analysis reached a state it never should: `internal: <what>`.
    Internal(String),
    /// The file could not be read: `io_error`.
    IoError,
    /// The analysis of the file panicked (a bug): `internal_error`.
    InternalError,
}

const NOT_A_ZIP: &str = "not a zip: no central directory and no local file header";

impl StopReason {
    /// The reason written as a report's `stopped_by` string.
    pub fn render(&self) -> String {
        self.to_string()
    }

    /// The reason a `stopped_by` string names (the inverse of [`StopReason::render`]), for
    /// reports read back from JSON.
    pub fn parse(s: &str) -> Option<StopReason> {
        Some(match s {
            "unscannable" => StopReason::Unscannable(None),
            "io_error" => StopReason::IoError,
            "internal_error" => StopReason::InternalError,
            NOT_A_ZIP => StopReason::NotAZip,
            _ => {
                if let Some(n) = s.strip_prefix("limit:") {
                    StopReason::Limit(Limit::from_name(n)?)
                } else if let Some(d) = s.strip_prefix("malformed: ") {
                    StopReason::Malformed(d.to_string())
                } else if let Some(fmt) = s.strip_prefix("unscannable: ") {
                    StopReason::Unscannable(Some(fmt.to_string()))
                } else if let Some(d) = s.strip_prefix("internal: ") {
                    StopReason::Internal(d.to_string())
                } else {
                    return None;
                }
            }
        })
    }

    /// The limit that stopped the analysis, if one did.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            StopReason::Limit(l) => Some(*l),
            _ => None,
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Limit(l) => write!(f, "limit:{}", l.name()),
            StopReason::Malformed(d) => write!(f, "malformed: {d}"),
            StopReason::Unscannable(None) => f.write_str("unscannable"),
            StopReason::Unscannable(Some(fmt)) => write!(f, "unscannable: {fmt}"),
            StopReason::NotAZip => f.write_str(NOT_A_ZIP),
            StopReason::Internal(d) => write!(f, "internal: {d}"),
            StopReason::IoError => f.write_str("io_error"),
            StopReason::InternalError => f.write_str("internal_error"),
        }
    }
}

impl From<Limit> for StopReason {
    fn from(l: Limit) -> Self {
        StopReason::Limit(l)
    }
}

impl Serialize for StopReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StopReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        StopReason::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown stopped_by {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_has_a_distinct_name_found_again() {
        for l in Limit::ALL {
            assert_eq!(Limit::from_name(l.name()), Some(l));
        }
        let mut names: Vec<_> = Limit::ALL.iter().map(|l| l.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Limit::ALL.len());
        assert_eq!(Limit::from_name("ops"), None);
    }

    #[test]
    fn reasons_render_as_the_report_strings_and_read_back() {
        let cases = [
            (StopReason::Limit(Limit::MaxSize), "limit:max_size"),
            (StopReason::Limit(Limit::StreamSize), "limit:stream size"),
            (
                StopReason::Malformed("pickle exhausted before STOP at byte 3".into()),
                "malformed: pickle exhausted before STOP at byte 3",
            ),
            (StopReason::Unscannable(None), "unscannable"),
            (
                StopReason::Unscannable(Some("7z".into())),
                "unscannable: 7z",
            ),
            (StopReason::NotAZip, NOT_A_ZIP),
            (
                StopReason::Internal("unexpected pause".into()),
                "internal: unexpected pause",
            ),
            (StopReason::IoError, "io_error"),
            (StopReason::InternalError, "internal_error"),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.render(), text);
            assert_eq!(StopReason::parse(text), Some(reason.clone()));
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, serde_json::to_string(text).unwrap());
            assert_eq!(serde_json::from_str::<StopReason>(&json).unwrap(), reason);
        }
        assert_eq!(StopReason::parse("limit:ops"), None);
        assert_eq!(StopReason::parse("stopped"), None);
    }
}
