//! Compressed streams: gzip, bz2, xz, lzma ("alone", as joblib writes it), zlib (joblib),
//! joblib's old `ZF` files, zstd and lz4 frames. Decompressed as a stream into a buffer bounded
//! by the scan's budget; concatenated streams are followed the way Python's readers follow them
//! (gzip skips zero padding between members, bz2/lzma/xz start a new stream while one parses).

use super::{scan_at, Report};
use crate::context::budget::Budget;
use crate::context::ScanContext;
use crate::report::{Finding, FindingType, Severity};
use std::io::{self, Read, Write};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Bz2,
    Xz,
    Lzma,
    Zlib,
    Zstd,
    Lz4,
    /// joblib < 0.10: `ZF`, the length in hex, then a zlib stream.
    JoblibZfile,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Bz2 => "bz2",
            Codec::Xz => "xz",
            Codec::Lzma => "lzma",
            Codec::Zlib => "zlib",
            Codec::Zstd => "zstd",
            Codec::Lz4 => "lz4",
            Codec::JoblibZfile => "zfile",
        }
    }
}

const XZ_MAGIC: &[u8] = b"\xfd7zXZ\x00";
const ZSTD_MAGIC: &[u8] = b"\x28\xb5\x2f\xfd";
const LZ4_MAGIC: &[u8] = b"\x04\x22\x4d\x18";

fn skippable_frame(d: &[u8]) -> bool {
    d.len() >= 8 && d[0] & 0xf0 == 0x50 && d[1..4] == [0x2a, 0x4d, 0x18]
}

fn bz2_start(d: &[u8]) -> bool {
    d.len() >= 10
        && d.starts_with(b"BZh")
        && (b'1'..=b'9').contains(&d[3])
        && (d[4..10] == *b"1AY&SY" || d[4..10] == *b"\x17rE8P\x90")
}

/// A zlib header (RFC 1950): deflate, window ≤ 32K, no preset dictionary, valid check bits.
fn zlib_start(d: &[u8]) -> bool {
    d.len() >= 2
        && d[0] & 0x0f == 8
        && d[0] >> 4 <= 7
        && d[1] & 0x20 == 0
        && (u16::from(d[0]) << 8 | u16::from(d[1])) % 31 == 0
}

fn zfile_header_len(d: &[u8]) -> Option<usize> {
    // "ZF" + hex length left-justified in 19 characters (+ a space from joblib <= 0.8.4).
    let head = d.get(2..21)?;
    if !d.starts_with(b"ZF")
        || !head
            .iter()
            .all(|c| c.is_ascii_hexdigit() || *c == b'x' || *c == b' ')
    {
        return None;
    }
    Some(if d.get(21) == Some(&b' ') { 22 } else { 21 })
}

/// The window a zstd frame header declares (RFC 8878 3.1.1.1): the window descriptor, or for a
/// single-segment frame its content size. `None` when the header is cut short.
fn zstd_window(frame: &[u8]) -> Option<u64> {
    let fhd = *frame.get(4)?;
    let single = fhd & 0x20 != 0;
    if !single {
        let wd = *frame.get(5)?;
        let log = 10 + u32::from(wd >> 3);
        let base = 1u64 << log;
        return Some(base + base / 8 * u64::from(wd & 7));
    }
    let dict_len = [0, 1, 2, 4][usize::from(fhd & 3)];
    let at = 5 + dict_len;
    let fcs = match fhd >> 6 {
        0 => u64::from(*frame.get(at)?),
        1 => u64::from(u16::from_le_bytes(frame.get(at..at + 2)?.try_into().ok()?)) + 256,
        2 => u64::from(u32::from_le_bytes(frame.get(at..at + 4)?.try_into().ok()?)),
        _ => u64::from_le_bytes(frame.get(at..at + 8)?.try_into().ok()?),
    };
    Some(fcs)
}

