//! The command line's arguments (clap derive).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const ABOUT: &str = "Find what loading a Python pickle would import and run, without running it";

const LONG_ABOUT: &str = "\
Find what loading a Python pickle would import and run, without running it.

pickleguard reads pickle files (and the PyTorch, joblib and NumPy files that hold pickles) \
opcode by opcode, builds the graph of what loading them would import and call, and judges it \
against a policy. Nothing in the files is ever executed.";

const AFTER_HELP: &str = "\
Examples:
  pickleguard scan models/                      scan a tree (every file, sniffed by content)
  pickleguard scan --format sarif -o pg.sarif . SARIF 2.1.0 for code scanning
  curl -s URL | pickleguard scan -              scan standard input
  pickleguard scan https://host/model.pt        read only what the scan needs (Python + fsspec)
  pickleguard scan --list-globals model.pkl     list the globals each file imports
  pickleguard explain suspicious.pkl            show what loading it would do
  pickleguard policy learn trusted/ -o pickleguard.toml

Exit codes: 0 every file safe, 1 at least one file not safe, 2 usage or I/O error.
Settings are also read from pickleguard.toml or [tool.pickleguard] in pyproject.toml,
found upward from the working directory; command-line flags win.";

#[derive(Parser, Debug)]
#[command(
    name = "pickleguard",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Scan files and directories for dangerous pickles
    ///
    /// Every regular file is read and sniffed by content (no extension list decides what is
    /// scanned). Exit code 0: every file safe; 1: at least one file not safe; 2: usage or I/O
    /// error (the other files are still scanned and reported).
    Scan(ScanArgs),
    /// Show what loading a file would do: annotated opcodes, a Python-like rendering, findings
    Explain(ExplainArgs),
    /// Show the effective policy, or learn one from files you trust
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Print a shell completion script (e.g. `pickleguard completions bash > ~/.local/share/bash-completion/completions/pickleguard`)
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the opcodes and resolved globals of a pickle as JSON (for tests and debugging)
    #[command(hide = true)]
    Disasm { path: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Print the effective policy as TOML (built-in profile, config file and flags merged)
    Show(ShowArgs),
    /// Write an allowlist policy from every global that files you trust use
    ///
    /// Files with a CRITICAL finding are refused (exit 1, nothing written). Use the result
    /// with `pickleguard scan --mode allowlist --policy FILE`.
    Learn(LearnArgs),
}

/// How strictly a file is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Plain data only: no global, no call.
    Strict,
    /// Plain data plus the curated ML profile (numpy, torch, scikit-learn, ...). The default.
    Ml,
    /// Plain data plus exactly your --allow / policy entries.
    Allowlist,
    /// The ml judgement, reported but never failing (exit 0).
    Audit,
}

impl ModeArg {
    pub fn mode(self) -> pickleguard::Mode {
        match self {
            ModeArg::Strict => pickleguard::Mode::Strict,
            ModeArg::Ml => pickleguard::Mode::Ml,
            ModeArg::Allowlist => pickleguard::Mode::Allowlist,
            ModeArg::Audit => pickleguard::Mode::Audit,
        }
    }
}

/// A severity threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum LevelArg {
    Low,
    Medium,
    High,
    Critical,
}

impl LevelArg {
    pub fn severity(self) -> pickleguard::Severity {
        match self {
            LevelArg::Low => pickleguard::Severity::Low,
            LevelArg::Medium => pickleguard::Severity::Medium,
            LevelArg::High => pickleguard::Severity::High,
            LevelArg::Critical => pickleguard::Severity::Critical,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per file, findings indented, a summary line.
    Text,
    /// One JSON document (docs/report-schema.md).
    Json,
    /// SARIF 2.1.0, for code scanning dashboards.
    Sarif,
    /// JSON Lines: one object per file as soon as it is judged, then a summary object.
    Jsonl,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    /// Colours when writing to a terminal and NO_COLOR is not set.
    Auto,
    Always,
    Never,
}

/// Settings that decide the policy (shared by scan, explain and policy).
#[derive(Args, Debug, Clone, Default)]
pub struct PolicyArgs {
    /// Judgement mode [default: ml, or the config file's `mode`]
    #[arg(long, value_enum, value_name = "MODE", help_heading = "Policy")]
    pub mode: Option<ModeArg>,
    /// Allow a global for every use: MODULE:NAME, `*` wildcards (`numpy:*`, `myapp.*:*`);
    /// repeatable
    #[arg(long = "allow", value_name = "MODULE:NAME", help_heading = "Policy")]
    pub allow: Vec<String>,
    /// A policy file (pickleguard.toml format); repeatable, later files win
    #[arg(long = "policy", value_name = "FILE", help_heading = "Policy")]
    pub policy: Vec<PathBuf>,
    /// Lowest severity that makes a file unsafe [default: MEDIUM, or the config's `fail_on`]
    #[arg(
        long = "fail-on",
        value_enum,
        ignore_case = true,
        value_name = "LEVEL",
        help_heading = "Policy"
    )]
    pub fail_on: Option<LevelArg>,
    /// Do not read pickleguard.toml / pyproject.toml from the working directory upward
    #[arg(long = "no-config", help_heading = "Policy")]
    pub no_config: bool,
}

