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
pub mod contain;
pub mod exit;
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

pub use exit::ExitStatus;

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
    run_ending(args, Ending::Free)
}

/// The binary's entry: like [`run`], for a process that exits as soon as it returns.
pub fn run_process<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    ExitCode::from(run_ending(args, Ending::ProcessExit))
}

/// What a command does with its state when it is done. A process that exits right after
/// leaves it to the kernel: freeing a policy whose tables were built (thousands of entries)
/// costs more CPU than scanning a small file. A library caller (Python) gets it freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Free,
    ProcessExit,
}

impl Ending {
    /// Drop `state`, or leave it to the process's exit.
    pub fn release<S>(self, state: S) {
        match self {
            Ending::Free => drop(state),
            Ending::ProcessExit => std::mem::forget(state),
        }
    }
}

fn run_ending<I, T>(args: I, ending: Ending) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
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
                ExitStatus::Error.code()
            } else {
                ExitStatus::Safe.code()
            };
        }
    };
    let result = match cli.command {
        Command::Scan(a) => scan::command(&a, ending),
        Command::Explain(a) => explain::command(&a),
        Command::Policy { command } => match command {
            PolicyCommand::Show(a) => learn::show(&a),
            PolicyCommand::Learn(a) => learn::command(&a),
        },
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pickleguard", &mut buf);
            term::write_stdout(&buf).map(|_| ExitStatus::Safe)
        }
        Command::Disasm { path } => disasm(&path),
    };
    match result {
        Ok(status) => status.code(),
        Err(e) => {
            term::error(&e);
            ExitStatus::Error.code()
        }
    }
}

fn disasm(path: &std::path::Path) -> Result<ExitStatus, String> {
    let data = std::fs::read(path).map_err(|e| {
        format!(
            "{}: {e}",
            pickleguard::terminal_safe(&path.display().to_string())
        )
    })?;
    let d = pickleguard::disassemble(&data);
    let mut text = serde_json::to_string(&d).map_err(|e| e.to_string())?;
    text.push('\n');
    term::write_stdout(text.as_bytes())?;
    Ok(ExitStatus::safe_if(d.error.is_none()))
}

/// Write to a writer, treating a closed pipe as the reader having seen enough.
pub(crate) fn write_all_quiet(w: &mut dyn Write, bytes: &[u8]) -> std::io::Result<()> {
    match w.write_all(bytes).and_then(|_| w.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
