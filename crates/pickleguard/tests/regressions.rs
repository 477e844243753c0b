//! Inputs that once made the core panic, hang or allocate without bound (found by the fuzz
//! targets in `fuzz/`, or written while hunting for super-linear work; see docs/fuzzing.md),
//! replayed on stable Rust so `cargo test` keeps them fixed. Every file under
//! `tests/fuzz_regressions/` and every seed under `fuzz/seeds/` goes through all three fuzz
//! entry points (stream analysis in both modes, disassembly, whole-file scan) with a time bound.

use pickleguard::{analyze_pickle, disassemble, scan_bytes, FindingType, Mode, Policy, Report};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// CPU time of this thread: the bounds below catch super-linear work, and wall time would also
/// count the waits of a machine shared with other jobs (they failed under a loaded host).
struct CpuClock(Duration);

impl CpuClock {
    fn now() -> CpuClock {
        CpuClock(thread_cpu())
    }

    fn elapsed(&self) -> Duration {
        thread_cpu().saturating_sub(self.0)
    }
}

fn thread_cpu() -> Duration {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .unwrap_or_else(|| ORIGIN.get_or_init(Instant::now).elapsed())
}

/// Built once: parsing the shipped profiles dominates a debug run over hundreds of seeds.
fn ml() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| Policy::new(Mode::Ml))
}

fn strict() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| Policy::new(Mode::Strict))
}

/// Each entry point must finish one input within this much CPU time: 1 s for a ≤ 1 MB input in
/// a release build is the bar (2 s here), and unoptimised builds are ~10x slower.
fn budget() -> Duration {
    if cfg!(debug_assertions) {
        Duration::from_secs(20)
    } else {
        Duration::from_secs(2)
    }
}

