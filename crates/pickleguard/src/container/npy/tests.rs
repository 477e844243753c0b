//! `.npy` headers as numpy reads them, and what of the file is analysed.

use super::*;
use crate::context::Options;
use crate::policy::{Mode, Policy};
use crate::report::Segment;

/// An `.npy` file of format `major` with the header dict `dict` (padded as numpy pads it) and
/// the data `data`; and where the data starts.
fn npy(major: u8, dict: &str, data: &[u8]) -> (Vec<u8>, usize) {
    let at = if major == 1 { 10 } else { 12 };
    let mut text = dict.as_bytes().to_vec();
    while !(at + text.len() + 1).is_multiple_of(64) {
        text.push(b' ');
    }
    text.push(b'\n');
    let mut d = MAGIC.to_vec();
    d.extend_from_slice(&[major, 0]);
    if major == 1 {
        d.extend_from_slice(&(text.len() as u16).to_le_bytes());
    } else {
        d.extend_from_slice(&(text.len() as u32).to_le_bytes());
    }
    d.extend_from_slice(&text);
    let end = d.len();
    d.extend_from_slice(data);
    (d, end)
}

fn dict(descr: &str) -> String {
    format!("{{'descr': {descr}, 'fortran_order': False, 'shape': (3,), }}")
}

/// `posix.system('id')`, protocol 2.
const EVIL: &[u8] = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.";

fn scan_file(d: &[u8]) -> Report {
    let policy = Policy::new(Mode::Ml);
    let cx = ScanContext::new(
        &policy,
        d,
        Options::default(),
        crate::container::scan_nested,
    );
    let mut r = scan(&cx, d);
    r.finish(policy.threshold);
    r
}

#[test]
fn a_header_of_each_format_version_says_where_the_data_starts_and_its_dtype() {
    for major in [1, 2, 3] {
        let (d, end) = npy(major, &dict("'<f8'"), &[0; 24]);
        let h = header(&d).unwrap();
        assert_eq!(h.end, end, "version {major}");
        assert_eq!(h.objects, Some(false));
        assert!(!h.any_objects && h.repeated.is_none() && h.refused.is_none());
        let (d, _) = npy(major, &dict("'|O'"), EVIL);
        let h = header(&d).unwrap();
        assert_eq!((h.objects, h.any_objects), (Some(true), true));
    }
    // An unknown version, or a header longer than the file.
    let (mut d, _) = npy(1, &dict("'<f8'"), &[]);
    d[6] = 4;
    assert!(header(&d).is_none());
    let (d, end) = npy(1, &dict("'<f8'"), &[]);
    assert!(header(&d[..end - 1]).is_none());
}

#[test]
fn a_repeated_descr_counts_as_numpy_reads_it_the_last_one() {
    let (d, _) = npy(
        1,
        "{'descr': '|O', 'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
        &[0; 24],
    );
    let h = header(&d).unwrap();
    assert_eq!(h.objects, Some(false), "numpy keeps the last value");
    assert!(h.any_objects, "another reader takes the first");
    let what = h.repeated.unwrap();
    assert!(what.contains("descr"), "{what}");
    assert!(
        what.contains("'|O' (objects), then '<f8' (numeric)"),
        "{what}"
    );
    assert_eq!(h.refused, None);
    // The other order: numpy's reading holds objects.
    let (d, _) = npy(
        1,
        "{'descr': '<f8', 'descr': '|O', 'fortran_order': False, 'shape': (3,), }",
        &[0; 24],
    );
    assert_eq!(header(&d).unwrap().objects, Some(true));
}

#[test]
fn the_ambiguity_is_a_tamper_finding_and_the_data_is_analysed() {
    let (d, end) = npy(
        1,
        "{'descr': '|O', 'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
        EVIL,
    );
    let r = scan_file(&d);
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == FindingType::StructuralTamper)
        .expect("a tamper finding");
    assert_eq!((f.severity, f.position), (Severity::High, 8));
    assert!(
        f.description
            .starts_with("the .npy header dict repeats a key ("),
        "{}",
        f.description
    );
    let call = r
        .findings
        .iter()
        .find(|f| f.kind == FindingType::ReduceCall)
        .expect("the data analysed");
    assert_eq!(
        call.member.as_ref().unwrap().segments(),
        [Segment::NpyObjectArray { at: end as u64 }]
    );
}

