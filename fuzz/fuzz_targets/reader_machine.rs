//! Raw bytes as one pickle stream: the analysis (machine + judge, nested payloads through the
//! plain stream analyser) and the disassembly must never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pickleguard::{analyze_pickle, disasm, Mode, Policy};
use std::sync::OnceLock;

fn policies() -> &'static [Policy; 2] {
    static P: OnceLock<[Policy; 2]> = OnceLock::new();
    P.get_or_init(|| [Policy::new(Mode::Ml), Policy::new(Mode::Strict)])
}

fuzz_target!(|data: &[u8]| {
    // The length's parity picks the policy, so both modes' rule paths are reached and seed
    // files need no prefix.
    let body = data;
    let r = analyze_pickle(body, &policies()[data.len() & 1]);
    // Fail closed: an incomplete analysis is never reported safe unless the stream could not
    // run anything at all.
    if !r.complete && r.format != "not_pickle" {
        assert!(
            !r.is_safe,
            "incomplete report marked safe: {:?}",
            r.stopped_by
        );
    }
    let _ = serde_json::to_string(&r).expect("report serialises");
    let d = disasm::disassemble(body);
    let _ = serde_json::to_string(&d).expect("disassembly serialises");
});
