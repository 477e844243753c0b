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

/// If `args` (program name first) are a `scan` that the Python package runs — a remote source,
/// or `--dask` (the cluster scan, `pickleguard.distributed`) — run it there and return its exit
/// code.
pub fn hand_off(args: &[OsString]) -> Option<u8> {
    // The Python side marks the scans it runs: never hand one back.
    if args.get(1).map(|a| a.as_os_str()) != Some(OsStr::new("scan"))
        || std::env::var_os(HANDED_OVER).is_some()
    {
        return None;
    }
    let rest = &args[2..];
    let module = if wants_dask(rest) {
        // Without a Python known to have the package (one beside this binary, as a wheel
        // installs it, or PICKLEGUARD_PYTHON), the command line refuses the flag itself.
        explicit_python()?;
        "pickleguard"
    } else if rest.iter().any(|a| is_remote(a)) {
        "pickleguard.remote"
    } else {
        return None;
    };
    let python = explicit_python().unwrap_or_else(|| PathBuf::from("python3"));
    // A Python without the package is a usage error (exit 2), not Python's exit 1, which
    // would read as "a file is not safe".
    let boot = BOOT.replace("MODULE", module);
    let status = Command::new(&python)
        .arg("-c")
        .arg(boot)
        .args(&args[1..])
        .env(HANDED_OVER, "1")
        .status();
    Some(match status {
        Ok(s) => s
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(crate::ExitStatus::Error.code()),
        Err(e) => {
            crate::term::error(&format!(
                "this scan is run by the pickleguard Python package, and {} could not be started ({e}); set PICKLEGUARD_PYTHON to a Python that has it (pip install 'pickleguard-scan[remote]')",
                python.display()
            ));
            crate::ExitStatus::Error.code()
        }
    })
}

/// Runs MODULE as `python -m MODULE` would, unless it cannot be imported.
const BOOT: &str = r#"import runpy, sys
try:
    import MODULE
except ImportError as e:
    sys.stderr.write(f"pickleguard: error: {e}; install pickleguard-scan into {sys.executable} or set PICKLEGUARD_PYTHON\n")
    sys.exit(2)
sys.argv[0] = "MODULE"
runpy.run_module("MODULE", run_name="__main__", alter_sys=True)
"#;

/// `--dask` before any `--`.
fn wants_dask(args: &[OsString]) -> bool {
    args.iter()
        .take_while(|a| a.as_os_str() != "--")
        .filter_map(|a| a.to_str())
        .any(|a| a == "--dask" || a.starts_with("--dask="))
}

/// The Python that has the package: PICKLEGUARD_PYTHON, else the one installed beside this
/// binary (a wheel puts both in the environment's bin/).
fn explicit_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PICKLEGUARD_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let beside = std::env::current_exe().ok().and_then(|exe| {
        let dir = exe.parent()?.to_path_buf();
        ["python", "python3", "python.exe"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
    });
    beside
}
