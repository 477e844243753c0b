//! Containers: crafted zips for every tamper case, compressed streams, numpy, tar, legacy
//! torch, nesting and limits, plus truncation / corruption loops that must never panic.

use pickleguard::{scan_bytes, FindingType, Mode, Policy, Report, Severity};
use std::io::Write;

/// `os.system('touch pickleguard-marker-x')`, protocol 0. Never executed: only scanned.
const EVIL: &[u8] = b"cos\nsystem\n(S'touch pickleguard-marker-x'\ntR.";
/// `{'a': 1}`, protocol 2.
const BENIGN: &[u8] = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s.";

fn ml() -> Policy {
    Policy::new(Mode::Ml)
}

fn scan(d: &[u8]) -> Report {
    scan_bytes(d, &ml())
}

fn evil_in(r: &Report, member: &str) -> bool {
    r.findings.iter().any(|f| {
        f.kind == FindingType::ReduceCall
            && f.description.contains("system")
            && f.member
                .as_ref()
                .map(|m| m.as_str())
                .unwrap_or("")
                .contains(member)
    })
}

fn count(r: &Report, kind: FindingType) -> usize {
    r.findings.iter().filter(|f| f.kind == kind).count()
}

fn show(r: &Report) -> String {
    let mut s = format!(
        "format={} safe={} complete={} risk={:?}\n",
        r.format, r.is_safe, r.complete, r.risk_level
    );
    for f in &r.findings {
        s.push_str(&format!(
            "  {:?} {:?} @{} {:?}: {}\n",
            f.kind, f.severity, f.position, f.member, f.description
        ));
    }
    s
}

fn crc32(d: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(d);
    c.sum()
}

fn deflate(d: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(d).unwrap();
    e.finish().unwrap()
}

fn gzip(d: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(d).unwrap();
    e.finish().unwrap()
}

// ------------------------------------------------------------------------------------------
// A tiny zip writer that can lie in every way the tests need.
// ------------------------------------------------------------------------------------------

#[derive(Clone)]
struct E {
    name: Vec<u8>,
    local_name: Option<Vec<u8>>,
    content: Vec<u8>,
    deflate: bool,
    method: Option<u16>,
    flags: u16,
    /// Bit 3: zero sizes in the local header, a data descriptor after the data.
    descriptor: bool,
    bad_crc: bool,
    in_central: bool,
    in_local: bool,
    /// Compressed size written in the local header instead of the real one.
    local_csize: Option<u32>,
    /// Local header offset written in the central directory instead of the real one.
    central_offset: Option<u32>,
    /// Bytes written right after this entry (outside every entry).
    gap_after: Vec<u8>,
}

fn e(name: &str, content: &[u8]) -> E {
    E {
        name: name.as_bytes().to_vec(),
        local_name: None,
        content: content.to_vec(),
        deflate: false,
        method: None,
        flags: 0,
        descriptor: false,
        bad_crc: false,
        in_central: true,
        in_local: true,
        local_csize: None,
        central_offset: None,
        gap_after: Vec::new(),
    }
}

#[derive(Clone, Default)]
struct Z {
    prefix: Vec<u8>,
    entries: Vec<E>,
    zip64: bool,
    trailing: Vec<u8>,
    comment: Vec<u8>,
    /// Offsets relative to the zip (as `cat prefix model.zip` leaves them) instead of the file.
    relative: bool,
}

fn zip(entries: Vec<E>) -> Z {
    Z {
        entries,
        ..Default::default()
    }
}

fn p16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn p32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn p64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

impl Z {
    fn build(&self) -> Vec<u8> {
        let mut out = self.prefix.clone();
        let base = if self.relative { self.prefix.len() } else { 0 };
        let mut offs = Vec::new();
        let mut stored = Vec::new();
        for en in &self.entries {
            let data = if en.deflate {
                deflate(&en.content)
            } else {
                en.content.clone()
            };
            let crc = crc32(&en.content) ^ if en.bad_crc { 0xdead_beef } else { 0 };
            let method = en.method.unwrap_or(if en.deflate { 8 } else { 0 });
            let flags = en.flags | if en.descriptor { 8 } else { 0 };
            offs.push(out.len() - base);
            if en.in_local {
                let lname = en.local_name.as_ref().unwrap_or(&en.name);
                out.extend_from_slice(b"PK\x03\x04");
                p16(&mut out, 20);
                p16(&mut out, flags);
                p16(&mut out, method);
                p16(&mut out, 0);
                p16(&mut out, 0x21);
                if en.descriptor {
                    p32(&mut out, 0);
                    p32(&mut out, 0);
                    p32(&mut out, 0);
                } else {
                    p32(&mut out, crc);
                    p32(&mut out, en.local_csize.unwrap_or(data.len() as u32));
                    p32(&mut out, en.content.len() as u32);
                }
                p16(&mut out, lname.len() as u16);
                p16(&mut out, 0);
                out.extend_from_slice(lname);
                out.extend_from_slice(&data);
                if en.descriptor {
                    out.extend_from_slice(b"PK\x07\x08");
                    p32(&mut out, crc);
                    p32(&mut out, data.len() as u32);
                    p32(&mut out, en.content.len() as u32);
                }
            }
            out.extend_from_slice(&en.gap_after);
            stored.push((data.len(), crc, method, flags));
        }
        let cd_start = out.len() - base;
        let mut n = 0u64;
        for (i, en) in self.entries.iter().enumerate() {
            if !en.in_central {
                continue;
            }
            n += 1;
            let (clen, crc, method, flags) = stored[i];
            let off = en.central_offset.map(u64::from).unwrap_or(offs[i] as u64);
            out.extend_from_slice(b"PK\x01\x02");
            p16(&mut out, 20);
            p16(&mut out, if self.zip64 { 45 } else { 20 });
            p16(&mut out, flags);
            p16(&mut out, method);
            p16(&mut out, 0);
            p16(&mut out, 0x21);
            p32(&mut out, crc);
            let mut extra = Vec::new();
            if self.zip64 {
                p32(&mut out, 0xffff_ffff);
                p32(&mut out, 0xffff_ffff);
                p64(&mut extra, en.content.len() as u64);
                p64(&mut extra, clen as u64);
                p64(&mut extra, off);
            } else {
                p32(&mut out, clen as u32);
                p32(&mut out, en.content.len() as u32);
            }
            p16(&mut out, en.name.len() as u16);
            p16(
                &mut out,
                if self.zip64 {
                    4 + extra.len() as u16
                } else {
                    0
                },
            );
            p16(&mut out, 0);
            p16(&mut out, 0);
            p16(&mut out, 0);
            p32(&mut out, 0);
            p32(&mut out, if self.zip64 { 0xffff_ffff } else { off as u32 });
            out.extend_from_slice(&en.name);
            if self.zip64 {
                p16(&mut out, 1);
                p16(&mut out, extra.len() as u16);
                out.extend_from_slice(&extra);
            }
        }
        let cd_size = (out.len() - base - cd_start) as u64;
        if self.zip64 {
            let rec = out.len() - base;
            out.extend_from_slice(b"PK\x06\x06");
            p64(&mut out, 44);
            p16(&mut out, 45);
            p16(&mut out, 45);
            p32(&mut out, 0);
            p32(&mut out, 0);
            p64(&mut out, n);
            p64(&mut out, n);
            p64(&mut out, cd_size);
            p64(&mut out, cd_start as u64);
            out.extend_from_slice(b"PK\x06\x07");
            p32(&mut out, 0);
            p64(&mut out, rec as u64);
            p32(&mut out, 1);
        }
        out.extend_from_slice(b"PK\x05\x06");
        p16(&mut out, 0);
        p16(&mut out, 0);
        let n16 = if self.zip64 { 0xffff } else { n as u16 };
        p16(&mut out, n16);
        p16(&mut out, n16);
        p32(
            &mut out,
            if self.zip64 {
                0xffff_ffff
            } else {
                cd_size as u32
            },
        );
        p32(
            &mut out,
            if self.zip64 {
                0xffff_ffff
            } else {
                cd_start as u32
            },
        );
        p16(&mut out, self.comment.len() as u16);
        out.extend_from_slice(&self.comment);
        out.extend_from_slice(&self.trailing);
        out
    }
}

/// A torch zip: `archive/data.pkl`, `version`, `byteorder` and a storage.
fn torch_entries(data_pkl: &[u8]) -> Vec<E> {
    vec![
        e("archive/data.pkl", data_pkl),
        e("archive/byteorder", b"little"),
        e("archive/data/0", &[0u8, 0, 128, 63, 0, 0, 0, 64]),
        e("archive/version", b"3\n"),
        e("archive/.data/serialization_id", b"1234567890"),
    ]
}

// ------------------------------------------------------------------------------------------
// Zip: plain reading
// ------------------------------------------------------------------------------------------

