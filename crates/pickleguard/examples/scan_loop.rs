//! Scan files in a loop, for profiling: `cargo run --release --example scan_loop -- N FILE...`.
use pickleguard::{Mode, Policy, Scan};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
// SAFETY: every call is forwarded unchanged to the system allocator; only counters change.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(l.size() as u64, Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(n as u64, Relaxed);
        System.realloc(p, l, n)
    }
}
#[global_allocator]
static A: Counting = Counting;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100);
    let policy = Policy::new(Mode::Ml);
    for path in args {
        let data = std::fs::read(&path).unwrap();
        let mut times = Vec::new();
        let mut safe = true;
        for _ in 0..n {
            let t = Instant::now();
            let r = Scan::new(&policy).file(&data);
            times.push(t.elapsed());
            safe &= r.is_safe;
        }
        times.sort();
        let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
        let r = Scan::new(&policy).file(&data);
        drop(r);
        println!(
            "  allocs per scan {} bytes {}",
            ALLOCS.load(Relaxed) - a0,
            BYTES.load(Relaxed) - b0
        );
        println!(
            "{path}: median {:.3} ms min {:.3} ms safe={safe}",
            times[n / 2].as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3
        );
    }
}
