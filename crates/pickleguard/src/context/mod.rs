//! The state one scan runs in, passed explicitly to every layer that needs it: the policy,
//! the decompression and decoding [`budget`] (with the scan's deadline, if any), the stream recorder ([`streams`], for
//! `explain`), whether a PyTorch zip's `data.pkl` is left to the load, how deep the file
//! being scanned is nested (`ScanContext::deeper`) and the depth of the TorchScript archive
//! being read, the caller's read hint, and the scanner for files nested in others. No scan
//! depends on thread-local or process-wide state.
//!
//! The context knows neither the analysis nor the containers: the container layer is handed
//! in as [`NestedScanner`] by whoever opens the scan (`crate::scan`), so the analysis reaches
//! nested files through the context without importing the container layer.

pub mod budget;
pub mod observe;
pub mod streams;

use std::cell::{Cell, RefCell};

use crate::policy::Policy;
use crate::report::{Report, Segment};
use budget::Budget;
use observe::ScanObserver;
use streams::Recorder;

/// Analyses a serialized file found inside another (an archive member, the bytes handed to
/// torch's `_load_from_bytes` or to a nested `pickle.loads`, decoded payloads) at a depth.
pub(crate) type NestedScanner = fn(&ScanContext<'_>, &[u8]) -> Report;

/// A function told which bytes of the input a scan is about to read whole (see
/// `crate::Scan::read_hint`).
pub type ReadHint<'a> = &'a dyn Fn(&[u8]);

/// Below this size a member is read page by page like the rest of its archive.
const READ_HINT_MIN: usize = 256 << 10;

/// Which pickles of a file the load that follows a scan reads through pickleguard's restricted
/// unpickler and scans itself, from the bytes it really consumes (pickleguard's Python
/// integration). The scan before such a load leaves those pickles to that scan, so each is
/// analysed once and each compressed byte is decompressed once; every structural check of the
/// file (both views of an archive, end records, overlaps, names, `.npy` headers) stays in it.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct LoadScans {
    /// `torch.load`: the one `data.pkl` of a PyTorch zip.
    pub torch_data_pkl: bool,
    /// `numpy.load` of an `.npz` (every member an `.npy`): the object arrays of its deflated
    /// members, which the guarded `NpzFile` scans as `zipfile` inflates them.
    pub npz_members: bool,
    /// `safe_load` of an archive of one file (pandas' `to_pickle(compression='zip')`): that
    /// deflated member, which `safe_load` scans whole as `zipfile` inflates it.
    pub single_member: bool,
}

/// One scan's context. Made by `crate::Scan` for one input; shared (`&`) by the whole scan,
/// nested containers and payloads included.
pub(crate) struct ScanContext<'a> {
    pub(crate) policy: &'a Policy,
    /// Always there: a scan without a budget cannot be made.
    pub(crate) budget: Budget,
    recorder: Option<RefCell<Recorder>>,
    /// The pickles the load after this scan reads through the restricted unpickler and scans
    /// itself, left to it.
    pub(crate) load_scans: LoadScans,
    /// Run pickles shape-only first (`Machine::set_shape_only`); off only in the tests that
    /// prove it changes nothing.
    pub(crate) fast_path: bool,
    /// How deep in the input the file being scanned is nested (0: the input itself; each
    /// container member, decompressed stream or nested payload is one deeper).
    depth: Cell<u32>,
    /// The depth of the records of the TorchScript archive being scanned, if any.
    torchscript_depth: Cell<Option<u32>>,
    read_hint: Option<ReadHint<'a>>,
    /// Shown each pickle the stream driver runs (see [`observe`]).
    observer: Option<&'a dyn ScanObserver>,
    nested: NestedScanner,
}

/// How a [`ScanContext`] is set up besides its policy and input.
#[derive(Clone, Copy, Default)]
pub(crate) struct Options<'a> {
    pub(crate) load_scans: LoadScans,
    pub(crate) no_fast_path: bool,
    pub(crate) read_hint: Option<ReadHint<'a>>,
    pub(crate) record_streams: bool,
    pub(crate) observer: Option<&'a dyn ScanObserver>,
    pub(crate) deadline: Option<std::time::Instant>,
}

