//! Containers: find every pickle a real loader would execute inside a file (zip, torch,
//! joblib, numpy, tar, compressed streams) and analyse it. Detection is by content only, never
//! by file name. Decisions and the loaders' behaviour they follow are in docs/containers.md.
//!
//! Every container scanner returns a [`Report`] whose findings carry `member` (the path inside
//! the container) and whose `format` names what was found. What cannot be opened is an
//! `UNSCANNABLE` finding; where two views of one file disagree (zip central directory vs local
//! headers, a pickle in front of a zip) the disagreement is a `STRUCTURAL_TAMPER` finding.

use crate::analysis::{analyze_stream, Context};
use crate::context::ScanContext;
use crate::report::{
    Finding, FindingType, Limit, MemberPath, Report, Segment, Severity, StopReason,
};

mod compress;
mod npy;
mod pylit;
pub mod side_files;
mod tar;
mod torch;
mod zip;

pub use compress::decompressed_bytes;
pub use zip::storage_members;

/// How a scan reads a file's bytes.
#[derive(PartialEq)]
enum Reading {
    /// Headers and pickles between the rest: a zip's directory, local headers and pickle
    /// members; a tar's headers and members; a legacy PyTorch file's pickles and storage
    /// headers; a numeric `.npy` file's header.
    Sparse,
    /// From start to end: a pickle (protocol 2 and up), an object `.npy`, a compressed stream.
    Whole,
    /// Its first bytes (and a raw stream's tail): bytes that are no pickle, an archive it
    /// cannot open. As a whole file, a protocol 0/1 pickle is read whole too.
    Head,
}

fn reading(data: &[u8]) -> Reading {
    match sniff(data) {
        Kind::Zip | Kind::Tar => Reading::Sparse,
        Kind::Npy if npy::header(data).is_some_and(|h| !h.any_objects) => Reading::Sparse,
        Kind::Raw if torch::is_legacy(data) => Reading::Sparse,
        Kind::Npy | Kind::Compressed(_) => Reading::Whole,
        Kind::Raw if data.first() == Some(&0x80) => Reading::Whole,
        Kind::Raw | Kind::Unopenable(..) => Reading::Head,
    }
}

/// What a scan takes `data` to be from its first bytes: the container or codec it opens
/// (`"zip"`, `"npy"`, `"tar"`, `"gzip"`, `"lzma"`, ..., or an archive it cannot open such as
/// `"7z"`), or `None` for bytes it reads as a pickle. The one place that decides it: the
/// Python middleware asks this rather than keeping its own list of signatures.
pub fn container_kind(data: &[u8]) -> Option<&'static str> {
    match sniff(data) {
        Kind::Zip => Some("zip"),
        Kind::Npy => Some("npy"),
        Kind::Compressed(c) => Some(c.name()),
        Kind::Tar => Some("tar"),
        Kind::Unopenable(fmt, _) => Some(fmt),
        Kind::Raw => None,
    }
}

/// Whether a scan reads `data` as a legacy PyTorch file (`torch.save` without the zip
/// format: the magic number's pickle first, then four more pickles and the storages), so a
/// loader hands it to `torch.load`, not `pickle.load`. Asked by the Python loader.
pub fn is_torch_legacy(data: &[u8]) -> bool {
    matches!(sniff(data), Kind::Raw) && torch::is_legacy(data)
}

/// Whether a scan of `data` reads only a small part of it (headers and pickles, see
/// `Reading::Sparse`); anything else is read from start to end. A caller that maps a large
/// file uses this to tell the kernel whether reading ahead helps: on a cold cache, a sparse
/// scan that reads ahead reads the weights too (docs/cli.md, "Reading files").
pub fn reads_sparsely(data: &[u8]) -> bool {
    reading(data) == Reading::Sparse
}

/// A stored member is read whole (see `Reading::Whole`) next: hint it; a numeric `.npy`, a
/// nested archive or bytes that are no pickle are read at their head only.
pub(crate) fn will_read_member(cx: &ScanContext<'_>, content: &[u8]) {
    if cx.hints(content) && reading(content) == Reading::Whole {
        cx.will_read(content);
    }
}

