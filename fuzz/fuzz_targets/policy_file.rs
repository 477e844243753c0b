//! A user's policy file: parsing, extending the built-in profile, and judging a few globals
//! and a small pickle with the result.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pickleguard::{analyze_pickle, Mode, Policy, PolicyFile};
use std::sync::OnceLock;

fn base() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| Policy::new(Mode::Ml))
}

// `os.system('id')` and a numpy reconstruct call, protocol 2.
const SAMPLE: &[u8] = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = PolicyFile::parse(text) else {
        return;
    };
    let mut p = base().clone();
    if p.extend(&file).is_err() {
        return;
    }
    // Keep limits a fuzzed file sets from making the sample run unbounded work.
    p.limits.max_ops = p.limits.max_ops.min(1 << 16);
    for (m, n) in [
        ("os", "system"),
        ("builtins", "eval"),
        ("numpy", "ndarray"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("collections", "OrderedDict"),
    ] {
        let _ = p.judge(m, n);
    }
    let _ = p.to_toml();
    let _ = analyze_pickle(SAMPLE, &p);
});