/// The codec a stream starts with, by its magic bytes.
pub fn sniff(d: &[u8]) -> Option<Codec> {
    if d.len() >= 3 && d[0] == 0x1f && d[1] == 0x8b && d[2] == 8 {
        Some(Codec::Gzip)
    } else if bz2_start(d) {
        Some(Codec::Bz2)
    } else if d.starts_with(XZ_MAGIC) {
        Some(Codec::Xz)
    } else if d.starts_with(ZSTD_MAGIC) || skippable_frame(d) {
        Some(Codec::Zstd)
    } else if d.starts_with(LZ4_MAGIC) {
        Some(Codec::Lz4)
    } else if zfile_header_len(d).is_some() {
        Some(Codec::JoblibZfile)
    } else if zlib_start(d) {
        Some(Codec::Zlib)
    } else if lzma_alone_start(d) {
        Some(Codec::Lzma)
    } else {
        None
    }
}

/// The codec to try when `first` (what `sniff` chose) decoded nothing: a header can be both a
/// zlib header and a `.lzma` header, and the loader that reads it picks by its own rule.
pub fn second_guess(first: Codec, d: &[u8]) -> Option<Codec> {
    (first == Codec::Zlib && lzma_alone_start(d)).then_some(Codec::Lzma)
}

/// A `.lzma` ("alone") header that liblzma accepts when it guesses the format, as
/// `lzma.open`, `lzma.LZMAFile` and `lzma.decompress` do by default (and so pandas'
/// `compression="xz"` and joblib): properties with lc + lp <= 4, a dictionary size of 2^n or
/// 2^n + 2^(n-1) (or 2^32 - 1), an unknown uncompressed size or one under 256 GiB
/// (liblzma's alone_decoder.c with `picky`). joblib writes properties 0x5d and an 8 MiB
/// dictionary (and detects its files by the `5d 00` prefix), but any other valid header
/// decompresses just the same. A pickle whose first bytes also pass is read both ways.
fn lzma_alone_start(d: &[u8]) -> bool {
    let Some(h) = d.get(..13) else {
        return false;
    };
    let props = h[0];
    if props > (4 * 5 + 4) * 9 + 8 {
        return false;
    }
    let lp = props % 45 / 9;
    let lc = props % 45 % 9;
    if lc + lp > 4 {
        return false;
    }
    let dict = u32::from_le_bytes([h[1], h[2], h[3], h[4]]);
    if dict != u32::MAX {
        let mut x = dict.wrapping_sub(1);
        x |= x >> 2;
        x |= x >> 3;
        x |= x >> 4;
        x |= x >> 8;
        x |= x >> 16;
        if x.wrapping_add(1) != dict {
            return false;
        }
    }
    let size = u64::from_le_bytes([h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12]]);
    size == u64::MAX || size < 1 << 38
}

/// The outcome of decompressing: what came out, and why it stopped.
#[derive(Default, Debug)]
pub struct Decoded {
    pub out: Vec<u8>,
    /// A decoding error after `out` (corrupt or truncated input).
    pub error: Option<String>,
    /// An xz / `.lzma` stream ended before its end: this decoder keeps back a margin of
    /// input liblzma decodes, so Python's `lzma` may hand a loader more than `out`.
    pub cut: bool,
    /// The budget ran out (the limit's name).
    pub limit: Option<crate::report::Limit>,
    /// More output than the caller's cap (a zip member's declared size).
    pub over_cap: bool,
    /// Input bytes consumed by the complete streams.
    pub consumed: usize,
    /// Bytes after the last stream that are not another stream.
    pub trailing: usize,
}

impl Decoded {
    fn stopped(&self) -> bool {
        self.limit.is_some() || self.over_cap
    }
}

/// A `Write` sink that appends to `Decoded::out` within the cap and the budget.
/// Bytes every decoder of this process has produced: an instrument (tests/decompress_count.py
/// counts what pickleguard decompresses next to what the loaders do), one relaxed add per
/// piece of output.
static DECOMPRESSED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Bytes every decoder of this process has produced so far (an instrument for the tests).
pub fn decompressed_bytes() -> u64 {
    DECOMPRESSED.load(std::sync::atomic::Ordering::Relaxed)
}

