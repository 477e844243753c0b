//! SARIF 2.1.0 output: one run, one rule per finding type, one result per finding with the
//! file as artifact location and the opcode's byte offset as region.
//!
//! The log is typed: each object below is one SARIF object. Fields are declared in the order
//! of their JSON names, the order the log has always been written in (sorted keys).

use crate::scan::Outcome;
use pickleguard::{Finding, FindingType, Policy, Severity};
use serde::Serialize;
use std::path::{Component, Path, PathBuf};

pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

#[derive(Serialize)]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    runs: [Run<'a>; 1],
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    invocations: [Invocation; 1],
    original_uri_base_ids: UriBaseIds,
    properties: RunProperties,
    results: Vec<SarifResult<'a>>,
    tool: Tool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Invocation {
    execution_successful: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_execution_notifications: Vec<Notification>,
}

#[derive(Serialize)]
struct Notification {
    level: &'static str,
    locations: [NotificationLocation; 1],
    message: Message,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NotificationLocation {
    physical_location: PhysicalLocation,
}

#[derive(Serialize)]
struct UriBaseIds {
    #[serde(rename = "%SRCROOT%")]
    srcroot: ArtifactLocation,
}

/// The run's properties. `configs` and `links` are JSON values so that their keys come out
/// sorted, like every other object of the log.
#[derive(Serialize)]
struct RunProperties {
    configs: serde_json::Value,
    errors: usize,
    fail_on: &'static str,
    files: usize,
    links: serde_json::Value,
    mode: &'static str,
    #[serde(rename = "unsafe")]
    unsafe_count: usize,
}

#[derive(Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    information_uri: &'static str,
    name: &'static str,
    rules: Vec<Rule>,
    semantic_version: &'static str,
    version: &'static str,
}

/// A rule: one per finding type.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    default_configuration: Level,
    full_description: Message,
    help: Message,
    id: &'static str,
    name: &'static str,
    properties: RuleProperties,
    short_description: Message,
}

#[derive(Serialize)]
struct Level {
    level: &'static str,
}

#[derive(Serialize)]
struct RuleProperties {
    precision: &'static str,
    #[serde(rename = "security-severity")]
    security_severity: &'static str,
    tags: [&'static str; 3],
}

#[derive(Serialize)]
struct Message {
    text: String,
}

impl Message {
    fn of(text: impl Into<String>) -> Message {
        Message { text: text.into() }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    level: &'static str,
    locations: [Location<'a>; 1],
    message: Message,
    partial_fingerprints: Fingerprints,
    properties: ResultProperties<'a>,
    rule_id: &'static str,
    rule_index: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    logical_locations: Option<[LogicalLocation<'a>; 1]>,
    physical_location: PhysicalLocation,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogicalLocation<'a> {
    fully_qualified_name: &'a str,
    kind: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<Region>,
}

/// Where a reported file is: relative to `%SRCROOT%`, or an absolute `file://` URI.
#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactLocation {
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri_base_id: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    byte_length: u64,
    byte_offset: u64,
}

#[derive(Serialize)]
struct Fingerprints {
    #[serde(rename = "pickleguardFinding/v1")]
    finding: String,
}

#[derive(Serialize)]
struct ResultProperties<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    callable: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    member: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    module: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    position: u64,
    severity: &'static str,
}

/// The SARIF level of a severity.
pub fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
        Severity::Safe => "none",
    }
}

/// GitHub code scanning's numeric severity for a level.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.8",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
        Severity::Safe => "0.0",
    }
}

fn rule(t: FindingType) -> Rule {
    Rule {
        default_configuration: Level {
            level: level(t.default_severity()),
        },
        full_description: Message::of(t.description()),
        help: Message::of(t.help()),
        id: t.as_str(),
        name: t.name(),
        properties: RuleProperties {
            precision: "high",
            security_severity: security_severity(t.default_severity()),
            tags: ["security", "deserialization", "pickle"],
        },
        short_description: Message::of(t.summary()),
    }
}

