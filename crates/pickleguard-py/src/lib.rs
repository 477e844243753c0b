//! Python bindings: `pickleguard._native`.
//!
//! Everything heavy runs with the GIL released, on the caller's thread: this module starts no
//! thread of its own, so it stays correct in a `fork()`ed child (PyTorch DataLoader workers).
//! Inputs are taken through the buffer protocol without copying (`bytes`, `memoryview`,
//! `mmap.mmap`); the Python layer maps files instead of reading them.

// PyO3 0.22's `#[pyfunction]` expansion trips this lint on newer clippy (PyErr -> PyErr).
#![allow(clippy::useless_conversion)]

mod buffer;
mod extent;
mod policy;
mod report;

use buffer::Bytes;
use extent::Extent;
use policy::{PyPolicy, Verdict};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Analyse raw pickle bytes (one or several pickles back to back).
/// `side_dir`: the directory of the file the pickle came from; side files it names (joblib's
/// legacy wrappers) are followed there (docs/containers.md, "Side files").
#[pyfunction]
#[pyo3(signature = (data, policy, side_dir = None))]
fn analyze_pickle<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    policy: &PyPolicy,
    side_dir: Option<PathBuf>,
) -> PyResult<Bound<'py, PyDict>> {
    let snap = policy.snapshot();
    let buf = Bytes::get(data)?;
    let r = buf.with_gil_released(|b| {
        let mut r = pickleguard::analyze_pickle(b, &snap);
        follow_side_files(&mut r, &snap, side_dir.as_deref());
        r
    });
    drop(buf);
    report::to_dict(py, &r, snap.mode.as_str())
}

fn follow_side_files(
    r: &mut pickleguard::Report,
    policy: &pickleguard::Policy,
    dir: Option<&Path>,
) {
    if let Some(dir) = dir {
        pickleguard::side_files::settle(r, policy, |name| {
            let p = dir.join(name);
            p.is_file().then(|| std::fs::read(p).ok()).flatten()
        });
    }
}

/// Every pickle stream a scan of `data` analysed, in the order their analyses began (debug
/// API for the loader-differential tests, docs/containers.md): dicts with `member` (the path
/// findings carry, `None` for the file itself), `format`, `offset` (where the stream starts
/// in `data`, `None` for bytes that exist only inside the scan: decompressed, decoded) and
/// `data` (the stream's bytes, `None` past the recording budget).
#[pyfunction]
fn analysed_streams<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    policy: &PyPolicy,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let snap = policy.snapshot();
    let buf = Bytes::get(data)?;
    let (_, streams) = buf.with_gil_released(|b| pickleguard::scan_with_streams(b, &snap));
    let mut out = Vec::with_capacity(streams.len());
    for s in &streams {
        let d = PyDict::new_bound(py);
        d.set_item("member", s.member.as_ref().map(|m| m.as_str()))?;
        d.set_item("format", s.format.as_str())?;
        let offset = match s.data {
            pickleguard::StreamData::InFile { start } => Some(start),
            _ => None,
        };
        d.set_item("offset", offset)?;
        let bytes = s
            .bytes(buf.as_slice())
            .map(|b| pyo3::types::PyBytes::new_bound(py, b));
        d.set_item("data", bytes)?;
        out.push(d);
    }
    drop(buf);
    Ok(out)
}

/// Analyse a whole file's bytes, whatever the container (zip, torch, joblib, numpy, ...).
/// The file is about to be loaded through the restricted unpickler, which scans what it reads:
/// `torch_load`: by `torch.load` (a PyTorch zip's `data.pkl` is left to it); `npz_load`: by
/// the guarded `NpzFile` (the deflated `.npy` members' object arrays); `member_load`: as the
/// one file of an archive (`safe_load` of a pandas `.pkl.zip`: that deflated member).
/// `side_dir`: as for `analyze_pickle`.
#[pyfunction]
#[pyo3(signature = (data, policy, torch_load = false, side_dir = None, npz_load = false, member_load = false))]
fn scan_bytes<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    policy: &PyPolicy,
    torch_load: bool,
    side_dir: Option<PathBuf>,
    npz_load: bool,
    member_load: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let snap = policy.snapshot();
    let buf = Bytes::get(data)?;
    let scans = pickleguard::LoadScans {
        torch_data_pkl: torch_load,
        npz_members: npz_load,
        single_member: member_load,
    };
    let r = buf.with_gil_released(|b| {
        // scan_file maps archives page by page; their big pickle members are read ahead.
        let scan = pickleguard::Scan::new(&snap).read_hint(&pickleguard_cli::scan::read_ahead);
        let mut r = scan.before_load(scans).file(b);
        follow_side_files(&mut r, &snap, side_dir.as_deref());
        r
    });
    drop(buf);
    report::to_dict(py, &r, snap.mode.as_str())
}