/// Analyse a file found inside another one (an archive member, the bytes handed to
/// `torch.storage._load_from_bytes` or `pickle.loads`) at the context's depth. This is the
/// `crate::context::NestedScanner` of every scan (`crate::Scan`).
pub(crate) fn scan_nested(cx: &ScanContext<'_>, data: &[u8]) -> Report {
    let mut r = scan_at(cx, data);
    r.finish(cx.policy.threshold);
    r
}

/// The stream-analysis context for pickles found at the current depth.
pub(crate) fn stream_ctx<'s>(cx: &'s ScanContext<'s>) -> Context<'s> {
    Context {
        joblib: true,
        torchscript: cx.in_torchscript(),
        stream: None,
        scan: cx,
    }
}

/// Analyse raw pickle bytes (all pickles of the stream), recording the stream.
pub(crate) fn analyze(cx: &ScanContext<'_>, data: &[u8]) -> Report {
    let at = cx.begin_stream(data);
    let ctx = Context {
        stream: at,
        ..stream_ctx(cx)
    };
    let r = analyze_stream(data, cx.policy, &ctx);
    cx.end_stream(at, &r.format);
    r
}

/// What the first bytes say a file is.
enum Kind {
    Zip,
    Npy,
    Compressed(compress::Codec),
    Tar,
    Unopenable(&'static str, &'static str),
    Raw,
}

fn sniff(data: &[u8]) -> Kind {
    if zip::starts_like_zip(data) {
        return Kind::Zip;
    }
    if data.starts_with(npy::MAGIC) {
        return Kind::Npy;
    }
    if data.starts_with(b"7z\xbc\xaf\x27\x1c") {
        return Kind::Unopenable("7z", "a 7-Zip archive");
    }
    if data.starts_with(b"Rar!\x1a\x07") {
        return Kind::Unopenable("rar", "a RAR archive");
    }
    if data.starts_with(b"\xff\x06\x00\x00sNaPpY") {
        return Kind::Unopenable("snappy", "a Snappy-framed stream");
    }
    if let Some(c) = compress::sniff(data) {
        return Kind::Compressed(c);
    }
    if tar::is_tar(data) {
        return Kind::Tar;
    }
    Kind::Raw
}

/// Scan without the final verdict (callers fold the result into their own report).
pub(crate) fn scan_at(cx: &ScanContext<'_>, data: &[u8]) -> Report {
    let policy = cx.policy;
    if cx.depth() > policy.limits.max_nesting {
        let mut r = Report::new("unscannable");
        limit(&mut r, 0, Limit::NestingDepth);
        return r;
    }
    // Each file and archive member: a scan past its deadline opens nothing more.
    if cx.budget.out_of_time() {
        let mut r = Report::new("not_scanned");
        limit(&mut r, 0, Limit::Time);
        return r;
    }
    match sniff(data) {
        Kind::Zip => zip::scan(cx, data),
        Kind::Npy => npy::scan(cx, data),
        Kind::Compressed(c) => compress::scan(cx, c, data)
            .or_else(|| compress::second_guess(c, data).and_then(|c| compress::scan(cx, c, data)))
            .unwrap_or_else(|| scan_raw(cx, data)),
        Kind::Tar => tar::scan(cx, data),
        Kind::Unopenable(fmt, what) => unopenable(cx, data, fmt, what),
        Kind::Raw => scan_raw(cx, data),
    }
}

fn unopenable(cx: &ScanContext<'_>, data: &[u8], fmt: &str, what: &str) -> Report {
    let mut r = Report::new("unscannable");
    let mut f = Finding::new(
        FindingType::Unscannable,
        Severity::High,
        0,
        format!("{what} ({fmt}): pickleguard cannot open it, so what it holds was not checked"),
    );
    f.name = Some(fmt.to_string());
    r.push(f);
    r.complete = false;
    r.stopped_by = Some(StopReason::Unscannable(Some(fmt.to_string())));
    raw_view(cx, data, &mut r);
    r
}

