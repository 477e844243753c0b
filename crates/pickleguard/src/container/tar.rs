//! Tar archives read the way Python's `tarfile` reads them (pandas `read_pickle` of `.tar`,
//! torch's oldest format): 512-byte headers with a valid checksum, GNU long names, pax `path`
//! and `size` records; the archive ends at the first zero block or bad header. A name that
//! appears twice resolves to the last copy in `tarfile`; every copy is analysed.

use super::{scan_at, tamper, torch, Report};
use crate::context::ScanContext;
use crate::render::name_lit;
use crate::report::{Finding, FindingType, Limit, MemberView, Segment, Severity};
use std::collections::HashMap;

const BLOCK: usize = 512;

/// `tarfile.nti`: octal (NUL/space padded) or base-256 numbers.
fn number(f: &[u8]) -> Option<u64> {
    match f.first() {
        Some(0x80) | Some(0xff) => {
            if f[0] == 0xff {
                return None; // negative
            }
            let mut n: u64 = 0;
            for &b in &f[1..] {
                n = n.checked_mul(256)?.checked_add(u64::from(b))?;
            }
            Some(n)
        }
        _ => {
            let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
            let s = std::str::from_utf8(&f[..end]).ok()?.trim();
            if s.is_empty() {
                return Some(0);
            }
            u64::from_str_radix(s, 8).ok()
        }
    }
}

fn checksum_ok(h: &[u8]) -> bool {
    let Some(want) = number(&h[148..156]) else {
        return false;
    };
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    want == unsigned || want as i64 == signed
}

fn cstr(f: &[u8]) -> String {
    let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
    String::from_utf8_lossy(&f[..end]).into_owned()
}

/// A tar file: its first block is a header with a valid checksum.
pub fn is_tar(d: &[u8]) -> bool {
    d.len() >= BLOCK && d[..BLOCK].iter().any(|&b| b != 0) && checksum_ok(&d[..BLOCK])
}

pub struct Entry {
    pub name: String,
    pub header: usize,
    pub data: usize,
    pub size: u64,
    pub regular: bool,
}

/// The members, where the archive ends, and whether the member limit stopped the listing.
fn entries(d: &[u8], max: usize) -> (Vec<Entry>, usize, bool) {
    let mut out = Vec::new();
    let mut p = 0usize;
    let mut long_name: Option<String> = None;
    let mut pax: HashMap<String, String> = HashMap::new();
    let mut global: HashMap<String, String> = HashMap::new();
    loop {
        let Some(h) = d.get(p..p + BLOCK) else {
            return (out, p.min(d.len()), false);
        };
        if h.iter().all(|&b| b == 0) || !checksum_ok(h) {
            return (out, p, false);
        }
        if out.len() >= max {
            return (out, p, true);
        }
        let kind = h[156];
        let mut size = number(&h[124..136]).unwrap_or(0);
        let data = p + BLOCK;
        let blocks = |n: u64| n.div_ceil(BLOCK as u64).saturating_mul(BLOCK as u64);
        match kind {
            b'L' | b'K' => {
                let body = d.get(data..data.saturating_add(size as usize).min(d.len()));
                if kind == b'L' {
                    long_name = body.map(cstr);
                }
            }
            b'x' | b'X' | b'g' => {
                let body = d
                    .get(data..data.saturating_add(size as usize).min(d.len()))
                    .unwrap_or(&[]);
                let recs = pax_records(body);
                if kind == b'g' {
                    global.extend(recs);
                } else {
                    pax = recs;
                }
            }
            _ => {
                let mut name = cstr(&h[..100]);
                let prefix = cstr(&h[345..500]);
                if h[257..262] == *b"ustar" && !prefix.is_empty() {
                    name = format!("{prefix}/{name}");
                }
                if let Some(n) = long_name.take() {
                    name = n;
                }
                if let Some(n) = pax.get("path").or_else(|| global.get("path")) {
                    name = n.clone();
                }
                if let Some(s) = pax.get("size").or_else(|| global.get("size")) {
                    if let Ok(s) = s.trim().parse::<u64>() {
                        size = s;
                    }
                }
                pax.clear();
                // tarfile: regular files (and unknown types) have data; links, devices,
                // directories and fifos do not, whatever their size field says.
                let regular = matches!(kind, b'0' | 0 | b'7' | b'S')
                    || !matches!(kind, b'1'..=b'6' | b'L' | b'K');
                let is_dir = kind == b'5' || (kind == 0 || kind == b'0') && name.ends_with('/');
                out.push(Entry {
                    name,
                    header: p,
                    data,
                    size: if regular && !is_dir { size } else { 0 },
                    regular: regular && !is_dir,
                });
                if !regular || is_dir {
                    size = 0;
                }
            }
        }
        let next = (data as u64).saturating_add(blocks(size));
        if next > d.len() as u64 {
            return (out, d.len(), false);
        }
        p = next as usize;
    }
}