pub(crate) fn count_decompressed(n: usize) {
    DECOMPRESSED.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
}

struct Sink<'a> {
    d: &'a mut Decoded,
    cap: u64,
    budget: &'a Budget,
}

impl<'a> Sink<'a> {
    fn new(d: &'a mut Decoded, cap: u64, budget: &'a Budget) -> Self {
        Sink { d, cap, budget }
    }
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.cap.saturating_sub(self.d.out.len() as u64);
        let keep = (buf.len() as u64).min(room) as usize;
        if let Err(what) = self.budget.take(keep as u64) {
            self.d.limit = Some(what);
            return Err(io::Error::other("pickleguard: decompression limit"));
        }
        count_decompressed(keep);
        let out = &mut self.d.out;
        if out.capacity() - out.len() < keep {
            // Grow by a quarter, not by doubling: the peak stays near the output's size (large
            // reallocations are remapped, not copied).
            out.reserve_exact(keep.max(out.len() / 4).max(1 << 20));
        }
        out.extend_from_slice(&buf[..keep]);
        if keep < buf.len() {
            self.d.over_cap = true;
            return Err(io::Error::other("pickleguard: declared size exceeded"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Copy a decoder's output into the sink. Ok(()) at the decoder's end.
fn pump<R: Read>(r: &mut R, sink: &mut Sink<'_>) -> Result<(), ()> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                if sink.write(&buf[..n]).is_err() {
                    return Err(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                if !sink.d.stopped() {
                    sink.d.error = Some(e.to_string());
                }
                return Err(());
            }
        }
    }
}

/// Input for a decoder that [`recover`] reads again: whole while the output is far from where
/// the first pass failed, then a byte at a time, so the decoder cannot decode past the error
/// ahead of its output (a deflate decoder decodes up to its 32 KiB window ahead, and checks a
/// zlib checksum before it hands out a stream shorter than that).
struct Trickle<'a> {
    data: &'a [u8],
    pos: usize,
    slow: std::rc::Rc<std::cell::Cell<bool>>,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = std::io::BufRead::fill_buf(self)?.len().min(buf.len());
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl std::io::BufRead for Trickle<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let end = if self.slow.get() {
            (self.pos + 1).min(self.data.len())
        } else {
            self.data.len()
        };
        Ok(&self.data[self.pos..end])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.data.len());
    }
}

/// A zstd decoder that may have failed to start (then it reads nothing).
struct ZstdMember<R: Read>(
    Option<ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>>,
);

impl<R: Read> Read for ZstdMember<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.0 {
            Some(d) => d.read(buf),
            None => Ok(0),
        }
    }
}

/// How far before the first pass's last good byte [`recover`] starts to trickle its input.
const TRICKLE_BEFORE: usize = 256 << 10;

