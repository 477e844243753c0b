//! Text and JSON reports (JSON schema: docs/report-schema.md, version 1).

use crate::cache::CacheStats;
use crate::scan::{FileResult, Outcome};
use crate::term::Style;
use pickleguard::{terminal_safe, Mode, Policy, Report};
use serde::Serialize;
use std::fmt::Write;

/// The JSON schema version (docs/report-schema.md).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
pub(crate) struct FileEntry<'a> {
    pub path: &'a str,
    #[serde(flatten)]
    pub report: &'a Report,
    pub error: Option<&'a str>,
    /// Repository, revision and file of a file in a Hugging Face cache snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hf: Option<&'a crate::hub::HubRef>,
}

impl<'a> FileEntry<'a> {
    pub(crate) fn of(f: &'a FileResult) -> FileEntry<'a> {
        FileEntry {
            path: &f.path,
            report: &f.report,
            error: f.error.as_deref(),
            hf: f.hub.as_ref(),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct Tool {
    name: &'static str,
    version: &'static str,
}

pub(crate) const TOOL: Tool = Tool {
    name: "pickleguard",
    version: env!("CARGO_PKG_VERSION"),
};

#[derive(Serialize)]
pub(crate) struct Summary {
    files: usize,
    #[serde(rename = "unsafe")]
    unsafe_: usize,
    errors: usize,
    /// Only with a verdict cache (`--cache`).
    #[serde(flatten)]
    cache: Option<CacheStats>,
}

impl Summary {
    pub(crate) fn of(outcome: &Outcome) -> Summary {
        Summary {
            files: outcome.files.len(),
            unsafe_: outcome.unsafe_count(),
            errors: outcome.errors(),
            cache: outcome.cache,
        }
    }
}

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    tool: Tool,
    mode: &'static str,
    fail_on: &'static str,
    /// The config files read and how far each was trusted (docs/report-schema.md).
    configs: &'a [crate::config::ConfigUse],
    /// Links to files outside the scanned tree (scanned).
    links: &'a [crate::walk::LinkNote],
    files: Vec<FileEntry<'a>>,
    summary: Summary,
}

/// The JSON document of a scan.
pub fn json(outcome: &Outcome, policy: &Policy) -> String {
    let doc = Document {
        schema_version: SCHEMA_VERSION,
        tool: TOOL,
        mode: policy.mode.as_str(),
        fail_on: policy.threshold.as_str(),
        configs: &outcome.configs,
        links: &outcome.links,
        files: outcome.files.iter().map(FileEntry::of).collect(),
        summary: Summary::of(outcome),
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_else(|e| {
        format!("{{\"schema_version\": {SCHEMA_VERSION}, \"error\": \"{e}\"}}")
    });
    s.push('\n');
    s
}

fn file_header(f: &FileResult, style: Style, out: &mut String) {
    let path = style.bold(&terminal_safe(&f.path));
    if let Some(e) = &f.error {
        let _ = writeln!(
            out,
            "{path}: {}: {}",
            style.magenta("ERROR"),
            terminal_safe(e)
        );
        return;
    }
    let r = &f.report;
    let what = if r.format == "not_pickle" {
        "not a pickle".to_string()
    } else {
        r.format.clone()
    };
    let incomplete = if r.complete {
        String::new()
    } else {
        format!(
            ", incomplete: {}",
            terminal_safe(
                &r.stopped_by
                    .as_ref()
                    .map_or("stopped early".into(), |s| s.render())
            )
        )
    };
    if r.is_safe {
        let level = if r.findings.is_empty() {
            String::new()
        } else {
            format!("{}, ", style.severity(r.risk_level))
        };
        let _ = writeln!(
            out,
            "{path}: {} ({level}{what}{incomplete})",
            style.green("SAFE")
        );
    } else {
        let _ = writeln!(
            out,
            "{path}: {} ({}, {what}{incomplete})",
            style.red("UNSAFE"),
            style.severity(r.risk_level)
        );
    }
}

/// `--list-globals`: every global the file imports, with how loading uses it.
fn globals(r: &Report, style: Style, out: &mut String) {
    if r.globals.is_empty() {
        let _ = writeln!(out, "  {}", style.dim("globals: none"));
        return;
    }
    let _ = writeln!(
        out,
        "  {}",
        style.dim(&format!("globals ({}):", r.globals.len()))
    );
    for g in &r.globals {
        let uses: Vec<&str> = g
            .uses
            .iter()
            .map(|u| match u {
                pickleguard::Use::New => "new",
                pickleguard::Use::Call => "call",
                pickleguard::Use::Value => "value",
            })
            .collect();
        let _ = writeln!(
            out,
            "    {}.{} ({}; {} use{})",
            terminal_safe(&g.module),
            terminal_safe(&g.name),
            uses.join(", "),
            g.count,
            if g.count == 1 { "" } else { "s" }
        );
    }
}

/// One finding as an indented line (whatever came from the file made terminal-safe).
pub fn finding_line(f: &pickleguard::Finding, style: Style) -> String {
    let member = f
        .member
        .as_ref()
        .map(|m| format!(" in {}", terminal_safe(m.as_str())))
        .unwrap_or_default();
    format!(
        "  {} {} at byte {}{member}: {}",
        style.severity(f.severity),
        f.kind.as_str(),
        f.position,
        terminal_safe(&f.description)
    )
}

/// The text report: one line per file, findings indented, a summary line.
pub fn text(
    outcome: &Outcome,
    policy: &Policy,
    style: Style,
    quiet: bool,
    list_globals: bool,
) -> String {
    let mut out = String::new();
    for f in &outcome.files {
        if quiet && f.error.is_none() && f.report.is_safe {
            continue;
        }
        file_header(f, style, &mut out);
        if list_globals {
            globals(&f.report, style, &mut out);
        }
        for finding in &f.report.findings {
            out.push_str(&finding_line(finding, style));
            out.push('\n');
            let _ = writeln!(
                out,
                "    {} {}",
                style.dim("fix:"),
                terminal_safe(&crate::fix::fix(finding, &f.path))
            );
        }
    }
    if quiet {
        return out;
    }
    let n = outcome.files.len();
    let unsafe_n = outcome.unsafe_count();
    let errors = outcome.errors();
    let safe_n = n - unsafe_n - errors;
    let mut line = format!(
        "{n} file{} scanned: {} unsafe, {} safe",
        if n == 1 { "" } else { "s" },
        unsafe_n,
        safe_n
    );
    if errors > 0 {
        let _ = write!(
            line,
            ", {errors} error{}",
            if errors == 1 { "" } else { "s" }
        );
    }
    let _ = write!(
        line,
        " (mode {}, fail on {})",
        policy.mode.as_str(),
        policy.threshold.as_str()
    );
    if policy.mode == Mode::Audit && unsafe_n > 0 {
        line.push_str("; audit mode: not failing");
    }
    out.push('\n');
    for c in &outcome.configs {
        out.push_str(&config_line(c));
        out.push('\n');
    }
    let line = if unsafe_n > 0 || errors > 0 {
        style.bold(&line)
    } else {
        line
    };
    out.push_str(&line);
    out.push('\n');
    out
}

/// Which config a scan used and how far it was trusted.
fn config_line(c: &crate::config::ConfigUse) -> String {
    use crate::config::Trust;
    match c.trust {
        Trust::Applied => format!("config: {} ({})", terminal_safe(&c.path), c.origin),
        Trust::TightenOnly if c.ignored.is_empty() => format!(
            "config: {} is inside a scanned path: used only to tighten the policy",
            terminal_safe(&c.path)
        ),
        Trust::TightenOnly => format!(
            "config: {} is inside a scanned path: used only to tighten the policy; ignored: {} (name it with --policy to apply it)",
            terminal_safe(&c.path),
            terminal_safe(&c.ignored.join(", "))
        ),
    }
}
