//! The `pickleguard` command line as a library: `run(args) -> ExitCode`, shared by the binary
//! and the Python package's console script.

use clap::{Parser, Subcommand, ValueEnum};
use pickleguard::{Mode, Policy, PolicyFile, Report, Severity};
use serde::Serialize;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "pickleguard",
    version,
    about = "Find what loading a Python pickle would run, without running it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Format {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Scan files for dangerous pickles (exit 0: all safe, 1: something unsafe, 2: error).
    Scan {
        /// Files to scan.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// strict, ml, allowlist or audit.
        #[arg(long, default_value = "ml")]
        mode: String,
        /// Allow MODULE:NAME (repeatable; NAME may be `*`).
        #[arg(long = "allow")]
        allow: Vec<String>,
        /// A policy file (pickleguard.toml format).
        #[arg(long)]
        policy: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Lowest severity that makes a file unsafe.
        #[arg(long = "fail-on")]
        fail_on: Option<String>,
    },
    /// Print the opcodes and resolved globals of a pickle file as JSON.
    Disasm { path: PathBuf },
}

#[derive(Serialize)]
struct FileEntry<'a> {
    path: String,
    #[serde(flatten)]
    report: &'a Report,
    error: Option<String>,
}

fn build_policy(
    mode: &str,
    allow: &[String],
    policy: &Option<PathBuf>,
    fail_on: &Option<String>,
) -> Result<Policy, String> {
    let mode = Mode::parse(mode)
        .ok_or_else(|| format!("unknown mode {mode:?} (strict, ml, allowlist, audit)"))?;
    let mut p = Policy::new(mode);
    if let Some(file) = policy {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let pf = PolicyFile::parse(&text)?;
        p.extend(&pf)?;
    }
    for a in allow {
        let (m, n) = a
            .split_once(':')
            .ok_or_else(|| format!("--allow expects MODULE:NAME, got {a:?}"))?;
        p.allow(m, n);
    }
    if let Some(f) = fail_on {
        p.threshold = Severity::parse(f).ok_or_else(|| format!("unknown level {f:?}"))?;
    }
    Ok(p)
}

/// Run the command line with these arguments (the first is the program name).
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Command::Scan {
            paths,
            mode,
            allow,
            policy,
            format,
            fail_on,
        } => {
            let pol = match build_policy(&mode, &allow, &policy, &fail_on) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("pickleguard: {e}");
                    return ExitCode::from(2);
                }
            };
            scan(&paths, &pol, format)
        }
        Command::Disasm { path } => match std::fs::read(&path) {
            Ok(data) => {
                let d = pickleguard::disasm::disassemble(&data);
                let _ = writeln!(
                    std::io::stdout(),
                    "{}",
                    serde_json::to_string(&d).unwrap_or_default()
                );
                ExitCode::from(if d.error.is_some() { 1 } else { 0 })
            }
            Err(e) => {
                eprintln!("pickleguard: {}: {e}", path.display());
                ExitCode::from(2)
            }
        },
    }
}

fn scan(paths: &[PathBuf], pol: &Policy, format: Format) -> ExitCode {
    let mut reports = Vec::new();
    let mut io_error = false;
    for p in paths {
        match std::fs::read(p) {
            Ok(data) => reports.push((
                p.display().to_string(),
                pickleguard::analyze_pickle(&data, pol),
                None,
            )),
            Err(e) => {
                io_error = true;
                let mut r = Report::new("unreadable");
                r.is_safe = false;
                r.complete = false;
                reports.push((p.display().to_string(), r, Some(e.to_string())));
            }
        }
    }
    let unsafe_count = reports.iter().filter(|r| !r.1.is_safe).count();
    let blocking = pol.mode != Mode::Audit;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            let files: Vec<FileEntry> = reports
                .iter()
                .map(|(p, r, e)| FileEntry {
                    path: p.clone(),
                    report: r,
                    error: e.clone(),
                })
                .collect();
            let doc = serde_json::json!({
                "schema_version": 1,
                "tool": {"name": "pickleguard", "version": env!("CARGO_PKG_VERSION")},
                "mode": pol.mode.as_str(),
                "files": files,
                "summary": {"files": reports.len(), "unsafe": unsafe_count, "errors": reports.iter().filter(|r| r.2.is_some()).count()},
            });
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            );
        }
        Format::Text => {
            for (p, r, e) in &reports {
                let verdict = if r.is_safe { "SAFE" } else { "UNSAFE" };
                let _ = writeln!(
                    out,
                    "{p}: {verdict} ({}, {})",
                    r.risk_level.as_str(),
                    r.format
                );
                if let Some(e) = e {
                    let _ = writeln!(out, "  error: {e}");
                }
                for f in &r.findings {
                    let member = f
                        .member
                        .as_deref()
                        .map(|m| format!(" in {m}"))
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "  [{}] {} at byte {}{member}: {}",
                        f.severity.as_str(),
                        f.kind.as_str(),
                        f.position,
                        f.description
                    );
                }
            }
            let _ = writeln!(
                out,
                "{} file(s) scanned, {} unsafe",
                reports.len(),
                unsafe_count
            );
        }
    }
    if io_error {
        ExitCode::from(2)
    } else if unsafe_count > 0 && blocking {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