#[test]
fn torch_zip_benign_and_evil() {
    let r = scan(&zip(torch_entries(BENIGN)).build());
    assert_eq!(r.format, "pytorch_zip", "{}", show(&r));
    assert!(
        r.is_safe && r.complete && r.findings.is_empty(),
        "{}",
        show(&r)
    );

    let r = scan(&zip(torch_entries(EVIL)).build());
    assert_eq!(r.format, "pytorch_zip");
    assert!(
        !r.is_safe && evil_in(&r, "archive/data.pkl"),
        "{}",
        show(&r)
    );
}

#[test]
fn torch_zip_any_root_and_every_pickle_member() {
    let mut es = torch_entries(BENIGN);
    for x in es.iter_mut() {
        let n = String::from_utf8(x.name.clone()).unwrap();
        x.name = n.replace("archive/", "my_model-v2/").into_bytes();
    }
    es.push(e("my_model-v2/extra.pkl", EVIL));
    let r = scan(&zip(es.clone()).build());
    assert_eq!(r.format, "pytorch_zip");
    assert!(evil_in(&r, "my_model-v2/extra.pkl"), "{}", show(&r));
    // A constants.pkl record makes it a TorchScript archive (torch.load hands it to
    // torch.jit.load).
    es.push(e("my_model-v2/constants.pkl", EVIL));
    let r = scan(&zip(es).build());
    assert_eq!(r.format, "torchscript");
    assert!(evil_in(&r, "my_model-v2/constants.pkl"), "{}", show(&r));
}

#[test]
fn torch_storages_are_not_pickles() {
    // Tensor bytes that happen to look like a payload: torch.load never unpickles them.
    let mut es = torch_entries(BENIGN);
    es[2].content = EVIL.to_vec();
    let r = scan(&zip(es).build());
    assert!(r.is_safe && r.findings.is_empty(), "{}", show(&r));
    // In a zip that is not a torch archive the same member is analysed.
    let r = scan(&zip(vec![e("data/0", EVIL), e("readme.txt", b"hi")]).build());
    assert!(evil_in(&r, "data/0"), "{}", show(&r));
}

#[test]
fn deflated_members() {
    let mut es = torch_entries(EVIL);
    for x in es.iter_mut() {
        x.deflate = true;
    }
    let r = scan(&zip(es).build());
    assert!(evil_in(&r, "archive/data.pkl"), "{}", show(&r));
    assert_eq!(count(&r, FindingType::StructuralTamper), 0, "{}", show(&r));
}

#[test]
fn bad_crc_and_flag_bits_are_tolerated() {
    let mut es = torch_entries(EVIL);
    es[0].bad_crc = true;
    es[0].flags = 0x0800 | 0x0002 | 0x4000;
    let r = scan(&zip(es).build());
    assert!(evil_in(&r, "archive/data.pkl"), "{}", show(&r));
    assert_eq!(count(&r, FindingType::StructuralTamper), 0, "{}", show(&r));
    assert_eq!(count(&r, FindingType::Unscannable), 0, "{}", show(&r));
}

#[test]
fn data_descriptor_with_zeroed_local_sizes() {
    for deflated in [false, true] {
        let mut es = torch_entries(BENIGN);
        for x in es.iter_mut() {
            x.descriptor = true;
            x.deflate = deflated;
        }
        let r = scan(&zip(es.clone()).build());
        assert!(r.is_safe && r.findings.is_empty(), "{}", show(&r));
        es[0].content = EVIL.to_vec();
        let r = scan(&zip(es).build());
        assert!(evil_in(&r, "archive/data.pkl"), "{}", show(&r));
    }
}

#[test]
fn zip64_records() {
    let mut z = zip(torch_entries(EVIL));
    z.zip64 = true;
    let r = scan(&z.build());
    assert_eq!(r.format, "pytorch_zip");
    assert!(evil_in(&r, "archive/data.pkl"), "{}", show(&r));
    assert_eq!(count(&r, FindingType::StructuralTamper), 0, "{}", show(&r));
}

#[test]
fn archive_comment_is_not_outside_data() {
    let mut z = zip(torch_entries(BENIGN));
    z.comment = b"made by hand".to_vec();
    let r = scan(&z.build());
    assert!(r.is_safe && r.findings.is_empty(), "{}", show(&r));
}

#[test]
fn encrypted_member_is_unscannable() {
    let mut es = torch_entries(BENIGN);
    es[0].flags = 1;
    let r = scan(&zip(es).build());
    assert!(!r.is_safe && !r.complete, "{}", show(&r));
    assert!(r.findings.iter().any(|f| f.kind == FindingType::Unscannable
        && f.member.as_ref().map(|m| m.as_str()) == Some("archive/data.pkl")));
}

#[test]
fn unknown_method_is_unscannable() {
    let mut es = torch_entries(BENIGN);
    es[0].method = Some(99);
    let r = scan(&zip(es).build());
    assert!(!r.is_safe && !r.complete, "{}", show(&r));
    assert!(count(&r, FindingType::Unscannable) >= 1);
}

#[test]
fn numpy_npz_and_pandas_zip() {
    let npy = npy_bytes("'<f8'", &[0u8; 24]);
    let r = scan(&zip(vec![e("a.npy", &npy), e("b.npy", &npy)]).build());
    assert_eq!(r.format, "numpy_npz", "{}", show(&r));
    assert!(r.is_safe);
    let obj = npy_bytes("'|O'", EVIL);
    let mut es = vec![e("a.npy", &npy), e("o.npy", &obj)];
    es[1].deflate = true;
    let r = scan(&zip(es).build());
    assert_eq!(r.format, "numpy_npz");
    assert!(evil_in(&r, "o.npy/object array at byte"), "{}", show(&r));

    let r = scan(&zip(vec![e("frame.pkl", BENIGN)]).build());
    assert_eq!(r.format, "pandas_zip");
    assert!(r.is_safe);
    let r = scan(&zip(vec![e("frame.pkl", EVIL)]).build());
    assert!(evil_in(&r, "frame.pkl"), "{}", show(&r));
}

#[test]
fn empty_zip_and_directories() {
    let r = scan(&zip(vec![]).build());
    assert_eq!(r.format, "zip");
    assert!(r.is_safe && r.findings.is_empty(), "{}", show(&r));
    let r = scan(&zip(vec![e("dir/", b""), e("dir/a.txt", b"hello")]).build());
    assert!(r.is_safe && r.findings.is_empty(), "{}", show(&r));
}

#[test]
fn nested_archives() {
    let inner = zip(vec![e("inner/evil.pkl", EVIL)]).build();
    let mut es = vec![
        e("outer/inner.zip", &inner),
        e("outer/b.pkl.gz", &gzip(EVIL)),
    ];
    es[0].deflate = true;
    let r = scan(&zip(es).build());
    assert!(
        evil_in(&r, "outer/inner.zip/inner/evil.pkl"),
        "{}",
        show(&r)
    );
    assert!(
        evil_in(&r, "outer/b.pkl.gz/decompressed gzip"),
        "{}",
        show(&r)
    );
}

#[test]
fn nesting_depth_is_bounded() {
    let mut d = EVIL.to_vec();
    for i in 0..12 {
        d = zip(vec![e(&format!("level{i}.zip"), &d)]).build();
    }
    let r = scan(&d);
    assert!(!r.is_safe && !r.complete, "{}", show(&r));
    assert!(count(&r, FindingType::ResourceLimit) >= 1, "{}", show(&r));
    let mut p = ml();
    p.limits.max_nesting = 20;
    let r = scan_bytes(&d, &p);
    assert!(evil_in(&r, "level0.zip"), "{}", show(&r));
}

// ------------------------------------------------------------------------------------------
// Zip: where the two views disagree
// ------------------------------------------------------------------------------------------

fn tamper(r: &Report) -> usize {
    r.findings
        .iter()
        .filter(|f| f.kind == FindingType::StructuralTamper && f.severity == Severity::High)
        .count()
}

#[test]
fn local_and_central_names_differ() {
    let mut es = torch_entries(EVIL);
    es[0].local_name = Some(b"archive/notes.txt".to_vec());
    let r = scan(&zip(es).build());
    assert!(tamper(&r) >= 1 && !r.is_safe, "{}", show(&r));
    assert!(evil_in(&r, "archive/data.pkl"), "{}", show(&r));
}

#[test]
fn duplicate_names_every_copy_analysed() {
    for evil_first in [true, false] {
        let (a, b) = if evil_first {
            (EVIL, BENIGN)
        } else {
            (BENIGN, EVIL)
        };
        let mut es = torch_entries(a);
        es.push(e("archive/data.pkl", b));
        let r = scan(&zip(es).build());
        assert!(tamper(&r) >= 1, "{}", show(&r));
        let m = if evil_first {
            "archive/data.pkl"
        } else {
            "archive/data.pkl (copy 2)"
        };
        assert!(
            r.findings.iter().any(|f| f.kind == FindingType::ReduceCall
                && f.member.as_ref().map(|m| m.as_str()) == Some(m)),
            "{}",
            show(&r)
        );
    }
}