/// Scan a file that is no regular file (a FIFO, a device) as `pickleguard scan` does: read
/// within the stream bounds (`PICKLEGUARD_STREAM_MAX_BYTES`, `PICKLEGUARD_STREAM_TIMEOUT`);
/// past the size cap its first bytes are scanned and the report ends in RESOURCE_LIMIT.
/// A stream silent for longer than the timeout raises TimeoutError.
#[pyfunction]
fn scan_stream<'py>(
    py: Python<'py>,
    path: PathBuf,
    policy: &PyPolicy,
) -> PyResult<Bound<'py, PyDict>> {
    let snap = policy.snapshot();
    let r = py
        .allow_threads(|| pickleguard_cli::scan::stream_report(Some(&path), &snap, None))
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    report::to_dict(py, &r.0, snap.mode.as_str())
}

/// Bytes the core's decoders have produced in this process (an instrument for tests and
/// benchmarks: what pickleguard decompresses, next to what the loaders do).
#[pyfunction]
fn decompressed_bytes() -> u64 {
    pickleguard::decompressed_bytes()
}

/// Where the pickle that starts at `start` ends, without running it; `resume` is an opcode
/// boundary returned by an earlier call on a prefix of the same data.
///
/// Returns `(pos, need)`: `need == 0`: complete, the pickle ends at `pos` (after STOP);
/// `need > 0`: the opcode at `pos` needs at least `need` more bytes; `need == -1`: it needs
/// the rest of a line; `need == -2`: the opcode at `pos` is invalid (the loader fails there).
#[pyfunction]
#[pyo3(signature = (data, start = 0, resume = None))]
fn pickle_extent(
    data: &Bound<'_, PyAny>,
    start: usize,
    resume: Option<usize>,
) -> PyResult<(usize, i64)> {
    let buf = Bytes::get(data)?;
    let all = buf.as_slice();
    if start > all.len() {
        return Err(PyValueError::new_err("start is past the end of the data"));
    }
    let from = resume.unwrap_or(start);
    if from < start || from > all.len() {
        return Err(PyValueError::new_err(
            "resume must lie between start and the end",
        ));
    }
    let run = |b: &[u8]| extent::extent(&b[start..], from - start);
    // Small inputs (the incremental reads of a stream) are not worth releasing the GIL for;
    // we hold it, so nobody else can change a writable buffer meanwhile.
    let e = if all.len() - from > (1 << 20) {
        buf.with_gil_released(run)
    } else {
        run(all)
    };
    Ok(match e {
        Extent::Complete(end) => (start + end, 0),
        Extent::More { pos, need } => (
            start + pos,
            need.map(|n| n.min(i64::MAX as u64) as i64).unwrap_or(-1),
        ),
        Extent::Invalid(pos) => (start + pos, -2),
    })
}

/// Whether a scan reads only a small part of these bytes (a zip, tar, legacy PyTorch file or
/// numeric `.npy`: headers and pickles, not weights), judged from their first bytes.
#[pyfunction]
fn reads_sparsely(data: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(pickleguard::reads_sparsely(Bytes::get(data)?.as_slice()))
}

/// The `stopped_by` of a report stopped by the limit called `name` (`"stream size"` gives
/// `"limit:stream size"`): the core renders it, for the reports the Python loaders write.
#[pyfunction]
fn stopped_by_limit(name: &str) -> PyResult<String> {
    let limit = pickleguard::Limit::from_name(name)
        .ok_or_else(|| PyValueError::new_err(format!("no limit is called {name:?}")))?;
    Ok(pickleguard::StopReason::Limit(limit).render())
}

/// Which of a zip's member names are tensor storages of a torch archive (never read by a
/// scan): a remote reader skips their bytes (pickleguard.remote).
#[pyfunction]
fn storage_members(names: Vec<String>) -> Vec<bool> {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    pickleguard::storage_members(&refs)
}

