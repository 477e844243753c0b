//! Reader + machine + policy throughput on the files `benches/make_data.py` writes.
//! Run: `python3 benches/make_data.py && cargo bench -p pickleguard --bench engine`.

use pickleguard::{analyze_pickle, Mode, Policy};
use std::time::{Duration, Instant};

fn main() {
    let dir = std::env::var("PICKLEGUARD_BENCH_DATA")
        .unwrap_or_else(|_| "../../target/bench-data".into());
    let policy = Policy::new(Mode::Ml);
    let mut any = false;
    for name in ["dense.pkl", "dense90.pkl", "blobs.pkl"] {
        let path = format!("{dir}/{name}");
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        any = true;
        let mut times: Vec<Duration> = Vec::new();
        let runs = if data.len() > 50_000_000 { 5 } else { 21 };
        let mut safe = true;
        for _ in 0..runs {
            let t = Instant::now();
            let r = analyze_pickle(&data, &policy);
            times.push(t.elapsed());
            safe &= r.is_safe && r.complete;
        }
        times.sort();
        let med = times[times.len() / 2];
        let mbs = data.len() as f64 / 1e6 / med.as_secs_f64();
        println!(
            "{name:12} {:8.1} MB  median {:9.3} ms  min {:9.3} ms  max {:9.3} ms  {:9.1} MB/s  safe={safe}",
            data.len() as f64 / 1e6,
            med.as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            mbs
        );
    }
    if !any {
        eprintln!("no bench data in {dir}: run `python3 benches/make_data.py` first");
    }
}