#[test]
fn bytes_outside_every_entry() {
    let mut es = torch_entries(BENIGN);
    es[1].gap_after = EVIL.to_vec();
    let r = scan(&zip(es).build());
    assert!(tamper(&r) >= 1 && !r.is_safe, "{}", show(&r));
    let mut z = zip(torch_entries(BENIGN));
    z.trailing = EVIL.to_vec();
    let r = scan(&z.build());
    assert!(tamper(&r) >= 1 && !r.is_safe, "{}", show(&r));
}

#[test]
fn pickle_zip_polyglot() {
    for relative in [true, false] {
        let mut z = zip(torch_entries(BENIGN));
        z.prefix = EVIL.to_vec();
        z.relative = relative;
        let r = scan(&z.build());
        assert_eq!(r.format, "polyglot", "{}", show(&r));
        assert!(tamper(&r) >= 1, "{}", show(&r));
        assert!(evil_in(&r, "pickle before the zip"), "{}", show(&r));
        // And the zip side is read too.
        let mut z = zip(torch_entries(EVIL));
        z.prefix = BENIGN.to_vec();
        z.relative = relative;
        let r = scan(&z.build());
        assert_eq!(r.format, "polyglot", "{}", show(&r));
        assert!(evil_in(&r, "archive/data.pkl"), "{}", show(&r));
    }
}

#[test]
fn zip_inside_a_pickle_bytes_literal() {
    // A benign pickle holding the bytes of a zip (e.g. a dict with a .zip attachment): no
    // tamper, but the embedded archive's members are analysed (zipfile opens such a file).
    let inner = zip(vec![e("x/evil.pkl", EVIL)]).build();
    let mut p = b"\x80\x03B".to_vec();
    p.extend_from_slice(&(inner.len() as u32).to_le_bytes());
    p.extend_from_slice(&inner);
    p.extend_from_slice(b".");
    let r = scan(&p);
    assert!(evil_in(&r, "x/evil.pkl"), "{}", show(&r));
    let inner = zip(vec![e("x/fine.pkl", BENIGN)]).build();
    let mut p = b"\x80\x03B".to_vec();
    p.extend_from_slice(&(inner.len() as u32).to_le_bytes());
    p.extend_from_slice(&inner);
    p.extend_from_slice(b".");
    let r = scan(&p);
    assert!(r.is_safe && r.findings.is_empty(), "{}", show(&r));
}

#[test]
fn central_entry_without_local_header() {
    let mut es = torch_entries(BENIGN);
    es.push(e("archive/ghost.pkl", EVIL));
    let last = es.len() - 1;
    es[last].in_local = false;
    es[last].central_offset = Some(3);
    let r = scan(&zip(es).build());
    assert!(tamper(&r) >= 1, "{}", show(&r));
}

#[test]
fn local_entry_missing_from_central_directory() {
    let mut es = torch_entries(BENIGN);
    let mut hidden = e("archive/hidden.pkl", EVIL);
    hidden.in_central = false;
    es.insert(1, hidden);
    let r = scan(&zip(es).build());
    assert!(tamper(&r) >= 1, "{}", show(&r));
    assert!(evil_in(&r, "archive/hidden.pkl"), "{}", show(&r));
}

#[test]
fn hidden_local_entry_with_data_descriptor() {
    for deflated in [false, true] {
        let mut es = torch_entries(BENIGN);
        let mut hidden = e("archive/hidden.pkl", EVIL);
        hidden.in_central = false;
        hidden.descriptor = true;
        hidden.deflate = deflated;
        es.insert(1, hidden);
        let r = scan(&zip(es).build());
        assert!(evil_in(&r, "archive/hidden.pkl"), "{}", show(&r));
    }
}

#[test]
fn sizes_disagree() {
    // The local header claims fewer bytes: a local-header scanner stops early and then sees
    // the rest of the payload as garbage; torch reads the central size.
    let mut es = torch_entries(EVIL);
    es[0].local_csize = Some(4);
    let r = scan(&zip(es).build());
    assert!(tamper(&r) >= 1, "{}", show(&r));
    assert!(evil_in(&r, "archive/data.pkl"), "{}", show(&r));
}

#[test]
fn overlapping_members() {
    let mut es = torch_entries(BENIGN);
    // A second central entry for data.pkl's bytes (same sizes, its own name).
    let mut twin = e("archive/twin.pkl", BENIGN);
    twin.in_local = false;
    twin.central_offset = Some(0);
    es.push(twin);
    let r = scan(&zip(es).build());
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == FindingType::StructuralTamper && f.description.contains("overlaps")),
        "{}",
        show(&r)
    );
}

#[test]
fn entry_count_mismatch() {
    let mut d = zip(torch_entries(BENIGN)).build();
    let n = d.len();
    // EOCD: total entries fields at +8 and +10.
    d[n - 22 + 8] = 2;
    d[n - 22 + 10] = 2;
    let r = scan(&d);
    assert!(tamper(&r) >= 1, "{}", show(&r));
}

#[test]
fn truncated_zip_without_central_directory() {
    let d = zip(torch_entries(EVIL)).build();
    let cut = d.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    let r = scan(&d[..cut]);
    assert!(evil_in(&r, "archive/data.pkl"), "{}", show(&r));
    assert!(!r.is_safe);
}

// ------------------------------------------------------------------------------------------
// Compressed streams
// ------------------------------------------------------------------------------------------

fn bz2(d: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    e.write_all(d).unwrap();
    e.finish().unwrap()
}

fn xz(d: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    lzma_rs::xz_compress(&mut &d[..], &mut out).unwrap();
    out
}

fn lzma_alone(d: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    lzma_rs::lzma_compress(&mut &d[..], &mut out).unwrap();
    out
}

fn zlib(d: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(d).unwrap();
    e.finish().unwrap()
}

fn zstd(d: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(d, ruzstd::encoding::CompressionLevel::Fastest)
}

fn lz4(d: &[u8]) -> Vec<u8> {
    let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
    e.write_all(d).unwrap();
    e.finish().unwrap()
}

type Compressor = fn(&[u8]) -> Vec<u8>;

fn compressors() -> Vec<(&'static str, Compressor)> {
    vec![
        ("gzip", gzip),
        ("bz2", bz2),
        ("xz", xz),
        ("lzma", lzma_alone),
        ("zlib", zlib),
        ("zstd", zstd),
        ("lz4", lz4),
    ]
}

#[test]
fn compressed_pickles() {
    for (name, c) in compressors() {
        let r = scan(&c(BENIGN));
        assert_eq!(r.format, format!("{name}_pickle"), "{}", show(&r));
        assert!(r.is_safe && r.findings.is_empty(), "{name}: {}", show(&r));
        let r = scan(&c(EVIL));
        assert!(
            evil_in(&r, &format!("decompressed {name}")),
            "{name}: {}",
            show(&r)
        );
        // A compressed zip (pandas-style .zip.gz) and a compressed text file.
        let r = scan(&c(&zip(torch_entries(EVIL)).build()));
        assert_eq!(r.format, format!("pytorch_zip_{name}"));
        assert!(evil_in(&r, "archive/data.pkl"), "{name}: {}", show(&r));
        let r = scan(&c(b"{\"just\": \"json\"}"));
        assert!(r.is_safe && r.findings.is_empty(), "{name}: {}", show(&r));
    }
}

#[test]
fn joblib_zfile_compat() {
    let z = zlib(EVIL);
    let mut d = b"ZF0x2d               ".to_vec();
    assert_eq!(d.len(), 21);
    d.extend_from_slice(&z);
    let r = scan(&d);
    assert_eq!(r.format, "joblib_compat", "{}", show(&r));
    assert!(evil_in(&r, "decompressed zfile"), "{}", show(&r));
}

#[test]
fn concatenated_streams_are_followed() {
    // The payload is split across two gzip members (and two xz / bz2 streams): the loader
    // reads one continuous stream.
    let (a, b) = EVIL.split_at(12);
    for (name, c) in [("gzip", gzip as Compressor), ("bz2", bz2), ("xz", xz)] {
        let mut d = c(a);
        if name == "gzip" {
            d.extend_from_slice(&[0, 0, 0, 0]); // zero padding between members
        }
        d.extend_from_slice(&c(b));
        let r = scan(&d);
        assert!(evil_in(&r, "decompressed"), "{name}: {}", show(&r));
    }
    let mut d = zstd(a);
    d.extend_from_slice(&zstd(b));
    assert!(evil_in(&scan(&d), "decompressed zstd"));
    let mut d = lz4(a);
    d.extend_from_slice(&lz4(b));
    assert!(evil_in(&scan(&d), "decompressed lz4"));
}

