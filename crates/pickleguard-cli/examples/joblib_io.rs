//! How cheaply can a scan reach the pickle of an uncompressed joblib file? The pickle lies
//! between the arrays, spread over the whole file: this measures, on one file, the analysis in
//! memory, the analysis on a fresh memory map (what `scan_file` and the joblib integration do),
//! the same with a thread faulting the map in ahead, and the two ways to read only the pickle's
//! bytes (one `pread` per segment; 8 KB windows), with the segments found by the scan itself.
//!
//! `cargo run --release -p pickleguard-cli --example joblib_io -- FILE [ROUNDS]`
//! (results: docs/benchmarks.md, "Python").

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use pickleguard::internals::{joblib_array_data, JoblibData};
use pickleguard::internals::{Machine, Outcome};
use pickleguard::{analyze_pickle, Mode, Policy};

/// The byte ranges the scan reads as pickle: from the end of one array to the next wrapper's
/// padding byte.
fn segments(data: &[u8], policy: &Policy) -> Vec<(usize, usize)> {
    let mut m = Machine::new(data, policy.limits.clone());
    m.joblib = true;
    let mut segs = Vec::new();
    let mut start = 0;
    let mut out = m.run(0);
    while let Outcome::JoblibArray { next, wrapper } = out {
        match joblib_array_data(&m, wrapper, next) {
            Ok(JoblibData::Numeric { end }) => {
                segs.push((start, next + 1));
                start = end;
                out = m.run(end);
            }
            _ => panic!("an object array or a broken wrapper at byte {next}: not measured here"),
        }
    }
    if let Outcome::Stop { end, .. } = out {
        segs.push((start, end));
    }
    segs
}

fn report(name: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{name:<34} min {:>6.0} us  median {:>6.0} us",
        v[0],
        v[v.len() / 2]
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: joblib_io FILE [ROUNDS]");
    let rounds: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(200);
    let policy = Policy::new(Mode::Ml);
    let data = std::fs::read(&path).unwrap();
    let file = File::open(&path).unwrap();
    let segs = segments(&data, &policy);
    let pickle: usize = segs.iter().map(|s| s.1 - s.0).sum();
    println!(
        "{path}: {} bytes, {} pickle segments, {pickle} bytes of pickle",
        data.len(),
        segs.len()
    );
    let mut buf = vec![0u8; segs.iter().map(|s| s.1 - s.0).max().unwrap().max(8192)];
    let mut sink = 0u64;
    let mut t: [Vec<f64>; 6] = Default::default();
    for _ in 0..rounds {
        let s = Instant::now();
        assert!(analyze_pickle(&data, &policy).is_safe);
        t[0].push(s.elapsed().as_secs_f64() * 1e6);

        let s = Instant::now();
        // SAFETY: a read-only map of a file this example wrote and nothing else changes.
        let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
        assert!(analyze_pickle(&map, &policy).is_safe);
        drop(map);
        t[1].push(s.elapsed().as_secs_f64() * 1e6);

        let s = Instant::now();
        // SAFETY: a read-only map of a file this example wrote and nothing else changes.
        let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
        let stop = AtomicBool::new(false);
        let safe = std::thread::scope(|sc| {
            let (bytes, stop) = (&map[..], &stop);
            sc.spawn(move || {
                let mut i = 0;
                while i < bytes.len() && !stop.load(Ordering::Relaxed) {
                    // Volatile so the touch is not optimised away.
                    let at: *const u8 = &bytes[i];
                    // SAFETY: `at` points into `bytes`, which outlives the read.
                    unsafe { std::ptr::read_volatile(at) };
                    i += 64 * 1024;
                }
            });
            let safe = analyze_pickle(&map, &policy).is_safe;
            stop.store(true, Ordering::Relaxed);
            safe
        });
        assert!(safe);
        drop(map);
        t[2].push(s.elapsed().as_secs_f64() * 1e6);

        // The reads alone, without the analysis: touching each segment's pages on a fresh map...
        let s = Instant::now();
        // SAFETY: a read-only map of a file this example wrote and nothing else changes.
        let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
        for &(a, b) in &segs {
            let mut i = a;
            while i < b {
                sink += map[i] as u64;
                i += 4096 - i % 4096;
            }
            sink += map[b - 1] as u64;
        }
        drop(map);
        t[3].push(s.elapsed().as_secs_f64() * 1e6);

        // ... or reading each segment with pread ...
        let s = Instant::now();
        for &(a, b) in &segs {
            file.read_exact_at(&mut buf[..b - a], a as u64).unwrap();
            sink += buf[0] as u64;
        }
        t[4].push(s.elapsed().as_secs_f64() * 1e6);

        // ... or in windows of at least 8 KB (segments that follow a small array share one).
        let s = Instant::now();
        let mut window = (0, 0);
        for &(a, b) in &segs {
            if a >= window.0 && b <= window.1 {
                continue;
            }
            let len = (b - a).max(8192).min(data.len() - a);
            file.read_exact_at(&mut buf[..len], a as u64).unwrap();
            sink += buf[0] as u64;
            window = (a, a + len);
        }
        t[5].push(s.elapsed().as_secs_f64() * 1e6);
    }
    let names = [
        "analysis, file in memory",
        "analysis, fresh map",
        "analysis, fresh map + prefault",
        "reads: touch segments, fresh map",
        "reads: pread each segment",
        "reads: pread 8 KB windows",
    ];
    for (name, v) in names.into_iter().zip(t) {
        report(name, v);
    }
    std::hint::black_box(sink);
}
