//! The pickle streams a scan analysed, with the member path its findings carry: what
//! `pickleguard explain` disassembles inside containers. Recording is off unless
//! [`scan_with_streams`] turns it on for the current thread, so scans pay one thread-local
//! check per stream.

use std::cell::RefCell;

use crate::policy::Policy;
use crate::report::Report;

/// One pickle stream found while scanning a file.
#[derive(Clone, Debug)]
pub struct PickleStream {
    /// The member path as findings show it (`None`: the file itself).
    pub member: Option<String>,
    /// What the stream analysis called it (`raw_pickle`, `joblib`, `not_pickle`...).
    pub format: String,
    pub data: StreamData,
    /// Its length, recorded or not.
    pub len: usize,
}

/// Where a stream's bytes are.
#[derive(Clone, Debug)]
pub enum StreamData {
    /// A slice of the scanned file (the file itself, a stored zip member): not copied.
    InFile { start: usize },
    /// Bytes that exist only during the scan (decompressed, decoded), copied.
    Copied(Vec<u8>),
    /// Past the recording budget: not kept.
    Dropped,
}

impl PickleStream {
    /// The stream's bytes, given the file that was scanned (`None` if they were not kept).
    pub fn bytes<'a>(&'a self, file: &'a [u8]) -> Option<&'a [u8]> {
        match &self.data {
            StreamData::InFile { start } => file.get(*start..*start + self.len),
            StreamData::Copied(v) => Some(v),
            StreamData::Dropped => None,
        }
    }
}

/// Bytes of streams copied per scan (those that are no slice of the file): explain reads one
/// file, but a decompressed member can be large and nested streams repeat their parents' bytes.
const BUDGET: usize = 256 << 20;

struct Recorder {
    path: Vec<String>,
    streams: Vec<PickleStream>,
    kept: usize,
    /// The scanned file's address range: streams inside it are recorded by offset.
    file: std::ops::Range<usize>,
}

thread_local! {
    static REC: RefCell<Option<Recorder>> = const { RefCell::new(None) };
}

/// Scan a file as [`crate::scan_bytes`] does, and list every pickle stream it analysed, in the
/// order their analyses began (a container's members before the pickles nested in them).
pub fn scan_with_streams(data: &[u8], policy: &Policy) -> (Report, Vec<PickleStream>) {
    let saved = REC.with(|r| {
        let at = data.as_ptr() as usize;
        r.borrow_mut().replace(Recorder {
            path: Vec::new(),
            streams: Vec::new(),
            kept: 0,
            file: at..at + data.len(),
        })
    });
    let report = super::scan_bytes(data, policy);
    let rec = REC.with(|r| std::mem::replace(&mut *r.borrow_mut(), saved));
    (report, rec.map(|r| r.streams).unwrap_or_default())
}

pub(crate) fn enter(label: &str) {
    REC.with(|r| {
        if let Some(rec) = r.borrow_mut().as_mut() {
            rec.path.push(label.to_string());
        }
    });
}

pub(crate) fn leave() {
    REC.with(|r| {
        if let Some(rec) = r.borrow_mut().as_mut() {
            rec.path.pop();
        }
    });
}

/// A stream's analysis begins; returns its index (if recording) for [`end`].
pub(crate) fn begin(data: &[u8]) -> Option<usize> {
    REC.with(|r| {
        let mut b = r.borrow_mut();
        let rec = b.as_mut()?;
        let at = data.as_ptr() as usize;
        let kept = if rec.file.contains(&at) && at + data.len() <= rec.file.end {
            StreamData::InFile {
                start: at - rec.file.start,
            }
        } else if rec.kept.saturating_add(data.len()) <= BUDGET {
            rec.kept += data.len();
            StreamData::Copied(data.to_vec())
        } else {
            StreamData::Dropped
        };
        rec.streams.push(PickleStream {
            member: (!rec.path.is_empty()).then(|| rec.path.join("/")),
            format: String::new(),
            data: kept,
            len: data.len(),
        });
        Some(rec.streams.len() - 1)
    })
}

pub(crate) fn end(at: Option<usize>, format: &str) {
    let Some(i) = at else { return };
    REC.with(|r| {
        if let Some(s) = r
            .borrow_mut()
            .as_mut()
            .and_then(|rec| rec.streams.get_mut(i))
        {
            s.format = format.to_string();
        }
    });
}

/// How many streams are recorded so far (for [`truncate`]).
pub(crate) fn mark() -> usize {
    REC.with(|r| r.borrow().as_ref().map_or(0, |rec| rec.streams.len()))
}

/// Forget the streams recorded since `mark`: an analysis whose report was dropped.
pub(crate) fn truncate(mark: usize) {
    REC.with(|r| {
        if let Some(rec) = r.borrow_mut().as_mut() {
            rec.streams.truncate(mark);
        }
    });
}