#[test]
fn garbage_after_a_compressed_stream() {
    let mut d = gzip(BENIGN);
    d.extend_from_slice(b"garbage that is not gzip");
    let r = scan(&d);
    assert!(r.is_safe, "{}", show(&r));
    assert_eq!(count(&r, FindingType::TrailingData), 1, "{}", show(&r));
}

#[test]
fn corrupt_compressed_stream_keeps_what_decoded() {
    let big: Vec<u8> = EVIL
        .iter()
        .copied()
        .chain(std::iter::repeat_n(b'x', 100_000))
        .collect();
    let mut d = gzip(&big);
    let n = d.len();
    d.truncate(n / 2);
    let r = scan(&d);
    assert!(evil_in(&r, "decompressed gzip"), "{}", show(&r));
}

#[test]
fn decompression_is_bounded() {
    // A pickle whose BINBYTES8 payload is 4 MiB of zeros.
    let mut p = b"\x80\x04\x8e".to_vec();
    p.extend_from_slice(&(4u64 << 20).to_le_bytes());
    p.extend(std::iter::repeat_n(0u8, 4 << 20));
    p.push(b'.');
    let mut pol = ml();
    pol.limits.max_decompressed = 1 << 20;
    for (name, c) in compressors() {
        let r = scan_bytes(&c(&p), &pol);
        assert!(!r.is_safe && !r.complete, "{name}: {}", show(&r));
        assert!(
            count(&r, FindingType::ResourceLimit) >= 1,
            "{name}: {}",
            show(&r)
        );
    }
    // The same limit applies to zip members, together.
    let mut es = vec![e("a.bin", &p), e("b.bin", &p)];
    es[0].deflate = true;
    es[1].deflate = true;
    let r = scan_bytes(&zip(es).build(), &pol);
    assert!(count(&r, FindingType::ResourceLimit) >= 1, "{}", show(&r));
    // Under the default limits it is fine.
    assert!(scan(&gzip(&p)).is_safe);
}

// ------------------------------------------------------------------------------------------
// NumPy
// ------------------------------------------------------------------------------------------

fn npy_bytes(descr: &str, body: &[u8]) -> Vec<u8> {
    let mut h = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': (3,), }}");
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut d = b"\x93NUMPY\x01\x00".to_vec();
    d.extend_from_slice(&(h.len() as u16).to_le_bytes());
    d.extend_from_slice(h.as_bytes());
    d.extend_from_slice(body);
    d
}

#[test]
fn npy_numeric_and_object() {
    // Numeric data is never parsed, even when it looks like a payload.
    let r = scan(&npy_bytes("'<f8'", EVIL));
    assert_eq!(r.format, "numpy_npy");
    assert!(r.is_safe && r.findings.is_empty(), "{}", show(&r));
    let r = scan(&npy_bytes("'|O'", EVIL));
    assert_eq!(r.format, "numpy_npy");
    assert!(evil_in(&r, "object array at byte 128"), "{}", show(&r));
    // Structured dtypes with an object field, other spellings, unreadable headers.
    for descr in [
        "[('a', '<i4'), ('b', '|O')]",
        "[(('title', 'a'), '<i4'), ('b', [('c', 'O')], (2,))]",
        "'object'",
        "('|O', (2,))",
        "'<f8' + 'garbage'",
    ] {
        let r = scan(&npy_bytes(descr, EVIL));
        assert!(!r.is_safe, "{descr}: {}", show(&r));
    }
    let r = scan(&npy_bytes("[('a', '<i4'), ('O', '<f8')]", EVIL));
    assert!(r.is_safe, "{}", show(&r));
    // Version 2 and 3 headers.
    for v in [2u8, 3] {
        let mut d = b"\x93NUMPY".to_vec();
        d.extend_from_slice(&[v, 0]);
        let h = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n";
        d.extend_from_slice(&(h.len() as u32).to_le_bytes());
        d.extend_from_slice(h.as_bytes());
        d.extend_from_slice(EVIL);
        assert!(evil_in(&scan(&d), "object array"));
    }
}

// ------------------------------------------------------------------------------------------
// Tar and torch's legacy formats
// ------------------------------------------------------------------------------------------

fn tar_header(name: &str, size: usize, kind: u8) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    let s = format!("{size:011o}");
    h[124..135].copy_from_slice(s.as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let c = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(c.as_bytes());
    h
}

fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in members {
        out.extend(tar_header(name, data.len(), b'0'));
        out.extend_from_slice(data);
        while !out.len().is_multiple_of(512) {
            out.push(0);
        }
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

#[test]
fn tar_archives() {
    let r = scan(&tar(&[("frame.pkl", BENIGN)]));
    assert_eq!(r.format, "pandas_tar", "{}", show(&r));
    assert!(r.is_safe && r.findings.is_empty(), "{}", show(&r));
    let r = scan(&tar(&[("frame.pkl", EVIL)]));
    assert!(evil_in(&r, "frame.pkl"), "{}", show(&r));
    let r = scan(&gzip(&tar(&[("frame.pkl", EVIL)])));
    assert_eq!(r.format, "pandas_tar_gzip");
    assert!(evil_in(&r, "decompressed gzip/frame.pkl"), "{}", show(&r));
    // Duplicates: tarfile reads the last copy; both are analysed.
    let r = scan(&tar(&[("frame.pkl", BENIGN), ("frame.pkl", EVIL)]));
    assert!(tamper(&r) >= 1, "{}", show(&r));
    assert!(evil_in(&r, "frame.pkl (copy 2)"), "{}", show(&r));
    // A directory entry's size field is not data (as in tarfile).
    let mut d = tar_header("dir/", 512, b'5');
    d.extend(tar(&[("x.pkl", EVIL)]));
    let r = scan(&d);
    assert!(evil_in(&r, "x.pkl"), "{}", show(&r));
}

#[test]
fn tar_whose_header_is_also_a_pickle() {
    // The first member's name is a pickle: pickle.load on the tar file runs it.
    let name = "cos\nsystem\n(S'id'\ntR.";
    let mut d = tar_header(name, BENIGN.len(), b'0');
    d.extend_from_slice(BENIGN);
    d.resize(2048, 0);
    let r = scan(&d);
    assert!(!r.is_safe, "{}", show(&r));
    assert!(tamper(&r) >= 1, "{}", show(&r));
}

/// Protocol-2 pickles of the legacy torch stream.
fn legacy_torch(object_pickle: &[u8], storage_bytes: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.");
    d.extend_from_slice(b"\x80\x02M\xe9\x03.");
    d.extend_from_slice(b"\x80\x02}q\x00X\x0d\x00\x00\x00little_endianq\x01\x88s.");
    d.extend_from_slice(object_pickle);
    d.extend_from_slice(b"\x80\x02]q\x00X\x01\x00\x00\x000q\x01a.");
    d.extend_from_slice(storage_bytes);
    d
}

/// `_rebuild_tensor_v2(persistent_load(('storage', torch.FloatStorage, '0', 'cpu', 2, None)),
/// 0, (2,), (1,), False, OrderedDict())`.
const LEGACY_OBJECT: &[u8] = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nq\x00((X\x07\x00\x00\x00storageq\x01ctorch\nFloatStorage\nq\x02X\x01\x00\x00\x000q\x03X\x03\x00\x00\x00cpuq\x04K\x02Ntq\x05QK\x00K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)Rtq\x06Rq\x07.";

#[test]
fn legacy_torch_stream() {
    // The storage: count 2, two floats, and the bytes happen to look like opcodes.
    let mut st = 2u64.to_le_bytes().to_vec();
    st.extend_from_slice(b"cos\nsys");
    st.push(b'.');
    let r = scan(&legacy_torch(LEGACY_OBJECT, &st));
    assert_eq!(r.format, "pytorch_legacy", "{}", show(&r));
    assert!(r.is_safe && r.findings.is_empty(), "{}", show(&r));
    // The object pickle carrying a payload.
    let r = scan(&legacy_torch(EVIL, &st));
    assert_eq!(r.format, "pytorch_legacy");
    assert!(evil_in(&r, "pickle #4"), "{}", show(&r));
    // Bytes after the storages: torch.load never reads them.
    let mut st2 = st.clone();
    st2.extend_from_slice(EVIL);
    let r = scan(&legacy_torch(LEGACY_OBJECT, &st2));
    assert!(r.is_safe, "{}", show(&r));
    assert_eq!(count(&r, FindingType::TrailingData), 1, "{}", show(&r));
    // A payload in the magic-number pickle itself still runs.
    let mut d = EVIL.to_vec();
    d.extend(legacy_torch(LEGACY_OBJECT, &st));
    assert!(!scan(&d).is_safe);
}

#[test]
fn legacy_torch_tar() {
    let mut storages = b"\x80\x02K\x01.".to_vec();
    storages.extend_from_slice(
        b"\x80\x02X\x01\x00\x00\x000X\x03\x00\x00\x00cpuctorch\nFloatStorage\n\x87.",
    );
    storages.extend_from_slice(&2u64.to_le_bytes());
    storages.extend_from_slice(b"cos\nsys\n"); // float data, not a pickle
    storages.extend_from_slice(b"\x80\x02].");
    let mut tensors = b"\x80\x02K\x01.".to_vec();
    tensors.extend_from_slice(
        b"\x80\x02X\x01\x00\x00\x001X\x01\x00\x00\x000ctorch\nFloatTensor\n\x87.",
    );
    tensors.extend_from_slice(&1i32.to_le_bytes());
    tensors.extend_from_slice(&[0u8; 4 + 16 + 8]);
    let sys_info = b"\x80\x02}.";
    let d = tar(&[
        ("sys_info", sys_info),
        ("pickle", BENIGN),
        ("storages", &storages),
        ("tensors", &tensors),
    ]);
    let r = scan(&d);
    assert_eq!(r.format, "pytorch_tar", "{}", show(&r));
    assert!(
        r.findings
            .iter()
            .all(|f| f.kind != FindingType::Malformed && f.kind != FindingType::ReduceCall),
        "{}",
        show(&r)
    );
    let d = tar(&[
        ("sys_info", sys_info),
        ("pickle", EVIL),
        ("storages", &storages),
    ]);
    assert!(evil_in(&scan(&d), "pickle"));
    // A payload in a storage record pickle.
    let mut bad = b"\x80\x02K\x01.".to_vec();
    bad.extend_from_slice(EVIL);
    let d = tar(&[("pickle", BENIGN), ("storages", &bad)]);
    assert!(evil_in(&scan(&d), "storages/pickle at byte 5"));
}

// ------------------------------------------------------------------------------------------
// What is not a pickle, what cannot be opened
// ------------------------------------------------------------------------------------------

#[test]
fn not_pickles_are_safe() {
    let mut st = 20u64.to_le_bytes().to_vec();
    st.extend_from_slice(b"{\"__metadata__\":{}}\n");
    st.extend_from_slice(&[0u8; 64]);
    let r = scan(&st);
    assert_eq!(r.format, "safetensors", "{}", show(&r));
    assert!(r.is_safe);
    let mut g = b"GGUF\x03\x00\x00\x00".to_vec();
    g.extend_from_slice(&[0u8; 64]);
    assert_eq!(scan(&g).format, "gguf");
    assert_eq!(scan(b"\x89HDF\r\n\x1a\n\0\0\0\0").format, "hdf5");
    for d in [
        &b"{\"model_type\": \"bert\"}"[..],
        b"# README\nhello\n",
        b"",
        b"\x08\x01\x12\x04onnx",
    ] {
        let r = scan(d);
        assert!(r.is_safe && r.findings.is_empty(), "{}", show(&r));
        assert_eq!(r.format, "not_pickle");
    }
    // Random bytes are not "unscannable".
    let mut x: u64 = 0x1234_5678_9abc_def0;
    let rnd: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let r = scan(&rnd);
    assert_eq!(count(&r, FindingType::Unscannable), 0, "{}", show(&r));
}

#[test]
fn unopenable_archives() {
    for (magic, name) in [
        (&b"7z\xbc\xaf\x27\x1c\x00\x04"[..], "7z"),
        (b"Rar!\x1a\x07\x01\x00", "rar"),
    ] {
        let mut d = magic.to_vec();
        d.extend_from_slice(&[0u8; 100]);
        let r = scan(&d);
        assert_eq!(r.format, "unscannable");
        assert!(!r.is_safe && !r.complete, "{name}: {}", show(&r));
        assert_eq!(count(&r, FindingType::Unscannable), 1);
    }
}

// ------------------------------------------------------------------------------------------
// Robustness: truncation and corruption never panic
// ------------------------------------------------------------------------------------------

fn samples() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut es = torch_entries(EVIL);
    es[0].deflate = true;
    es[1].descriptor = true;
    v.push(zip(es).build());
    let mut z = zip(torch_entries(EVIL));
    z.zip64 = true;
    z.prefix = BENIGN.to_vec();
    v.push(z.build());
    v.push(npy_bytes("'|O'", EVIL));
    v.push(tar(&[
        ("a.pkl", EVIL),
        ("b.npy", &npy_bytes("'<f8'", &[0; 24])),
    ]));
    for (_, c) in compressors() {
        v.push(c(&zip(torch_entries(EVIL)).build()));
    }
    let mut st = 2u64.to_le_bytes().to_vec();
    st.extend_from_slice(&[0; 8]);
    v.push(legacy_torch(LEGACY_OBJECT, &st));
    v.push(pax_tar());
    let mut es = torch_entries(EVIL);
    let mut hidden = e("archive/hidden.pkl", EVIL);
    hidden.in_central = false;
    hidden.descriptor = true;
    hidden.deflate = true;
    es.insert(1, hidden);
    v.push(zip(es).build());
    v
}

/// A tar with a pax header (path and size records) and a GNU long name.
fn pax_tar() -> Vec<u8> {
    let rec = |k: &str, v: &str| {
        let body = format!(" {k}={v}\n");
        let mut n = body.len() + 1;
        while format!("{n}{body}").len() != n {
            n += 1;
        }
        format!("{n}{body}")
    };
    let pax = format!(
        "{}{}",
        rec("path", "long/dir/frame.pkl"),
        rec("size", &EVIL.len().to_string())
    );
    let mut out = tar_header("PaxHeader/x", pax.len(), b'x');
    out.extend_from_slice(pax.as_bytes());
    while !out.len().is_multiple_of(512) {
        out.push(0);
    }
    // The header's own size field lies (0): the pax size wins, as in tarfile.
    out.extend(tar_header("short", 0, b'0'));
    out.extend_from_slice(EVIL);
    while !out.len().is_multiple_of(512) {
        out.push(0);
    }
    let long = "a/very/long/name/".repeat(10) + "x.pkl";
    out.extend(tar_header("././@LongLink", long.len() + 1, b'L'));
    out.extend_from_slice(long.as_bytes());
    out.push(0);
    while !out.len().is_multiple_of(512) {
        out.push(0);
    }
    out.extend(tar_header("ignored", BENIGN.len(), b'0'));
    out.extend_from_slice(BENIGN);
    while !out.len().is_multiple_of(512) {
        out.push(0);
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

#[test]
fn tar_pax_and_gnu_long_names() {
    let r = scan(&pax_tar());
    assert_eq!(r.format, "tar", "{}", show(&r));
    assert!(evil_in(&r, "long/dir/frame.pkl"), "{}", show(&r));
    assert_eq!(count(&r, FindingType::TrailingData), 0, "{}", show(&r));
}

/// Corrupt compressed headers can ask for a lot of output: keep the loops fast.
fn fuzz_policy() -> Policy {
    let mut p = ml();
    p.limits.max_decompressed = 1 << 20;
    p
}

#[test]
fn truncation_never_panics() {
    let p = fuzz_policy();
    for s in samples() {
        let step = (s.len() / 300).max(1);
        let mut n = 0;
        while n <= s.len() {
            let _ = scan_bytes(&s[..n], &p);
            n += step;
        }
        for k in 1..40.min(s.len()) {
            let _ = scan_bytes(&s[..s.len() - k], &p);
        }
    }
}

#[test]
fn corruption_never_panics() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let p = fuzz_policy();
    // More rounds: PG_CONTAINER_FUZZ_ROUNDS=100000 cargo test --release --test containers corruption
    let rounds: usize = std::env::var("PG_CONTAINER_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    for s in samples() {
        for _ in 0..rounds {
            let mut d = s.clone();
            for _ in 0..(1 + next() % 4) {
                let i = (next() as usize) % d.len();
                d[i] = match next() % 4 {
                    0 => 0xff,
                    1 => 0,
                    2 => d[i] ^ (1 << (next() % 8)),
                    _ => next() as u8,
                };
            }
            let _ = scan_bytes(&d, &p);
        }
    }
}

// ------------------------------------------------------------------------------------------
// Nested files: the bytes handed to torch.storage._load_from_bytes are a whole torch file
// ------------------------------------------------------------------------------------------

fn load_from_bytes(file: &[u8]) -> Vec<u8> {
    let mut p = b"\x80\x03ctorch.storage\n_load_from_bytes\nq\x00B".to_vec();
    p.extend_from_slice(&(file.len() as u32).to_le_bytes());
    p.extend_from_slice(file);
    p.extend_from_slice(b"\x85R.");
    p
}

#[test]
fn nested_torch_file_is_sniffed() {
    let inner = zip(torch_entries(EVIL)).build();
    let p = load_from_bytes(&inner);
    // Through the container entry point and through the plain pickle entry point alike.
    for r in [scan(&p), pickleguard::analyze_pickle(&p, &ml())] {
        assert!(!r.is_safe, "{}", show(&r));
        assert!(evil_in(&r, "archive/data.pkl"), "{}", show(&r));
    }
    let inner = zip(torch_entries(BENIGN)).build();
    let r = scan(&load_from_bytes(&inner));
    assert_eq!(count(&r, FindingType::NestedPickle), 0, "{}", show(&r));
}

// ------------------------------------------------------------------------------------------
// The streams a scan analysed (what `explain` disassembles)
// ------------------------------------------------------------------------------------------

fn streams_of(d: &[u8]) -> (Report, Vec<pickleguard::PickleStream>) {
    pickleguard::scan_with_streams(d, &ml())
}

#[test]
fn streams_carry_the_member_path_of_their_findings() {
    let mut entries = torch_entries(BENIGN);
    entries.push(e("archive/extra.pkl", &gzip(EVIL)));
    let data = zip(entries).build();
    let (r, streams) = streams_of(&data);
    // The same verdict as the plain scan, and recording leaves nothing behind.
    let plain = scan(&data);
    assert_eq!(show(&r), show(&plain));
    let pickles: Vec<(&str, &[u8])> = streams
        .iter()
        .filter(|s| s.format != "not_pickle")
        .map(|s| {
            (
                s.member.as_ref().map(|m| m.as_str()).unwrap(),
                s.bytes(&data).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        pickles,
        vec![
            ("archive/data.pkl", BENIGN),
            ("archive/extra.pkl/decompressed gzip", EVIL)
        ],
        "{streams:?}"
    );
    // A stored member is a slice of the file, not a copy; a decompressed one is copied.
    let data_of = |m: &str| {
        streams
            .iter()
            .find(|s| s.member.as_ref().map(|m| m.as_str()) == Some(m))
            .map(|s| &s.data)
    };
    assert!(matches!(
        data_of("archive/data.pkl"),
        Some(pickleguard::StreamData::InFile { .. })
    ));
    assert!(matches!(
        data_of("archive/extra.pkl/decompressed gzip"),
        Some(pickleguard::StreamData::Copied(_))
    ));
    for f in r
        .findings
        .iter()
        .filter(|f| f.kind == FindingType::ReduceCall)
    {
        assert_eq!(
            f.member.as_ref().map(|m| m.as_str()),
            Some("archive/extra.pkl/decompressed gzip")
        );
    }
    // Off unless asked for: a scan after it records nothing and reports the same.
    assert_eq!(show(&scan(&data)), show(&plain));
}

#[test]
fn streams_of_dropped_views_are_not_listed() {
    // A polyglot: the whole file read as one stream is replaced by its two views.
    let mut z = zip(torch_entries(BENIGN));
    z.prefix = EVIL.to_vec();
    let (_, streams) = streams_of(&z.build());
    let members: Vec<Option<&str>> = streams
        .iter()
        .filter(|s| s.format != "not_pickle")
        .map(|s| s.member.as_ref().map(|m| m.as_str()))
        .collect();
    assert!(
        members.contains(&Some("pickle before the zip")),
        "{members:?}"
    );
    assert!(members.contains(&Some("archive/data.pkl")), "{members:?}");
    assert!(!members.contains(&None), "{members:?}");
    // A benign zip read as a pickle does nothing: that view is not listed.
    let (_, streams) = streams_of(&zip(torch_entries(BENIGN)).build());
    assert!(
        streams
            .iter()
            .all(|s| s.member.as_ref().map(|m| m.as_str()) != Some("raw pickle view")),
        "{streams:?}"
    );
    // A nested pickle (bytes handed to pickle.loads) is listed under its finding's member.
    let mut outer = b"\x80\x02cpickle\nloads\nC".to_vec();
    outer.push(EVIL.len() as u8);
    outer.extend_from_slice(EVIL);
    outer.extend_from_slice(b"\x85R.");
    let (r, streams) = streams_of(&outer);
    let nested: Vec<&str> = streams
        .iter()
        .filter_map(|s| s.member.as_ref().map(|m| m.as_str()))
        .collect();
    assert_eq!(nested.len(), 1, "{streams:?}");
    assert!(
        r.findings
            .iter()
            .any(|f| f.member.as_ref().map(|m| m.as_str()) == Some(nested[0])),
        "{}",
        show(&r)
    );
}

// ------------------------------------------------------------------------------------------
// TorchScript archives: records read by torch.jit's C++ unpickler
// ------------------------------------------------------------------------------------------

/// `__torch__.M()` built with a `torch.jit._pickle.build_intlist([1, 2])` state, protocol 2.
const TS_DATA: &[u8] = b"\x80\x02c__torch__\nM\n)\x81}X\x01\x00\x00\x00xctorch.jit._pickle\nbuild_intlist\n](K\x01K\x02e\x85Rsb.";

fn torchscript_entries(data_pkl: &[u8]) -> Vec<E> {
    let mut v = torch_entries(data_pkl);
    v.push(e("archive/constants.pkl", b"\x80\x02).")); // an empty tuple
    v.push(e(
        "archive/code/__torch__.py",
        b"class M(Module):\n  x : List[int]\n",
    ));
    v
}

#[test]
fn torchscript_classes_and_builders_are_what_the_cpp_unpickler_reads() {
    let r = scan(&zip(torchscript_entries(TS_DATA)).build());
    assert_eq!(r.format, "torchscript", "{}", show(&r));
    assert!(r.is_safe && r.findings.is_empty(), "{}", show(&r));
    // strict mode allows no imports at all, TorchScript or not.
    let strict = scan_bytes(
        &zip(torchscript_entries(TS_DATA)).build(),
        &Policy::new(Mode::Strict),
    );
    assert!(!strict.is_safe, "{}", show(&strict));
    // The same record in a plain PyTorch zip is read by Python's unpickler: `__torch__` is
    // no module it can import, and torch.jit's builders are not in the profile.
    let r = scan(&zip(torch_entries(TS_DATA)).build());
    assert_eq!(r.format, "pytorch_zip");
    assert!(!r.is_safe, "{}", show(&r));
    // Anything else in a TorchScript record is judged as usual.
    let r = scan(&zip(torchscript_entries(EVIL)).build());
    assert!(
        !r.is_safe && evil_in(&r, "archive/data.pkl"),
        "{}",
        show(&r)
    );
    // ... and so is a file nested in a record (not read by the C++ unpickler).
    let mut entries = torchscript_entries(TS_DATA);
    entries.push(e("archive/extra.gz", &gzip(TS_DATA)));
    let r = scan(&zip(entries).build());
    assert!(!r.is_safe, "{}", show(&r));
}

// ------------------------------------------------------------------------------------------
// How a scan reads a file (the command line's read-ahead advice)
// ------------------------------------------------------------------------------------------

#[test]
fn reads_sparsely_only_where_the_scan_skips_most_bytes() {
    use pickleguard::reads_sparsely;
    let sparse: Vec<(&str, Vec<u8>)> = vec![
        ("torch zip", zip(torch_entries(BENIGN)).build()),
        ("tar", tar(&[("pickle", BENIGN), ("storages", b"\0\0\0\0")])),
        ("legacy torch", legacy_torch(LEGACY_OBJECT, &[0u8; 64])),
        ("numeric npy", npy_bytes("'<f8'", &[0u8; 24])),
    ];
    for (what, d) in &sparse {
        assert!(reads_sparsely(d), "{what}");
    }
    let whole: Vec<(&str, Vec<u8>)> = vec![
        ("raw pickle", BENIGN.to_vec()),
        ("protocol 0 payload", EVIL.to_vec()),
        ("gzip pickle", gzip(BENIGN)),
        ("zlib pickle", zlib(BENIGN)),
        ("object npy", npy_bytes("'|O'", BENIGN)),
        ("npy with an unreadable header", npy_bytes("x", BENIGN)),
        ("empty", Vec::new()),
        ("text", b"{\"config\": true}".to_vec()),
    ];
    for (what, d) in &whole {
        assert!(!reads_sparsely(d), "{what}");
    }
    // Every truncation of a sparse file still gets an answer (never a panic).
    for (_, d) in &sparse {
        for n in 0..d.len().min(600) {
            let _ = reads_sparsely(&d[..n]);
        }
    }
}

/// `B` + length + `n` pseudo-random bytes + STOP: a protocol-4 pickle that does not compress.
fn big_pickle(n: usize) -> Vec<u8> {
    let mut d = b"\x80\x04B".to_vec();
    d.extend_from_slice(&(n as u32).to_le_bytes());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    d.extend((0..n).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    d.push(b'.');
    d
}

#[test]
fn read_hint_names_the_members_a_sparse_scan_reads_whole() {
    let big = big_pickle(300 << 10);
    let objects = npy_bytes("'|O'", &big);
    let mut deflated = e("model/extra.pkl", &big);
    deflated.deflate = true;
    let mut noise = big_pickle(300 << 10);
    noise[0] = b'Z'; // not a pickle: read at its head only
    let mut torch = torch_entries(BENIGN);
    torch[2] = e("archive/data/0", &big); // a storage: never read
    let zips = [
        zip(vec![
            e("model/data.pkl", &big),
            e("model/small.pkl", &big_pickle(1000)),
            e("weights.npy", &npy_bytes("'<f8'", &vec![0u8; 300 << 10])),
            e("objects.npy", &objects),
            e("noise.bin", &noise),
            deflated,
        ])
        .build(),
        zip(torch).build(),
        tar(&[("pickle", &big[..]), ("storages", &big[..])]),
    ];
    // What each archive's scan must read ahead: the bytes of these members as stored.
    let compressed = deflate(&big);
    let expected: [Vec<&[u8]>; 3] = [vec![&big[..], &objects[..]], vec![], vec![&big[..]]];
    let policy = ml();
    for (i, d) in zips.iter().enumerate() {
        // Ranges (address, length) handed to this scan's read hint.
        let hinted = std::cell::RefCell::new(Vec::new());
        let hint = |b: &[u8]| hinted.borrow_mut().push((b.as_ptr() as usize, b.len()));
        let r = pickleguard::Scan::new(&policy).read_hint(&hint).file(d);
        assert!(r.complete, "{}", show(&r));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            serde_json::to_string(&scan(d)).unwrap(),
            "a hint changes no verdict"
        );
        let lo = d.as_ptr() as usize;
        let hinted = hinted.into_inner();
        assert!(
            hinted
                .iter()
                .all(|&(p, n)| p >= lo && p + n <= lo + d.len()),
            "only slices of the input are hinted"
        );
        let mut got: Vec<&[u8]> = hinted
            .iter()
            .map(|&(p, n)| &d[p - lo..p - lo + n])
            .collect();
        got.sort();
        got.dedup();
        let mut want = expected[i].clone();
        if i == 0 {
            want.push(&compressed[..]); // a compressed member is inflated from all its bytes
        }
        want.sort();
        assert_eq!(
            got.iter().map(|g| g.len()).collect::<Vec<_>>(),
            want.iter().map(|w| w.len()).collect::<Vec<_>>(),
            "archive {i}"
        );
        assert!(got.iter().zip(&want).all(|(g, w)| g == w), "archive {i}");
    }
}

// ------------------------------------------------------------------------------------------
// Readings that differ between loaders (issue 16): zip64 end records, npy header keys, side
// files named inside a pickle
// ------------------------------------------------------------------------------------------

/// A stored local entry.
fn local_entry(name: &str, data: &[u8]) -> Vec<u8> {
    let mut v = b"PK\x03\x04".to_vec();
    p16(&mut v, 20);
    p16(&mut v, 0);
    p16(&mut v, 0);
    p32(&mut v, 0x21);
    p32(&mut v, crc32(data));
    p32(&mut v, data.len() as u32);
    p32(&mut v, data.len() as u32);
    p16(&mut v, name.len() as u16);
    p16(&mut v, 0);
    v.extend_from_slice(name.as_bytes());
    v.extend_from_slice(data);
    v
}

/// A central entry for a stored member whose local header is at `off`.
fn central_entry(name: &str, data: &[u8], off: u64, comment: &[u8]) -> Vec<u8> {
    let mut v = b"PK\x01\x02".to_vec();
    p16(&mut v, 20);
    p16(&mut v, 20);
    p16(&mut v, 0);
    p16(&mut v, 0);
    p32(&mut v, 0x21);
    p32(&mut v, crc32(data));
    p32(&mut v, data.len() as u32);
    p32(&mut v, data.len() as u32);
    p16(&mut v, name.len() as u16);
    p16(&mut v, 0);
    p16(&mut v, comment.len() as u16);
    p16(&mut v, 0);
    p16(&mut v, 0);
    p32(&mut v, 0);
    p32(&mut v, off as u32);
    v.extend_from_slice(name.as_bytes());
    v.extend_from_slice(comment);
    v
}

fn zip64_record(n: u64, size: u64, off: u64) -> Vec<u8> {
    let mut v = b"PK\x06\x06".to_vec();
    p64(&mut v, 44);
    p16(&mut v, 45);
    p16(&mut v, 45);
    p32(&mut v, 0);
    p32(&mut v, 0);
    p64(&mut v, n);
    p64(&mut v, n);
    p64(&mut v, size);
    p64(&mut v, off);
    v
}

fn zip64_locator(at: u64) -> Vec<u8> {
    let mut v = b"PK\x06\x07".to_vec();
    p32(&mut v, 0);
    p64(&mut v, at);
    p32(&mut v, 1);
    v
}

fn end_record(n: u16, size: u32, off: u32) -> Vec<u8> {
    let mut v = b"PK\x05\x06".to_vec();
    p16(&mut v, 0);
    p16(&mut v, 0);
    p16(&mut v, n);
    p16(&mut v, n);
    p32(&mut v, size);
    p32(&mut v, off);
    p16(&mut v, 0);
    v
}

/// Lay out stored members from `at`; returns the bytes and the central directory.
fn lay_out(at: usize, members: &[(&str, &[u8])]) -> (Vec<u8>, Vec<u8>) {
    let (mut body, mut cd) = (Vec::new(), Vec::new());
    for (name, data) in members {
        cd.extend(central_entry(name, data, (at + body.len()) as u64, b""));
        body.extend(local_entry(name, data));
    }
    (body, cd)
}

/// zipfile takes the zip64 record right before the locator (`shown`); torch's miniz follows
/// the locator to a second record and directory hidden inside a stored member (`hidden`).
fn zip64_split_torch(shown: &[(&str, &[u8])], hidden: &[(&str, &[u8])]) -> Vec<u8> {
    let (mut out, mut cd_a) = lay_out(0, shown);
    let blob_name = "archive/.data/blob";
    let blob_data_at = out.len() + 30 + blob_name.len();
    let mut blob = b"pad!".to_vec();
    let (hb, cd_m) = lay_out(blob_data_at + blob.len(), hidden);
    blob.extend(hb);
    let cd_m_at = blob_data_at + blob.len();
    blob.extend(&cd_m);
    let rec_m_at = blob_data_at + blob.len();
    blob.extend(zip64_record(
        hidden.len() as u64,
        cd_m.len() as u64,
        cd_m_at as u64,
    ));
    cd_a.extend(central_entry(blob_name, &blob, out.len() as u64, b""));
    out.extend(local_entry(blob_name, &blob));
    let cd_a_at = out.len();
    out.extend(&cd_a);
    out.extend(zip64_record(
        shown.len() as u64 + 1,
        cd_a.len() as u64,
        cd_a_at as u64,
    ));
    out.extend(zip64_locator(rec_m_at as u64));
    out.extend(end_record(0xffff, 0xffff_ffff, 0xffff_ffff));
    out
}

/// The mirror image: no zip64 record before the locator, so zipfile reads the 32-bit end
/// record (`zipfile_sees`), miniz follows the locator (`miniz_sees`). The locator is the
/// comment of zipfile's last central entry.
fn zip64_split_zipfile(zipfile_sees: &[(&str, &[u8])], miniz_sees: &[(&str, &[u8])]) -> Vec<u8> {
    let (mut out, _) = lay_out(0, zipfile_sees);
    let z_offsets: Vec<usize> = {
        let mut at = 0;
        zipfile_sees
            .iter()
            .map(|(n, d)| {
                let o = at;
                at += 30 + n.len() + d.len();
                o
            })
            .collect()
    };
    let (mb, cd_m) = lay_out(out.len(), miniz_sees);
    out.extend(mb);
    let cd_m_at = out.len();
    out.extend(&cd_m);
    let rec_m_at = out.len();
    out.extend(zip64_record(
        miniz_sees.len() as u64,
        cd_m.len() as u64,
        cd_m_at as u64,
    ));
    let cd_z_at = out.len();
    let mut cd_z = Vec::new();
    for (i, ((name, data), off)) in zipfile_sees.iter().zip(&z_offsets).enumerate() {
        let comment = if i + 1 == zipfile_sees.len() {
            zip64_locator(rec_m_at as u64)
        } else {
            Vec::new()
        };
        cd_z.extend(central_entry(name, data, *off as u64, &comment));
    }
    out.extend(&cd_z);
    out.extend(end_record(
        zipfile_sees.len() as u16,
        cd_z.len() as u32,
        cd_z_at as u32,
    ));
    out
}

fn split_finding(r: &Report) -> Option<&pickleguard::Finding> {
    r.findings.iter().find(|f| {
        f.kind == FindingType::StructuralTamper
            && f.description.contains("two different central directories")
    })
}

#[test]
fn zip64_split_torch_reads_a_hidden_directory() {
    let shown: &[(&str, &[u8])] = &[
        ("archive/data.pkl", BENIGN),
        ("archive/byteorder", b"little"),
        ("archive/version", b"3\n"),
    ];
    let hidden: &[(&str, &[u8])] = &[("archive/data.pkl", EVIL), ("archive/version", b"3\n")];
    let d = zip64_split_torch(shown, hidden);
    let r = scan(&d);
    assert!(!r.is_safe, "{}", show(&r));
    let f = split_finding(&r).unwrap_or_else(|| panic!("{}", show(&r)));
    // Both readings are in the finding.
    assert!(
        f.description.contains("zipfile") && f.description.contains("miniz"),
        "{}",
        f.description
    );
    assert!(
        f.description.matches("'archive/data.pkl'").count() == 2,
        "{}",
        f.description
    );
    assert!(
        evil_in(&r, "archive/data.pkl (directory at byte"),
        "{}",
        show(&r)
    );
    // The same file without the split is clean: the finding comes from the split alone.
    let clean = zip64_split_torch(
        shown,
        &[("archive/data.pkl", BENIGN), ("archive/version", b"3\n")],
    );
    let r = scan(&clean);
    assert!(split_finding(&r).is_some(), "{}", show(&r));
    assert!(!evil_in(&r, "archive/data.pkl"), "{}", show(&r));
}

#[test]
fn zip64_split_zipfile_reads_the_32_bit_record() {
    let d = zip64_split_zipfile(&[("data.pkl", EVIL)], &[("data.pkl", BENIGN)]);
    let r = scan(&d);
    assert!(split_finding(&r).is_some(), "{}", show(&r));
    assert!(evil_in(&r, "data.pkl"), "{}", show(&r));
    // And the other way round.
    let d = zip64_split_zipfile(&[("data.pkl", BENIGN)], &[("data.pkl", EVIL)]);
    let r = scan(&d);
    assert!(split_finding(&r).is_some(), "{}", show(&r));
    assert!(evil_in(&r, "data.pkl (directory at byte"), "{}", show(&r));
}

#[test]
fn agreeing_zip64_records_are_one_reading() {
    let mut z = zip(torch_entries(BENIGN));
    z.zip64 = true;
    let r = scan(&z.build());
    assert!(r.is_safe && r.findings.is_empty(), "{}", show(&r));
}

fn npy_header_bytes(header: &str, body: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut d = b"\x93NUMPY\x01\x00".to_vec();
    d.extend_from_slice(&(h.len() as u16).to_le_bytes());
    d.extend_from_slice(h.as_bytes());
    d.extend_from_slice(body);
    d
}

#[test]
fn npy_repeated_header_keys() {
    // numpy (ast.literal_eval) keeps the last 'descr': an object array.
    let d = npy_header_bytes(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'descr': '|O'}",
        EVIL,
    );
    let r = scan(&d);
    assert!(
        count(&r, FindingType::StructuralTamper) == 1,
        "{}",
        show(&r)
    );
    let t = r
        .findings
        .iter()
        .find(|f| f.kind == FindingType::StructuralTamper)
        .unwrap();
    assert!(t.description.contains("'<f8'"), "{}", t.description);
    assert!(t.description.contains("|O"), "{}", t.description);
    assert!(evil_in(&r, "object array"), "{}", show(&r));
    // The other order: numpy reads numbers, a first-key reader objects. Still both readings.
    let d = npy_header_bytes(
        "{'descr': '|O', 'fortran_order': False, 'shape': (3,), 'descr': '<f8'}",
        EVIL,
    );
    let r = scan(&d);
    assert!(!r.is_safe && evil_in(&r, "object array"), "{}", show(&r));
    // A repeated key that does not change the dtype is still an ambiguity.
    let d = npy_header_bytes(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'shape': (3,)}",
        &[0u8; 24],
    );
    let r = scan(&d);
    assert!(
        !r.is_safe && count(&r, FindingType::StructuralTamper) == 1,
        "{}",
        show(&r)
    );
    // Spellings a small parser could misread count as objects: escapes, implicit concatenation.
    for h in [
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), '\\x64escr': '|O'}",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'des' 'cr': '|O'}",
    ] {
        let r = scan(&npy_header_bytes(h, EVIL));
        assert!(
            evil_in(&r, "npy header") || evil_in(&r, "object array"),
            "{h}: {}",
            show(&r)
        );
    }
}

