//! The engine id of the verdict cache (src/cache.rs): a hash of the analysis engine's sources
//! and the shipped policies, so that a build whose judgement may differ never reuses verdicts
//! of another, even at the same version number.

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// FNV-1a, 64 bits: no build dependency, and collisions between two builds are not a threat
/// (the id only separates builds of one machine's cache).
fn fnv(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut list = Vec::new();
    for d in [
        "../pickleguard/src",
        "../pickleguard/Cargo.toml",
        "../../policies",
    ] {
        let p = root.join(d);
        println!("cargo:rerun-if-changed={}", p.display());
        if p.is_file() {
            list.push(p);
        } else {
            files(&p, &mut list);
        }
    }
    list.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in &list {
        fnv(
            &mut h,
            p.strip_prefix(root)
                .unwrap_or(p)
                .to_string_lossy()
                .as_bytes(),
        );
        fnv(&mut h, &std::fs::read(p).unwrap_or_default());
    }
    println!("cargo:rustc-env=PICKLEGUARD_ENGINE_SOURCE={h:016x}");
}