fn show(r: &Report) -> String {
    let mut s = format!(
        "format={} safe={} complete={} risk={:?} stopped_by={:?}\n",
        r.format,
        r.is_safe,
        r.complete,
        r.risk_level,
        r.stopped_by.as_ref().map(|s| s.render())
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

/// Everything the fuzz targets do with one input, each step within the time budget. Returns
/// the ml stream report.
fn exercise(data: &[u8], what: &str) -> Report {
    let timed = |step: &str, f: &mut dyn FnMut()| {
        let t = CpuClock::now();
        f();
        let took = t.elapsed();
        assert!(
            took < budget(),
            "{what}: {step} of {} bytes took {took:?} (budget {:?})",
            data.len(),
            budget()
        );
    };
    let mut r = None;
    timed("ml analysis", &mut || {
        let x = analyze_pickle(data, ml());
        assert_fail_closed(&x, what);
        serde_json::to_string(&x).expect("report serialises");
        r = Some(x);
    });
    timed("strict analysis", &mut || {
        assert_fail_closed(&analyze_pickle(data, strict()), what)
    });
    timed("disassembly", &mut || {
        serde_json::to_string(&disassemble(data)).expect("disassembly serialises");
    });
    timed("file scan", &mut || {
        let f = scan_bytes(data, ml());
        assert_fail_closed(&f, what);
        serde_json::to_string(&f).expect("file report serialises");
    });
    r.expect("ran")
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
    replay_dir(&dir.join("reader_machine"));
    replay_dir(&dir.join("container"));
    // Policy files: what the policy_file target does.
    let mut files = Vec::new();
    files_under(&dir.join("policy_file"), &mut files);
    for p in files {
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let Ok(file) = pickleguard::PolicyFile::parse(&text) else {
            continue;
        };
        let mut pol = ml().clone();
        if pol.extend(&file).is_ok() {
            pol.limits.max_ops = pol.limits.max_ops.min(1 << 16);
            let _ = pol.judge("os", "system");
            let _ = pol.to_toml();
            let _ = analyze_pickle(
                b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.",
                &pol,
            );
        }
    }
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
    let ok = analyze_pickle(b"](Ne.", ml());
    assert!(ok.is_safe && ok.complete, "{}", show(&ok));
    let ok = analyze_pickle(b"\x8f(N\x90.", ml());
    assert!(ok.is_safe && ok.complete, "{}", show(&ok));
}

// ---------------------------------------------------------------------------------------------
// Super-linear work: inputs of at most 1 MB written to make one part of the analysis repeat
// work per opcode, call or global. Each finished in minutes, hours or never (or took GBs)
// before its fix; now each goes through every entry point within the budget above.

/// The size of the generated inputs: 1 MB in an optimised build; a quarter of that in a debug
/// build (about 10x slower), where the time bound is a hang guard.
const MB: usize = if cfg!(debug_assertions) {
    1 << 18
} else {
    1 << 20
};

fn bu(b: &[u8]) -> Vec<u8> {
    let mut v = vec![b'X'];
    v.extend_from_slice(&(b.len() as u32).to_le_bytes());
    v.extend_from_slice(b);
    v
}

fn binget(i: u32) -> Vec<u8> {
    if i < 256 {
        vec![b'h', i as u8]
    } else {
        let mut v = vec![b'j'];
        v.extend_from_slice(&i.to_le_bytes());
        v
    }
}

fn binput(i: u32) -> Vec<u8> {
    if i < 256 {
        vec![b'q', i as u8]
    } else {
        let mut v = vec![b'r'];
        v.extend_from_slice(&i.to_le_bytes());
        v
    }
}

/// `head`, then `unit` repeated until the stream is about 1 MB, then `tail`.
fn fill(head: &[u8], unit: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut v = head.to_vec();
    while v.len() + unit.len() + tail.len() < MB {
        v.extend_from_slice(unit);
    }
    v.extend_from_slice(tail);
    v
}

fn has(r: &Report, kind: FindingType) -> bool {
    r.findings.iter().any(|f| f.kind == kind)
}

/// 80k distinct globals: the globals summary searched a list for each one (quadratic).
#[test]
fn many_distinct_globals_are_linear() {
    let mut v = b"\x80\x02".to_vec();
    let mut i = 0;
    while v.len() < MB - 40 {
        v.extend_from_slice(format!("cm{i}\nn{i}\n0").as_bytes());
        i += 1;
    }
    v.extend_from_slice(b"N.");
    let r = exercise(&v, "distinct globals");
    assert_eq!(r.globals.len(), i, "every global is listed once");
    // The same across pickles (Report::absorb merges each pickle's summary).
    let mut v = Vec::new();
    let mut i = 0;
    while v.len() < MB - 40 {
        v.extend_from_slice(format!("cm{i}\nn{i}\n.").as_bytes());
        i += 1;
    }
    let r = exercise(&v, "distinct globals, one per pickle");
    assert_eq!(r.globals.len(), i);
}

/// One memoised 800 KB base64 literal handed to 35k rejected calls: each call copied and
/// decoded it again, and rendering validated the whole string for every finding.
#[test]
fn memoised_literal_is_examined_once() {
    let lit = "QUFB".repeat(MB / 7);
    let mut head = b"\x80\x02cfoo\nbar\nq\x00".to_vec();
    head.extend(bu(lit.as_bytes()));
    head.extend_from_slice(b"q\x01");
    let r = exercise(&fill(&head, b"h\x00h\x01\x85R0", b"N."), "memoised literal");
    assert!(!r.is_safe);
    // The same with exec (CODE_STRING for each distinct literal).
    let mut head = b"\x80\x02cbuiltins\nexec\nq\x00".to_vec();
    // Statements, not one bare name (a name alone runs nothing and is no CODE_STRING).
    head.extend(bu(&b"A;".repeat(MB / 3)));
    head.extend_from_slice(b"q\x01");
    let r = exercise(&fill(&head, b"h\x00h\x01\x85R0", b"N."), "memoised code");
    assert!(has(&r, FindingType::CodeString));
}

/// 1 KB zlib bombs (64 MB each) as arguments of rejected calls: decoding work is bounded per
/// scan, and running out of it is a RESOURCE_LIMIT (not safe).
#[test]
fn decoding_arguments_is_bounded_per_scan() {
    use flate2::{write::ZlibEncoder, Compression};
    use std::io::Write;
    let mut e = ZlibEncoder::new(Vec::new(), Compression::best());
    e.write_all(&vec![0u8; 64 << 20]).unwrap();
    let bomb = e.finish().unwrap();
    let mut unit = b"h\x00B".to_vec();
    unit.extend_from_slice(&(bomb.len() as u32).to_le_bytes());
    unit.extend_from_slice(&bomb);
    unit.extend_from_slice(b"\x85R0");
    let r = exercise(
        &fill(b"\x80\x02cfoo\nbar\nq\x00", &unit, b"N."),
        "zlib bombs",
    );
    assert!(has(&r, FindingType::ResourceLimit), "{}", show(&r));
    assert!(!r.is_safe && !r.complete);
}

/// `''.join([...])` nested six deep over a 200 KB string: the evaluated argument would be
/// 32^6 copies (GBs); the decoding budget stops it.
#[test]
fn nested_str_join_is_bounded() {
    let mut v = b"\x80\x02cbuiltins\ngetattr\nq\x00h\x00\x8c\x00\x8c\x04join\x86Rq\x01".to_vec();
    v.extend(bu(&vec![b'x'; 200_000]));
    v.extend_from_slice(b"q\x02");
    let mut prev = 2u32;
    for lvl in 3..9u32 {
        v.extend_from_slice(b"h\x01(");
        for _ in 0..32 {
            v.extend(binget(prev));
        }
        v.extend_from_slice(b"l\x85R");
        v.extend(binput(lvl));
        prev = lvl;
    }
    v.extend_from_slice(b"cbuiltins\nexec\n");
    v.extend(binget(prev));
    v.extend_from_slice(b"\x85R.");
    let r = exercise(&v, "nested join");
    assert!(has(&r, FindingType::ResourceLimit), "{}", show(&r));
    assert!(!r.is_safe);
}

/// Tuples of 200 references to the tuple below, `levels` deep (memo 1 is `()`): 200^(levels-1)
/// paths for the walks that follow values (`dangerous_value` for a method call's target,
/// `is_plain` for a `data` rule). Returns the stream and the memo index of the top tuple.
fn dag(levels: u32) -> (Vec<u8>, u32) {
    let mut v = b")q\x010".to_vec();
    for lvl in 2..=levels {
        v.push(b'(');
        for _ in 0..200 {
            v.extend(binget(lvl - 1));
        }
        v.push(b't');
        v.extend(binput(lvl));
        v.push(b'0');
    }
    (v, levels)
}

#[test]
fn shared_structure_walks_are_bounded() {
    let (d, top) = dag(39);
    // foo.bar(dag).append(1): is the target made from something dangerous?
    let mut v = b"\x80\x02cfoo\nbar\n".to_vec();
    v.extend_from_slice(&d);
    v.extend(binget(top));
    v.extend_from_slice(b"\x85RK\x01a.");
    let r = exercise(&v, "dag method target");
    assert!(has(&r, FindingType::DynamicCall), "{}", show(&r));
    // A user rule `data` on foo.bar: plain all the way down, 200^24 paths.
    let mut p = ml().clone();
    p.extend(
        &pickleguard::PolicyFile::parse(
            "[[allow]]\nmodule = \"foo\"\ncall = [\"bar\"]\n[[rule]]\ncallable = \"foo.bar\"\nargs = [\"data\"]\n",
        )
        .unwrap(),
    )
    .unwrap();
    let (d, top) = dag(25);
    let mut v = b"\x80\x02cfoo\nbar\n".to_vec();
    v.extend_from_slice(&d);
    v.extend(binget(top));
    v.extend_from_slice(b"\x85R.");
    let t = CpuClock::now();
    let r = analyze_pickle(&v, &p);
    assert!(
        t.elapsed() < budget(),
        "data rule walk took {:?}",
        t.elapsed()
    );
    // The `data` schema remembers each container it checked, so the DAG is proven plain
    // data in time linear in its size (a walk of its paths could not finish).
    assert!(r.is_safe, "{}", show(&r));
}

/// 200k calls of one `functools.partial(foo.bar)`: resolving the partial searched every
/// call of the pickle for its BUILD.
#[test]
fn many_partial_calls_are_linear() {
    let v = fill(
        b"\x80\x02cfunctools\npartial\nq\x00cos\nsystem\nq\x01h\x00h\x01\x85Rq\x02",
        b"h\x02)R0",
        b"N.",
    );
    let r = exercise(&v, "partial calls");
    assert!(!r.is_safe);
}

/// getattr(<allowed class>, <memoised 700 KB name>) 38k times: each resolution copied and
/// judged the name.
#[test]
fn huge_attribute_names_are_not_resolved() {
    let mut head = b"\x80\x02cbuiltins\ngetattr\nq\x00ccollections\nOrderedDict\nq\x01".to_vec();
    head.extend(bu(&vec![b'a'; MB * 2 / 3]));
    head.extend_from_slice(b"q\x02");
    let r = exercise(&fill(&head, b"h\x00h\x01h\x02\x86R0", b"N."), "getattr");
    assert!(!r.is_safe, "{}", show(&r));
}

/// One memoised BUILD state of 40k keys applied to 90k objects: its keys were collected for
/// every BUILD.
#[test]
fn shared_build_state_is_read_once() {
    let mut head = b"\x80\x02ccollections\nOrderedDict\nq\x00}q\x01(".to_vec();
    for i in 0..MB / 26 {
        let k = format!("k{i}");
        head.push(0x8c);
        head.push(k.len() as u8);
        head.extend_from_slice(k.as_bytes());
        head.push(b')');
    }
    head.push(b'u');
    exercise(&fill(&head, b"h\x00)Rh\x01b0", b"N."), "build state");
    // A special attribute hidden after 40k ordinary ones is still found.
    let mut head = head[..head.len() - 1].to_vec();
    head.extend_from_slice(b"\x8c\x0c__setstate__cos\nsystem\nu");
    let r = exercise(&fill(&head, b"h\x00)Rh\x01b0", b"N."), "build state dunder");
    assert!(has(&r, FindingType::AttributeInjection), "{}", show(&r));
}

/// torch's `_load_from_bytes` on one memoised 600 KB file, 60k times: each call scanned it.
#[test]
fn shared_embedded_file_is_scanned_once() {
    let mut payload = b"\x80\x02".to_vec();
    for _ in 0..MB / 4 {
        payload.extend_from_slice(b"N0");
    }
    payload.extend_from_slice(b"N.");
    let mut head = b"\x80\x02ctorch.storage\n_load_from_bytes\nq\x00B".to_vec();
    head.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    head.extend_from_slice(&payload);
    head.extend_from_slice(b"q\x01");
    let r = exercise(&fill(&head, b"h\x00h\x01\x85R0", b"N."), "load_from_bytes");
    assert!(r.is_safe, "{}", show(&r));
    // An unsafe one is reported at every call, still scanned once.
    let evil = b"cos\nsystem\n(S'id'\ntR.";
    let mut head = b"\x80\x02ctorch.storage\n_load_from_bytes\nq\x00B".to_vec();
    head.extend_from_slice(&(evil.len() as u32).to_le_bytes());
    head.extend_from_slice(evil);
    head.extend_from_slice(b"q\x01");
    let v = fill(&head, b"h\x00h\x01\x85R0", b"N.");
    let r = exercise(&v, "load_from_bytes evil");
    let calls = (v.len() - head.len()) / 7;
    let nested = r
        .findings
        .iter()
        .filter(|f| f.kind == FindingType::NestedPickle)
        .count();
    // Listed up to the report's cap (each call makes a few findings), the rest counted.
    let cap = pickleguard::MAX_FINDINGS;
    assert!(
        nested >= calls.min(cap / 4),
        "{nested} NESTED_PICKLE for {calls} calls"
    );
    if r.findings.len() >= cap {
        assert!(
            r.findings
                .iter()
                .any(|f| f.description.contains("more findings are not listed")),
            "{}",
            show(&r)
        );
        assert!(!r.is_safe && !r.complete);
    }
}

/// STACK_GLOBAL on one memoised pair of 400 KB names, 100k times: every global copied both
/// names (8 GB and counting). Such a name cannot be imported; the first one is recorded (by a
/// prefix) and the stream stops there, as CPython's find_class would.
#[test]
fn huge_stack_global_names_stop_the_stream() {
    let big = vec![b'a'; MB * 2 / 5];
    let mut head = b"\x80\x04cos\nsystem\n0".to_vec();
    head.extend(bu(&big));
    head.push(0x94);
    head.extend(bu(&big));
    head.push(0x94);
    let r = exercise(
        &fill(&head, b"h\x00h\x01\x930", b"N."),
        "stack global names",
    );
    assert!(has(&r, FindingType::Malformed), "{}", show(&r));
    assert!(
        r.globals
            .iter()
            .any(|g| g.module.starts_with("aaaa") && g.module.len() < 1000),
        "the unimportable global is named"
    );
}

/// A 1 MB LONG4 and a 1 MB hexadecimal LONG: their decimal form is quadratic to compute
/// (hours); above 25,000 digits the disassembly shows them in hexadecimal, exactly.
#[test]
fn huge_integers_disassemble_quickly() {
    let n = MB - 16;
    let mut v = b"\x80\x02\x8b".to_vec();
    v.extend_from_slice(&(n as u32).to_le_bytes());
    v.extend(std::iter::repeat_n(0x7fu8, n));
    v.push(b'.');
    exercise(&v, "LONG4");
    let d = disassemble(&v);
    let arg = d.pickles[0].ops[1].arg.get();
    assert!(arg.starts_with("\"0x7f7f"), "{}", &arg[..20]);
    let mut v = b"L0x".to_vec();
    v.extend(std::iter::repeat_n(b'f', MB - 10));
    v.extend_from_slice(b"L\n.");
    exercise(&v, "LONG text");
    // Below the cap, still decimal: 2**64 and -(2**64).
    let d = disassemble(b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.");
    assert_eq!(d.pickles[0].ops[0].arg.get(), "\"18446744073709551616\"");
    let d = disassemble(b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\xff.");
    assert_eq!(d.pickles[0].ops[0].arg.get(), "\"-18446744073709551616\"");
}

/// LONG_BINPUTs each 4096 past the end of the dense memo: the vector grew by 64 KB per 5
/// bytes of input (4 GB from 330 KB). Dense storage now stays within twice the entries. The
/// C unpickler's own table does grow to 2^28 slots: the file is a memo bomb.
#[test]
fn striding_memo_indices_stay_small() {
    let mut v = b"\x80\x04N".to_vec();
    for i in 1..=65_535u32 {
        v.push(b'r');
        v.extend_from_slice(&(i * 4096).to_le_bytes());
    }
    v.push(b'.');
    let r = exercise(&v, "memo stride");
    assert!(r.complete && !r.is_safe, "{}", show(&r));
    assert!(
        r.findings
            .iter()
            .any(|f| f.description.contains("memo index")),
        "{}",
        show(&r)
    );
    // Indices in order stay fast (and correct): PUT n / GET n for 100k entries.
    let mut v = b"\x80\x02(".to_vec();
    for i in 0..100_000u32 {
        v.push(b'N');
        v.extend(binput(i));
    }
    for i in (0..100_000u32).step_by(997) {
        v.extend(binget(i));
    }
    v.extend_from_slice(b"l.");
    let r = exercise(&v, "memo in order");
    assert!(r.is_safe && r.complete, "{}", show(&r));
}

/// A gzip stream of identical full-flush deflate blocks: `total` bytes of `pattern` after
/// `head`, from ~1/1000 of that in the file (the CRC is not computed; loaders stop at the
/// limit first).
fn gzip_bomb(total: usize, head: &[u8], pattern: u8) -> Vec<u8> {
    use flate2::{Compression, FlushCompress};
    let chunk = vec![pattern; 1 << 20];
    let mut c = flate2::Compress::new(Compression::best(), false);
    let mut block = |input: &[u8], flush: FlushCompress| {
        let mut out = Vec::with_capacity(input.len() / 100 + 1024);
        let before = c.total_in();
        while (c.total_in() - before) < input.len() as u64 || out.is_empty() {
            let at = (c.total_in() - before) as usize;
            out.reserve(4096);
            c.compress_vec(&input[at..], &mut out, flush).unwrap();
            if at == input.len() && !out.is_empty() {
                break;
            }
        }
        out
    };
    let mut body = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff".to_vec();
    let mut first = head.to_vec();
    first.extend_from_slice(&chunk);
    body.extend(block(&first, FlushCompress::Full));
    let unit = block(&chunk, FlushCompress::Full);
    for _ in 1..total / chunk.len() {
        body.extend_from_slice(&unit);
    }
    body.extend(block(&[], FlushCompress::Finish));
    body.extend_from_slice(&[0; 8]);
    body
}

/// 10 GB of zeros in a 10 MB gzip: decompressed to the end before (minutes, 10 GB of memory),
/// although joblib's pickle.load stops at the first byte. Now the first 64 KiB decide.
#[test]
fn gzip_bomb_of_zeros_stops_at_its_start() {
    for head in [&b""[..], b"\x80\x04"] {
        let bomb = gzip_bomb(10 << 30, head, 0);
        let t = CpuClock::now();
        let r = scan_bytes(&bomb, ml());
        assert!(t.elapsed() < budget(), "took {:?}", t.elapsed());
        assert!(r.format.starts_with("gzip") && r.is_safe, "{}", show(&r));
    }
    // A bomb of opcodes (`N0` is NONE, POP) must be read: it ends at the ratio limit (128 MiB
    // floor here), not safe.
    let bomb = gzip_bomb(1 << 30, b"\x80\x02", b'N');
    let t = CpuClock::now();
    let r = scan_bytes(&bomb, ml());
    assert!(t.elapsed() < budget() * 4, "took {:?}", t.elapsed());
    assert!(
        !r.is_safe && has(&r, FindingType::ResourceLimit),
        "{}",
        show(&r)
    );
}

/// pickle._Unpickler reads a last line without its newline and drops a character anyway:
/// `cos\nsystem` at the end of the input imports os (and looks up 'syste'); `cos\n` imports os.
/// Found by tests/test_differential_props.py (mutated streams); the C unpickler and the
/// disassembly call these truncated.
#[test]
fn truncated_global_line_is_an_import_for_the_python_unpickler() {
    for (s, module, name) in [
        (&b"cos\nsystem"[..], "os", "syste"),
        (b"cos\n", "os", ""),
        (b"\x80\x02]q\x00ctest_", "test", ""),
        (b"(ios\nsystem", "os", "syste"),
    ] {
        let r = exercise(s, &format!("{s:?}"));
        assert!(
            r.globals
                .iter()
                .any(|g| g.module == module && g.name == name),
            "{s:?}\n{}",
            show(&r)
        );
        assert!(
            has(&r, FindingType::Malformed) && !r.is_safe,
            "{}",
            show(&r)
        );
        let d = disassemble(s);
        assert!(
            d.globals.is_empty() && d.error.is_some(),
            "{s:?}: {:?}",
            d.globals
        );
    }
    // Not a name `__import__` takes, or not decodable: nothing is imported.
    for s in [&b"c"[..], b"cx", b"co s\nx", b"c\xff\xfe\nx"] {
        let r = exercise(s, &format!("{s:?}"));
        assert!(r.format == "not_pickle" && r.is_safe, "{s:?}\n{}", show(&r));
    }
    // A PERSID line at the end: persistent_load('1') is called (strict mode flags it).
    let r = analyze_pickle(b"P12", strict());
    assert!(!r.is_safe, "{}", show(&r));
}

/// INST without a MARK: pickle._Unpickler imports the class before it looks for the MARK
/// (the C unpickler stops first). Found by tests/test_differential_props.py.
#[test]
fn inst_without_mark_still_imports() {
    let r = exercise(b"ios\nsystem\n(lp0\n.", "INST without MARK");
    assert!(
        r.globals
            .iter()
            .any(|g| g.module == "os" && g.name == "system"),
        "{}",
        show(&r)
    );
    assert!(
        has(&r, FindingType::Malformed) && !r.is_safe,
        "{}",
        show(&r)
    );
    let r = exercise(b"io s\nsystem\n.", "INST, unimportable");
    assert!(r.format == "not_pickle" && r.is_safe, "{}", show(&r));
}

/// Found by the `container` fuzzer: a 10 KB bz2 stream of 7 MB of `EXT1 130` opcodes made a
/// million EXTENSION_CODE findings (2.8 GB of report, 8-11 s). Imports per pickle are bounded
/// (`max_globals`), a report lists at most `MAX_FINDINGS` and says how many more there were.
#[test]
fn findings_bomb_is_bounded_and_not_safe() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions/bz2_ext1_findings_bomb_fuzz.bz2");
    let data = std::fs::read(path).expect("readable");
    // Raw, the bytes are no pickle; as a file, the bz2 stream is decompressed and analysed.
    exercise(&data, "bz2 EXT1 bomb");
    let f = scan_bytes(&data, ml());
    assert!(!f.is_safe && !f.complete, "{}", show(&f));
    assert!(
        f.findings.len() <= pickleguard::MAX_FINDINGS + 64,
        "{}",
        f.findings.len()
    );
    let limits: Vec<&str> = f
        .findings
        .iter()
        .filter(|x| x.kind == FindingType::ResourceLimit)
        .map(|x| x.description.as_str())
        .collect();
    assert!(
        limits.iter().any(|d| d.contains("imports limit"))
            && limits
                .iter()
                .any(|d| d.contains("more findings are not listed")),
        "{limits:?}"
    );
    // A raw stream does the same without compression.
    let raw: Vec<u8> = b"\x82\x82".repeat(1 << 20);
    let r = analyze_pickle(&raw, ml());
    assert!(!r.is_safe && r.findings.len() <= pickleguard::MAX_FINDINGS + 64);
}

/// Zeros pass liblzma's `.lzma` header test (properties 0, dictionary 0, size 0): a zero-filled
/// file, or a compressed one that inflates to zeros, is a run of empty streams that gives
/// nothing. It stays no pickle and costs one pass over the bytes, not a decoder per 18 bytes;
/// a pickle stream behind a run of empty `.lzma` streams is still read (`LZMAFile` reads on).
#[test]
fn zeros_are_no_lzma_stream_and_cost_one_pass() {
    let zeros = vec![0u8; 64 << 20];
    let t = CpuClock::now();
    let r = scan_bytes(&zeros, ml());
    assert!(t.elapsed() < budget(), "took {:?}", t.elapsed());
    assert!(r.format == "not_pickle" && r.is_safe, "{}", show(&r));

    let bomb = gzip_bomb(1 << 30, b"", 0);
    let t = CpuClock::now();
    let r = scan_bytes(&bomb, ml());
    assert!(t.elapsed() < budget(), "took {:?}", t.elapsed());
    assert!(r.format.starts_with("gzip") && r.is_safe, "{}", show(&r));
}