fn pax_records(body: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut p = 0usize;
    while p < body.len() {
        let Some(sp) = body[p..].iter().position(|&b| b == b' ') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&body[p..p + sp])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if len <= sp + 1 || p + len > body.len() {
            break;
        }
        let rec = &body[p + sp + 1..p + len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(eq) = rec.iter().position(|&b| b == b'=') {
            out.insert(
                String::from_utf8_lossy(&rec[..eq]).into_owned(),
                String::from_utf8_lossy(&rec[eq + 1..]).into_owned(),
            );
        }
        p += len;
    }
    out
}

pub fn scan(cx: &ScanContext<'_>, d: &[u8]) -> Report {
    let policy = cx.policy;
    let max = policy.limits.max_members.min(usize::MAX as u64) as usize;
    let (list, end, limited) = entries(d, max);
    let mut r = Report::new("tar");
    let names: Vec<&str> = list
        .iter()
        .filter(|e| e.regular)
        .map(|e| e.name.as_str())
        .collect();
    // torch.load extracts `storages` first, then `tensors`, then unpickles `pickle`.
    let is_torch = names.contains(&"storages")
        || names.contains(&"pickle") && (names.contains(&"tensors") || names.contains(&"sys_info"));
    if is_torch {
        r.format = "pytorch_tar".into();
    }
    let mut count: HashMap<&str, usize> = HashMap::new();
    let mut formats = Vec::new();
    for e in list.iter().filter(|e| e.regular) {
        let n = count.entry(e.name.as_str()).or_insert(0);
        *n += 1;
        let label = Segment::ArchiveMember {
            name: e.name.clone(),
            copy: *n as u64,
            view: MemberView::Listed,
        };
        if *n == 2 {
            r.push(tamper(
                e.header as u64,
                format!(
                    "the name {} appears more than once in the tar archive: tarfile reads the last copy, other readers the first; every copy is analysed",
                    name_lit(&e.name)
                ),
            ));
        }
        let avail = d.len().saturating_sub(e.data);
        let len = usize::try_from(e.size).unwrap_or(usize::MAX).min(avail);
        let content = &d[e.data.min(d.len())..e.data.min(d.len()) + len];
        let member = || match (is_torch, e.name.as_str()) {
            (true, "storages") => torch::scan_tar_storages(cx, content),
            (true, "tensors") => torch::scan_tar_tensors(cx, content),
            _ => {
                super::will_read_member(cx, content);
                scan_at(cx, content)
            }
        };
        let sub = cx.within(&label, || cx.deeper(member));
        formats.push(sub.format.clone());
        r.absorb(sub, Some(&label));
    }
    if limited {
        super::limit(&mut r, end as u64, Limit::ArchiveMembers);
    }
    if !is_torch && formats.len() == 1 && matches!(formats[0].as_str(), "raw_pickle" | "joblib") {
        r.format = "pandas_tar".into();
    }
    if let Some(rest) = d.get(end..) {
        if let Some(first) = rest.iter().position(|&b| b != 0) {
            r.push(Finding::new(
                FindingType::TrailingData,
                Severity::Low,
                (end + first) as u64,
                format!(
                    "{} bytes after the end of the tar archive; tarfile does not read them",
                    rest.len() - first
                ),
            ));
        }
    }
    super::raw_view(cx, d, &mut r);
    r
}

#[cfg(test)]
mod tests;
