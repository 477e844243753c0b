//! The `pickleguard` command line as a library: `run(args) -> ExitCode`, shared by the binary
//! and the Python package's console script.
//!
//! Layout: [`cli`] declares the arguments, [`config`] finds the user's policy and builds the
//! effective [`pickleguard::Policy`], [`walk`] turns paths into files, [`scan`] reads and
//! analyses them in parallel, [`output`] and [`sarif`] print the results, [`explain`] and
//! [`learn`] are the other commands, [`term`] handles terminals, colours and broken pipes.

pub mod batch;
pub mod cache;
pub mod cli;
pub mod config;
pub mod explain;
pub mod fix;
pub mod hub;
pub mod jsonl;
pub mod judge;
pub mod learn;
pub mod output;
pub mod remote;
pub mod sarif;
pub mod scan;
pub mod stream;
pub mod term;
pub mod walk;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command, PolicyCommand};
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

/// Exit code: every file safe (or audit mode).
pub const EXIT_SAFE: u8 = 0;
/// Exit code: at least one file is not safe.
pub const EXIT_UNSAFE: u8 = 1;
/// Exit code: a usage error or an I/O error.
pub const EXIT_ERROR: u8 = 2;
/// Exit code: nothing was scanned (no file under the paths, or none could be read).
pub const EXIT_NOTHING: u8 = 3;

/// Run the command line with these arguments (the first is the program name).
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    ExitCode::from(run_code(args))
}

/// Like [`run`], with the exit code as a number (for callers that need it, e.g. Python).
pub fn run_code<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    scan::install_read_hint();
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if let Some(code) = remote::hand_off(&args) {
        return code;
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // --help and --version end here too, on stdout with exit 0.
            let _ = e.print();
            return if e.use_stderr() {
                EXIT_ERROR
            } else {
                EXIT_SAFE
            };
        }
    };
    let result = match cli.command {
        Command::Scan(a) => scan::command(&a),
        Command::Explain(a) => explain::command(&a),
        Command::Policy { command } => match command {
            PolicyCommand::Show(a) => learn::show(&a),
            PolicyCommand::Learn(a) => learn::command(&a),
        },
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pickleguard", &mut buf);
            term::write_stdout(&buf).map(|_| EXIT_SAFE)
        }
        Command::Disasm { path } => disasm(&path),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            term::error(&e);
            EXIT_ERROR
        }
    }
}

fn disasm(path: &std::path::Path) -> Result<u8, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let d = pickleguard::disasm::disassemble(&data);
    let mut text = serde_json::to_string(&d).map_err(|e| e.to_string())?;
    text.push('\n');
    term::write_stdout(text.as_bytes())?;
    Ok(if d.error.is_some() {
        EXIT_UNSAFE
    } else {
        EXIT_SAFE
    })
}

/// Write to a writer, treating a closed pipe as the reader having seen enough.
pub(crate) fn write_all_quiet(w: &mut dyn Write, bytes: &[u8]) -> std::io::Result<()> {
    match w.write_all(bytes).and_then(|_| w.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
