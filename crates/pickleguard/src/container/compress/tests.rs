//! Compressed streams: which codec a file starts with, and how concatenated streams,
//! padding, trailing bytes and damage are read.

use super::*;
use crate::context::Options;
use crate::policy::{Mode, Policy};
use crate::report::Segment;
use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;

/// `posix.system('id')`, protocol 2.
const EVIL: &[u8] = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn bz2(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A `.lzma` ("alone") header: properties, dictionary size, uncompressed size.
fn alone(props: u8, dict: u32, size: u64) -> Vec<u8> {
    let mut h = vec![props];
    h.extend_from_slice(&dict.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h
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

fn unpack(codec: Codec, data: &[u8], cap: u64) -> Decoded {
    with_cx(data, |cx| decompress(&cx.budget, codec, data, cap))
}

#[test]
fn codecs_are_sniffed_by_their_magic_bytes() {
    assert_eq!(sniff(&gzip(b"x")), Some(Codec::Gzip));
    assert_eq!(sniff(&bz2(b"x")), Some(Codec::Bz2));
    assert_eq!(sniff(b"\xfd7zXZ\x00\x00\x04"), Some(Codec::Xz));
    assert_eq!(sniff(b"\x28\xb5\x2f\xfd\x00\x00"), Some(Codec::Zstd));
    assert_eq!(
        sniff(b"\x50\x2a\x4d\x18\x00\x00\x00\x00"),
        Some(Codec::Zstd),
        "a skippable frame"
    );
    assert_eq!(sniff(b"\x04\x22\x4d\x18\x60\x40"), Some(Codec::Lz4));
    assert_eq!(sniff(&zlib(b"x")), Some(Codec::Zlib));
    assert_eq!(
        sniff(b"ZF0x10               x\x9c"),
        Some(Codec::JoblibZfile)
    );
    assert_eq!(sniff(&alone(0x5d, 1 << 23, u64::MAX)), Some(Codec::Lzma));
    assert_eq!(sniff(EVIL), None);
    assert_eq!(sniff(b""), None);
    // The gzip magic needs deflate as its method; bz2 needs a block magic after the level.
    assert_eq!(sniff(b"\x1f\x8b\x07"), None);
    assert_eq!(sniff(b"BZh9xxxxxxxxxx"), None);
}

#[test]
fn zlib_headers_have_valid_check_bits() {
    assert!(zlib_start(b"\x78\x9c"));
    assert!(zlib_start(b"\x78\x01"));
    assert!(!zlib_start(b"\x78\x9d"), "check bits");
    assert!(!zlib_start(b"\x79\x9c"), "not deflate");
    assert!(!zlib_start(b"\x78\xbb"), "preset dictionary");
}

#[test]
fn lzma_alone_headers_are_those_liblzma_accepts() {
    assert!(lzma_alone_start(&alone(0x5d, 1 << 23, u64::MAX)));
    assert!(
        lzma_alone_start(&alone(0x5d, 3 << 22, 100)),
        "2^n + 2^(n-1)"
    );
    assert!(lzma_alone_start(&alone(0x5d, u32::MAX, 100)));
    assert!(
        !lzma_alone_start(&alone(0x5d, 5 << 20, 100)),
        "dictionary size"
    );
    assert!(
        !lzma_alone_start(&alone(9 + 4, 1 << 23, 100)),
        "lp 1 + lc 4 > 4"
    );
    assert!(!lzma_alone_start(&alone(225, 1 << 23, 100)), "properties");
    assert!(!lzma_alone_start(&alone(0x5d, 1 << 23, 1 << 38)), "size");
    assert!(!lzma_alone_start(&alone(0x5d, 1 << 23, 100)[..12]));
    // Only a zlib header that is also a .lzma header gets a second reading.
    assert_eq!(second_guess(Codec::Gzip, &alone(0x5d, 1 << 23, 100)), None);
    assert_eq!(second_guess(Codec::Zlib, &zlib(b"x")), None);
}

#[test]
fn a_zstd_frame_declares_its_window() {
    // Window descriptor: exponent 0 (1 KiB) plus 1/8ths.
    assert_eq!(zstd_window(b"\x28\xb5\x2f\xfd\x00\x00"), Some(1024));
    assert_eq!(
        zstd_window(b"\x28\xb5\x2f\xfd\x00\x0b"),
        Some((1 << 11) + 3 * 256)
    );
    // Single segment: the content size is the window (2-byte sizes count from 256).
    assert_eq!(zstd_window(b"\x28\xb5\x2f\xfd\x20\x07"), Some(7));
    assert_eq!(
        zstd_window(b"\x28\xb5\x2f\xfd\x60\x00\x01"),
        Some(256 + 256)
    );
    assert_eq!(zstd_window(b"\x28\xb5\x2f\xfd\x60\x00"), None);
}

#[test]
fn gzip_members_are_read_one_after_another_across_zero_padding() {
    let mut data = gzip(b"abc");
    data.extend_from_slice(&[0; 7]);
    data.extend_from_slice(&gzip(b"def"));
    let d = unpack(Codec::Gzip, &data, u64::MAX);
    assert_eq!(d.out, b"abcdef");
    assert_eq!(
        (d.consumed, d.trailing, d.error.as_deref()),
        (data.len(), 0, None)
    );
    // Bytes that are no member after them are trailing.
    let mut data = gzip(b"abc");
    let end = data.len();
    data.extend_from_slice(b"junk");
    let d = unpack(Codec::Gzip, &data, u64::MAX);
    assert_eq!(
        (d.out.as_slice(), d.consumed, d.trailing),
        (&b"abc"[..], end, 4)
    );
}

#[test]
fn zlib_and_bz2_streams_concatenate_too() {
    let data = [zlib(b"ab"), zlib(b"cd")].concat();
    assert_eq!(unpack(Codec::Zlib, &data, u64::MAX).out, b"abcd");
    let data = [bz2(b"ab"), bz2(b"cd")].concat();
    let d = unpack(Codec::Bz2, &data, u64::MAX);
    assert_eq!((d.out.as_slice(), d.trailing), (&b"abcd"[..], 0));
}

#[test]
fn damage_is_an_error_after_what_decoded_and_the_cap_stops_output() {
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut data = gzip(&big);
    let n = data.len();
    data.truncate(n - 20);
    let d = unpack(Codec::Gzip, &data, u64::MAX);
    assert!(d.error.is_some(), "{d:?}");
    assert!(d.out.len() < big.len() && big.starts_with(&d.out));
    let d = unpack(Codec::Gzip, &gzip(&big), 1000);
    assert!(d.over_cap);
    assert!(d.out.len() as u64 <= 1000 + 64 * 1024, "{}", d.out.len());
}

#[test]
fn a_joblib_zfile_is_its_zlib_stream_after_the_header() {
    let mut data = format!("ZF{:<19}", format!("0x{:x}", EVIL.len())).into_bytes();
    assert_eq!(zfile_header_len(&data), Some(21));
    data.extend_from_slice(&zlib(EVIL));
    assert_eq!(unpack(Codec::JoblibZfile, &data, u64::MAX).out, EVIL);
    let r = with_cx(&data, |cx| scan(cx, Codec::JoblibZfile, &data)).unwrap();
    assert_eq!(r.format, "joblib_compat");
    // joblib <= 0.8.4 put a space after the length.
    let mut old = format!("ZF{:<19} ", "0x1").into_bytes();
    old.extend_from_slice(&zlib(b"x"));
    assert_eq!(zfile_header_len(&old), Some(22));
}

#[test]
fn a_compressed_pickle_is_scanned_under_its_codec() {
    let mut data = gzip(EVIL);
    let end = data.len();
    data.extend_from_slice(b"junk");
    let r = with_cx(&data, |cx| scan(cx, Codec::Gzip, &data)).unwrap();
    assert_eq!(r.format, "gzip_pickle");
    let call = r
        .findings
        .iter()
        .find(|f| f.kind == FindingType::ReduceCall)
        .expect("the pickle analysed");
    assert_eq!(
        call.member.as_ref().unwrap().segments(),
        [Segment::Decompressed {
            codec: "gzip".into()
        }]
    );
    let t = r
        .findings
        .iter()
        .find(|f| f.kind == FindingType::TrailingData)
        .expect("trailing");
    assert_eq!((t.severity, t.position), (Severity::Low, end as u64));
    assert_eq!(
        t.description,
        "4 bytes after the gzip data are not another gzip stream; loaders do not decompress them"
    );
}

#[test]
fn a_damaged_stream_is_never_safe_and_a_lying_magic_is_no_stream() {
    let mut data = gzip(&[b'N'; 5000]);
    let n = data.len();
    data.truncate(n - 6);
    let r = with_cx(&data, |cx| scan(cx, Codec::Gzip, &data)).unwrap();
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == FindingType::Malformed)
        .expect("damage");
    assert_eq!(f.severity, Severity::Medium);
    assert!(
        f.description
            .starts_with("the gzip data is corrupt or truncated after "),
        "{}",
        f.description
    );
    // The gzip magic, then nothing gzip.
    let lie = b"\x1f\x8b\x08garbage that is not deflate at all".to_vec();
    assert!(with_cx(&lie, |cx| scan(cx, Codec::Gzip, &lie)).is_none());
}