impl<'a> ScanContext<'a> {
    /// The context for scanning `input` (the budget is sized by its length).
    pub(crate) fn new(
        policy: &'a Policy,
        input: &[u8],
        opts: Options<'a>,
        nested: NestedScanner,
    ) -> ScanContext<'a> {
        ScanContext {
            policy,
            budget: Budget::new(input.len() as u64, &policy.limits).until(opts.deadline),
            recorder: opts
                .record_streams
                .then(|| RefCell::new(Recorder::new(input))),
            load_scans: opts.load_scans,
            fast_path: !opts.no_fast_path,
            depth: Cell::new(0),
            torchscript_depth: Cell::new(None),
            read_hint: opts.read_hint,
            observer: opts.observer,
            nested,
        }
    }

    /// Analyse a file nested in the one being scanned, one level deeper.
    pub(crate) fn nested(&self, data: &[u8]) -> Report {
        self.deeper(|| (self.nested)(self, data))
    }

    /// How deep the file being scanned is nested in the input (0: the input itself).
    pub(crate) fn depth(&self) -> u32 {
        self.depth.get()
    }

    /// Run `f` on a file nested one level deeper than the current one (a member, a
    /// decompressed stream, a nested payload).
    pub(crate) fn deeper<T>(&self, f: impl FnOnce() -> T) -> T {
        /// Restores the depth however `f` ends.
        struct Up<'c>(&'c Cell<u32>, u32);
        impl Drop for Up<'_> {
            fn drop(&mut self) {
                self.0.set(self.1);
            }
        }
        let at = self.depth.get();
        let _up = Up(&self.depth, at);
        self.depth.set(at + 1);
        f()
    }

    /// The recorded streams (empty unless recording was asked for).
    pub(crate) fn into_streams(self) -> Vec<streams::PickleStream> {
        self.recorder
            .map(|r| r.into_inner().streams)
            .unwrap_or_default()
    }

    /// Run `f` for the member `label` of the file being scanned (the recorded member path).
    pub(crate) fn within<T>(&self, label: &Segment, f: impl FnOnce() -> T) -> T {
        if let Some(r) = &self.recorder {
            r.borrow_mut().path.push(label.clone());
        }
        let out = f();
        if let Some(r) = &self.recorder {
            r.borrow_mut().path.pop();
        }
        out
    }

    /// A stream's analysis begins; its index (if recording) for [`Self::end_stream`].
    pub(crate) fn begin_stream(&self, data: &[u8]) -> Option<usize> {
        let at = self.recorder.as_ref().map(|r| r.borrow_mut().begin(data));
        if let (Some(i), Some(o)) = (at, self.observer) {
            o.stream(i);
        }
        at
    }

    /// The observer of the stream driver, if the scan has one (it always records streams).
    pub(crate) fn observer(&self) -> Option<&'a dyn ScanObserver> {
        self.observer
    }

    pub(crate) fn end_stream(&self, at: Option<usize>, format: &str) {
        if let (Some(i), Some(r)) = (at, &self.recorder) {
            r.borrow_mut().end(i, format);
        }
    }

    /// How many streams are recorded so far (for [`Self::forget_streams`]).
    pub(crate) fn streams_mark(&self) -> usize {
        self.recorder
            .as_ref()
            .map_or(0, |r| r.borrow().streams.len())
    }

    /// Forget the streams recorded since `mark`: an analysis whose report was dropped.
    pub(crate) fn forget_streams(&self, mark: usize) {
        if let Some(r) = &self.recorder {
            r.borrow_mut().streams.truncate(mark);
        }
    }

    /// Run `f` on a record of a TorchScript archive, at the current depth: its pickles are
    /// judged as torch.jit's C++ unpickler reads them (a record's own nested files are not).
    pub(crate) fn torchscript_record<T>(&self, f: impl FnOnce() -> T) -> T {
        let saved = self.torchscript_depth.replace(Some(self.depth()));
        let out = f();
        self.torchscript_depth.set(saved);
        out
    }

    /// Whether pickles found at the current depth are records of the TorchScript archive
    /// being scanned.
    pub(crate) fn in_torchscript(&self) -> bool {
        self.torchscript_depth.get() == Some(self.depth())
    }

    /// `bytes` (a slice of the scanned input) are read whole next.
    pub(crate) fn will_read(&self, bytes: &[u8]) {
        if bytes.len() >= READ_HINT_MIN {
            if let Some(hint) = self.read_hint {
                hint(bytes)
            }
        }
    }

    /// Whether a read hint is installed and `bytes` are large enough to be hinted.
    pub(crate) fn hints(&self, bytes: &[u8]) -> bool {
        bytes.len() >= READ_HINT_MIN && self.read_hint.is_some()
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::{Mode, Policy};
    use crate::report::FindingType;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// The depth is the context's, one deeper for each nested file and back afterwards,
    /// even when the nested scan unwinds.
    #[test]
    fn each_nested_file_is_one_deeper_and_the_depth_comes_back() {
        let p = Policy::new(Mode::Ml);
        let cx = super::ScanContext::new(&p, b"", super::Options::default(), |cx, _| {
            let mut r = crate::report::Report::new("probe");
            r.format = format!("depth {}", cx.depth());
            r
        });
        assert_eq!(cx.depth(), 0);
        assert_eq!(cx.nested(b"x").format, "depth 1");
        assert_eq!(
            cx.deeper(|| cx.deeper(|| cx.nested(b"x").format)),
            "depth 3"
        );
        assert_eq!(cx.depth(), 0);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cx.deeper(|| panic!("inside a nested scan"))
        }));
        assert!(unwound.is_err());
        assert_eq!(cx.depth(), 0);
        assert!(!cx.in_torchscript());
        cx.deeper(|| {
            cx.torchscript_record(|| {
                assert!(cx.in_torchscript());
                assert!(
                    !cx.deeper(|| cx.in_torchscript()),
                    "a record's nested files are not"
                );
            })
        });
    }

    /// Files nested deeper than `max_nesting` are not opened: a resource limit says so.
    #[test]
    fn containers_nested_past_the_bound_stop_at_the_nesting_limit() {
        let mut p = Policy::new(Mode::Ml);
        p.limits.max_nesting = 3;
        let mut data = b"N.".to_vec();
        for _ in 0..3 {
            data = gzip(&data);
        }
        assert!(crate::Scan::new(&p).file(&data).complete);
        let r = crate::Scan::new(&p).file(&gzip(&data));
        assert_eq!(
            r.stopped_by,
            Some(crate::report::StopReason::Limit(
                crate::report::Limit::NestingDepth
            ))
        );
    }

    /// Every scan has a budget, and files nested in the input draw on the one the scan
    /// opened: running out is a finding. (A stream shorter than the 64 KB head that
    /// `compress::scan` decompresses first is decompressed twice, and both count.)
    #[test]
    fn every_scan_decompresses_within_its_budget() {
        let mut p = Policy::new(Mode::Ml);
        p.limits.max_decompressed = 64 << 10;
        let inner = gzip(&vec![b'N'; 20 << 10]);
        let mut outer = inner.clone();
        outer.extend(vec![0u8; 24 << 10]);
        for (data, limited) in [
            (inner, false),
            (gzip(&vec![0u8; 24 << 10]), false),
            (gzip(&vec![b'N'; 100 << 10]), true),
            // The two above, one inside the other: each fits alone, together they do not.
            (gzip(&outer), true),
        ] {
            let r = crate::Scan::new(&p).file(&data);
            let hit = r.findings.iter().any(|f| {
                f.kind == FindingType::ResourceLimit && f.description.contains("decompressed size")
            });
            assert_eq!(hit, limited, "{:?}", r.findings);
            assert_eq!(r.complete, !limited);
        }
    }

    /// The budget belongs to one scan: scans one after the other each get a full one.
    #[test]
    fn each_scan_has_a_budget_of_its_own() {
        let mut p = Policy::new(Mode::Ml);
        p.limits.max_decompressed = 64 << 10;
        let data = gzip(&vec![b'N'; 20 << 10]);
        let scan = crate::Scan::new(&p);
        for _ in 0..3 {
            assert!(scan.file(&data).complete);
        }
    }
}
