//! PyTorch's pre-zip formats: which pickles torch.load reads, and which bytes it skips.

use super::*;
use crate::context::Options;
use crate::policy::{Mode, Policy};
use crate::report::Segment;

/// `posix.system('id')`, protocol 2.
const EVIL: &[u8] = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.";

/// The magic number as pickle.dump writes it (LONG1).
fn magic() -> Vec<u8> {
    let mut v = b"\x80\x02\x8a\x0a".to_vec();
    v.extend_from_slice(MAGIC_LE);
    v.push(b'.');
    v
}

/// The object pickle: a persistent id ('storage', torch.FloatStorage, '0', 'cpu', 2).
fn object_pickle() -> Vec<u8> {
    b"\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x02tQ.".to_vec()
}

/// A legacy stream with one FloatStorage of `n` elements, then `after`; and where the storage
/// ends.
fn legacy(n: u64, after: &[u8]) -> (Vec<u8>, usize) {
    let mut d = magic();
    d.extend_from_slice(b"\x80\x02M\xe9\x03.");
    d.extend_from_slice(b"\x80\x02}.");
    d.extend_from_slice(&object_pickle());
    d.extend_from_slice(b"\x80\x02]X\x01\x00\x00\x000a.");
    d.extend_from_slice(&n.to_le_bytes());
    d.extend(std::iter::repeat_n(0u8, 4 * n as usize));
    let end = d.len();
    d.extend_from_slice(after);
    (d, end)
}

fn with_cx<R>(d: &[u8], f: impl FnOnce(&ScanContext<'_>) -> R) -> R {
    let policy = Policy::new(Mode::Ml);
    let cx = ScanContext::new(
        &policy,
        d,
        Options::default(),
        crate::container::scan_nested,
    );
    f(&cx)
}

fn calls_to_system(r: &Report) -> Vec<Option<&[Segment]>> {
    r.findings
        .iter()
        .filter(|f| f.kind == FindingType::ReduceCall && f.description.contains("posix.system"))
        .map(|f| f.member.as_ref().map(|m| m.segments()))
        .collect()
}

#[test]
fn a_legacy_stream_starts_with_the_magic_number() {
    assert!(is_legacy(&magic()));
    // Protocol 0 writes it as text.
    assert!(is_legacy(b"L119547037146038801333356L\n."));
    assert!(!is_legacy(EVIL));
    let mut late = vec![b'N'; 48];
    late.extend_from_slice(&magic());
    assert!(
        !is_legacy(&late),
        "only the first pickle is the magic number"
    );
}

#[test]
fn storage_classes_have_their_element_sizes() {
    assert_eq!(element_size("FloatStorage"), Some(4));
    assert_eq!(element_size("DoubleStorage"), Some(8));
    assert_eq!(element_size("HalfStorage"), Some(2));
    assert_eq!(element_size("ByteStorage"), Some(1));
    assert_eq!(element_size("ComplexDoubleStorage"), Some(16));
    assert_eq!(element_size("Float8_e4m3fnStorage"), Some(1));
    assert_eq!(element_size("Module"), None);
}

#[test]
fn the_string_literals_of_a_pickle_are_listed_in_order() {
    let keys = b"\x80\x02](X\x01\x00\x00\x00aC\x01bS'c'\nVd\ne.";
    assert_eq!(strings(keys, 0, keys.len()), ["a", "b", "c", "d"]);
}

#[test]
fn the_legacy_streams_storages_are_skipped_and_what_follows_is_trailing() {
    let (d, end) = legacy(2, EVIL);
    let r = with_cx(&d, |cx| scan_legacy(cx, &d));
    assert_eq!(r.format, "pytorch_legacy");
    // torch.load never unpickles what follows the storages.
    assert!(calls_to_system(&r).is_empty(), "{:#?}", r.findings);
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == FindingType::TrailingData)
        .expect("trailing data");
    assert_eq!((f.severity, f.position), (Severity::Low, end as u64));
    assert_eq!(
        f.description,
        format!(
            "{} bytes after the last tensor storage; torch.load never reads them",
            EVIL.len()
        )
    );
    let (d, _) = legacy(2, &[]);
    let r = with_cx(&d, |cx| scan_legacy(cx, &d));
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}

#[test]
fn a_legacy_stream_of_fewer_pickles_is_read_to_its_end() {
    let mut d = magic();
    d.extend_from_slice(b"\x80\x02M\xe9\x03.");
    d.extend_from_slice(EVIL);
    let r = with_cx(&d, |cx| scan_legacy(cx, &d));
    assert_eq!(calls_to_system(&r).len(), 1, "{:#?}", r.findings);
}

/// A `storages` member: one storage of `class` with 2 elements, then the views pickle `views`.
fn storages(class: &str, views: &[u8]) -> (Vec<u8>, usize) {
    let mut d = b"\x80\x02K\x01.".to_vec();
    d.extend_from_slice(b"\x80\x02X\x01\x00\x00\x000X\x03\x00\x00\x00cpu");
    d.extend_from_slice(format!("ctorch\n{class}\n").as_bytes());
    d.extend_from_slice(b"\x87.");
    d.extend_from_slice(&2u64.to_le_bytes());
    d.extend_from_slice(&[0; 8]);
    let at = d.len();
    d.extend_from_slice(views);
    (d, at)
}

#[test]
fn a_storages_member_is_walked_to_its_views_pickle() {
    let (d, at) = storages("FloatStorage", EVIL);
    let r = with_cx(&d, |cx| scan_tar_storages(cx, &d));
    assert_eq!(
        calls_to_system(&r),
        [Some(&[Segment::TorchPickle { at: at as u64 }][..])]
    );
    // An unknown storage class: torch.load fails there and reads nothing after it.
    let (d, _) = storages("Module", EVIL);
    let r = with_cx(&d, |cx| scan_tar_storages(cx, &d));
    assert!(calls_to_system(&r).is_empty(), "{:#?}", r.findings);
}

#[test]
fn a_tensors_member_is_walked_pickle_by_pickle() {
    let tensor = |d: &mut Vec<u8>, ndim: i32| {
        d.extend_from_slice(b"\x80\x02K\x00.");
        d.extend_from_slice(&ndim.to_le_bytes());
        d.extend_from_slice(&[0; 4]);
        d.extend(std::iter::repeat_n(0u8, 16 * ndim.max(0) as usize + 8));
    };
    let mut d = b"\x80\x02K\x02.".to_vec();
    tensor(&mut d, 2);
    let at = d.len();
    d.extend_from_slice(EVIL);
    let r = with_cx(&d, |cx| scan_tar_tensors(cx, &d));
    assert_eq!(
        calls_to_system(&r),
        [Some(&[Segment::TorchPickle { at: at as u64 }][..])]
    );
    // A negative dimension count ends the walk.
    let mut d = b"\x80\x02K\x02.".to_vec();
    tensor(&mut d, -1);
    d.extend_from_slice(EVIL);
    let r = with_cx(&d, |cx| scan_tar_tensors(cx, &d));
    assert!(calls_to_system(&r).is_empty(), "{:#?}", r.findings);
}