/// After a decoding error ended a member whose compressed bytes are `input`: decode it again
/// with a fresh decoder (`make`), skip what the first pass kept since `start`, and read on from
/// input handed over a byte at a time, a byte out per read. A decoder drops the output of the read that fails (up to
/// 64 KiB, or the whole of a small member whose checksum is wrong), while Python's decompressors
/// hand a streaming loader every byte before the error: a payload followed by a flipped
/// checksum byte runs there.
fn recover<'i, R: Read>(
    input: &'i [u8],
    make: impl FnOnce(Trickle<'i>) -> R,
    sink: &mut Sink<'_>,
    start: usize,
) {
    if sink.d.stopped() || sink.d.error.is_none() {
        return;
    }
    let good = sink.d.out.len() - start;
    let slow = std::rc::Rc::new(std::cell::Cell::new(good <= TRICKLE_BEFORE));
    let mut member = make(Trickle {
        data: input,
        pos: 0,
        slow: slow.clone(),
    });
    let mut skip = good;
    let mut buf = vec![0u8; 1 << 16];
    while skip > 0 {
        if skip <= TRICKLE_BEFORE {
            slow.set(true);
        }
        let want = skip
            .min(buf.len())
            .min(if slow.get() { 1 << 12 } else { usize::MAX });
        match member.read(&mut buf[..want]) {
            Ok(0) => return,
            Ok(n) => skip -= n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
    // A byte per read: the read that fails loses what it decoded (bzip2 checks a block's CRC
    // after decoding all of it).
    loop {
        match member.read(&mut buf[..1]) {
            Ok(0) => return,
            Ok(n) => {
                if sink.write(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// [`recover`] for the lzma decoders: `step` drives a fresh decoder over the same `input`,
/// which it is handed a byte at a time near the error (more when it needs more to go on).
/// A cut stream was already read to its end by [`drive`].
fn redrive(
    input: &[u8],
    sink: &mut Sink<'_>,
    start: usize,
    mut step: impl FnMut(&[u8], &mut [u8], lzma_rust2::Action) -> io::Result<lzma_rust2::StreamResult>,
) {
    if sink.d.stopped() || sink.d.error.is_none() || sink.d.cut {
        return;
    }
    let mut skip = sink.d.out.len() - start;
    let mut buf = vec![0u8; 1 << 12];
    let mut pos = 0;
    let mut chunk = 1;
    loop {
        let slow = skip <= TRICKLE_BEFORE;
        let end = if slow {
            (pos + chunk).min(input.len())
        } else {
            input.len()
        };
        let want = if skip > 0 {
            skip.min(buf.len())
        } else {
            buf.len()
        };
        let Ok(r) = step(&input[pos..end], &mut buf[..want], lzma_rust2::Action::Run) else {
            return;
        };
        pos += r.bytes_consumed;
        if skip > 0 {
            skip -= r.bytes_produced.min(skip);
        } else if r.bytes_produced > 0 && sink.write(&buf[..r.bytes_produced]).is_err() {
            return;
        }
        if r.status == lzma_rust2::Status::StreamEnd {
            return;
        }
        if r.bytes_consumed == 0 && r.bytes_produced == 0 {
            if end >= input.len() {
                return;
            }
            chunk *= 2;
        } else {
            chunk = 1;
        }
    }
}

/// Decompress a whole file's stream(s); output capped at `cap` bytes (and by the budget).
pub fn decompress(budget: &Budget, codec: Codec, data: &[u8], cap: u64) -> Decoded {
    let mut d = Decoded::default();
    let mut rest: &[u8] = data;
    match codec {
        Codec::Gzip => loop {
            let start = d.out.len();
            let mut dec = flate2::bufread::GzDecoder::new(rest);
            let ok = pump(&mut dec, &mut Sink::new(&mut d, cap, budget));
            if ok.is_err() {
                let again = flate2::bufread::GzDecoder::new;
                recover(rest, again, &mut Sink::new(&mut d, cap, budget), start);
                break;
            }
            rest = dec.into_inner();
            // Python's gzip reader skips zero padding between members.
            let zeros = rest.iter().take_while(|b| **b == 0).count();
            rest = &rest[zeros..];
            d.consumed = data.len() - rest.len();
            if rest.is_empty() {
                break;
            }
            if !rest.starts_with(b"\x1f\x8b") {
                d.trailing = rest.len();
                break;
            }
        },
        Codec::Bz2 => loop {
            let start = d.out.len();
            let mut dec = bzip2::bufread::BzDecoder::new(rest);
            if pump(&mut dec, &mut Sink::new(&mut d, cap, budget)).is_err() {
                let again = bzip2::bufread::BzDecoder::new;
                recover(rest, again, &mut Sink::new(&mut d, cap, budget), start);
                break;
            }
            rest = dec.into_inner();
            d.consumed = data.len() - rest.len();
            if rest.is_empty() {
                break;
            }
            if !bz2_start(rest) {
                d.trailing = rest.len();
                break;
            }
        },
        Codec::Xz => loop {
            // One stream per decoder, so that padding and what follows are read as Python
            // reads them. The decoder's window grows with its output, never to the declared
            // dictionary size, and every byte out passes the sink's budget first.
            let start = d.out.len();
            let mut dec = lzma_rust2::XzStream::new(false);
            let Ok(used) = drive(rest, &mut Sink::new(&mut d, cap, budget), |i, o, a| {
                dec.process(i, o, a)
            }) else {
                let mut again = lzma_rust2::XzStream::new(false);
                redrive(
                    rest,
                    &mut Sink::new(&mut d, cap, budget),
                    start,
                    |i, o, a| again.process(i, o, a),
                );
                break;
            };
            rest = &rest[used..];
            // Stream padding: zero bytes in multiples of four.
            let zeros = rest.iter().take_while(|b| **b == 0).count() / 4 * 4;
            rest = &rest[zeros..];
            d.consumed = data.len() - rest.len();
            if rest.is_empty() {
                break;
            }
            if !rest.starts_with(XZ_MAGIC) {
                d.trailing = rest.len();
                break;
            }
        },
        Codec::Lzma => {
            let mut first = true;
            loop {
                if rest.iter().all(|&b| b == 0) {
                    // Zeros are a run of empty `.lzma` streams (properties 0, dictionary 0,
                    // size 0) and a tail too short for another: liblzma gives nothing and
                    // LZMAFile ignores the tail. Walked one stream at a time, a zero-filled
                    // file cost a decoder per 18 bytes.
                    d.consumed = data.len();
                    break;
                }
                let before = d.out.len();
                let mut dec = lzma_rust2::LzmaStream::new_mem_limit(u32::MAX, None);
                let r = drive(rest, &mut Sink::new(&mut d, cap, budget), |i, o, a| {
                    dec.process(i, o, a)
                });
                let Ok(used) = r else {
                    let mut again = lzma_rust2::LzmaStream::new_mem_limit(u32::MAX, None);
                    redrive(
                        rest,
                        &mut Sink::new(&mut d, cap, budget),
                        before,
                        |i, o, a| again.process(i, o, a),
                    );
                    if !d.stopped() && !first && d.out.len() == before {
                        // Python's LZMAFile ignores trailing data that is no stream.
                        d.error = None;
                        d.cut = false;
                        d.trailing = rest.len();
                    }
                    break;
                };
                // The decoder may have taken a few bytes past the stream's end.
                let used = used.saturating_sub(dec.unused_input().len());
                first = false;
                rest = &rest[used..];
                d.consumed = data.len() - rest.len();
                if rest.is_empty() || used == 0 {
                    break;
                }
            }
        }
        Codec::Zlib => loop {
            let start = d.out.len();
            let mut dec = flate2::bufread::ZlibDecoder::new(rest);
            if pump(&mut dec, &mut Sink::new(&mut d, cap, budget)).is_err() {
                let again = flate2::bufread::ZlibDecoder::new;
                recover(rest, again, &mut Sink::new(&mut d, cap, budget), start);
                break;
            }
            rest = dec.into_inner();
            d.consumed = data.len() - rest.len();
            if rest.is_empty() {
                break;
            }
            if !zlib_start(rest) {
                d.trailing = rest.len();
                break;
            }
        },
        Codec::JoblibZfile => {
            let skip = zfile_header_len(data).unwrap_or(data.len()).min(data.len());
            let mut dec = flate2::bufread::ZlibDecoder::new(&data[skip..]);
            if pump(&mut dec, &mut Sink::new(&mut d, cap, budget)).is_ok() {
                d.consumed = data.len() - dec.into_inner().len();
            } else {
                let again = flate2::bufread::ZlibDecoder::new;
                recover(&data[skip..], again, &mut Sink::new(&mut d, cap, budget), 0);
            }
        }
        Codec::Zstd => loop {
            if skippable_frame(rest) {
                let n = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
                match rest.get(8usize.saturating_add(n)..) {
                    Some(r) => rest = r,
                    None => {
                        d.error = Some("truncated skippable frame".into());
                        break;
                    }
                }
            } else if rest.starts_with(ZSTD_MAGIC) {
                // The decoder reserves the frame's window up front: a header that declares
                // terabytes would abort the process. A window larger than what this scan may
                // still decompress cannot be filled within the budget anyway.
                let window = zstd_window(rest).unwrap_or(0);
                if let Err(what) = budget.fits(window) {
                    d.limit = Some(what);
                    break;
                }
                let start = d.out.len();
                let mut src: &[u8] = rest;
                let r = match ruzstd::decoding::StreamingDecoder::new(&mut src) {
                    Ok(mut dec) => pump(&mut dec, &mut Sink::new(&mut d, cap, budget)),
                    Err(e) => {
                        d.error = Some(e.to_string());
                        Err(())
                    }
                };
                if r.is_err() {
                    let sink = &mut Sink::new(&mut d, cap, budget);
                    recover(
                        rest,
                        |t| ZstdMember(ruzstd::decoding::StreamingDecoder::new(t).ok()),
                        sink,
                        start,
                    );
                    break;
                }
                rest = src;
            } else {
                d.trailing = rest.len();
                break;
            }
            d.consumed = data.len() - rest.len();
            if rest.is_empty() {
                break;
            }
        },
        Codec::Lz4 => loop {
            if skippable_frame(rest) {
                let n = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
                match rest.get(8usize.saturating_add(n)..) {
                    Some(r) => rest = r,
                    None => {
                        d.error = Some("truncated skippable frame".into());
                        break;
                    }
                }
            } else if rest.starts_with(LZ4_MAGIC) {
                let start = d.out.len();
                let mut src: &[u8] = rest;
                let mut dec = lz4_flex::frame::FrameDecoder::new(&mut src);
                if pump(&mut dec, &mut Sink::new(&mut d, cap, budget)).is_err() {
                    let again = lz4_flex::frame::FrameDecoder::new;
                    recover(rest, again, &mut Sink::new(&mut d, cap, budget), start);
                    break;
                }
                drop(dec);
                if src.len() == rest.len() {
                    d.error = Some("lz4 frame made no progress".into());
                    break;
                }
                rest = src;
            } else {
                d.trailing = rest.len();
                break;
            }
            d.consumed = data.len() - rest.len();
            if rest.is_empty() {
                break;
            }
        },
    }
    d
}

/// Decompress a raw deflate stream (a zip member); `consumed` tells where it ended.
pub fn inflate(budget: &Budget, data: &[u8], cap: u64) -> Decoded {
    let mut d = Decoded::default();
    let mut dec = flate2::bufread::DeflateDecoder::new(data);
    if pump(&mut dec, &mut Sink::new(&mut d, cap, budget)).is_ok() {
        d.consumed = dec.total_in() as usize;
    } else {
        let again = flate2::bufread::DeflateDecoder::new;
        recover(data, again, &mut Sink::new(&mut d, cap, budget), 0);
    }
    d
}

/// A bzip2 zip member (method 12).
pub fn bunzip(budget: &Budget, data: &[u8], cap: u64) -> Decoded {
    let mut d = Decoded::default();
    let mut dec = bzip2::bufread::BzDecoder::new(data);
    if pump(&mut dec, &mut Sink::new(&mut d, cap, budget)).is_err() {
        let again = bzip2::bufread::BzDecoder::new;
        recover(data, again, &mut Sink::new(&mut d, cap, budget), 0);
    }
    d
}

/// An LZMA zip member (method 14): version (2 bytes), properties size (2), properties, data.
/// `eos`: general purpose flag bit 1, an end marker terminates the data.
pub fn zip_lzma(budget: &Budget, data: &[u8], size: u64, eos: bool, cap: u64) -> Decoded {
    let mut d = Decoded::default();
    let Some(&[props, a, b, c, e]) = data.get(4..9) else {
        d.error = Some("truncated LZMA header".into());
        return d;
    };
    let dict = u32::from_le_bytes([a, b, c, e]);
    let unpacked = if eos { u64::MAX } else { size };
    let mut dec = match lzma_rust2::LzmaStream::new_with_props(unpacked, props, dict, None) {
        Ok(dec) => dec,
        Err(e) => {
            d.error = Some(e.to_string());
            return d;
        }
    };
    let failed = drive(
        &data[9..],
        &mut Sink::new(&mut d, cap, budget),
        |i, o, a| dec.process(i, o, a),
    )
    .is_err();
    if failed {
        if let Ok(mut again) = lzma_rust2::LzmaStream::new_with_props(unpacked, props, dict, None) {
            redrive(
                &data[9..],
                &mut Sink::new(&mut d, cap, budget),
                0,
                |i, o, a| again.process(i, o, a),
            );
        }
    }
    d
}

/// Run a sans-I/O decoder over `input` (all of it at hand) into the sink until its stream
/// ends: `Ok(input bytes it took)`, or `Err(())` with the error or limit recorded.
///
/// A decoder told the input is complete fails a cut stream with everything it decoded in that
/// call unreported, while liblzma (Python's `lzma`) hands out all it decoded before the cut, and
/// a streaming loader unpickles that. So the decoder runs without being told until it stalls
/// (it keeps a margin of input back), and then finishes one output byte per call, so that an
/// error loses nothing it decoded.
fn drive(
    input: &[u8],
    sink: &mut Sink<'_>,
    mut step: impl FnMut(&[u8], &mut [u8], lzma_rust2::Action) -> io::Result<lzma_rust2::StreamResult>,
) -> Result<usize, ()> {
    let mut buf = vec![0u8; 1 << 16];
    let mut pos = 0;
    let mut action = lzma_rust2::Action::Run;
    loop {
        let out = match action {
            lzma_rust2::Action::Run => &mut buf[..],
            lzma_rust2::Action::Finish => &mut buf[..1],
        };
        match step(&input[pos..], out, action) {
            Ok(r) => {
                pos += r.bytes_consumed;
                if r.bytes_produced > 0 && sink.write(&buf[..r.bytes_produced]).is_err() {
                    return Err(());
                }
                if r.status == lzma_rust2::Status::StreamEnd {
                    return Ok(pos);
                }
                if r.bytes_consumed == 0 && r.bytes_produced == 0 {
                    if action == lzma_rust2::Action::Run {
                        action = lzma_rust2::Action::Finish;
                        continue;
                    }
                    sink.d.error = Some("truncated stream".into());
                    sink.d.cut = true;
                    return Err(());
                }
            }
            Err(e) => {
                if !sink.d.stopped() {
                    sink.d.error = Some(e.to_string());
                    sink.d.cut = e.kind() == io::ErrorKind::UnexpectedEof;
                }
                return Err(());
            }
        }
    }
}

/// How much is decompressed first to see whether the rest can matter.
const PREFIX: u64 = 64 << 10;

/// Whether the start of a decompressed stream shows that nothing in it can run: it is no
/// container, and its first pickle breaks (not for want of bytes) before any import or call.
fn prefix_cannot_run(cx: &ScanContext<'_>, prefix: &[u8]) -> bool {
    use crate::machine::{Machine, MachineError, Outcome};
    use crate::reader::ReadError;
    match super::sniff(prefix) {
        super::Kind::Raw => {}
        // A compressed header with nothing behind it (zeros read as empty `.lzma` streams)
        // holds no container: the bytes are judged as they are.
        super::Kind::Compressed(c) if decompress(&cx.budget, c, prefix, PREFIX).out.is_empty() => {}
        _ => return false,
    }
    if super::torch::is_legacy(prefix) {
        return false;
    }
    let mut m = Machine::new(prefix, cx.policy.limits.clone());
    let broke = matches!(m.run(0), Outcome::Error { err, .. } if err != MachineError::Read(ReadError::Truncated));
    broke && m.first_effect.is_none()
}

/// Scan a compressed file: the decompressed bytes are sniffed and scanned again. `None` when
/// the magic bytes lied and nothing decompresses (then the caller reads the bytes as they are).
pub fn scan(cx: &ScanContext<'_>, codec: Codec, data: &[u8]) -> Option<Report> {
    // A bomb of zeros (or of anything that is no pickle) shows it in its first bytes: joblib's
    // pickle.load stops there, so the rest is not decompressed (10 GB of zeros took minutes
    // and 10 GB of memory).
    let head = decompress(&cx.budget, codec, data, PREFIX);
    let d = if head.over_cap && prefix_cannot_run(cx, &head.out) {
        let mut d = head;
        d.over_cap = false;
        d
    } else {
        decompress(&cx.budget, codec, data, u64::MAX)
    };
    // Nothing decompressed: the magic bytes lied, or (`.lzma` has no magic) the bytes only
    // looked like a header, as zeros do.
    // (An xz header is checked by its magic and CRC: a cut xz stream is still xz.)
    if d.out.is_empty()
        && d.limit.is_none()
        && !d.cut
        && (d.error.is_some() || codec == Codec::Lzma)
    {
        return None;
    }
    let c = codec.name();
    let label = crate::report::Segment::Decompressed {
        codec: c.to_string(),
    };
    let inner = cx.within(&label, || cx.deeper(|| scan_at(cx, &d.out)));
    let format = match (codec, inner.format.as_str()) {
        (Codec::JoblibZfile, "not_pickle") => "zfile".to_string(),
        (Codec::JoblibZfile, _) => "joblib_compat".to_string(),
        (_, "raw_pickle") => format!("{c}_pickle"),
        (_, "joblib") => format!("joblib_{c}"),
        (_, "not_pickle") => c.to_string(),
        (_, other) => format!("{other}_{c}"),
    };
    let mut r = Report::new(&format);
    if let Some(what) = d.limit {
        super::limit(&mut r, d.consumed as u64, what);
    }
    if let Some(e) = &d.error {
        let text = if d.cut {
            format!(
                "the {c} stream is cut off after {} decompressed bytes ({e}): Python's lzma hands a streaming loader what it decodes before the cut, which may be a few bytes more than this scan reads, so the file is not judged safe",
                d.out.len()
            )
        } else {
            format!(
                "the {c} data is corrupt or truncated after {} decompressed bytes ({e}): a streaming loader runs what Python's decoder hands it before it notices, which may be a few bytes more than this scan reads, so the file is not judged safe",
                d.out.len()
            )
        };
        // Python's decoders hand a streaming loader what they decode before the damage, and
        // this scan may read less: liblzma decodes a damaged stream a few KiB further than
        // this decoder, libbz2 hands out a block's last byte before its CRC fails
        // (tests/test_corrupt_streams.py). A damaged stream is never judged safe.
        let sev = Severity::Medium;
        r.push(Finding::new(
            FindingType::Malformed,
            sev,
            d.consumed as u64,
            text,
        ));
    }
    if d.trailing > 0 {
        r.push(Finding::new(
            FindingType::TrailingData,
            Severity::Low,
            (data.len() - d.trailing) as u64,
            format!(
                "{} bytes after the {c} data are not another {c} stream; loaders do not decompress them",
                d.trailing
            ),
        ));
    }
    r.absorb(inner, Some(&label));
    super::raw_view(cx, data, &mut r);
    Some(r)
}

#[cfg(test)]
mod tests;
