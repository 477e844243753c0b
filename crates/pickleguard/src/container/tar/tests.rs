//! Tar archives as `tarfile` reads them.

use super::*;
use crate::context::Options;
use crate::policy::{Mode, Policy};

/// A 512-byte header: `name`, `size`, `kind`, ustar with `prefix`; a valid checksum.
fn header_block(name: &str, size: u64, kind: u8, prefix: &str) -> Vec<u8> {
    let mut h = vec![0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

/// A member: its header and its data, padded to blocks.
fn member(name: &str, kind: u8, body: &[u8]) -> Vec<u8> {
    let mut d = header_block(name, body.len() as u64, kind, "");
    d.extend_from_slice(body);
    d.resize(d.len().div_ceil(BLOCK) * BLOCK, 0);
    d
}

/// The archive of `members`, with the two zero blocks that end it.
fn archive(members: &[Vec<u8>]) -> Vec<u8> {
    let mut d: Vec<u8> = members.concat();
    d.extend_from_slice(&[0; 2 * BLOCK]);
    d
}

/// `posix.system('id')`, protocol 2.
const EVIL: &[u8] = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.";
const ONE: &[u8] = b"\x80\x02K\x01.";

fn scan_tar(d: &[u8], policy: &Policy) -> Report {
    let cx = ScanContext::new(policy, d, Options::default(), crate::container::scan_nested);
    let mut r = scan(&cx, d);
    r.finish(policy.threshold);
    r
}

fn names(d: &[u8]) -> Vec<(String, u64, bool)> {
    entries(d, 100)
        .0
        .into_iter()
        .map(|e| (e.name, e.size, e.regular))
        .collect()
}

#[test]
fn numbers_are_octal_or_base_256() {
    assert_eq!(number(b"0000644\0"), Some(0o644));
    assert_eq!(number(b"  17 \0\0"), Some(0o17));
    assert_eq!(number(b"\0\0\0\0"), Some(0));
    assert_eq!(number(b"\x80\0\0\0\0\0\x01\x00"), Some(256));
    assert_eq!(number(b"\xff\xff\xff\xff"), None, "negative");
    assert_eq!(number(b"9"), None);
}

#[test]
fn a_tar_starts_with_a_header_whose_checksum_holds() {
    let d = archive(&[member("a", b'0', ONE)]);
    assert!(is_tar(&d));
    let mut bad = d.clone();
    bad[0] = b'b';
    assert!(!is_tar(&bad));
    assert!(!is_tar(&[0; BLOCK]));
    assert!(!is_tar(&d[..BLOCK - 1]));
}

#[test]
fn members_are_named_as_tarfile_names_them() {
    let long = "d/".repeat(60) + "long.pkl";
    let mut long_name = member("././@LongLink", b'L', format!("{long}\0").as_bytes());
    long_name.extend(member("short", b'0', ONE));
    let pax_body = b"16 path=pax.pkl\n";
    let mut pax = member("PaxHeader", b'x', pax_body);
    pax.extend(member("ignored", b'0', ONE));
    let mut prefixed = header_block("b.pkl", ONE.len() as u64, b'0', "dir");
    prefixed.extend_from_slice(ONE);
    prefixed.resize(2 * BLOCK, 0);
    let d = archive(&[long_name, pax, prefixed, member("after", b'0', ONE)]);
    let got: Vec<String> = names(&d).into_iter().map(|(n, _, _)| n).collect();
    // A pax `path` holds for the next member only.
    assert_eq!(
        got,
        [long, "pax.pkl".into(), "dir/b.pkl".into(), "after".into()]
    );
}

#[test]
fn a_pax_size_is_the_members_size_and_records_parse_by_length() {
    let recs = pax_records(b"12 size=300\n16 path=pax.pkl\n");
    assert_eq!(recs.get("size").map(String::as_str), Some("300"));
    assert_eq!(recs.get("path").map(String::as_str), Some("pax.pkl"));
    // A length that runs past the body ends the records.
    assert!(pax_records(b"99 path=x\n").is_empty());
    let mut pax = member("PaxHeader", b'x', b"12 size=600\n");
    pax.extend(header_block("big", 0, b'0', ""));
    pax.extend_from_slice(&[7; 2 * BLOCK]);
    let d = archive(&[pax]);
    assert_eq!(names(&d), [("big".to_string(), 600, true)]);
}

#[test]
fn links_and_directories_have_no_data() {
    let d = archive(&[
        member("dir/", b'5', &[]),
        header_block("link", 999, b'2', ""),
        member("file", b'0', ONE),
    ]);
    assert_eq!(
        names(&d),
        [
            ("dir/".to_string(), 0, false),
            ("link".to_string(), 0, false),
            ("file".to_string(), ONE.len() as u64, true),
        ]
    );
}

#[test]
fn the_archive_ends_at_the_first_zero_block_or_bad_header() {
    let mut d = archive(&[member("a", b'0', ONE)]);
    let end = BLOCK * 2;
    d.extend(member("hidden", b'0', EVIL));
    let (list, at, limited) = entries(&d, 100);
    assert_eq!((list.len(), at, limited), (1, end, false));
    let r = scan_tar(&d, &Policy::new(Mode::Ml));
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == FindingType::TrailingData)
        .expect("trailing data");
    assert_eq!(
        (f.severity, f.position),
        (Severity::Low, (end + 2 * BLOCK) as u64)
    );
    assert!(f
        .description
        .ends_with("bytes after the end of the tar archive; tarfile does not read them"));
}

#[test]
fn every_copy_of_a_repeated_name_is_analysed() {
    let d = archive(&[
        member("data.pkl", b'0', ONE),
        member("data.pkl", b'0', EVIL),
    ]);
    let r = scan_tar(&d, &Policy::new(Mode::Ml));
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == FindingType::StructuralTamper)
        .expect("tamper");
    assert_eq!(
        (f.severity, f.position),
        (Severity::High, (2 * BLOCK) as u64)
    );
    assert!(
        f.description.contains("'data.pkl' appears more than once"),
        "{}",
        f.description
    );
    let call = r
        .findings
        .iter()
        .find(|f| f.kind == FindingType::ReduceCall)
        .expect("the second copy analysed");
    assert_eq!(
        call.member.as_ref().unwrap().segments(),
        [Segment::ArchiveMember {
            name: "data.pkl".into(),
            copy: 2,
            view: MemberView::Listed
        }]
    );
}

