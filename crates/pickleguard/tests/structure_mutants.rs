//! Structure-aware mutants of zips and `.npy` headers (tests/structure/mod.rs), run as an
//! ordinary test: a deterministic sweep over generated inputs, the fuzz target's seeds and
//! every crash it found (fuzz/seeds/zip_structure, fuzz/artifacts/zip_structure).

mod structure;

#[test]
fn deterministic_sweep() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..1500 {
        let mut input = Vec::with_capacity(64);
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            input.push(x as u8);
        }
        structure::check(&input);
    }
}

#[test]
fn fuzz_seeds_and_crashes_replay() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut n = 0;
    for dir in ["seeds/zip_structure", "artifacts/zip_structure"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            if let Ok(data) = std::fs::read(e.path()) {
                structure::check(&data);
                n += 1;
            }
        }
    }
    assert!(n > 0, "no seeds found under fuzz/seeds/zip_structure");
}
