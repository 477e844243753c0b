//! `pickleguard scan URL`: remote sources (`https://`, `s3://`, `hf://`, any fsspec protocol)
//! are read by the Python package (`pickleguard.remote`), which fetches only the bytes a scan
//! needs into sparse local copies and runs this same scan on them under their URLs
//! (`--remote-name`). The command line only hands such a scan over (docs/cli.md, "Remote
//! sources").

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::Command;

/// Set by `pickleguard.remote` for the scan it runs after fetching.
const HANDED_OVER: &str = "PICKLEGUARD_REMOTE_FETCHED";

/// Whether an argument names a remote source: `scheme://...` with a scheme of two or more
/// letters, digits, `+`, `-` or `.` (not `file`).
pub fn is_remote(arg: &OsStr) -> bool {
    let Some(s) = arg.to_str() else { return false };
    let Some((scheme, _)) = s.split_once("://") else {
        return false;
    };
    scheme.len() > 1
        && scheme.as_bytes()[0].is_ascii_alphabetic()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && scheme != "file"
}

/// If `args` (program name first) are a `scan` with a remote source, run it through Python and
/// return its exit code.
pub fn hand_off(args: &[OsString]) -> Option<u8> {
    // The Python side marks the scan it runs on its copies: never hand that back.
    if args.get(1).map(|a| a.as_os_str()) != Some(OsStr::new("scan"))
        || !args[2..].iter().any(|a| is_remote(a))
        || std::env::var_os(HANDED_OVER).is_some()
    {
        return None;
    }
    let python = python();
    let status = Command::new(&python)
        .args(["-m", "pickleguard.remote"])
        .args(&args[1..])
        .status();
    Some(match status {
        Ok(s) => s
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(crate::EXIT_ERROR),
        Err(e) => {
            crate::term::error(&format!(
                "remote sources are read by the pickleguard Python package, and {} could not be started ({e}); set PICKLEGUARD_PYTHON to a Python that has it (pip install 'pickleguard-scan[remote]')",
                python.display()
            ));
            crate::EXIT_ERROR
        }
    })
}

/// The Python that has the package: PICKLEGUARD_PYTHON, else the one installed beside this
/// binary (a wheel puts both in the environment's bin/), else `python3` on PATH.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PICKLEGUARD_PYTHON") {
        return PathBuf::from(p);
    }
    let beside = std::env::current_exe().ok().and_then(|exe| {
        let dir = exe.parent()?.to_path_buf();
        ["python", "python3", "python.exe"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
    });
    beside.unwrap_or_else(|| PathBuf::from("python3"))
}
