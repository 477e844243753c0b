//! Malformed input never panics and always gets a verdict: every truncation of real samples
//! and thousands of random byte flips, through the raw analysis and the container layer.

use pickleguard::{analyze_pickle, scan_bytes, FindingType, Mode, Policy};

/// `os.system('touch x')` in protocol 2, as CPython writes it.
const EVIL: &[u8] = b"\x80\x02cposix\nsystem\nq\x00X\x07\x00\x00\x00touch xq\x01\x85q\x02Rq\x03.";

/// A protocol-4 pickle of `{'a': [1, 2.5, 'x', b'y'], 'd': OrderedDict(a=1)}` (framed, memoized).
const BENIGN: &[u8] = b"\x80\x04\x95F\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94]\x94(K\x01G@\x04\x00\x00\x00\x00\x00\x00\x8c\x01x\x94C\x01y\x94e\x8c\x01d\x94\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94h\x01K\x01su.";

mod common;
use common::Lcg;

#[test]
fn samples_are_judged_as_expected() {
    let p = Policy::new(Mode::Ml);
    assert!(!analyze_pickle(EVIL, &p).is_safe);
    let r = analyze_pickle(BENIGN, &p);
    assert!(r.is_safe && r.complete, "{r:?}");
}

#[test]
fn every_truncation_gets_a_verdict() {
    let p = Policy::new(Mode::Ml);
    for sample in [EVIL, BENIGN] {
        for cut in 0..=sample.len() {
            let part = &sample[..cut];
            let a = analyze_pickle(part, &p);
            let b = scan_bytes(part, &p);
            // Both views agree on a raw pickle, and a cut stream is never "complete and clean"
            // unless nothing in it could run.
            assert_eq!(a.is_safe, b.is_safe, "cut {cut}");
            if cut < sample.len() && a.format != "not_pickle" {
                assert!(!a.complete && !a.is_safe, "cut {cut}: {a:?}");
            }
            // Once the GLOBAL line is in, the import is reported whatever follows.
            if sample == EVIL && cut >= 16 {
                assert!(a.has(FindingType::DangerousImport), "cut {cut}: {a:?}");
            }
        }
    }
    // Cut right after the REDUCE (before STOP): the call already ran, so it is still reported
    // together with the break.
    let reduce = EVIL.iter().rposition(|&b| b == b'R').unwrap();
    let r = analyze_pickle(&EVIL[..reduce + 1], &p);
    assert!(!r.is_safe);
    assert!(r.has(FindingType::ReduceCall), "{r:?}");
    assert!(r.has(FindingType::Malformed), "{r:?}");
}

#[test]
fn random_byte_flips_never_panic() {
    let p = Policy::new(Mode::Ml);
    let mut rng = Lcg(42);
    for sample in [EVIL, BENIGN] {
        for _ in 0..3000 {
            let mut v = sample.to_vec();
            for _ in 0..=(rng.next() % 4) {
                let i = (rng.next() as usize) % v.len();
                v[i] = rng.next() as u8;
            }
            let r = analyze_pickle(&v, &p);
            assert_eq!(r.is_safe, r.risk_level < p.threshold);
            let _ = scan_bytes(&v, &p);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let p = Policy::new(Mode::Ml);
    let mut rng = Lcg(7);
    for len in [1usize, 2, 3, 8, 64, 512, 4096] {
        for _ in 0..300 {
            let v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let _ = analyze_pickle(&v, &p);
            let _ = scan_bytes(&v, &p);
        }
    }
}
