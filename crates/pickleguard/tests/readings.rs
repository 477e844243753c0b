//! Streams that loaders read differently: the report covers every reading (issue 20).

use pickleguard::{analyze_pickle, FindingType, Mode, Policy, Severity};

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = vec![0x95];
    v.extend_from_slice(&(body.len() as u64).to_le_bytes());
    v.extend_from_slice(body);
    v
}

const PAYLOAD: &[u8] = b"cposix\nsystem\n(S'true'\ntR.";

fn dangerous(data: &[u8]) -> bool {
    let r = analyze_pickle(data, &Policy::new(Mode::Ml));
    !r.is_safe
        && r.findings
            .iter()
            .any(|f| f.kind == FindingType::DangerousImport && f.module.as_deref() == Some("posix"))
}

#[test]
fn a_line_across_a_frame_end_is_read_as_a_file_reader_reads_it() {
    // Bytes: "Ix0" is no number and nothing runs; a file: "x" is dropped, the line is "0".
    let mut s = b"\x80\x04".to_vec();
    s.extend(frame(b"Ix"));
    s.extend_from_slice(b"0\n0");
    s.extend_from_slice(PAYLOAD);
    assert!(dangerous(&s));
    // The module line of a GLOBAL, and a SHORT_BINUNICODE whose text runs past the frame.
    let mut g = b"\x80\x04".to_vec();
    g.extend(frame(b"cjunk"));
    g.extend_from_slice(&PAYLOAD[1..]);
    assert!(dangerous(&g));
    let mut u = b"\x80\x04".to_vec();
    u.extend(frame(b"\x8c\x05po"));
    u.extend_from_slice(b"posix\x8c\x06system\x93(S'true'\ntR.");
    assert!(dangerous(&u));
}

#[test]
fn the_next_pickle_after_a_stop_inside_a_frame_starts_at_its_end() {
    let mut s = b"\x80\x04".to_vec();
    s.extend(frame(b"N.\xff"));
    s.extend_from_slice(PAYLOAD);
    assert!(dangerous(&s));
}

#[test]
fn float_lines_only_pickle_unpickler_reads() {
    for line in [&b" 1.5"[..], b"1_0", b"1e500", b"1.5\t"] {
        let mut s = b"F".to_vec();
        s.extend_from_slice(line);
        s.extend_from_slice(b"\n0");
        s.extend_from_slice(PAYLOAD);
        assert!(dangerous(&s), "{line:?}");
    }
    // Neither unpickler reads this one: nothing runs, so it is not a pickle.
    let mut s = b"F1__0\n0".to_vec();
    s.extend_from_slice(PAYLOAD);
    let r = analyze_pickle(&s, &Policy::new(Mode::Ml));
    assert_eq!(r.format, "not_pickle");
    assert!(r.is_safe);
}

#[test]
fn ordinary_framed_pickles_have_one_reading() {
    // What pickle.dumps(protocol=4) writes for [1, 'a', 2.5] and two of them back to back.
    let one = b"\x80\x04\x95\x14\x00\x00\x00\x00\x00\x00\x00]\x94(K\x01\x8c\x01a\x94G@\x04\x00\x00\x00\x00\x00\x00e.";
    let mut two = one.to_vec();
    two.extend_from_slice(one);
    for s in [&one[..], &two] {
        let r = analyze_pickle(s, &Policy::new(Mode::Ml));
        assert!(r.is_safe && r.complete, "{:?}", r.findings);
        assert!(r.findings.is_empty(), "{:?}", r.findings);
    }
}

#[test]
fn too_many_readings_is_a_limit_not_a_guess() {
    let mut s = b"\x80\x04".to_vec();
    for _ in 0..20 {
        s.extend(frame(b"I1"));
        s.extend_from_slice(b"2\n0");
    }
    s.push(b'.');
    let r = analyze_pickle(&s, &Policy::new(Mode::Ml));
    assert!(!r.is_safe && !r.complete);
    assert!(r
        .findings
        .iter()
        .any(|f| f.kind == FindingType::ResourceLimit && f.severity >= Severity::High));
}

#[test]
fn memo_indices_only_pickle_unpickler_reads() {
    // C: "Python int too large to convert to C ssize_t" at the PUT; pickle._Unpickler (joblib,
    // pandas) takes any int, goes on and runs what follows.
    let mut s = b"\x80\x02Np99999999999999999999999\n0".to_vec();
    s.extend_from_slice(PAYLOAD);
    assert!(dangerous(&s));
    // The huge index is a memo key of its own: GET fetches what PUT stored, and only that.
    let get = b"\x80\x02S'true'\np99999999999999999999999\n0cposix\nsystem\n(g099999999999999999999999\ntR.";
    let r = analyze_pickle(get, &Policy::new(Mode::Ml));
    assert!(
        r.findings.iter().any(|f| f.kind == FindingType::ReduceCall
            && f.args
                .as_ref()
                .is_some_and(|a| a.iter().any(|x| x.contains("true")))),
        "{:#?}",
        r.findings
    );
    // A negative index fails in both unpicklers: nothing after it runs.
    let mut neg = b"\x80\x02Np-99999999999999999999999\n0".to_vec();
    neg.extend_from_slice(PAYLOAD);
    let r = analyze_pickle(&neg, &Policy::new(Mode::Ml));
    assert!(
        r.findings
            .iter()
            .all(|f| f.kind != FindingType::DangerousImport),
        "{:#?}",
        r.findings
    );
}
