//! Zip archives read both ways: the central directory (what Python's `zipfile` and torch's
//! miniz reader use) and a walk over the local file headers from the start (what streaming
//! readers and many scanners use). Members are read as tolerantly as torch reads them: CRCs are
//! not checked, flag bits are ignored except encryption, zeroed local sizes with a data
//! descriptor use the central sizes. Every disagreement between the two views is a
//! `STRUCTURAL_TAMPER` finding, and every member either view reaches is analysed.

use super::{compress, scan_at, tamper, Report};
use crate::context::budget::Budget;
use crate::context::ScanContext;
use crate::report::{Finding, FindingType, Limit, MemberPath, MemberView, Segment, Severity};
use std::borrow::Cow;
use std::collections::HashMap;

mod defer;

const LOCAL_SIG: &[u8] = b"PK\x03\x04";
const CENTRAL_SIG: &[u8] = b"PK\x01\x02";
const EOCD_SIG: &[u8] = b"PK\x05\x06";
const EOCD64_SIG: &[u8] = b"PK\x06\x06";
const LOCATOR_SIG: &[u8] = b"PK\x06\x07";
const DESCRIPTOR_SIG: &[u8] = b"PK\x07\x08";

/// At most this many tamper findings of one kind are listed one by one.
const MAX_LISTED: usize = 20;

pub fn starts_like_zip(d: &[u8]) -> bool {
    d.starts_with(LOCAL_SIG)
        || d.starts_with(EOCD_SIG)
        || (d.starts_with(b"PK\x07\x08") || d.starts_with(b"PK00")) && d[4..].starts_with(LOCAL_SIG)
}

