//! Inputs that once made the core panic, hang or allocate without bound (found by the fuzz
//! targets in `fuzz/`, or written while hunting for super-linear work; see docs/fuzzing.md),
//! replayed on stable Rust so `cargo test` keeps them fixed. Every file under
//! `tests/fuzz_regressions/` and every seed under `fuzz/seeds/` goes through all three fuzz
//! entry points (stream analysis in both modes, disassembly, whole-file scan) with a time bound.

use pickleguard::{analyze_pickle, disasm, scan_bytes, FindingType, Mode, Policy, Report};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn ml() -> Policy {
    Policy::new(Mode::Ml)
}

fn strict() -> Policy {
    Policy::new(Mode::Strict)
}

/// One input must finish this fast through every entry point. The bar is 1 s for a ≤ 1 MB
/// input in a release build; unoptimised test builds are ~10x slower.
fn budget() -> Duration {
    if cfg!(debug_assertions) {
        Duration::from_secs(15)
    } else {
        Duration::from_secs(2)
    }
}

fn show(r: &Report) -> String {
    let mut s = format!(
        "format={} safe={} complete={} risk={:?} stopped_by={:?}\n",
        r.format, r.is_safe, r.complete, r.risk_level, r.stopped_by
    );
    for f in r.findings.iter().take(20) {
        s.push_str(&format!(
            "  {:?} {:?} @{} {:?}: {}\n",
            f.kind, f.severity, f.position, f.member, f.description
        ));
    }
    s
}

/// An incomplete analysis is never safe, unless nothing could run at all (`not_pickle`).
fn assert_fail_closed(r: &Report, what: &str) {
    if !r.complete && r.format != "not_pickle" {
        assert!(
            !r.is_safe,
            "{what}: incomplete report marked safe\n{}",
            show(r)
        );
    }
}

/// Everything the fuzz targets do with one input. Returns the ml stream report.
fn exercise(data: &[u8], what: &str) -> Report {
    let t = Instant::now();
    let r = analyze_pickle(data, &ml());
    assert_fail_closed(&r, what);
    serde_json::to_string(&r).expect("report serialises");
    let rs = analyze_pickle(data, &strict());
    assert_fail_closed(&rs, what);
    let d = disasm::disassemble(data);
    serde_json::to_string(&d).expect("disassembly serialises");
    let f = scan_bytes(data, &ml());
    assert_fail_closed(&f, what);
    serde_json::to_string(&f).expect("file report serialises");
    let took = t.elapsed();
    assert!(
        took < budget(),
        "{what}: {} bytes took {took:?} (budget {:?})",
        data.len(),
        budget()
    );
    r
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else if p.file_name().and_then(|n| n.to_str()) != Some("README.md") {
            out.push(p);
        }
    }
}

fn replay_dir(dir: &Path) -> usize {
    let mut files = Vec::new();
    files_under(dir, &mut files);
    files.sort();
    for p in &files {
        let data = std::fs::read(p).expect("readable");
        exercise(&data, &p.display().to_string());
    }
    files.len()
}

#[test]
fn replay_fuzz_regressions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    assert!(
        replay_dir(&dir) > 0,
        "no regression inputs in {}",
        dir.display()
    );
}

#[test]
fn replay_fuzz_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    // The seed set ships with the repository; a source tarball without fuzz/ just skips.
    replay_dir(&dir);
}

fn kinds(r: &Report) -> Vec<FindingType> {
    r.findings.iter().map(|f| f.kind).collect()
}

/// APPEND / SETITEM(S) / ADDITEMS whose target sits below the innermost MARK truncated the
/// stack under that MARK, and the next MARK-consuming opcode sliced out of range (panic in
/// `node_from`). CPython's C unpickler stops there with "unexpected MARK found".
#[test]
fn mutation_below_mark_is_an_error_not_a_panic() {
    for s in [
        &b"}}(Ns(t."[..],
        b"]](Na(t.",
        b"}(NNs(t.",
        b"](Nu(t.",
        b"\x8f((N\x90(t.",
        b"}}(Nst.",
    ] {
        let r = exercise(s, &format!("{s:?}"));
        assert!(
            !r.complete || r.format == "not_pickle",
            "{s:?}\n{}",
            show(&r)
        );
    }
    // After an import the break is MALFORMED and the import still counts.
    let r = exercise(b"cos\nsystem\n}(Ns(t.", "import then break");
    assert!(
        kinds(&r).contains(&FindingType::DangerousImport),
        "{}",
        show(&r)
    );
    assert!(kinds(&r).contains(&FindingType::Malformed), "{}", show(&r));
    assert!(!r.is_safe);
    // What CPython accepts still works: APPENDS right after its own MARK, ADDITEMS on a set.
    let ok = analyze_pickle(b"](Ne.", &ml());
    assert!(ok.is_safe && ok.complete, "{}", show(&ok));
    let ok = analyze_pickle(b"\x8f(N\x90.", &ml());
    assert!(ok.is_safe && ok.complete, "{}", show(&ok));
}