/// The container or codec a scan takes these bytes to be (`"zip"`, `"gzip"`, `"lzma"`, ...,
/// `"7z"`), or `None` for bytes it reads as a pickle: `pickleguard::container_kind`.
#[pyfunction]
fn container_kind(data: &Bound<'_, PyAny>) -> PyResult<Option<&'static str>> {
    Ok(pickleguard::container_kind(Bytes::get(data)?.as_slice()))
}

/// Whether a scan reads these bytes as a legacy PyTorch file (judged from the first 48
/// bytes): `pickleguard::is_torch_legacy`.
#[pyfunction]
fn is_torch_legacy(data: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(pickleguard::is_torch_legacy(Bytes::get(data)?.as_slice()))
}

/// Advise a file map that is only scanned as the command line advises its own
/// (`pickleguard_cli::scan::advise_scan`).
#[pyfunction]
fn advise_for_scan(data: &Bound<'_, PyAny>) -> PyResult<()> {
    pickleguard_cli::scan::advise_scan(Bytes::get(data)?.as_slice());
    Ok(())
}

/// Run the `pickleguard` command line (`argv[0]` is the program name); returns the exit code.
#[pyfunction]
fn run_cli(py: Python<'_>, argv: Vec<String>) -> u8 {
    let code = py.allow_threads(|| pickleguard_cli::run(argv));
    (0..=255u8)
        .find(|n| ExitCode::from(*n) == code)
        .unwrap_or(2)
}

/// Plan `pickleguard scan ARGS` for a cluster (pickleguard.distributed): JSON with the files,
/// the policy snapshot and the output settings. Errors: ValueError with the CLI's message.
#[pyfunction]
fn plan_scan(py: Python<'_>, argv: Vec<String>) -> PyResult<String> {
    py.allow_threads(|| {
        pickleguard_cli::batch::plan(&argv)
            .and_then(|p| serde_json::to_string(&p).map_err(|e| e.to_string()))
    })
    .map_err(PyValueError::new_err)
}

/// Scan `(display, path)` pairs under a policy snapshot (one thread, GIL released), within
/// `max_size` (bytes) and `timeout` (seconds), through the verdict cache in `cache` if given,
/// files under a `remote_names` entry (`LOCAL=URL`) reported under the URL:
/// JSON `{"files": [...], "cache": {...} | null}`.
#[pyfunction]
#[pyo3(signature = (files, policy, cache = None, max_size = None, timeout = None,
                    remote_names = Vec::new()))]
fn scan_batch(
    py: Python<'_>,
    files: Vec<(String, std::path::PathBuf)>,
    policy: String,
    cache: Option<std::path::PathBuf>,
    max_size: Option<u64>,
    timeout: Option<f64>,
    remote_names: Vec<String>,
) -> PyResult<String> {
    let bounds = pickleguard_cli::batch::Bounds { max_size, timeout };
    py.allow_threads(|| {
        pickleguard_cli::batch::scan_batch(
            &files,
            &policy,
            cache.as_deref(),
            &bounds,
            &remote_names,
        )
    })
    .map_err(PyValueError::new_err)
}

/// `(max_size, timeout)` of `pickleguard scan ARGS` (bytes, seconds; None when not given).
#[pyfunction]
fn scan_bounds(argv: Vec<String>) -> PyResult<(Option<u64>, Option<f64>)> {
    let b = pickleguard_cli::batch::bounds(&argv).map_err(PyValueError::new_err)?;
    Ok((b.max_size, b.timeout))
}

/// Print a merged JSON report as `pickleguard scan ARGS` would; returns the exit code.
#[pyfunction]
#[pyo3(signature = (argv, report, skipped_links, loops, duplicates = 0))]
fn finish_scan(
    py: Python<'_>,
    argv: Vec<String>,
    report: String,
    skipped_links: usize,
    loops: usize,
    duplicates: usize,
) -> PyResult<u8> {
    py.allow_threads(|| {
        pickleguard_cli::batch::finish(&argv, &report, skipped_links, loops, duplicates)
            .map(|s| s.code())
    })
    .map_err(PyValueError::new_err)
}

/// A JSON report rendered as "json", "sarif", "text" or "jsonl" by the command line's writers.
#[pyfunction]
fn render_report(py: Python<'_>, report: String, format: String) -> PyResult<String> {
    py.allow_threads(|| pickleguard_cli::batch::convert(&report, &format))
        .map_err(PyValueError::new_err)
}