#[test]
fn a_numeric_arrays_data_is_not_analysed() {
    let (d, _) = npy(1, &dict("'<i1'"), EVIL);
    let r = scan_file(&d);
    assert!(r.findings.is_empty() && r.is_safe, "{:#?}", r.findings);
    assert_eq!(r.format, "numpy_npy");
    let (d, _) = npy(1, &dict("'|O'"), EVIL);
    assert!(!scan_file(&d).is_safe);
}

#[test]
fn a_header_numpy_refuses_is_low_and_says_why() {
    let refusal = |text: &str| header(&npy(1, text, &[]).0).unwrap().refused;
    assert_eq!(
        refusal("{'descr': '<f8', 'shape': (3,), }"),
        Some(Refusal::Numpy(
            "the header dict's keys are not descr, fortran_order and shape"
        ))
    );
    assert_eq!(
        refusal("{'descr': '<f8', 'fortran_order': 0, 'shape': (3,), }"),
        Some(Refusal::Numpy("fortran_order is not a bool"))
    );
    assert_eq!(
        refusal("{'descr': '<f8', 'fortran_order': False, 'shape': [3], }"),
        Some(Refusal::Numpy("shape is not a tuple of integers"))
    );
    assert_eq!(
        refusal("['descr']"),
        Some(Refusal::Numpy("the header is not a dict"))
    );
    let (d, _) = npy(
        1,
        "{'descr': '<f8', 'fortran_order': 0, 'shape': (3,), }",
        &[],
    );
    let (r, _) = scan_header(&d);
    assert_eq!(r.findings.len(), 1);
    let f = &r.findings[0];
    assert_eq!(
        (f.kind, f.severity, f.position),
        (FindingType::Malformed, Severity::Low, 8)
    );
    assert!(f
        .description
        .starts_with("numpy.load refuses this .npy header (fortran_order is not a bool)"));
}

#[test]
fn a_header_that_is_no_literal_is_read_as_possibly_objects() {
    let (d, end) = npy(1, "{'descr': f('<f8'), }", EVIL);
    let h = header(&d).unwrap();
    assert_eq!(
        (h.objects, h.any_objects, h.refused),
        (None, true, Some(Refusal::Unparsed))
    );
    let r = scan_file(&d);
    let call = r
        .findings
        .iter()
        .find(|f| f.kind == FindingType::ReduceCall)
        .expect("the data analysed");
    assert_eq!(
        call.member.as_ref().unwrap().segments(),
        [Segment::NpyAfterBadHeader { at: end as u64 }]
    );
    // No header at all: nothing numpy loads.
    let (r, h) = scan_header(b"\x93NUMPY");
    assert!(h.is_none());
    assert_eq!(
        (r.findings[0].kind, r.findings[0].severity),
        (FindingType::Malformed, Severity::Low)
    );
}

#[test]
fn dtypes_hold_objects_unless_plain_typestrings_all_the_way() {
    let obj = |text: &str| {
        let (d, _) = npy(1, &dict(text), &[]);
        header(&d).unwrap().objects.unwrap()
    };
    for plain in [
        "'<f8'",
        "'|b1'",
        "'<U5'",
        "'<M8[ns]'",
        "'|V16'",
        "'float32'",
        "('<f4', (2, 2))",
        "[('a', '<f4'), ('b', '<i8', (3,))]",
        "[(('t', 'a'), '<f4')]",
    ] {
        assert!(!obj(plain), "{plain}");
    }
    for objects in [
        "'|O'",
        "'O'",
        "'object'",
        "''",
        "'<M8[ns'",
        "[('a', '|O')]",
        "[('a',)]",
        "('|O', (2,))",
        "{'names': ['a']}",
    ] {
        assert!(obj(objects), "{objects}");
    }
}
