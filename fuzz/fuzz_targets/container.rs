//! Raw bytes as a whole file: content sniffing, zip / torch / joblib / npy / tar / compressed
//! containers and everything nested in them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pickleguard::{scan_bytes, Mode, Policy};
use std::sync::OnceLock;

fn policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| Policy::new(Mode::Ml))
}

fuzz_target!(|data: &[u8]| {
    // The read-ahead advice is judged from any prefix of a file: never a panic.
    let _ = pickleguard::reads_sparsely(data);
    let r = scan_bytes(data, policy());
    if !r.complete && r.format != "not_pickle" {
        assert!(
            !r.is_safe,
            "incomplete report marked safe: {:?}",
            r.stopped_by
        );
    }
    let _ = serde_json::to_string(&r).expect("report serialises");
});
