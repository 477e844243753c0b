//! Raw bytes as one pickle stream: the analysis (machine + judge, nested payloads through the
//! plain stream analyser) and the disassembly must never panic, hang or allocate without bound,
//! the machine's inline plain-data loop must end the first pickle's run exactly as the
//! reader path does, and the readings of the stream from a file object are the input's bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pickleguard::internals::Machine;
use pickleguard::internals::file_reading;
use pickleguard::{analyze_pickle, disassemble, Limits, Mode, Policy};
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
    let d = disassemble(body);
    let _ = serde_json::to_string(&d).expect("disassembly serialises");
    // Each reading of the stream from a file object is made of the input's own bytes, in
    // runs that move forward; the number of readings is bounded.
    if let Ok(readings) = file_reading::readings(body, 16) {
        assert!(readings.len() <= 16);
        for r in readings {
            let mut last = 0;
            for (i, b) in r.data.iter().enumerate() {
                let at = r.input_pos(i as u64) as usize;
                assert_eq!(body.get(at), Some(b), "reading byte {i} is not input byte {at}");
                assert!(at >= last, "a reading went back in the input");
                last = at;
            }
        }
    }
    for shape in [true, false] {
        let run = |plain: bool| {
            let mut m = Machine::new(body, Limits::default());
            m.plain_loop = plain;
            m.set_shape_only(shape);
            let o = m.run(0);
            let (stack, marks, memo) = m.state();
            format!(
                "{o:?} {} {} {:?} {stack:?} {marks:?} {memo} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                m.ops, m.proto, m.result, m.anomalies, m.first_effect, m.arena, m.globals, m.calls, m.kwargs,
                m.divergence
            )
        };
        assert_eq!(run(true), run(false), "plain loop differs (shape {shape})");
    }
});
