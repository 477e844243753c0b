//! `--timeout` ends the scan's own work (`pickleguard::Scan::deadline`), not only the wait
//! for it: the timed-out file gets the timeout verdict, and its analysis stops instead of
//! using a core beside the next files.

use pickleguard::{Mode, Policy};
use pickleguard_cli::cli::FileLimits;
use pickleguard_cli::judge::Judge;
use pickleguard_cli::walk::{Source, Target};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A bz2 file of a benign pickle of 60M plain opcodes: seconds of decompression and analysis
/// (60 MiB, inside the decompression budget), far longer than the timeouts below. Written as
/// 30 bz2 streams back to back (a reader goes on with the next stream), so that the test
/// compresses 6 MB, not 60.
fn slow_file(dir: &Path) -> std::path::PathBuf {
    let bz2 = |parts: &[&[u8]]| {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
        for p in parts {
            e.write_all(p).unwrap();
        }
        e.finish().unwrap()
    };
    let chunk = b"N0".repeat(1 << 20);
    let middle = bz2(&[&chunk]);
    let mut out = bz2(&[&[0x80, 4], &chunk]);
    for _ in 0..28 {
        out.extend_from_slice(&middle);
    }
    out.extend(bz2(&[&chunk, b"N."]));
    let p = dir.join("slow.pkl.bz2");
    std::fs::write(&p, out).unwrap();
    p
}

fn cpu_seconds() -> f64 {
    // SAFETY: rusage is plain integers, for which all zeroes is a value.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid rusage for the call to fill.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) }, 0);
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Threads of this process named as the timed scans' threads are.
fn timed_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
                .filter(|n| n.trim() == "pickleguard-timed")
                .count()
        })
        .unwrap_or(0)
}

fn target(p: &Path) -> Target {
    Target {
        display: p.display().to_string(),
        source: Source::File(p.to_path_buf()),
        size: std::fs::metadata(p).unwrap().len(),
        identity: None,
    }
}

/// The one test of this binary, so that the process's CPU time is this test's: a timed-out
/// scan's thread ends soon after the timeout, having used a fraction of what the whole scan
/// takes (CPU time, not wall time: the machine may be busy).
#[test]
fn a_timed_out_scan_stops_its_own_work() {
    let dir = tempfile::TempDir::new().unwrap();
    let file = slow_file(dir.path());
    let t = target(&file);
    let policy = Arc::new(Policy::new(Mode::Ml));

    let before = cpu_seconds();
    let full = Judge::new(Arc::clone(&policy)).target(&t);
    let full_cpu = cpu_seconds() - before;
    assert!(
        full.report.complete && full.report.is_safe,
        "{:?}",
        full.report
    );

    let timeout = Duration::from_millis(200);
    let limits = FileLimits {
        timeout: Some(timeout),
        ..FileLimits::default()
    };
    let before = cpu_seconds();
    let r = Judge::new(policy).limits(limits).target(&t);
    assert!(!r.report.is_safe && !r.report.complete);
    assert_eq!(
        r.report.stopped_by,
        Some(pickleguard::Limit::Timeout.into())
    );
    assert_eq!(r.report.format, "not_scanned");
    assert_eq!(r.report.findings.len(), 1, "{:?}", r.report.findings);
    assert!(r.report.findings[0]
        .description
        .contains("--timeout (0.2s)"));
    // The abandoned thread ends by itself (a bound only so that a failure cannot hang).
    let waited = Instant::now();
    while timed_threads() > 0 && waited.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(timed_threads(), 0, "the timed-out scan is still running");
    let timed_cpu = cpu_seconds() - before;
    assert!(
        timed_cpu < full_cpu / 2.0,
        "the timed-out scan used {timed_cpu:.2}s of CPU, the whole scan {full_cpu:.2}s"
    );
}

/// The command line: the timeout's verdict (exit 1, one RESOURCE_LIMIT finding, the report
/// `limit:timeout` has always had), and the process ends long before the whole scan would.
#[test]
fn the_command_line_reports_the_timeout_and_exits() {
    let dir = tempfile::TempDir::new().unwrap();
    let file = slow_file(dir.path());
    let out = assert_cmd::Command::cargo_bin("pickleguard")
        .unwrap()
        .args([
            "scan",
            "--no-config",
            "--format",
            "json",
            "--timeout",
            "0.3",
        ])
        .arg(&file)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &doc["files"][0];
    assert_eq!(f["stopped_by"], "limit:timeout");
    assert_eq!(f["is_safe"], false);
    assert_eq!(f["complete"], false);
    assert_eq!(f["format"], "not_scanned");
    let findings = f["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["type"], "RESOURCE_LIMIT");
    assert!(findings[0]["description"]
        .as_str()
        .unwrap()
        .contains("longer than --timeout (0.3s)"));
}