#[test]
fn the_formats_a_tar_archive_is_read_as() {
    let policy = Policy::new(Mode::Ml);
    assert_eq!(
        scan_tar(&archive(&[member("x.pkl", b'0', ONE)]), &policy).format,
        "pandas_tar"
    );
    assert_eq!(
        scan_tar(
            &archive(&[member("a.pkl", b'0', ONE), member("b.pkl", b'0', ONE)]),
            &policy
        )
        .format,
        "tar"
    );
    let torch = archive(&[member("sys_info", b'0', ONE), member("pickle", b'0', ONE)]);
    assert_eq!(scan_tar(&torch, &policy).format, "pytorch_tar");
}

#[test]
fn members_past_the_limit_are_not_read() {
    let mut policy = Policy::new(Mode::Ml);
    policy.limits.max_members = 1;
    let d = archive(&[member("a", b'0', ONE), member("b", b'0', EVIL)]);
    let (list, at, limited) = entries(&d, 1);
    assert_eq!((list.len(), at, limited), (1, 2 * BLOCK, true));
    let r = scan_tar(&d, &policy);
    assert!(!r.complete);
    assert_eq!(r.stopped_by, Some(Limit::ArchiveMembers.into()));
    assert!(
        !r.has(FindingType::ReduceCall),
        "member b is not read: {:#?}",
        r.findings
    );
}
