//! The pickle streams a scan analysed, with the member path its findings carry: what
//! `pickleguard explain` disassembles inside containers. A scan records them only when its
//! context holds a [`Recorder`] (`crate::scan_with_streams`).

use crate::report::{MemberPath, Segment};

/// One pickle stream found while scanning a file.
#[derive(Clone, Debug)]
pub struct PickleStream {
    /// The member path as findings show it (`None`: the file itself).
    pub member: Option<MemberPath>,
    /// What the stream analysis called it (`raw_pickle`, `joblib`, `not_pickle`...).
    pub format: String,
    /// Where its bytes are.
    pub data: StreamData,
    /// Its length, recorded or not.
    pub len: usize,
}

/// Where a stream's bytes are.
#[derive(Clone, Debug)]
pub enum StreamData {
    /// A slice of the scanned file (the file itself, a stored zip member): not copied.
    InFile {
        /// The stream's offset in the file.
        start: usize,
    },
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

pub(crate) struct Recorder {
    pub(super) path: Vec<Segment>,
    pub(super) streams: Vec<PickleStream>,
    kept: usize,
    /// The scanned file's address range: streams inside it are recorded by offset.
    file: std::ops::Range<usize>,
}

impl Recorder {
    /// A recorder for a scan of `file`.
    pub(super) fn new(file: &[u8]) -> Recorder {
        let at = file.as_ptr() as usize;
        Recorder {
            path: Vec::new(),
            streams: Vec::new(),
            kept: 0,
            file: at..at + file.len(),
        }
    }

    /// A stream's analysis begins; returns its index for [`Recorder::end`].
    pub(super) fn begin(&mut self, data: &[u8]) -> usize {
        let at = data.as_ptr() as usize;
        let kept = if self.file.contains(&at) && at + data.len() <= self.file.end {
            StreamData::InFile {
                start: at - self.file.start,
            }
        } else if self.kept.saturating_add(data.len()) <= BUDGET {
            self.kept += data.len();
            StreamData::Copied(data.to_vec())
        } else {
            StreamData::Dropped
        };
        self.streams.push(PickleStream {
            member: MemberPath::from_segments(self.path.clone()),
            format: String::new(),
            data: kept,
            len: data.len(),
        });
        self.streams.len() - 1
    }

    pub(super) fn end(&mut self, i: usize, format: &str) {
        if let Some(s) = self.streams.get_mut(i) {
            s.format = format.to_string();
        }
    }
}
