//! The deflated members of a zip that is no torch checkpoint which the guarded load after the
//! scan inflates and scans itself (see [`crate::container::LoadScans`]): `zipfile` inflates them once, for the
//! restricted unpickler, and the scan only reads the first bytes it needs to check the member's
//! kind and, for an `.npy`, its header (the ambiguity checks of the header stay here).

use std::collections::HashMap;
use std::io::Read;

use super::Member;
use crate::container::{compress, limit, npy, sniff, torch, Kind};
use crate::context::ScanContext;
use crate::report::Report;

/// First bytes of a member read to tell a pickle from a nested container.
const KIND_HEAD: usize = 32;
/// numpy refuses longer headers by default (`max_header_size`); longer ones are read here in full.
const MAX_NPY_HEADER: usize = 1 << 20;

/// For each member the load scans itself (index into `members`): what stands for its content
/// in this scan (the header's findings, a resource limit, or nothing).
pub(super) fn plan(cx: &ScanContext<'_>, d: &[u8], members: &[Member]) -> HashMap<usize, Report> {
    let scans = cx.load_scans;
    let mut out = HashMap::new();
    if cx.depth() != 0 || !(scans.npz_members || scans.single_member) {
        return out;
    }
    let files: Vec<usize> = (0..members.len())
        .filter(|&i| {
            let m = &members[i];
            !(m.name.ends_with('/') && m.usize == 0 && m.csize == 0)
        })
        .collect();
    if scans.npz_members && npz(cx, d, members, &files, &mut out) {
        return out;
    }
    out.clear();
    if let ([i], true) = (&files[..], scans.single_member) {
        let m = &members[*i];
        if deflated(m) {
            if let Some(head) = inflate_head(d, m, KIND_HEAD) {
                if matches!(sniff(&head), Kind::Raw) && !torch::is_legacy(&head) {
                    out.insert(*i, declared(cx, m, Report::new("raw_pickle")));
                }
            }
        }
    }
    out
}

/// Every file an `.npy` (by content): the header reports of the deflated ones; false when the
/// archive is no `.npz` as numpy reads one.
fn npz(
    cx: &ScanContext<'_>,
    d: &[u8],
    members: &[Member],
    files: &[usize],
    out: &mut HashMap<usize, Report>,
) -> bool {
    for &i in files {
        let m = &members[i];
        if m.method == 0 {
            if !d.get(m.data..).is_some_and(|b| b.starts_with(npy::MAGIC)) {
                return false;
            }
            continue;
        }
        if !deflated(m) {
            return false;
        }
        let Some(head) = npy_head(d, m) else {
            return false;
        };
        let (r, h) = npy::scan_header(&head);
        if h.is_none() {
            return false;
        }
        out.insert(i, declared(cx, m, r));
    }
    true
}

fn deflated(m: &Member) -> bool {
    m.method == 8 && m.flags & 1 == 0
}

/// The load inflates what the member declares (`zipfile` stops there): within the scan's
/// allowance, or the same resource limit a scan of the content gives.
fn declared(cx: &ScanContext<'_>, m: &Member, mut r: Report) -> Report {
    if let Err(what) = cx.budget.take(m.usize) {
        limit(&mut r, 0, what);
    }
    r
}

/// The member's `.npy` magic and header, inflated; None when it has none (or the stream ends
/// inside it).
fn npy_head(d: &[u8], m: &Member) -> Option<Vec<u8>> {
    let mut dec = flate2::read::DeflateDecoder::new(raw(d, m));
    let mut head = vec![0u8; 12];
    read_full(&mut dec, &mut head)?;
    if !head.starts_with(npy::MAGIC) {
        return None;
    }
    let end = match head[6] {
        1 => 10 + u16::from_le_bytes([head[8], head[9]]) as usize,
        2 | 3 => 12 + u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize,
        _ => return None,
    };
    if end > MAX_NPY_HEADER || end as u64 > m.usize {
        return None;
    }
    if end > head.len() {
        let have = head.len();
        head.resize(end, 0);
        read_full(&mut dec, &mut head[have..])?;
    } else {
        head.truncate(end);
    }
    Some(head)
}

fn inflate_head(d: &[u8], m: &Member, n: usize) -> Option<Vec<u8>> {
    let mut dec = flate2::read::DeflateDecoder::new(raw(d, m));
    let mut head = vec![0u8; n.min(usize::try_from(m.usize).unwrap_or(usize::MAX))];
    read_full(&mut dec, &mut head)?;
    Some(head)
}

fn raw<'a>(d: &'a [u8], m: &Member) -> &'a [u8] {
    let start = m.data.min(d.len());
    let len = usize::try_from(m.csize).unwrap_or(usize::MAX);
    &d[start..start.saturating_add(len).min(d.len())]
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Option<()> {
    r.read_exact(buf).ok()?;
    compress::count_decompressed(buf.len());
    Some(())
}