fn u16_at(d: &[u8], p: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        d.get(p..p.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(d: &[u8], p: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        d.get(p..p.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(d: &[u8], p: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        d.get(p..p.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn sig_at(d: &[u8], p: u64, sig: &[u8]) -> bool {
    usize::try_from(p)
        .ok()
        .and_then(|p| d.get(p..p.checked_add(4)?))
        .map(|s| s == sig)
        .unwrap_or(false)
}

fn name_text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One central directory entry.
#[derive(Clone, Debug)]
struct Central {
    pos: usize,
    name: Vec<u8>,
    flags: u16,
    method: u16,
    csize: u64,
    usize: u64,
    local: u64,
}

/// The central directory and the records around it.
#[derive(Debug)]
struct Directory {
    /// Whose reading of the end records this is.
    reader: Reader,
    entries: Vec<Central>,
    cd_start: usize,
    cd_end: usize,
    /// EOCD and its comment.
    eocd: (usize, usize),
    /// zip64 end record and locator.
    z64: Vec<(usize, usize)>,
    /// Entries the end record declares.
    declared: u64,
    /// Added to every offset (bytes in front of the archive, as Python's zipfile computes).
    shift: u64,
}

/// Fields of a zip64 extended information extra field that replace 0xFFFFFFFF values.
fn zip64_extra(
    extra: &[u8],
    want_usize: bool,
    want_csize: bool,
    want_local: bool,
) -> [Option<u64>; 3] {
    let mut out = [None; 3];
    let mut p = 0usize;
    while p + 4 <= extra.len() {
        let id = u16::from_le_bytes([extra[p], extra[p + 1]]);
        let len = u16::from_le_bytes([extra[p + 2], extra[p + 3]]) as usize;
        let body = &extra[p + 4..(p + 4 + len).min(extra.len())];
        if id == 1 {
            let mut q = 0usize;
            for (i, want) in [want_usize, want_csize, want_local].into_iter().enumerate() {
                if want {
                    if let Some(v) = u64_at(body, q) {
                        out[i] = Some(v);
                    }
                    q += 8;
                }
            }
            break;
        }
        p += 4 + len;
    }
    out
}

fn parse_central(d: &[u8], p: usize) -> Option<(Central, usize)> {
    if d.get(p..p + 4)? != CENTRAL_SIG {
        return None;
    }
    let flags = u16_at(d, p + 8)?;
    let method = u16_at(d, p + 10)?;
    let mut csize = u64::from(u32_at(d, p + 20)?);
    let mut usize_ = u64::from(u32_at(d, p + 24)?);
    let nlen = u16_at(d, p + 28)? as usize;
    let elen = u16_at(d, p + 30)? as usize;
    let clen = u16_at(d, p + 32)? as usize;
    let mut local = u64::from(u32_at(d, p + 42)?);
    let name = d.get(p + 46..p + 46 + nlen)?.to_vec();
    let end = p + 46 + nlen + elen + clen;
    let extra = d.get(p + 46 + nlen..(p + 46 + nlen + elen).min(d.len()))?;
    let z = zip64_extra(
        extra,
        usize_ == 0xffff_ffff,
        csize == 0xffff_ffff,
        local == 0xffff_ffff,
    );
    usize_ = z[0].unwrap_or(usize_);
    csize = z[1].unwrap_or(csize);
    local = z[2].unwrap_or(local);
    Some((
        Central {
            pos: p,
            name,
            flags,
            method,
            csize,
            usize: usize_,
            local,
        },
        end.min(d.len()),
    ))
}

/// Which zip64 end record a reader takes when a zip64 locator precedes the end record.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reader {
    /// Python's zipfile (`_EndRecData64`): the record right before the locator, assuming no
    /// extensible data; offsets corrected by the bytes in front of the archive.
    Zipfile,
    /// torch's miniz (`mz_zip_reader_read_central_dir`): the record at the offset the locator
    /// gives; offsets taken as they are.
    Miniz,
}

impl Reader {
    fn describe(self) -> &'static str {
        match self {
            Reader::Zipfile => {
                "Python's zipfile (numpy.load, pandas) takes the zip64 record right before the locator"
            }
            Reader::Miniz => "torch's reader (miniz) follows the locator's offset",
        }
    }
}

/// Candidate end of central directory records, last first (zipfile and miniz both take the
/// last one in the tail; earlier ones are tried only when it leads nowhere).
fn end_records(d: &[u8]) -> Vec<usize> {
    if d.len() < 22 {
        return Vec::new();
    }
    let lo = d.len().saturating_sub(22 + 0xffff);
    // Every file is searched (a pickle may have a zip behind it): a vectorised search of
    // the 64 KiB tail, not a comparison per byte. The signature cannot overlap itself, so
    // non-overlapping matches are all of them.
    memchr::memmem::rfind_iter(&d[lo..d.len() - 22 + EOCD_SIG.len()], EOCD_SIG)
        .take(8)
        .map(|i| lo + i)
        .collect()
}

/// The central directory as zipfile reads it, or else as miniz does (for polyglot location).
fn read_directory(d: &[u8]) -> Option<Directory> {
    read_directories(d).into_iter().next()
}

/// Every reading of the archive's end records that leads to a central directory: one when
/// the readers agree, two (zipfile's first) when the zip64 end records send zipfile and
/// torch's miniz to different directories.
fn read_directories(d: &[u8]) -> Vec<Directory> {
    for e in end_records(d) {
        match (
            directory_at(d, e, Reader::Zipfile),
            directory_at(d, e, Reader::Miniz),
        ) {
            (Some(a), Some(b)) if a.same_entries(&b) => return vec![a],
            (Some(a), Some(b)) => return vec![a, b],
            (Some(a), None) | (None, Some(a)) => return vec![a],
            (None, None) => {}
        }
    }
    Vec::new()
}

impl Directory {
    fn same_entries(&self, o: &Directory) -> bool {
        self.cd_start == o.cd_start
            && self.shift == o.shift
            && self.entries.len() == o.entries.len()
            && self.entries.iter().zip(&o.entries).all(|(a, b)| {
                a.pos == b.pos && a.local == b.local && a.csize == b.csize && a.name == b.name
            })
    }

    /// One reading, for a finding: where its directory is and what it lists.
    fn summary(&self) -> String {
        let mut names: Vec<String> = self
            .entries
            .iter()
            .take(8)
            .map(|c| format!("{:?}", name_text(&c.name)))
            .collect();
        if self.entries.len() > 8 {
            names.push(format!("... {} more", self.entries.len() - 8));
        }
        format!(
            "{}: central directory at byte {}, {} entries [{}]",
            self.reader.describe(),
            self.cd_start,
            self.entries.len(),
            names.join(", ")
        )
    }
}

fn directory_at(d: &[u8], e: usize, reader: Reader) -> Option<Directory> {
    let mut declared = u64::from(u16_at(d, e + 10)?);
    let mut cd_size = u64::from(u32_at(d, e + 12)?);
    let mut cd_off = u64::from(u32_at(d, e + 16)?);
    let clen = u16_at(d, e + 20)? as usize;
    let eocd = (e, (e + 22 + clen).min(d.len()));
    let mut z64 = Vec::new();
    // Where the directory should end: right before the zip64 records or the end record.
    let mut dir_end = e as u64;
    if e >= 20 && &d[e - 20..e - 16] == LOCATOR_SIG {
        z64.push((e - 20, e));
        let rec = match reader {
            Reader::Zipfile => e
                .checked_sub(20 + 56)
                .filter(|&b| &d[b..b + 4] == EOCD64_SIG),
            Reader::Miniz => {
                let at = u64_at(d, e - 20 + 8)?;
                (at <= (d.len() as u64).saturating_sub(56) && sig_at(d, at, EOCD64_SIG))
                    .then_some(at as usize)
            }
        };
        if let Some(r) = rec {
            let rsize = u64_at(d, r + 4)?;
            declared = u64_at(d, r + 32)?;
            cd_size = u64_at(d, r + 40)?;
            cd_off = u64_at(d, r + 48)?;
            let rend = (r as u64)
                .saturating_add(12)
                .saturating_add(rsize)
                .min(e as u64 - 20);
            z64.push((r, (rend as usize).max(r)));
            dir_end = r as u64;
        }
    }
    // Python: concat = where the directory ends - its size - its offset. miniz takes offsets
    // as they are.
    let concat = dir_end
        .checked_sub(cd_size)
        .and_then(|x| x.checked_sub(cd_off));
    let shift = match concat {
        Some(c) if reader == Reader::Zipfile && c > 0 && sig_at(d, cd_off + c, CENTRAL_SIG) => c,
        _ => 0,
    };
    let cd_start = usize::try_from(cd_off.checked_add(shift)?).ok()?;
    if declared > 0 && !sig_at(d, cd_start as u64, CENTRAL_SIG) {
        return None;
    }
    let cd_limit = (cd_start as u64)
        .saturating_add(cd_size)
        .min(d.len() as u64) as usize;
    let mut entries = Vec::new();
    let mut p = cd_start;
    while p < cd_limit.max(cd_start.saturating_add(1)) && entries.len() < 1 << 22 {
        match parse_central(d, p) {
            Some((c, end)) => {
                entries.push(c);
                p = end;
            }
            None => break,
        }
    }
    if entries.is_empty() && declared > 0 {
        return None;
    }
    Some(Directory {
        reader,
        entries,
        cd_start,
        cd_end: p.max(cd_start),
        eocd,
        z64,
        declared,
        shift,
    })
}

/// A local file header.
#[derive(Clone, Debug)]
struct Local {
    pos: usize,
    name: Vec<u8>,
    flags: u16,
    method: u16,
    csize: u64,
    usize: u64,
    data: usize,
    zip64: bool,
}

impl Local {
    /// Sizes left to the data descriptor (bit 3 with zeroed sizes).
    fn deferred(&self) -> bool {
        self.flags & 8 != 0 && self.csize == 0 && self.usize == 0
    }
}

fn parse_local(d: &[u8], p: usize) -> Option<Local> {
    if d.get(p..p + 4)? != LOCAL_SIG {
        return None;
    }
    let flags = u16_at(d, p + 6)?;
    let method = u16_at(d, p + 8)?;
    let mut csize = u64::from(u32_at(d, p + 18)?);
    let mut usize_ = u64::from(u32_at(d, p + 22)?);
    let nlen = u16_at(d, p + 26)? as usize;
    let elen = u16_at(d, p + 28)? as usize;
    let name = d.get(p + 30..p + 30 + nlen)?.to_vec();
    let extra = d.get(p + 30 + nlen..(p + 30 + nlen + elen).min(d.len()))?;
    let zip64 = usize_ == 0xffff_ffff || csize == 0xffff_ffff;
    if zip64 {
        // The local zip64 field holds both sizes.
        let z = zip64_extra(extra, true, true, false);
        usize_ = z[0].unwrap_or(usize_);
        csize = z[1].unwrap_or(csize);
    }
    Some(Local {
        pos: p,
        name,
        flags,
        method,
        csize,
        usize: usize_,
        data: p + 30 + nlen + elen,
        zip64,
    })
}

/// Length of a data descriptor at `p` (after a member's data), if one is there.
fn descriptor_len(d: &[u8], p: usize, zip64: bool) -> usize {
    let sig = d.get(p..p + 4) == Some(DESCRIPTOR_SIG);
    let body = if zip64 { 20 } else { 12 };
    let n = if sig { 4 + body } else { body };
    n.min(d.len().saturating_sub(p))
}

/// Where a member's data ends when the local header defers its sizes and no central entry
/// tells: a descriptor whose compressed size matches, or the end of the deflate stream.
fn find_deferred_end(budget: &Budget, d: &[u8], l: &Local) -> Option<u64> {
    let mut from = l.data;
    while let Some(off) = memfind(&d[from.min(d.len())..], DESCRIPTOR_SIG) {
        let q = from + off;
        let size = if l.zip64 {
            u64_at(d, q + 8)
        } else {
            u32_at(d, q + 8).map(u64::from)
        };
        if size == Some((q - l.data) as u64) {
            return Some((q - l.data) as u64);
        }
        from = q + 1;
    }
    if l.method == 8 {
        let dec = compress::inflate(budget, &d[l.data.min(d.len())..], u64::MAX);
        if dec.error.is_none() && dec.limit.is_none() {
            return Some(dec.consumed as u64);
        }
    }
    None
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Where a zip inside a file starts (for pickle + zip polyglots): a valid central directory
/// whose entries point at local headers.
pub struct Located {
    pub start: usize,
}

pub fn locate(d: &[u8]) -> Option<Located> {
    let dir = read_directory(d)?;
    let start = dir
        .entries
        .iter()
        .map(|c| c.local.saturating_add(dir.shift))
        .filter(|o| sig_at(d, *o, LOCAL_SIG))
        .min()?;
    Some(Located {
        start: start as usize,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A file that starts as a zip.
    Plain,
    /// A pickle with a zip behind it: the prefix is analysed separately.
    Polyglot,
    /// A zip inside another stream's bytes: only its members matter.
    Embedded,
}

/// A member to analyse.
struct Member {
    label: Segment,
    name: String,
    pos: usize,
    data: usize,
    csize: u64,
    usize: u64,
    method: u16,
    flags: u16,
    /// The local header's view of an entry whose central sizes differ.
    local_view: bool,
}

pub fn scan(cx: &ScanContext<'_>, d: &[u8], depth: u32) -> Report {
    let mode = if starts_like_zip(d) {
        Mode::Plain
    } else {
        Mode::Embedded
    };
    scan_mode(cx, d, depth, mode, 0)
}

/// A pickle (bytes `0..start`) with a zip archive behind it.
pub fn scan_polyglot(
    cx: &ScanContext<'_>,
    d: &[u8],
    depth: u32,
    _whole: Report,
    start: usize,
) -> Report {
    let mut r = scan_mode(cx, d, depth, Mode::Polyglot, start);
    let prefix = cx.within(&Segment::PickleBeforeZip, || {
        super::analyze(cx, &d[..start.min(d.len())], depth)
    });
    let mut f = tamper(
        0,
        format!(
            "a pickle (bytes 0..{start}) comes before a zip archive: pickle.load and torch.load run the pickle, zipfile-based loaders read the archive; both are analysed"
        ),
    );
    f.member = Some(MemberPath::new(Segment::PickleBeforeZip));
    r.findings.insert(0, f);
    r.absorb(prefix, Some(&Segment::PickleBeforeZip));
    r.format = "polyglot".into();
    r
}

fn scan_mode(cx: &ScanContext<'_>, d: &[u8], depth: u32, mode: Mode, start: usize) -> Report {
    let mut r = Report::new("zip");
    let dirs = read_directories(d);
    let max_members = cx.policy.limits.max_members.min(usize::MAX as u64) as usize;
    let mut lay = Layout {
        d,
        budget: &cx.budget,
        mode,
        max_members,
        tampers: Vec::new(),
        covered: Vec::new(),
        members: Vec::new(),
        by_offset: HashMap::new(),
    };
    if let [a, b] = &dirs[..] {
        lay.tampers.push(tamper(
            b.z64.first().map_or(0, |z| z.0 as u64),
            format!(
                "the zip64 end records lead to two different central directories: {}; {}. Each loader sees a different file list; both are analysed",
                a.summary(),
                b.summary()
            ),
        ));
    }
    for (i, dir) in dirs.iter().enumerate() {
        lay.central(dir, i > 0);
    }
    lay.walk_locals(start);
    if dirs.is_empty() && lay.members.is_empty() {
        r.format = "not_pickle".into();
        r.stopped_by = Some(crate::report::StopReason::NotAZip);
        return r;
    }
    if dirs.is_empty() {
        lay.tampers.push(tamper(
            0,
            "no end of central directory record: zipfile and torch cannot open this archive, local-header readers can; its entries are analysed".into(),
        ));
    }
    if lay.members.len() >= max_members {
        super::limit(&mut r, 0, Limit::ArchiveMembers);
    }
    lay.outside_bytes(dirs.first(), start);
    overlaps(&lay.members, &mut lay.tampers);

    // Torch archives: which members are tensor storages (never unpickled by torch.load).
    let torch_root = torch_root(&lay.members);
    if let Some(root) = &torch_root {
        // torch.load hands archives with a constants.pkl record to torch.jit.load, whose C++
        // unpickler reads data.pkl, constants.pkl and the code's .debug_pkl files.
        let constants = format!("{root}constants.pkl");
        let script = lay.members.iter().any(|m| m.name == constants);
        r.format = if script { "torchscript" } else { "pytorch_zip" }.into();
    }
    let loaded_later = match torch_root {
        None => defer::plan(cx, d, &lay.members, depth),
        Some(_) => HashMap::new(),
    };
    let file_formats = analyse_members(
        cx,
        &mut r,
        &mut lay,
        torch_root.as_deref(),
        &loaded_later,
        depth,
    );
    if r.format == "zip" && !file_formats.is_empty() {
        if file_formats.iter().all(|f| f == "numpy_npy") {
            r.format = "numpy_npz".into();
        } else if file_formats.len() == 1
            && matches!(file_formats[0].as_str(), "raw_pickle" | "joblib")
        {
            r.format = "pandas_zip".into();
        }
    }
    let mut all = lay.tampers;
    all.append(&mut r.findings);
    r.findings = all;
    r
}

/// The members both views of an archive reach, and the disagreements found on the way.
struct Layout<'a> {
    budget: &'a Budget,
    d: &'a [u8],
    mode: Mode,
    max_members: usize,
    tampers: Vec<Finding>,
    /// Byte ranges some entry or record accounts for, to find bytes outside every entry.
    covered: Vec<(usize, usize)>,
    members: Vec<Member>,
    /// Local header offset -> the first member read from it.
    by_offset: HashMap<usize, usize>,
}

impl Layout<'_> {
    /// The members a central directory lists, each checked against its local header. `alt`:
    /// the second reading of a split archive, whose entries that agree with the first reading
    /// are not listed again.
    fn central(&mut self, dir: &Directory, alt: bool) {
        let d = self.d;
        self.covered.push((dir.cd_start, dir.cd_end));
        self.covered.push(dir.eocd);
        self.covered.extend(dir.z64.iter().copied());
        if dir.declared != dir.entries.len() as u64 {
            self.tampers.push(tamper(
                dir.eocd.0 as u64,
                format!(
                    "the end record declares {} entries but the central directory holds {}: readers that trust the count (miniz, torch) see a different file list",
                    dir.declared,
                    dir.entries.len()
                ),
            ));
        }
        if self.mode == Mode::Plain && dir.shift > 0 {
            self.tampers.push(tamper(
                0,
                format!(
                    "the archive's offsets are shifted by {} bytes: Python's zipfile and torch's reader resolve its members differently",
                    dir.shift
                ),
            ));
        }
        let mut seen_names: HashMap<&[u8], usize> = HashMap::new();
        for c in &dir.entries {
            if self.members.len() >= self.max_members {
                break;
            }
            let copy = {
                let n = seen_names.entry(&c.name).or_insert(0);
                *n += 1;
                *n
            };
            let name = name_text(&c.name);
            if copy == 2 {
                self.tampers.push(tamper(
                    c.pos as u64,
                    format!(
                        "the name {name:?} appears more than once in the central directory: loaders pick one copy (zipfile the last), scanners may read another; every copy is analysed"
                    ),
                ));
            }
            let mut off = c.local.saturating_add(dir.shift);
            if !sig_at(d, off, LOCAL_SIG) && sig_at(d, c.local, LOCAL_SIG) {
                off = c.local;
            }
            if alt {
                let same = usize::try_from(off)
                    .ok()
                    .and_then(|o| self.by_offset.get(&o))
                    .map(|&i| &self.members[i])
                    .is_some_and(|m| m.name == name && m.csize == c.csize && m.method == c.method);
                if same {
                    continue;
                }
            }
            let label = Segment::ArchiveMember {
                name: name.clone(),
                copy: copy as u64,
                view: if alt {
                    MemberView::Directory {
                        at: dir.cd_start as u64,
                    }
                } else {
                    MemberView::Listed
                },
            };
            self.entry(c, off, name, label);
        }
    }

    /// One central entry whose local header should be at `off`.
    fn entry(&mut self, c: &Central, off: u64, name: String, label: Segment) {
        let d = self.d;
        let Some(l) = usize::try_from(off).ok().and_then(|o| parse_local(d, o)) else {
            self.tampers.push(tamper(
                c.pos as u64,
                format!(
                    "the central directory lists {name:?} at byte {off}, where there is no local file header: loaders fail on it, other readers may find different data"
                ),
            ));
            return;
        };
        if l.name != c.name {
            self.tampers.push(tamper(
                l.pos as u64,
                format!(
                    "member {name:?} is named {:?} in its local header: torch reads it by the central name, Python's zipfile refuses it, local-header scanners see the other name",
                    name_text(&l.name)
                ),
            ));
        }
        if l.method != c.method {
            self.tampers.push(tamper(
                l.pos as u64,
                format!(
                    "member {name:?}: compression method {} in the central directory, {} in the local header",
                    c.method, l.method
                ),
            ));
        }
        if !l.deferred() && (l.csize != c.csize || l.usize != c.usize) {
            self.tampers.push(tamper(
                l.pos as u64,
                format!(
                    "member {name:?}: sizes {}/{} (compressed/uncompressed) in the central directory, {}/{} in the local header",
                    c.csize, c.usize, l.csize, l.usize
                ),
            ));
            if l.csize != c.csize && !self.by_offset.contains_key(&l.pos) {
                // The local view reads different bytes: analyse them too.
                self.members.push(Member {
                    label: Segment::ArchiveMember {
                        name: name.clone(),
                        copy: 1,
                        view: MemberView::LocalSizes,
                    },
                    name: name_text(&l.name),
                    pos: l.pos,
                    data: l.data,
                    csize: l.csize,
                    usize: l.usize,
                    method: l.method,
                    flags: l.flags,
                    local_view: true,
                });
            }
        }
        let data_end = (l.data as u64).saturating_add(c.csize).min(d.len() as u64) as usize;
        let dlen = if l.flags & 8 != 0 || c.flags & 8 != 0 {
            descriptor_len(d, data_end, l.zip64 || c.csize >= 0xffff_ffff)
        } else {
            0
        };
        self.covered.push((l.pos, l.data.min(d.len())));
        self.covered.push((l.data.min(d.len()), data_end));
        self.covered.push((data_end, data_end + dlen));
        self.by_offset.entry(l.pos).or_insert(self.members.len());
        self.members.push(Member {
            label,
            name,
            pos: l.pos,
            data: l.data,
            csize: c.csize,
            usize: c.usize,
            method: c.method,
            flags: c.flags | l.flags,
            local_view: false,
        });
    }

    /// Walk the local headers from the start of the archive (what streaming readers see).
    fn walk_locals(&mut self, start: usize) {
        let d = self.d;
        let walk_from = match self.mode {
            Mode::Plain => d
                .get(..8)
                .map(|h| if h.starts_with(LOCAL_SIG) { 0 } else { 4 })
                .unwrap_or(0),
            Mode::Polyglot => start,
            Mode::Embedded => self.members.iter().map(|m| m.pos).min().unwrap_or(d.len()),
        };
        if walk_from == 4 && self.mode == Mode::Plain {
            self.covered.push((0, 4)); // the spanning marker
        }
        let mut p = walk_from;
        let mut listed_only_local = 0usize;
        while self.members.len() < self.max_members {
            let Some(l) = parse_local(d, p) else { break };
            let central = self.by_offset.get(&p).map(|&i| &self.members[i]);
            let csize = match central {
                Some(m) => m.csize,
                None if l.deferred() => match find_deferred_end(self.budget, d, &l) {
                    Some(n) => n,
                    None => {
                        self.tampers.push(tamper(
                            p as u64,
                            format!(
                                "local entry {:?} defers its sizes to a data descriptor that cannot be found",
                                name_text(&l.name)
                            ),
                        ));
                        break;
                    }
                },
                None => l.csize,
            };
            let in_central = central.is_some();
            let data_end = (l.data as u64).saturating_add(csize).min(d.len() as u64) as usize;
            let dlen = if l.flags & 8 != 0 {
                descriptor_len(d, data_end, l.zip64)
            } else {
                0
            };
            if !in_central {
                let name = name_text(&l.name);
                if listed_only_local < MAX_LISTED {
                    self.tampers.push(tamper(
                        p as u64,
                        format!(
                            "local entry {name:?} at byte {p} is not in the central directory: loaders do not see it, local-header scanners do; it is analysed"
                        ),
                    ));
                }
                listed_only_local += 1;
                self.covered.push((p, l.data.min(d.len())));
                self.covered.push((l.data.min(d.len()), data_end));
                self.covered.push((data_end, data_end + dlen));
                self.members.push(Member {
                    label: Segment::ArchiveMember {
                        name: name.clone(),
                        copy: 1,
                        view: MemberView::LocalHeader { at: p as u64 },
                    },
                    name,
                    pos: p,
                    data: l.data,
                    csize,
                    usize: l.usize,
                    method: l.method,
                    flags: l.flags,
                    local_view: false,
                });
            }
            let next = data_end + dlen;
            if next <= p {
                break;
            }
            p = next;
        }
        if listed_only_local > MAX_LISTED {
            self.tampers.push(tamper(
                0,
                format!(
                    "{} more local entries are not in the central directory",
                    listed_only_local - MAX_LISTED
                ),
            ));
        }
    }

    /// Bytes no entry or record accounts for.
    fn outside_bytes(&mut self, dir: Option<&Directory>, start: usize) {
        let d = self.d;
        let (lo, hi) = match self.mode {
            Mode::Plain => (0, d.len()),
            Mode::Polyglot => (start, d.len()),
            Mode::Embedded => (
                start.max(self.members.iter().map(|m| m.pos).min().unwrap_or(0)),
                dir.map(|x| x.eocd.1).unwrap_or(d.len()),
            ),
        };
        let gaps = gaps(&mut self.covered, lo, hi);
        for (i, (a, b)) in gaps.iter().enumerate() {
            if i == MAX_LISTED {
                self.tampers.push(tamper(
                    *a as u64,
                    format!(
                        "{} more ranges of bytes outside every entry",
                        gaps.len() - i
                    ),
                ));
                break;
            }
            self.tampers.push(tamper(
                *a as u64,
                format!(
                    "{} bytes at byte {a} are outside every zip entry (hidden data, or a second view of the archive)",
                    b - a
                ),
            ));
        }
    }
}

/// Analyse every member that is not a tensor storage; returns the format of each member
/// analysed (for naming the archive).
fn analyse_members(
    cx: &ScanContext<'_>,
    r: &mut Report,
    lay: &mut Layout,
    torch_root: Option<&str>,
    loaded_later: &HashMap<usize, Report>,
    depth: u32,
) -> Vec<String> {
    let d = lay.d;
    // The one data.pkl torch.load's restricted unpickler is about to scan itself (see
    // `crate::LoadScans`); never TorchScript's, which torch.jit loads in C++.
    let deferred = match torch_root {
        Some(root) if depth == 0 && r.format == "pytorch_zip" && cx.load_scans.torch_data_pkl => {
            let name = format!("{root}data.pkl");
            (lay.members.iter().filter(|m| m.name == name).count() == 1).then_some(name)
        }
        _ => None,
    };
    let mut file_formats: Vec<String> = Vec::new();
    let mut analysed: HashMap<(usize, u64, u16), ()> = HashMap::new();
    let mut stored_total: u64 = 0;
    for (i, m) in lay.members.iter().enumerate() {
        if m.name.ends_with('/') && m.usize == 0 && m.csize == 0 {
            continue;
        }
        if let Some(stands_for) = loaded_later.get(&i) {
            file_formats.push(stands_for.format.clone());
            r.absorb(stands_for.clone(), Some(&m.label));
            continue;
        }
        if torch_root.is_some_and(|root| is_storage(root, &m.name)) {
            file_formats.push("tensor".into());
            continue;
        }
        if deferred.as_deref() == Some(m.name.as_str()) && m.flags & 1 == 0 {
            file_formats.push("raw_pickle".into());
            continue;
        }
        if analysed.insert((m.data, m.csize, m.method), ()).is_some() {
            // The same bytes under another entry (reported as overlapping): analysed once.
            continue;
        }
        if m.flags & 1 != 0 {
            super::unscannable(
                r,
                m.pos as u64,
                Some(&m.label),
                "the member is encrypted: its content cannot be checked".into(),
            );
            file_formats.push("encrypted".into());
            continue;
        }
        let avail = d.len().saturating_sub(m.data);
        if usize::try_from(m.csize).unwrap_or(usize::MAX) > avail {
            lay.tampers.push(tamper(
                m.pos as u64,
                format!(
                    "member {:?} claims {} compressed bytes but only {avail} follow: loaders fail on it; what is there is analysed",
                    m.name, m.csize
                ),
            ));
        }
        let content = match m.method {
            0 => {
                let n = usize::try_from(m.usize.max(m.csize))
                    .unwrap_or(usize::MAX)
                    .min(avail);
                // Stored bytes read more than once (overlapping entries) count as produced.
                stored_total = stored_total.saturating_add(n as u64);
                if stored_total > d.len() as u64 {
                    let extra = (stored_total - d.len() as u64).min(n as u64);
                    if let Err(what) = cx.budget.take(extra) {
                        super::limit(r, m.pos as u64, what);
                        break;
                    }
                }
                let stored = &d[m.data.min(d.len())..m.data.min(d.len()) + n];
                super::will_read_member(cx, stored);
                Cow::Borrowed(stored)
            }
            8 | 12 | 14 | 93 | 95 => Cow::Owned(inflate_member(cx, r, &mut lay.tampers, d, m)),
            other => {
                super::unscannable(
                    r,
                    m.pos as u64,
                    Some(&m.label),
                    format!(
                        "compression method {other} is not supported: the member's content cannot be checked"
                    ),
                );
                file_formats.push("unscannable".into());
                continue;
            }
        };
        let sub = cx.within(&m.label, || {
            if r.format == "torchscript" {
                cx.torchscript_record(depth + 1, || scan_at(cx, &content, depth + 1))
            } else {
                scan_at(cx, &content, depth + 1)
            }
        });
        file_formats.push(sub.format.clone());
        r.absorb(sub, Some(&m.label));
    }
    file_formats
}

/// A compressed member's bytes, as far as they decompress (limits and corruption reported).
fn inflate_member(
    cx: &ScanContext<'_>,
    r: &mut Report,
    tampers: &mut Vec<Finding>,
    d: &[u8],
    m: &Member,
) -> Vec<u8> {
    let avail = d.len().saturating_sub(m.data);
    let clen = usize::try_from(m.csize).unwrap_or(usize::MAX);
    let raw = &d[m.data.min(d.len())..m.data.min(d.len()) + clen.min(avail)];
    cx.will_read(raw);
    let b = &cx.budget;
    let dec = match m.method {
        8 => compress::inflate(b, raw, u64::MAX),
        12 => compress::bunzip(b, raw, u64::MAX),
        14 => compress::zip_lzma(b, raw, m.usize, m.flags & 2 != 0, u64::MAX),
        93 => compress::decompress(b, compress::Codec::Zstd, raw, u64::MAX),
        _ => compress::decompress(b, compress::Codec::Xz, raw, u64::MAX),
    };
    if let Some(what) = dec.limit {
        let mut sub = Report::new("zip");
        super::limit(&mut sub, 0, what);
        r.absorb(sub, Some(&m.label));
    }
    if let Some(e) = &dec.error {
        let mut f = Finding::new(
            FindingType::Malformed,
            Severity::Low,
            m.pos as u64,
            format!(
                "the member's compressed data is corrupt after {} bytes ({e}); loaders stop there too",
                dec.out.len()
            ),
        );
        f.member = Some(MemberPath::new(m.label.clone()));
        r.push(f);
    }
    if dec.out.len() as u64 > m.usize && dec.limit.is_none() {
        tampers.push(tamper(
            m.pos as u64,
            format!(
                "member {:?} decompresses to {} bytes, more than the {} it declares: loaders stop at the declared size, all of it is analysed",
                m.name,
                dec.out.len(),
                m.usize
            ),
        ));
    }
    dec.out
}

/// Uncovered ranges of `lo..hi`.
fn gaps(covered: &mut [(usize, usize)], lo: usize, hi: usize) -> Vec<(usize, usize)> {
    covered.sort_unstable();
    let mut out = Vec::new();
    let mut at = lo;
    for &(a, b) in covered.iter() {
        if b <= a || b <= at {
            continue;
        }
        if a > at && a <= hi {
            out.push((at, a.min(hi)));
        }
        at = at.max(b);
        if at >= hi {
            break;
        }
    }
    if at < hi {
        out.push((at, hi));
    }
    out
}

fn overlaps(members: &[Member], tampers: &mut Vec<Finding>) {
    let mut spans: Vec<(usize, usize, usize)> = members
        .iter()
        .enumerate()
        .filter(|(_, m)| m.csize > 0)
        .map(|(i, m)| {
            let end = (m.data as u64)
                .saturating_add(m.csize)
                .min(usize::MAX as u64) as usize;
            (m.data, end, i)
        })
        .collect();
    spans.sort_unstable();
    let mut listed = 0usize;
    let mut reach: Option<(usize, usize)> = None; // (end, member)
    for &(a, b, i) in &spans {
        if let Some((end, j)) = reach {
            let (mi, mj) = (&members[i], &members[j]);
            let same_entry = mi.pos == mj.pos && (mi.local_view || mj.local_view);
            if a < end && !same_entry {
                if listed < MAX_LISTED {
                    tampers.push(tamper(
                        mi.pos as u64,
                        format!(
                            "the data of member {:?} overlaps the data of {:?}: one range of bytes read as two files (a zip bomb or a parser trick)",
                            mi.name, mj.name
                        ),
                    ));
                }
                listed += 1;
            }
        }
        match reach {
            Some((end, _)) if end >= b => {}
            _ => reach = Some((b, i)),
        }
    }
    if listed > MAX_LISTED {
        tampers.push(tamper(
            0,
            format!("{} more overlapping members", listed - MAX_LISTED),
        ));
    }
}

/// Which of a zip's member names (central directory order) are tensor storages of a torch
/// archive: bytes torch.load reads as raw numbers, never as a pickle, and that a scan never
/// reads. A reader fetching a remote archive skips exactly these (docs/cli.md, "Remote
/// sources").
pub fn storage_members(names: &[&str]) -> Vec<bool> {
    let root = root_of(names.iter().copied());
    names
        .iter()
        .map(|n| root.as_deref().is_some_and(|r| is_storage(r, n)))
        .collect()
}

/// The archive root of a torch zip (`archive/` for `archive/data.pkl`), if this is one: a
/// `data.pkl` with a `version` or `byteorder` record beside it.
fn torch_root(members: &[Member]) -> Option<String> {
    root_of(members.iter().map(|m| m.name.as_str()))
}

fn root_of<'a>(members: impl Iterator<Item = &'a str> + Clone) -> Option<String> {
    let names: std::collections::HashSet<&str> = members.clone().collect();
    for name in members {
        let Some(root) = name.strip_suffix("data.pkl") else {
            continue;
        };
        if !(root.is_empty() || root.ends_with('/')) {
            continue;
        }
        let has = |n: &str| names.contains(format!("{root}{n}").as_str());
        if has("version") || has(".data/version") || has("byteorder") {
            return Some(root.to_string());
        }
    }
    None
}

/// A tensor storage record of a torch zip: `<root>data/<key>` (and TorchScript's
/// `<root>constants/<key>`). torch.load reads them as raw bytes, never as pickles.
fn is_storage(root: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(root) else {
        return false;
    };
    let key = rest
        .strip_prefix("data/")
        .or_else(|| rest.strip_prefix("constants/"));
    matches!(key, Some(k) if !k.is_empty() && !k.contains('/'))
}