/// A legacy joblib pickle (joblib < 0.10) whose NDArrayWrapper names a side file.
fn ndarray_wrapper_pickle(class: &str, filename: &str) -> Vec<u8> {
    let mut v = b"\x80\x02cjoblib.numpy_pickle\n".to_vec();
    v.extend_from_slice(class.as_bytes());
    v.extend_from_slice(b"\n)\x81}(X\x08\x00\x00\x00filename");
    v.push(b'X');
    v.extend_from_slice(&(filename.len() as u32).to_le_bytes());
    v.extend_from_slice(filename.as_bytes());
    v.extend_from_slice(b"X\x08\x00\x00\x00subclasscnumpy\nndarray\nub.");
    v
}

#[test]
fn joblib_legacy_side_files_are_findings() {
    let r = scan(&ndarray_wrapper_pickle(
        "NDArrayWrapper",
        "model.pkl_01.npy",
    ));
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == FindingType::Unscannable)
        .unwrap_or_else(|| panic!("{}", show(&r)));
    assert_eq!(f.severity, Severity::Medium);
    assert_eq!(
        f.args.as_deref(),
        Some(&["model.pkl_01.npy".to_string()][..])
    );
    assert_eq!(f.name.as_deref(), Some("NDArrayWrapper"));
    assert!(!r.is_safe, "{}", show(&r));
    // ZNDArrayWrapper's side file is raw zlib data: noted, not blocking by itself.
    let r = scan(&ndarray_wrapper_pickle(
        "ZNDArrayWrapper",
        "model.pkl_01.npy.z",
    ));
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == FindingType::Unscannable)
        .unwrap_or_else(|| panic!("{}", show(&r)));
    assert_eq!(f.severity, Severity::Low);
}