/// A file that is no container: one or more pickles, a legacy torch file, a pickle with a zip
/// behind it, or something that is not a pickle at all.
fn scan_raw(cx: &ScanContext<'_>, data: &[u8]) -> Report {
    if torch::is_legacy(data) {
        return torch::scan_legacy(cx, data);
    }
    let mark = cx.streams_mark();
    let mut r = analyze(cx, data);
    if let Some(z) = zip::locate(data) {
        if z.start > 0 {
            let pickle_end = pickles_end(cx, data);
            if z.start >= pickle_end {
                // A pickle with a zip behind it: pickle.load and torch.load run the pickle,
                // zipfile-based loaders read the zip. Both views are analysed.
                cx.forget_streams(mark);
                return zip::scan_polyglot(cx, data, r, z.start);
            }
            // A zip embedded in the pickle's own bytes (a bytes literal): Python's zipfile
            // still opens the file as that zip, so its members are analysed too.
            let label = Segment::EmbeddedZip { at: z.start as u64 };
            let inner = cx.within(&label, || zip::scan(cx, data));
            r.absorb(inner, Some(&label));
        }
    }
    if r.format == "not_pickle" {
        if let Some(name) = known_format(data) {
            r.format = name.to_string();
        }
    }
    r
}

/// Where the last complete pickle of a stream ends (0 if none), without judging anything.
pub(crate) fn pickles_end(cx: &ScanContext<'_>, data: &[u8]) -> usize {
    use crate::machine::{Machine, Outcome};
    let policy = cx.policy;
    let mut m = Machine::new(data, policy.limits.clone());
    m.set_deadline(cx.budget.deadline());
    let mut pos = 0usize;
    let mut n = 0u64;
    while pos < data.len() && n < policy.limits.max_pickles {
        m.reset();
        match m.run(pos) {
            Outcome::Stop { end, .. } if end > pos => pos = end,
            _ => break,
        }
        n += 1;
    }
    pos
}

/// Formats that are known not to hold a pickle (reported by name, safe).
fn known_format(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(b"GGUF") {
        return Some("gguf");
    }
    if data.starts_with(b"\x89HDF\r\n\x1a\n") {
        return Some("hdf5");
    }
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("png");
    }
    if data.starts_with(b"\xff\xd8\xff") {
        return Some("jpeg");
    }
    if data.len() >= 10 {
        let n = u64::from_le_bytes(data[..8].try_into().ok()?);
        if n >= 2 && n <= (data.len() as u64 - 8) && data[8] == b'{' {
            return Some("safetensors");
        }
    }
    None
}

/// Analyse a container's bytes as a pickle too (`pickle.load` on the file itself): reported only
/// when that view would import or call something the policy flags.
pub(crate) fn raw_view(cx: &ScanContext<'_>, data: &[u8], into: &mut Report) {
    let mark = cx.streams_mark();
    let r = cx.within(&Segment::RawPickleView, || analyze(cx, data));
    let effects = r.findings.iter().any(|f| {
        !matches!(
            f.kind,
            FindingType::Malformed | FindingType::TrailingData | FindingType::ResourceLimit
        )
    });
    if !effects {
        into.carry_limits(&r, &Segment::RawPickleView);
        cx.forget_streams(mark);
        return;
    }
    into.push(tamper(
        0,
        format!(
            "the {} file is also a pickle: pickle.load on the file itself runs it",
            into.format
        ),
    ));
    into.absorb(r, Some(&Segment::RawPickleView));
}

pub(crate) fn tamper(pos: u64, desc: String) -> Finding {
    Finding::new(FindingType::StructuralTamper, Severity::High, pos, desc)
}

pub(crate) fn limit(r: &mut Report, pos: u64, what: Limit) {
    r.push(Finding::limit(
        pos,
        what,
        format!("analysis stopped at the {what} limit: the rest of the file was not checked"),
    ));
    r.complete = false;
    if r.stopped_by.is_none() {
        r.stopped_by = Some(what.into());
    }
}

pub(crate) fn unscannable(r: &mut Report, pos: u64, member: Option<&Segment>, desc: String) {
    let mut f = Finding::new(FindingType::Unscannable, Severity::High, pos, desc);
    f.member = member.map(|m| MemberPath::new(m.clone()));
    r.push(f);
    r.complete = false;
    if r.stopped_by.is_none() {
        r.stopped_by = Some(StopReason::Unscannable(None));
    }
}
