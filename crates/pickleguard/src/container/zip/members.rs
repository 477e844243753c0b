//! Each member either view reaches, read (stored bytes, or inflated within the scan's budget)
//! and analysed as a file of its own; tensor storages, encrypted members and the members the
//! load after the scan reads itself are accounted for without reading them.

use super::layout::Layout;
use super::torch_names::is_storage;
use super::Member;
use crate::container::{compress, scan_at, tamper};
use crate::context::ScanContext;
use crate::render::name_lit;
use crate::report::{Finding, FindingType, MemberPath, Report, Severity};
use std::borrow::Cow;
use std::collections::HashMap;

/// Analyse every member that is not a tensor storage; returns the format of each member
/// analysed (for naming the archive).
pub(super) fn analyse_members(
    cx: &ScanContext<'_>,
    r: &mut Report,
    lay: &mut Layout,
    torch_root: Option<&str>,
    loaded_later: &HashMap<usize, Report>,
) -> Vec<String> {
    let d = lay.d;
    // The one data.pkl torch.load's restricted unpickler is about to scan itself (see
    // `crate::LoadScans`); never TorchScript's, which torch.jit loads in C++.
    let deferred = match torch_root {
        Some(root)
            if cx.depth() == 0 && r.format == "pytorch_zip" && cx.load_scans.torch_data_pkl =>
        {
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
            crate::container::unscannable(
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
                    "member {} claims {} compressed bytes but only {avail} follow: loaders fail on it; what is there is analysed",
                    name_lit(&m.name),
                    m.csize
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
                        crate::container::limit(r, m.pos as u64, what);
                        break;
                    }
                }
                let stored = &d[m.data.min(d.len())..m.data.min(d.len()) + n];
                crate::container::will_read_member(cx, stored);
                Cow::Borrowed(stored)
            }
            8 | 12 | 14 | 93 | 95 => Cow::Owned(inflate_member(cx, r, &mut lay.tampers, d, m)),
            other => {
                crate::container::unscannable(
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
                cx.deeper(|| cx.torchscript_record(|| scan_at(cx, &content)))
            } else {
                cx.deeper(|| scan_at(cx, &content))
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
        crate::container::limit(&mut sub, 0, what);
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
                "member {} decompresses to {} bytes, more than the {} it declares: loaders stop at the declared size, all of it is analysed",
                name_lit(&m.name),
                dec.out.len(),
                m.usize
            ),
        ));
    }
    dec.out
}

#[cfg(test)]
mod tests {
    use super::super::testzip::{build, Entry, FLAGGED};
    use crate::report::{FindingType, Report};
    use crate::{Mode, Policy};

    fn scan(d: &[u8]) -> Report {
        crate::Scan::new(&Policy::new(Mode::Ml)).file(d)
    }

    fn members_of(r: &Report, kind: FindingType) -> Vec<String> {
        r.findings
            .iter()
            .filter(|f| f.kind == kind)
            .map(|f| f.member.as_ref().map_or(String::new(), |m| m.to_string()))
            .collect()
    }

    #[test]
    fn stored_and_deflated_members_are_analysed_under_their_names() {
        let r = scan(&build(&[
            Entry::stored("a.pkl", FLAGGED),
            Entry::deflated("b.pkl", FLAGGED),
            Entry::stored("c.txt", b"hello"),
        ]));
        let calls = members_of(&r, FindingType::ReduceCall);
        assert!(calls.contains(&"a.pkl".to_string()), "{calls:?}");
        assert!(calls.contains(&"b.pkl".to_string()), "{calls:?}");
        assert!(!r.is_safe);
        assert!(r.complete, "{:?}", r.stopped_by);
    }

    #[test]
    fn members_that_cannot_be_read_are_unscannable_and_not_safe() {
        let mut enc = Entry::stored("enc.pkl", FLAGGED);
        enc.flags = 1;
        let mut odd = Entry::stored("odd.pkl", FLAGGED);
        odd.method = 99;
        let r = scan(&build(&[enc, odd]));
        assert_eq!(
            members_of(&r, FindingType::Unscannable),
            ["enc.pkl", "odd.pkl"]
        );
        assert!(!r.is_safe && !r.complete);
        assert_eq!(
            r.stopped_by.map(|s| s.render()).as_deref(),
            Some("unscannable")
        );
    }

    #[test]
    fn corrupt_deflate_data_is_malformed_and_what_inflated_is_analysed() {
        let mut e = Entry::deflated("cut.pkl", FLAGGED);
        e.data.truncate(e.data.len() / 2);
        let r = scan(&build(&[e]));
        assert_eq!(members_of(&r, FindingType::Malformed)[0], "cut.pkl");
        let mut small = Entry::deflated("big.pkl", &[b'N'; 64]);
        small.usize = 8;
        let r = scan(&build(&[small]));
        assert!(r
            .findings
            .iter()
            .any(|f| f.description.contains("more than the 8 it declares")));
    }
}