/// Percent-encode a path for a URI (RFC 3986: unreserved characters and `/` are kept).
pub fn percent_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Remove `.` and resolve `..` lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The artifact location of a reported path: relative to the working directory (with
/// `uriBaseId` `%SRCROOT%`) when it is inside it, an absolute `file://` URI otherwise.
pub fn artifact_location(path: &str, cwd: &Path) -> ArtifactLocation {
    let p = Path::new(path);
    let abs = if p.is_absolute() {
        normalize(p)
    } else {
        normalize(&cwd.join(p))
    };
    match abs.strip_prefix(cwd) {
        Ok(rel) if !rel.as_os_str().is_empty() => {
            let s = rel.to_string_lossy().replace('\\', "/");
            ArtifactLocation {
                uri: percent_encode(&s),
                uri_base_id: Some("%SRCROOT%"),
            }
        }
        _ => {
            let s = abs.to_string_lossy().replace('\\', "/");
            let s = if s.starts_with('/') {
                s
            } else {
                format!("/{s}")
            };
            ArtifactLocation {
                uri: format!("file://{}", percent_encode(&s)),
                uri_base_id: None,
            }
        }
    }
}

/// Whether a finding's position is a byte offset in the file itself (not inside a container
/// member or a nested payload).
pub fn offset_in_file(f: &Finding) -> bool {
    f.member
        .as_ref()
        .is_none_or(pickleguard::MemberPath::is_later_pickle)
}

fn result<'a>(path: &str, f: &'a Finding, cwd: &Path) -> SarifResult<'a> {
    let mut text = f.description.clone();
    let region = offset_in_file(f).then(|| {
        text.push_str(&format!(" (at byte {})", f.position));
        Region {
            byte_length: 1,
            byte_offset: f.position,
        }
    });
    if let Some(m) = &f.member {
        if region.is_none() {
            text.push_str(&format!(" (in {m}, at byte {} of it)", f.position));
        } else {
            text.push_str(&format!(" (in {m})"));
        }
    }
    let fingerprint = format!(
        "{}:{}:{}:{}.{}",
        f.kind.as_str(),
        f.member.as_ref().map_or("", |m| m.as_str()),
        f.position,
        f.module.as_deref().unwrap_or(""),
        f.name.as_deref().unwrap_or("")
    );
    SarifResult {
        level: level(f.severity),
        locations: [Location {
            logical_locations: f.member.as_ref().map(|m| {
                [LogicalLocation {
                    fully_qualified_name: m.as_str(),
                    kind: "resource",
                }]
            }),
            physical_location: PhysicalLocation {
                artifact_location: artifact_location(path, cwd),
                region,
            },
        }],
        message: Message::of(text),
        partial_fingerprints: Fingerprints {
            finding: fingerprint,
        },
        properties: ResultProperties {
            args: f.args.as_deref(),
            callable: f.callable.as_deref(),
            member: f.member.as_ref().map(|m| m.as_str()),
            module: f.module.as_deref(),
            name: f.name.as_deref(),
            position: f.position,
            severity: f.severity.as_str(),
        },
        rule_id: f.kind.as_str(),
        rule_index: rule_index(f.kind),
    }
}

/// The index of a finding type's rule in the log's `rules`.
fn rule_index(t: FindingType) -> usize {
    FindingType::ALL
        .iter()
        .position(|&r| r == t)
        .expect("FindingType::ALL lists every finding type")
}

/// Where users learn about the tool (the workspace's `repository`).
fn information_uri() -> &'static str {
    match env!("CARGO_PKG_REPOSITORY") {
        // Not `pickleguard` on the package index: that is an unrelated project.
        "" => "https://pypi.org/project/pickleguard-scan/",
        r => r,
    }
}

/// The SARIF log of a scan, pretty-printed.
pub fn sarif(outcome: &Outcome, policy: &Policy) -> String {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let mut results = Vec::new();
    let mut notifications = Vec::new();
    for file in &outcome.files {
        if let Some(e) = &file.error {
            notifications.push(Notification {
                level: "error",
                locations: [NotificationLocation {
                    physical_location: PhysicalLocation {
                        artifact_location: artifact_location(&file.path, &cwd),
                        region: None,
                    },
                }],
                message: Message::of(format!("{}: {e}", file.path)),
            });
            continue;
        }
        for f in &file.report.findings {
            results.push(result(&file.path, f, &cwd));
        }
    }
    let mut srcroot = cwd.to_string_lossy().replace('\\', "/");
    if !srcroot.ends_with('/') {
        srcroot.push('/');
    }
    if !srcroot.starts_with('/') {
        srcroot.insert(0, '/');
    }
    let log = Log {
        schema: SARIF_SCHEMA,
        runs: [Run {
            invocations: [Invocation {
                execution_successful: notifications.is_empty(),
                tool_execution_notifications: notifications,
            }],
            original_uri_base_ids: UriBaseIds {
                srcroot: ArtifactLocation {
                    uri: format!("file://{}", percent_encode(&srcroot)),
                    uri_base_id: None,
                },
            },
            properties: RunProperties {
                configs: serde_json::to_value(&outcome.configs).unwrap_or_default(),
                errors: outcome.errors(),
                fail_on: policy.threshold.as_str(),
                files: outcome.files.len(),
                links: serde_json::to_value(&outcome.links).unwrap_or_default(),
                mode: policy.mode.as_str(),
                unsafe_count: outcome.unsafe_count(),
            },
            results,
            tool: Tool {
                driver: Driver {
                    information_uri: information_uri(),
                    name: "pickleguard",
                    rules: FindingType::ALL.into_iter().map(rule).collect(),
                    semantic_version: env!("CARGO_PKG_VERSION"),
                    version: env!("CARGO_PKG_VERSION"),
                },
            },
        }],
        version: "2.1.0",
    };
    let mut s = serde_json::to_string_pretty(&log).unwrap_or_default();
    s.push('\n');
    s
}