/// Which files a walk yields.
#[derive(Args, Debug, Clone, Default)]
pub struct WalkArgs {
    /// Only scan files whose path or name matches this glob (repeatable)
    #[arg(long, value_name = "GLOB", help_heading = "Files")]
    pub include: Vec<String>,
    /// Skip files and directories whose path or name matches this glob (repeatable)
    #[arg(long, value_name = "GLOB", help_heading = "Files")]
    pub exclude: Vec<String>,
    /// Follow symbolic links found while walking directories (links named on the command line
    /// are always followed)
    #[arg(long = "follow-symlinks", help_heading = "Files")]
    pub follow_symlinks: bool,
    /// Files scanned in parallel [default: all cores]
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024), help_heading = "Files")]
    pub jobs: Option<u16>,
    #[command(flatten)]
    pub limits: FileLimits,
}

/// Per-file bounds of a scan. A file past one is reported not safe (RESOURCE_LIMIT), never
/// skipped in silence: what was not read to the end cannot be called safe.
#[derive(Args, Debug, Clone, Default)]
pub struct FileLimits {
    /// Do not read files larger than SIZE (bytes, or with K/M/G/T: `500M`, `2G`); each is
    /// reported not scanned (RESOURCE_LIMIT, not safe)
    #[arg(long = "max-size", value_name = "SIZE", value_parser = parse_size, help_heading = "Files")]
    pub max_size: Option<u64>,
    /// Give up on a file after SECONDS (decimals allowed); it is reported RESOURCE_LIMIT, not
    /// safe
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, help_heading = "Files")]
    pub timeout: Option<std::time::Duration>,
}

/// `123`, `64K`, `500M`, `2G`, `1T` (powers of 1024; `KB`, `MiB`, ... accepted).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("expected a size like 500M or 2G, got {s:?}"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(format!("unknown size unit in {s:?} (use K, M, G or T)")),
    };
    let v = n * (1u64 << shift) as f64;
    if !v.is_finite() || v < 0.0 || v >= u64::MAX as f64 {
        return Err(format!("size out of range: {s:?}"));
    }
    Ok(v as u64)
}

fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected seconds, got {s:?}"))?;
    if v.is_nan() || v <= 0.0 || v > 1e9 {
        return Err(format!(
            "the timeout must be a positive number of seconds, got {s:?}"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(v))
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Files and directories to scan (directories recursively); `-` reads standard input
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub walk: WalkArgs,
    /// Output format
    #[arg(
        long,
        short = 'f',
        value_enum,
        default_value = "text",
        help_heading = "Output"
    )]
    pub format: Format,
    /// Write the report to FILE instead of standard output
    #[arg(long, short = 'o', value_name = "FILE", help_heading = "Output")]
    pub output: Option<PathBuf>,
    /// No progress bar; text output lists only files that are not safe, without summary
    #[arg(long, short = 'q', help_heading = "Output")]
    pub quiet: bool,
    /// When to use colours (NO_COLOR is respected in `auto`)
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        value_name = "WHEN",
        help_heading = "Output"
    )]
    pub color: ColorArg,
    /// Text output: list each file's globals and how loading uses them (JSON always has them)
    #[arg(long = "list-globals", help_heading = "Output")]
    pub list_globals: bool,
    /// Report remote sources under these names (set by the Python side that fetched them)
    #[arg(long = "remote-name", value_name = "LOCAL=URL", hide = true)]
    pub remote_names: Vec<String>,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// Scanning many files again and again, on one machine or a Dask cluster (docs/cli.md).
#[derive(Args, Debug, Clone, Default)]
pub struct HubArgs {
    /// Keep each file's verdict in DIR and reuse it while the file, the policy and the engine
    /// are unchanged (safe to share between concurrent scans)
    #[arg(long, value_name = "DIR", help_heading = "Cache and cluster")]
    pub cache: Option<PathBuf>,
    /// With --cache: read and hash every file, reusing verdicts by content only (for trees
    /// where a file's bytes may change without its size, mtime and ctime changing)
    #[arg(long, requires = "cache", help_heading = "Cache and cluster")]
    pub cache_verify: bool,
    /// Scan on the Dask cluster whose scheduler is at ADDRESS (tcp://host:port); needs the
    /// Python package (`pip install pickleguard-scan`, run through its `pickleguard` command)
    #[arg(long, value_name = "ADDRESS", help_heading = "Cache and cluster")]
    pub dask: Option<String>,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The file to explain (`-` reads standard input)
    #[arg(value_name = "FILE")]
    pub path: PathBuf,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Leave out the opcode listing (rendering and findings only)
    #[arg(long = "no-disassembly")]
    pub no_disassembly: bool,
    /// When to use colours (NO_COLOR is respected in `auto`)
    #[arg(long, value_enum, default_value = "auto", value_name = "WHEN")]
    pub color: ColorArg,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Show this mode's policy [default: --mode, the config's mode, or ml]
    #[arg(value_enum, value_name = "MODE")]
    pub mode_arg: Option<ModeArg>,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Args, Debug)]
pub struct LearnArgs {
    /// Files and directories you trust
    #[arg(required = true, value_name = "DIR")]
    pub paths: Vec<PathBuf>,
    /// Write the policy to FILE instead of standard output
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub walk: WalkArgs,
    /// No progress bar
    #[arg(long, short = 'q')]
    pub quiet: bool,
}
