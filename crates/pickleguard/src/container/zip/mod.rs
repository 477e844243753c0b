//! Zip archives read both ways: the central directory (what Python's `zipfile` and torch's
//! miniz reader use) and a walk over the local file headers from the start (what streaming
//! readers and many scanners use). Members are read as tolerantly as torch reads them: CRCs are
//! not checked, flag bits are ignored except encryption, zeroed local sizes with a data
//! descriptor use the central sizes. Every disagreement between the two views is a
//! `STRUCTURAL_TAMPER` finding, and every member either view reaches is analysed.

//!
//! The steps, each a module: [`bytes`] (fields and signatures), [`end`] (end records, the
//! zip64 locator, which central directory each reader finds), [`central`] (its entries),
//! [`local`] (local headers and data descriptors), [`layout`] (the directory checked against
//! the local headers), [`walk`] (the local-header walk), [`coverage`] (bytes outside every
//! entry, overlapping members), [`members`] (reading, inflating and analysing each member),
//! [`torch_names`] (a torch archive's tensor storages) and [`defer`] (members the load after
//! the scan reads itself). This module dispatches.

use super::{tamper, Report};
use crate::context::ScanContext;
use crate::report::{Limit, MemberPath, Segment};
use std::collections::HashMap;

mod bytes;
mod central;
mod coverage;
mod defer;
mod end;
mod layout;
mod local;
mod members;
#[cfg(test)]
mod testzip;
mod torch_names;
mod walk;

use bytes::{EOCD_SIG, LOCAL_SIG};
use coverage::overlaps;
pub use end::locate;
use layout::Layout;
use members::analyse_members;
pub use torch_names::storage_members;
use torch_names::torch_root;

/// At most this many tamper findings of one kind are listed one by one.
pub(super) const MAX_LISTED: usize = 20;

pub fn starts_like_zip(d: &[u8]) -> bool {
    d.starts_with(LOCAL_SIG)
        || d.starts_with(EOCD_SIG)
        || (d.starts_with(b"PK\x07\x08") || d.starts_with(b"PK00")) && d[4..].starts_with(LOCAL_SIG)
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// A file that starts as a zip.
    Plain,
    /// A pickle with a zip behind it: the prefix is analysed separately.
    Polyglot,
    /// A zip inside another stream's bytes: only its members matter.
    Embedded,
}

/// A member to analyse.
pub(super) struct Member {
    pub(super) label: Segment,
    pub(super) name: String,
    pub(super) pos: usize,
    pub(super) data: usize,
    pub(super) csize: u64,
    pub(super) usize: u64,
    pub(super) method: u16,
    pub(super) flags: u16,
    /// The local header's view of an entry whose central sizes differ.
    pub(super) local_view: bool,
}

pub fn scan(cx: &ScanContext<'_>, d: &[u8]) -> Report {
    let mode = if starts_like_zip(d) {
        Mode::Plain
    } else {
        Mode::Embedded
    };
    scan_mode(cx, d, mode, 0)
}

/// A pickle (bytes `0..start`) with a zip archive behind it.
pub fn scan_polyglot(cx: &ScanContext<'_>, d: &[u8], _whole: Report, start: usize) -> Report {
    let mut r = scan_mode(cx, d, Mode::Polyglot, start);
    let prefix = cx.within(&Segment::PickleBeforeZip, || {
        super::analyze(cx, &d[..start.min(d.len())])
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

fn scan_mode(cx: &ScanContext<'_>, d: &[u8], mode: Mode, start: usize) -> Report {
    let mut r = Report::new("zip");
    let dirs = end::read_directories(d);
    let max_members = cx.policy.limits.max_members.min(usize::MAX as u64) as usize;
    let mut lay = Layout::new(d, &cx.budget, mode, max_members);
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
        None => defer::plan(cx, d, &lay.members),
        Some(_) => HashMap::new(),
    };
    let file_formats = analyse_members(cx, &mut r, &mut lay, torch_root.as_deref(), &loaded_later);
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

#[cfg(test)]
mod tests {
    use super::testzip::{build, Entry, FLAGGED};
    use crate::report::{FindingType, StopReason};
    use crate::{Policy, Report};

    fn scan(d: &[u8]) -> Report {
        crate::Scan::new(&Policy::new(crate::Mode::Ml)).file(d)
    }

    #[test]
    fn bytes_that_only_start_like_a_zip_are_not_a_zip() {
        let r = scan(b"PK\x03\x04 nothing else here");
        assert_eq!(r.format, "not_pickle");
        assert_eq!(r.stopped_by, Some(StopReason::NotAZip));
    }

    #[test]
    fn the_archive_is_named_by_what_its_members_are() {
        let npy = b"\x93NUMPY\x01\x00\x76\x00{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }                                                                          \n\x00\x00\x00\x00\x00\x00\x00\x00";
        assert_eq!(
            scan(&build(&[Entry::stored("x.npy", npy)])).format,
            "numpy_npz"
        );
        assert_eq!(
            scan(&build(&[Entry::stored("df.pkl", b"N.")])).format,
            "pandas_zip"
        );
        assert_eq!(
            scan(&build(&[
                Entry::stored("a", b"N."),
                Entry::stored("b", b"N.")
            ]))
            .format,
            "zip"
        );
    }

    #[test]
    fn without_an_end_record_the_local_entries_are_still_analysed() {
        let mut d = build(&[Entry::stored("a.pkl", FLAGGED)]);
        let dir_start = super::end::read_directory(&d).unwrap().cd_start;
        d.truncate(dir_start);
        let r = scan(&d);
        assert!(r
            .findings
            .iter()
            .any(|f| f.kind == FindingType::StructuralTamper
                && f.description
                    .starts_with("no end of central directory record")));
        assert!(r.findings.iter().any(|f| f.kind == FindingType::ReduceCall
            && f.member
                .as_ref()
                .is_some_and(|m| m.as_str() == "a.pkl (local header at byte 0)")));
    }

    #[test]
    fn a_pickle_in_front_of_a_zip_is_analysed_as_both() {
        let mut d = FLAGGED.to_vec();
        d.extend(build(&[Entry::stored("m.pkl", FLAGGED)]));
        let r = scan(&d);
        assert_eq!(r.format, "polyglot");
        let members: Vec<&str> = r
            .findings
            .iter()
            .filter(|f| f.kind == FindingType::ReduceCall)
            .filter_map(|f| f.member.as_ref().map(|m| m.as_str()))
            .collect();
        assert_eq!(members, ["m.pkl", "pickle before the zip"]);
    }
}