#[test]
fn npy_headers_numpy_refuses_are_reported() {
    // numpy.load (and safe_load) refuse these headers: the scan says so with a LOW MALFORMED
    // finding (nothing can run through numpy) and still analyses the data.
    let plain = b"\x80\x02]q\x00.";
    for h in [
        "{'descr': '|O', 'fortran_order': Fals, 'shape': (1,), }",
        "{'descr': '|O', 'fortran_order': False, }",
        "{'descr': '|O', 'fortran_order': False, 'shape': (1,), 'extra': 1}",
        "{'descr': '|O', 'fortran_order': 0, 'shape': (1,), }",
        "{'descr': '|O', 'fortran_order': False, 'shape': [1], }",
        "['descr', '|O']",
    ] {
        let r = scan(&npy_header_bytes(h, plain));
        let malformed: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.kind == FindingType::Malformed)
            .collect();
        assert!(
            malformed.len() == 1 && malformed[0].severity == Severity::Low,
            "{h}: {}",
            show(&r)
        );
        assert!(r.is_safe, "{h}: {}", show(&r));
        let r = scan(&npy_header_bytes(h, EVIL));
        assert!(!r.is_safe, "{h}: {}", show(&r));
    }
    let ok = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }";
    let r = scan(&npy_header_bytes(ok, plain));
    assert!(r.is_safe && r.findings.is_empty(), "{}", show(&r));
}

/// Another reading of the same bytes (here `pickle.load` on a tar archive itself) reports only
/// what it does beyond the main reading; a limit that stops it before its end must still make
/// the file incomplete, or a payload past the limit would pass unseen.
#[test]
fn a_limit_in_another_reading_of_the_bytes_is_carried_over() {
    // The first member's name is 99 NONE opcodes: pickle.load on the archive pushes them,
    // then breaks on the mode field.
    let name = "N".repeat(99);
    let d = tar(&[(name.as_str(), BENIGN)]);
    let r = scan(&d);
    assert!(r.is_safe && r.complete, "{}", show(&r));
    let mut small = ml();
    small.limits.max_stack = 50;
    let r = scan_bytes(&d, &small);
    assert!(!r.is_safe && !r.complete, "{}", show(&r));
    assert_eq!(
        r.stopped_by.as_ref().map(|s| s.render()).as_deref(),
        Some("limit:stack depth")
    );
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == FindingType::ResourceLimit)
        .expect("the raw reading's limit");
    assert_eq!(
        f.member.as_ref().map(|m| m.to_string()).as_deref(),
        Some("raw pickle view")
    );
}
