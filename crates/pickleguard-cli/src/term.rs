//! Terminals: colours (NO_COLOR, only on a terminal), messages on stderr that never panic,
//! and output that treats a closed pipe as a reader that has seen enough.

use crate::cli::ColorArg;
use pickleguard::Severity;
use std::io::{IsTerminal, Write};
use std::path::Path;

/// A message for stderr: its own line breaks (a TOML error's excerpt) are kept, every other
/// control character is escaped ([`pickleguard::terminal_safe`]). A name from a scanned file
/// that goes into a message is escaped whole where it is put in, so it cannot add a line.
fn safe_lines(msg: &str) -> String {
    msg.split('\n')
        .map(pickleguard::terminal_safe)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Print `pickleguard: MESSAGE` on stderr (ignoring a closed stderr).
pub fn error(msg: &str) {
    let _ = writeln!(std::io::stderr(), "pickleguard: {}", safe_lines(msg));
}

/// Print `pickleguard: warning: MESSAGE` on stderr.
pub fn warn(msg: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "pickleguard: warning: {}",
        safe_lines(msg)
    );
}

/// Print a note on stderr.
pub fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "pickleguard: {}", safe_lines(msg));
}

/// Write bytes to stdout; a broken pipe is not an error.
pub fn write_stdout(bytes: &[u8]) -> Result<(), String> {
    let out = std::io::stdout();
    let mut lock = out.lock();
    crate::write_all_quiet(&mut lock, bytes).map_err(|e| format!("writing to stdout: {e}"))
}

/// Write the output to FILE, or to stdout.
pub fn write_output(path: Option<&Path>, bytes: &[u8]) -> Result<(), String> {
    match path {
        Some(p) if p.as_os_str() != "-" => {
            std::fs::write(p, bytes).map_err(|e| format!("{}: {e}", p.display()))
        }
        _ => write_stdout(bytes),
    }
}

/// Whether NO_COLOR asks for no colour (any non-empty value, as no-color.org says).
fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Decide whether to colour output that goes to stdout (`to_file`: it goes to a file).
pub fn use_color(arg: ColorArg, to_file: bool) -> bool {
    match arg {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => {
            !to_file
                && !no_color_env()
                && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
                && std::io::stdout().is_terminal()
        }
    }
}

/// Whether a progress bar may be drawn: stderr is a terminal.
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// ANSI styling that is a no-op when colours are off.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub on: bool,
}

impl Style {
    fn wrap(self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    pub fn bold(self, s: &str) -> String {
        self.wrap("1", s)
    }

    pub fn dim(self, s: &str) -> String {
        self.wrap("2", s)
    }

    pub fn red(self, s: &str) -> String {
        self.wrap("1;31", s)
    }

    pub fn green(self, s: &str) -> String {
        self.wrap("32", s)
    }

    pub fn magenta(self, s: &str) -> String {
        self.wrap("1;35", s)
    }

    /// A severity name in its colour.
    pub fn severity(self, s: Severity) -> String {
        let code = match s {
            Severity::Critical => "1;31",
            Severity::High => "31",
            Severity::Medium => "33",
            Severity::Low => "36",
            Severity::Safe => "32",
        };
        self.wrap(code, s.as_str())
    }
}