/// Scan a file through the verdict cache in `cache` (docs/python.md): the report dict, and
/// how it was obtained ("hit": not read, "confirmed": read and hashed, "scanned").
/// An unreadable file raises OSError, as an uncached scan does.
#[pyfunction]
fn scan_file_cached<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
    policy: &PyPolicy,
    cache: std::path::PathBuf,
) -> PyResult<(Bound<'py, PyDict>, &'static str)> {
    let snap = std::sync::Arc::new(policy.snapshot());
    let (r, how) = py
        .allow_threads(|| {
            let c = pickleguard_cli::cache::Cache::shared(&cache, &snap)?;
            let t = pickleguard_cli::walk::Target {
                display: path.display().to_string(),
                source: pickleguard_cli::walk::Source::File(path.clone()),
                size: 0,
                identity: None,
            };
            // The command line's judge (no bounds: the Python API has none); with a cache
            // and no bound, the cache always serves the verdict.
            let judge =
                pickleguard_cli::judge::Judge::new(std::sync::Arc::clone(&snap)).cache(Some(c));
            let (r, how) = judge.target_served(&t);
            Ok::<_, String>((r, how.unwrap_or(pickleguard_cli::cache::Served::Scanned)))
        })
        .map_err(PyValueError::new_err)?;
    if let Some(e) = r.error {
        return Err(pyo3::exceptions::PyOSError::new_err(format!(
            "{}: {e}",
            path.display()
        )));
    }
    Ok((
        report::to_dict(py, &r.report, snap.mode.as_str())?,
        how.as_str(),
    ))
}

/// The verdict cache's engine id (version, engine sources, test salt): part of every key.
#[pyfunction]
fn cache_engine_id() -> String {
    pickleguard_cli::cache::engine_id()
}

/// Whether `find_class` with this module name is an import the scan models: the core's own
/// rule, so the run-time guard breaks the stream exactly where the scan says it breaks.
#[pyfunction]
fn importable_module(module: &str) -> bool {
    pickleguard::is_dotted_name(module)
}

/// Text from a scanned file made safe for a terminal or a log line: the core's one rule
/// (controls, line breaks and bidi controls escaped as Python's `repr` writes them), the one
/// the command line applies to what it prints.
#[pyfunction]
fn terminal_safe(text: &str) -> String {
    pickleguard::terminal_safe(text).into_owned()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The finding types, as the core lists them: the Python package has no list of its own.
    let types: Vec<&str> = pickleguard::FindingType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    m.add(
        "FINDING_TYPES",
        pyo3::types::PyTuple::new_bound(m.py(), types),
    )?;
    m.add("NEW", policy::NEW)?;
    m.add("CALL", policy::CALL)?;
    m.add("VALUE", policy::VALUE)?;
    m.add("BUILD", policy::BUILD)?;
    m.add("SETITEM", policy::SETITEM)?;
    m.add("APPEND", policy::APPEND)?;
    m.add("INIT", policy::INIT)?;
    m.add_class::<PyPolicy>()?;
    m.add_class::<Verdict>()?;
    m.add_function(wrap_pyfunction!(analyze_pickle, m)?)?;
    m.add_function(wrap_pyfunction!(scan_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(decompressed_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(analysed_streams, m)?)?;
    m.add_function(wrap_pyfunction!(pickle_extent, m)?)?;
    m.add_function(wrap_pyfunction!(reads_sparsely, m)?)?;
    m.add_function(wrap_pyfunction!(storage_members, m)?)?;
    m.add_function(wrap_pyfunction!(stopped_by_limit, m)?)?;
    m.add_function(wrap_pyfunction!(container_kind, m)?)?;
    m.add_function(wrap_pyfunction!(is_torch_legacy, m)?)?;
    m.add_function(wrap_pyfunction!(scan_stream, m)?)?;
    m.add_function(wrap_pyfunction!(advise_for_scan, m)?)?;
    m.add_function(wrap_pyfunction!(run_cli, m)?)?;
    m.add_function(wrap_pyfunction!(plan_scan, m)?)?;
    m.add_function(wrap_pyfunction!(scan_batch, m)?)?;
    m.add_function(wrap_pyfunction!(scan_bounds, m)?)?;
    m.add_function(wrap_pyfunction!(finish_scan, m)?)?;
    m.add_function(wrap_pyfunction!(render_report, m)?)?;
    m.add_function(wrap_pyfunction!(cache_engine_id, m)?)?;
    m.add_function(wrap_pyfunction!(importable_module, m)?)?;
    m.add_function(wrap_pyfunction!(terminal_safe, m)?)?;
    m.add_function(wrap_pyfunction!(scan_file_cached, m)?)?;
    Ok(())
}
