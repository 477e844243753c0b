//! Where a scan starts: [`Scan`] holds what a caller chooses about one (the policy, the read
//! hint, whether a PyTorch zip's pickle is left to the load) and opens its context
//! (`crate::context::ScanContext`) for each input. The free functions of the crate root
//! ([`crate::scan_bytes`], [`crate::analyze_pickle`], ...) are its common cases.

use crate::context::observe::ScanObserver;
use crate::context::streams::PickleStream;
use crate::context::{LoadScans, Options, ReadHint, ScanContext};
use crate::policy::Policy;
use crate::report::Report;

/// How to scan: a policy and the caller's choices. Cheap to copy; each of [`Scan::file`],
/// [`Scan::pickle`], [`Scan::file_with_streams`] runs one scan with a budget of its own.
#[derive(Clone, Copy)]
pub struct Scan<'a> {
    policy: &'a Policy,
    opts: Options<'a>,
}

impl<'a> Scan<'a> {
    /// A scan under `policy`, with nothing else chosen.
    pub fn new(policy: &'a Policy) -> Scan<'a> {
        Scan {
            policy,
            opts: Options::default(),
        }
    }

    /// Tell `hint` which ranges of the input a scan of a sparse container (see
    /// [`crate::container::reads_sparsely`]) is about to read from start to end: a pickle
    /// member of a zip or tar of 256 KB or more, a compressed member's bytes. The command
    /// line, which maps such files page by page, reads these ahead (docs/cli.md, "Reading
    /// files"). A hint only: no verdict depends on it.
    pub fn read_hint(mut self, hint: ReadHint<'a>) -> Scan<'a> {
        self.opts.read_hint = Some(hint);
        self
    }

    /// For a file `torch.load` is about to load through a restricted unpickler that scans the
    /// pickle it reads (pickleguard's Python integration): the `data.pkl` of a PyTorch zip is
    /// left to that scan, so it is analysed once, from the exact bytes torch unpickles.
    /// Everything else (other members, both views of the archive, tamper checks) is analysed.
    pub fn before_torch_load(mut self) -> Scan<'a> {
        self.opts.load_scans.torch_data_pkl = true;
        self
    }

    /// For a file about to be loaded through a restricted unpickler that scans, from the bytes
    /// it really consumes, the pickles `scans` names: those are left to it (see [`LoadScans`]).
    pub fn before_load(mut self, scans: LoadScans) -> Scan<'a> {
        self.opts.load_scans = scans;
        self
    }

    /// End the scan's own work at `deadline`: past it, the machine (every few thousand
    /// opcodes), each container member and each piece of decompressed output stop, and the
    /// report is incomplete, with a `RESOURCE_LIMIT` finding for the time limit
    /// ([`crate::Report::stopped_by_time_limit`]). The command line's `--timeout` sets it, so
    /// an abandoned scan does not go on using a core.
    pub fn deadline(mut self, deadline: std::time::Instant) -> Scan<'a> {
        self.opts.deadline = Some(deadline);
        self
    }

    /// Run every pickle in full, without the shape-only first run (for the tests that prove
    /// the fast path changes nothing).
    #[doc(hidden)]
    pub fn without_fast_path(mut self) -> Scan<'a> {
        self.opts.no_fast_path = true;
        self
    }

    /// Show `observer` each pickle the scan's stream driver runs, with the streams numbered as
    /// [`Scan::file_with_streams`] lists them. An observed scan builds the values of every
    /// pickle, without the shape-only first run of plain data (which keeps none to show):
    /// its reports are the same, as the fast-path tests prove.
    pub fn observe(mut self, observer: &'a dyn ScanObserver) -> Scan<'a> {
        self.opts.observer = Some(observer);
        self
    }

    fn context(&self, data: &[u8], record_streams: bool) -> ScanContext<'a> {
        let observed = self.opts.observer.is_some();
        let opts = Options {
            record_streams: record_streams || observed,
            no_fast_path: self.opts.no_fast_path || observed,
            ..self.opts
        };
        ScanContext::new(self.policy, data, opts, crate::container::scan_nested)
    }

    /// Analyse a whole file's bytes, whatever container it is.
    pub fn file(&self, data: &[u8]) -> Report {
        let cx = self.context(data, false);
        let mut r = crate::container::scan_nested(&cx, data);
        crate::analysis::note_name_only_refusals(&mut r, self.policy);
        self.settle_deadline(&cx, &mut r);
        r
    }

    /// [`Scan::file`], listing every pickle stream it analysed, in the order their analyses
    /// began (a container's members before the pickles nested in them): what `explain` shows.
    pub fn file_with_streams(&self, data: &[u8]) -> (Report, Vec<PickleStream>) {
        let cx = self.context(data, true);
        let mut r = crate::container::scan_nested(&cx, data);
        crate::analysis::note_name_only_refusals(&mut r, self.policy);
        self.settle_deadline(&cx, &mut r);
        (r, cx.into_streams())
    }

    /// Analyse raw pickle bytes (one or several pickles back to back); files nested in them
    /// are sniffed like any file.
    pub fn pickle(&self, data: &[u8]) -> Report {
        let cx = self.context(data, false);
        let mut r =
            crate::analysis::analyze_stream(data, self.policy, &crate::analysis::Context::new(&cx));
        crate::analysis::note_name_only_refusals(&mut r, self.policy);
        self.settle_deadline(&cx, &mut r);
        r
    }

    /// A scan still running when its deadline passed may have been cut anywhere, and a
    /// nested analysis cut by the clock may report the limit of its own kind (a nested
    /// joblib pickle, a view whose limit findings are not carried over): its report says the
    /// time limit stopped it, whatever else it says, so that no caller takes it for the
    /// file's verdict (the command line neither reports nor caches it). A scan that ends
    /// just as the deadline passes is marked too: its caller has given up on it already.
    fn settle_deadline(&self, cx: &ScanContext<'_>, r: &mut Report) {
        if cx.budget.out_of_time() && !r.stopped_by_time_limit() {
            crate::container::limit(r, 0, crate::report::Limit::Time);
            r.finish(self.policy.threshold);
        }
    }
}
