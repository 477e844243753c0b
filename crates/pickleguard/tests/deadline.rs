//! A scan's deadline (`Scan::deadline`, the command line's `--timeout`) ends the scan's own
//! work: in the machine's loop, between container members and between pieces of decompressed
//! output. A stopped scan is incomplete and not safe, and says the time limit stopped it; a
//! deadline that is not reached changes nothing.

use pickleguard::{Mode, Policy, Report, Scan};
use std::io::Write;
use std::time::{Duration, Instant};

/// `n` plain opcodes (NONE, POP) and a final `None`: a benign pickle whose analysis runs
/// `2n + 2` opcodes.
fn dense_pickle(n: usize) -> Vec<u8> {
    [&[0x80, 4][..], &b"N0".repeat(n), b"N."].concat()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A zip (stored members) holding `members`.
fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, body) in members {
        let mut crc = flate2::Crc::new();
        crc.update(body);
        let (crc, size, at) = (crc.sum(), body.len() as u32, out.len() as u32);
        let fields = |sig: &[u8], central: bool| {
            let mut h = sig.to_vec();
            if central {
                h.extend_from_slice(&20u16.to_le_bytes());
            }
            h.extend_from_slice(&20u16.to_le_bytes());
            h.extend_from_slice(&[0; 4]); // flags, method: stored
            h.extend_from_slice(&[0; 4]); // time, date
            h.extend_from_slice(&crc.to_le_bytes());
            h.extend_from_slice(&size.to_le_bytes());
            h.extend_from_slice(&size.to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            if central {
                h.extend_from_slice(&[0; 8]); // comment, disk, attributes
                h.extend_from_slice(&[0; 4]);
                h.extend_from_slice(&at.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend(fields(b"PK\x03\x04", false));
        out.extend_from_slice(body);
        central.extend(fields(b"PK\x01\x02", true));
    }
    let (cd_at, cd_len) = (out.len() as u32, central.len() as u32);
    out.extend(central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    let n = (members.len() as u16).to_le_bytes();
    out.extend_from_slice(&n);
    out.extend_from_slice(&n);
    out.extend_from_slice(&cd_len.to_le_bytes());
    out.extend_from_slice(&cd_at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn assert_stopped_by_time(r: &Report, what: &str) {
    assert!(r.stopped_by_time_limit(), "{what}: {:?}", r.findings);
    assert!(!r.complete, "{what}");
    assert!(!r.is_safe, "{what}");
    assert_eq!(
        r.stopped_by.as_ref().map(|s| s.render()).as_deref(),
        Some("limit:time"),
        "{what}"
    );
}

/// A deadline already passed stops every kind of scan at its start, before any real work.
#[test]
fn a_passed_deadline_stops_a_large_scan_at_once() {
    let p = Policy::new(Mode::Ml);
    let big = dense_pickle(4 << 20);
    let past = Instant::now();
    let r = Scan::new(&p).deadline(past).pickle(&big);
    assert_stopped_by_time(&r, "pickle");
    // The machine looked at the clock before its first opcode.
    let f = r
        .findings
        .iter()
        .find(|f| f.name.as_deref() == Some("time"));
    assert_eq!(f.map(|f| f.position), Some(0));
    for (what, data) in [
        ("file", big.clone()),
        ("gzip", gzip(&big)),
        ("zip", zip(&[("a.pkl", &big), ("b.pkl", &big)])),
    ] {
        let r = Scan::new(&p).deadline(past).file(&data);
        assert_stopped_by_time(&r, what);
    }
}

/// A deadline passed during the scan stops it where it is: before the end of a stream that
/// takes far longer than the deadline to analyse, or of its decompression.
#[test]
fn a_deadline_stops_a_scan_midway() {
    let p = Policy::new(Mode::Ml);
    let big = dense_pickle(16 << 20);
    let r = Scan::new(&p)
        .deadline(Instant::now() + Duration::from_millis(20))
        .pickle(&big);
    assert_stopped_by_time(&r, "pickle");
    let f = r
        .findings
        .iter()
        .find(|f| f.name.as_deref() == Some("time"));
    let at = f.map(|f| f.position).unwrap();
    assert!(
        at > 0 && at < big.len() as u64,
        "stopped at {at} of {}",
        big.len()
    );
    let packed = gzip(&big);
    let r = Scan::new(&p)
        .deadline(Instant::now() + Duration::from_millis(20))
        .file(&packed);
    assert_stopped_by_time(&r, "gzip");
}

/// A deadline far away changes no report, and a scan with none is never stopped by time.
#[test]
fn a_distant_deadline_changes_nothing() {
    let p = Policy::new(Mode::Ml);
    let evil = b"\x80\x04\x95\x1a\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94.";
    let small = dense_pickle(1000);
    let later = Instant::now() + Duration::from_secs(3600);
    for data in [
        small.clone(),
        gzip(&small),
        evil.to_vec(),
        zip(&[("a.pkl", &small), ("b.pkl", evil)]),
    ] {
        let plain = Scan::new(&p).file(&data);
        assert!(!plain.stopped_by_time_limit());
        assert_eq!(Scan::new(&p).deadline(later).file(&data), plain);
        assert_eq!(
            Scan::new(&p).deadline(later).pickle(&data),
            Scan::new(&p).pickle(&data)
        );
    }
    assert!(Scan::new(&p).file(&small).is_safe);
}
