//! The plain-data fast path (shape-only runs) changes no verdict, finding or field: every
//! report is compared with the full run's, on real files and on thousands of mutations.

use pickleguard::{scan_bytes, Mode, Policy, Scan};

mod common;
use common::Lcg;

fn inputs() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = vec![
        b"\x80\x02cposix\nsystem\nq\x00X\x07\x00\x00\x00touch xq\x01\x85q\x02Rq\x03.".to_vec(),
        b"\x80\x04\x95\x1b\x00\x00\x00\x00\x00\x00\x00]\x94(K\x01K\x02}\x94\x8c\x01a\x94N\x8c\x01b\x94\x88ue.".to_vec(),
        b"(lp0\nI1\naF2.5\naS'x'\np1\nag1\na(dp2\nS'k'\np3\nI01\nsa.".to_vec(),
        b"K\x01K\x02a.".to_vec(),
        b"]K\x01a.N.\n".to_vec(),
        b"(K\x01K\x02l]\x8f(K\x03\x90.".to_vec(),
    ];
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/peer-fixtures/picklescan"
    );
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            if let Ok(b) = std::fs::read(&f) {
                if b.len() < 200_000 {
                    v.push(b);
                }
            }
        }
    }
    v
}

#[test]
fn fast_path_reports_equal_full_reports() {
    let policies = [Policy::new(Mode::Ml), Policy::new(Mode::Strict)];
    let mut rng = Lcg(2024);
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for base in inputs() {
        cases.push(base.clone());
        for cut in (0..base.len()).step_by(1 + base.len() / 40) {
            cases.push(base[..cut].to_vec());
        }
        for _ in 0..150 {
            let mut m = base.clone();
            if m.is_empty() {
                continue;
            }
            for _ in 0..=(rng.next() % 3) {
                let i = (rng.next() as usize) % m.len();
                m[i] = rng.next() as u8;
            }
            cases.push(m);
        }
    }
    assert!(cases.len() > 1000);
    for p in &policies {
        for (i, c) in cases.iter().enumerate() {
            let fast = serde_json::to_string(&scan_bytes(c, p)).unwrap();
            let full = serde_json::to_string(&Scan::new(p).without_fast_path().file(c)).unwrap();
            assert_eq!(fast, full, "case {i}: {:?}", &c[..c.len().min(64)]);
        }
    }
}
