//! `pickleguard scan`: read every file (small ones whole, large ones memory-mapped), analyse
//! it with [`pickleguard::scan_bytes`] in parallel, and print the results in path order.

use crate::cache::{Cache, CacheStats};
use crate::cli::{Format, ScanArgs, WalkArgs};
use crate::judge::{Judge, RemoteNames};
use crate::stream::{self, StreamLimits};
use crate::walk::{self, Filters, Source, Target};
use crate::{config, jsonl, output, sarif, term, ExitStatus};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pickleguard::{Mode, Policy, Report};
use rayon::prelude::*;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Files at least this large are memory-mapped instead of read into memory.
pub const MMAP_THRESHOLD: u64 = 1 << 20;

/// The result for one file.
#[derive(Clone, Debug)]
pub struct FileResult {
    pub path: String,
    pub report: Report,
    /// Why the file could not be read (then `report` is an empty, unsafe report).
    pub error: Option<String>,
    pub bytes: u64,
    /// Where the file sits in a Hugging Face cache, if it does.
    pub hub: Option<crate::hub::HubRef>,
}

impl FileResult {
    pub fn failed(path: String, error: String) -> FileResult {
        let mut report = Report::new("unreadable");
        report.is_safe = false;
        report.complete = false;
        report.stopped_by = Some(pickleguard::StopReason::IoError);
        FileResult {
            path,
            report,
            error: Some(error),
            bytes: 0,
            hub: None,
        }
    }
}

/// Everything a scan produced, in path order.
pub struct Outcome {
    pub files: Vec<FileResult>,
    pub skipped_links: usize,
    pub loops: usize,
    /// Paths to a file or directory already scanned through another path.
    pub duplicates: usize,
    /// Links to files outside the scanned tree (followed; the report says so).
    pub links: Vec<walk::LinkNote>,
    /// The config files the policy came from (set by the command, for the report).
    pub configs: Vec<config::ConfigUse>,
    /// What the verdict cache did, when one was used.
    pub cache: Option<CacheStats>,
}

impl Outcome {
    pub fn errors(&self) -> usize {
        self.files.iter().filter(|f| f.error.is_some()).count()
    }

    pub fn unsafe_count(&self) -> usize {
        self.files
            .iter()
            .filter(|f| f.error.is_none() && !f.report.is_safe)
            .count()
    }
}

/// The bytes of a file: owned (small files, streams) or mapped (large files).
pub enum Bytes {
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            Bytes::Mapped(m) => m,
        }
    }
}

/// Read a target's bytes: small files whole, large ones memory-mapped (never copied).
pub fn load(source: &Source) -> std::io::Result<Bytes> {
    match source {
        Source::Stream(p) => {
            let limits = StreamLimits::from_env();
            let s = stream::read_stream(p.as_deref(), limits)?;
            if s.truncated {
                return Err(std::io::Error::other(stream_cap_message(limits)));
            }
            Ok(Bytes::Owned(s.data))
        }
        Source::File(p) => {
            let mut f = std::fs::File::open(p)?;
            let len = f.metadata()?.len();
            load_file(&mut f, len)
        }
    }
}

/// Read an open file of `len` bytes: whole when small, memory-mapped when large.
pub fn load_file(f: &mut std::fs::File, len: u64) -> std::io::Result<Bytes> {
    if len >= MMAP_THRESHOLD {
        // SAFETY: the map is read-only and private to this scan. A file truncated by
        // another process while it is mapped can raise SIGBUS; that is the accepted
        // cost of not reading multi-GB model files into memory (DESIGN.md: maps are
        // for the command line, never the core).
        let map = unsafe { memmap2::MmapOptions::new().map(&*f)? };
        advise_scan(&map);
        Ok(Bytes::Mapped(map))
    } else {
        let mut buf = Vec::with_capacity(len as usize + 1);
        f.read_to_end(&mut buf)?;
        Ok(Bytes::Owned(buf))
    }
}

/// Tell the kernel how a scan will read a file map (`bytes`, from its start): ahead, for a
/// stream it reads from start to end; page by page for a zip, tar, legacy PyTorch file or
/// numeric `.npy`, where it reads headers and pickles between the weights. On a cold cache,
/// reading ahead in a model zip reads every weight (docs/cli.md, "Reading files"). The first
/// bytes decide, read through the map under sequential advice: a first read made any other way
/// (page by page, or into a buffer) left the dense scans' read-ahead without its pipelining,
/// 12-20 % slower. Python's `scan_file` advises its maps here too.
pub fn advise_scan(bytes: &[u8]) {
    #[cfg(unix)]
    {
        madvise(bytes.as_ptr() as usize, bytes.len(), libc::MADV_SEQUENTIAL);
        if pickleguard::reads_sparsely(&bytes[..bytes.len().min(4096)]) {
            madvise(bytes.as_ptr() as usize, bytes.len(), libc::MADV_RANDOM);
        }
    }
    #[cfg(not(unix))]
    let _ = bytes;
}

/// [`pickleguard::scan_bytes`], reading ahead what a scan of a sparse container will read
/// whole (a big pickle member of a zip or tar: [`pickleguard::Scan::read_hint`]), while the
/// rest of a map stays page by page. Without it, a torch file holding a 38 MB pickled dataset
/// scanned 1.5-2.3x slower on a cold cache than with read-ahead everywhere. Every scan of a
/// file's bytes by the command line (and by Python's `scan_file`) goes through here.
/// `deadline` (`--timeout`) ends the analysis there ([`pickleguard::Scan::deadline`]).
pub fn judge_bytes(bytes: &[u8], policy: &Policy, deadline: Option<Instant>) -> Report {
    let scan = pickleguard::Scan::new(policy).read_hint(&read_ahead);
    match deadline {
        Some(d) => scan.deadline(d).file(bytes),
        None => scan.file(bytes),
    }
}

/// A multiple of every page size.
#[cfg(unix)]
const READ_AHEAD_STEP: usize = 1 << 20;

/// The read hint of [`judge_bytes`]: advise the kernel to read `bytes` (a slice of a map) ahead.
pub fn read_ahead(bytes: &[u8]) {
    #[cfg(unix)]
    {
        let end = bytes.as_ptr() as usize + bytes.len();
        let mut at = bytes.as_ptr() as usize;
        // The kernel reads at most the device's read-ahead window per call: ask in pieces.
        while at < end {
            let len = (end - at).min(READ_AHEAD_STEP);
            madvise(at, len, libc::MADV_WILLNEED);
            at += len;
        }
    }
    #[cfg(not(unix))]
    let _ = bytes;
}

/// `madvise` the pages holding `len` bytes at `addr`; a failure (memory that is not a file
/// map) is ignored, the advice being only a hint.
#[cfg(unix)]
fn madvise(addr: usize, len: usize, advice: libc::c_int) {
    // SAFETY: sysconf has no preconditions; madvise with these advices only schedules or
    // stops reads of this process's own pages and changes no memory.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        p if p > 0 => p as usize,
        _ => return,
    };
    let start = addr & !(page - 1);
    // SAFETY: as above: advice on this process's own pages, no memory changes.
    unsafe {
        libc::madvise(start as *mut libc::c_void, addr + len - start, advice);
    }
}

fn stream_cap_message(limits: StreamLimits) -> String {
    format!(
        "the stream gives more than {} bytes (PICKLEGUARD_STREAM_MAX_BYTES)",
        limits.max_bytes
    )
}

/// Scan a stream: within its size cap it is scanned like a file; past the cap, its first
/// bytes are scanned and the report ends in a RESOURCE_LIMIT finding (not safe).
fn scan_stream(
    t: &Target,
    path: Option<&std::path::Path>,
    policy: &Policy,
    deadline: Option<Instant>,
) -> FileResult {
    match stream_report(path, policy, deadline) {
        Ok((report, bytes)) => FileResult {
            path: t.display.clone(),
            report,
            error: None,
            bytes,
            hub: None,
        },
        Err(e) => FileResult::failed(t.display.clone(), e.to_string()),
    }
}

/// The report of a stream (`path`: a FIFO or a device; `None`: standard input) read within
/// the stream bounds of the environment (docs/cli.md, "Streams"), and how many bytes were
/// scanned. The one place these bounds and their finding are decided: `pickleguard scan`
/// and the Python package's `scan_file` of a FIFO or device both read streams here.
pub fn stream_report(
    path: Option<&std::path::Path>,
    policy: &Policy,
    deadline: Option<Instant>,
) -> std::io::Result<(pickleguard::Report, u64)> {
    let limits = StreamLimits::from_env();
    let s = stream::read_stream(path, limits)?;
    let mut report = judge_bytes(&s.data, policy, deadline);
    if s.truncated {
        report.push(pickleguard::Finding::new(
            pickleguard::FindingType::ResourceLimit,
            pickleguard::Severity::High,
            limits.max_bytes,
            format!(
                "analysis stopped at the stream size limit: {}; the rest was not read",
                stream_cap_message(limits)
            ),
        ));
        report.complete = false;
        report.stopped_by = Some(pickleguard::Limit::StreamSize.into());
        report.finish(policy.threshold);
    }
    Ok((report, s.data.len() as u64))
}

/// A side file's bytes, lent to the core.
struct SideBytes(Bytes);

impl AsRef<[u8]> for SideBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Follow the files the pickle at `path` makes its loader open (docs/containers.md, "Side
/// files"): scanned now, whatever judged the pickle itself (the verdict cache keeps a file's
/// own report and settles its side files on every use, so a changed side file is never judged
/// from a stale entry).
pub fn settle_side_files(report: &mut Report, path: &Path, policy: &Policy) {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    pickleguard::side_files::settle(report, policy, |name| {
        let p = dir.join(name);
        p.is_file()
            .then(|| load(&Source::File(p)).ok())
            .flatten()
            .map(SideBytes)
    });
}

/// Scan one target, uncached: what [`Judge::target`] runs when neither a bound nor the cache
/// decides first (`deadline`: where `--timeout` ends the analysis).
pub fn scan_target(t: &Target, policy: &Policy, deadline: Option<Instant>) -> FileResult {
    if let Source::Stream(p) = &t.source {
        return scan_stream(t, p.as_deref(), policy, deadline);
    }
    match load(&t.source) {
        Ok(bytes) => {
            let mut report = judge_bytes(&bytes, policy, deadline);
            if let Source::File(path) = &t.source {
                settle_side_files(&mut report, path, policy);
            }
            FileResult {
                path: t.display.clone(),
                report,
                error: None,
                bytes: bytes.len() as u64,
                hub: crate::hub::locate(std::path::Path::new(&t.display)),
            }
        }
        Err(e) => FileResult::failed(t.display.clone(), e.to_string()),
    }
}

fn progress(targets: &[Target], show: bool) -> Option<ProgressBar> {
    if !show || targets.len() < 2 || !term::stderr_is_terminal() {
        return None;
    }
    let pb = ProgressBar::with_draw_target(
        Some(targets.len() as u64),
        ProgressDrawTarget::stderr_with_hz(10),
    );
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:25} {pos}/{len} files {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    pb.set_style(style);
    pb.enable_steady_tick(Duration::from_millis(200));
    Some(pb)
}

/// Walk the paths and scan every file in parallel on `jobs` threads, within the walk's
/// per-file bounds; results sorted by path.
pub fn run_scan(
    paths: &[PathBuf],
    walk_args: &WalkArgs,
    policy: &Policy,
    show_progress: bool,
) -> Result<Outcome, String> {
    let judge = Judge::new(Arc::new(policy.clone())).limits(walk_args.limits.clone());
    run_scan_with(paths, walk_args, &judge, show_progress, None)
}

/// Where results go as they arrive (`--format jsonl`), from any scanning thread.
pub type Sink<'a> = &'a (dyn Fn(&FileResult) + Sync);

/// [`run_scan`] with every file judged by `judge` (bounds, cache, names) and, if given, each
/// result handed to `sink` as it arrives.
pub fn run_scan_with(
    paths: &[PathBuf],
    walk_args: &WalkArgs,
    judge: &Judge,
    show_progress: bool,
    sink: Option<Sink>,
) -> Result<Outcome, String> {
    let filters = Filters::new(walk_args)?;
    let walked = walk::collect(paths, walk_args, &filters);
    let total_bytes: u64 = walked.targets.iter().map(|t| t.size).sum();
    let pb = progress(&walked.targets, show_progress);
    let done_bytes = AtomicU64::new(0);
    let scan_one = |t: &Target| {
        if let Some(pb) = &pb {
            pb.set_message(format!(
                "{}/{} {}",
                HumanBytes(done_bytes.load(Ordering::Relaxed)),
                HumanBytes(total_bytes),
                pickleguard::terminal_safe(&t.display)
            ));
        }
        let r = judge.target(t);
        if let Some(sink) = sink {
            sink(&r);
        }
        if let Some(pb) = &pb {
            done_bytes.fetch_add(t.size, Ordering::Relaxed);
            pb.inc(1);
        }
        r
    };
    let jobs = walk_args.jobs.map(usize::from).unwrap_or(0);
    // One file (a hook, a CI step on one artifact) is scanned on this thread: a pool would
    // only add its threads' start to the wait.
    let mut files: Vec<FileResult> = if walked.targets.len() <= 1 {
        walked.targets.iter().map(scan_one).collect()
    } else {
        match rayon::ThreadPoolBuilder::new()
            .num_threads(jobs)
            .thread_name(|i| format!("pickleguard-scan-{i}"))
            .build()
        {
            Ok(pool) => pool.install(|| walked.targets.par_iter().map(scan_one).collect()),
            Err(_) => walked.targets.iter().map(scan_one).collect(),
        }
    };
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    for f in walked.failures {
        let r = FileResult::failed(f.display, f.error);
        if let Some(sink) = sink {
            sink(&r);
        }
        files.push(r);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files.dedup_by(|a, b| a.path == b.path);
    Ok(Outcome {
        files,
        skipped_links: walked.skipped_links,
        loops: walked.loops,
        duplicates: walked.duplicates,
        links: walked.links,
        configs: Vec::new(),
        cache: judge.cache_ref().map(Cache::stats),
    })
}

/// The exit code for a finished scan.
pub fn exit_code(outcome: &Outcome, mode: Mode) -> ExitStatus {
    if outcome.files.iter().all(|f| f.error.is_some()) {
        ExitStatus::Nothing
    } else if outcome.errors() > 0 {
        ExitStatus::Error
    } else if outcome.unsafe_count() > 0 && mode != Mode::Audit {
        ExitStatus::Unsafe
    } else {
        ExitStatus::Safe
    }
}

/// The judge of `pickleguard scan ARGS`: the walk's bounds, `--cache`, `--remote-name`.
pub fn judge_for(a: &ScanArgs, policy: Arc<Policy>) -> Result<Judge, String> {
    let cache = match &a.hub.cache {
        Some(dir) => Some(Arc::new(
            Cache::open(dir, &policy)?.verifying(a.hub.cache_verify),
        )),
        None => None,
    };
    Ok(Judge::new(policy)
        .limits(a.walk.limits.clone())
        .cache(cache)
        .names(RemoteNames::parse(&a.remote_names)?))
}

/// `pickleguard scan`.
pub fn command(a: &ScanArgs, ending: crate::Ending) -> Result<ExitStatus, String> {
    if a.hub.dask.is_some() {
        return Err(DASK_NEEDS_PYTHON.into());
    }
    let eff = config::build_for(&a.policy, None, &a.paths)?;
    let policy = Arc::new(eff.policy);
    let judge = judge_for(a, Arc::clone(&policy))?;
    let code = scan_with_judge(a, &judge, eff.configs);
    // The cache and the rest close as usual; only the policy's tables may be left to the
    // process's exit.
    drop(judge);
    ending.release(policy);
    code
}

fn scan_with_judge(
    a: &ScanArgs,
    judge: &Judge,
    configs: Vec<config::ConfigUse>,
) -> Result<ExitStatus, String> {
    let policy = judge.policy();
    if a.format == Format::Jsonl {
        return jsonl_scan(a, judge, configs);
    }
    let mut outcome = run_scan_with(&a.paths, &a.walk, judge, !a.quiet, None)?;
    outcome.configs = configs;
    let to_file = a.output.as_ref().is_some_and(|p| p.as_os_str() != "-");
    let text = match a.format {
        Format::Text => {
            let style = term::Style {
                on: term::use_color(a.color, to_file),
            };
            output::text(&outcome, policy, style, a.quiet, a.list_globals)
        }
        Format::Json => output::json(&outcome, policy),
        Format::Sarif => sarif::sarif(&outcome, policy),
        Format::Jsonl => unreachable!("streamed above"),
    };
    term::write_output(a.output.as_deref(), text.as_bytes())?;
    report_notes(&outcome, a.quiet);
    Ok(exit_code(&outcome, policy.mode))
}

/// The message of `--dask` in a build without Python (exit 2).
pub const DASK_NEEDS_PYTHON: &str = "--dask needs the Python package: install pickleguard-scan \
with pip (and dask.distributed) and run its `pickleguard` command or \
`python -m pickleguard scan --dask ADDRESS ...`; this build is the Rust command line alone";

/// `--format jsonl`: lines go out as files are judged.
fn jsonl_scan(
    a: &ScanArgs,
    judge: &Judge,
    configs: Vec<config::ConfigUse>,
) -> Result<ExitStatus, String> {
    let out: Box<dyn std::io::Write + Send> = match a.output.as_deref() {
        Some(p) if p.as_os_str() != "-" => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
        )),
        _ => Box::new(std::io::stdout()),
    };
    let writer = jsonl::Writer::new(out);
    let sink = |f: &FileResult| writer.file(f);
    let mut outcome = run_scan_with(&a.paths, &a.walk, judge, !a.quiet, Some(&sink))?;
    outcome.configs = configs;
    writer.finish(&outcome, judge.policy())?;
    report_notes(&outcome, a.quiet);
    Ok(exit_code(&outcome, judge.policy().mode))
}

/// The notes on links not followed and loops skipped (stderr).
pub fn report_notes(outcome: &Outcome, quiet: bool) {
    if !quiet {
        if outcome.skipped_links > 0 {
            term::note(&format!(
                "{} symbolic link(s) not followed (use --follow-symlinks to scan their targets)",
                outcome.skipped_links
            ));
        }
        let too_big = outcome
            .files
            .iter()
            .filter(|f| {
                f.report.stopped_by.as_ref().and_then(|s| s.limit())
                    == Some(pickleguard::Limit::MaxSize)
            })
            .count();
        if too_big > 0 {
            term::note(&format!(
                "{too_big} file(s) larger than --max-size were not scanned (reported not safe)"
            ));
        }
        if outcome.duplicates > 0 {
            term::note(&format!(
                "{} path(s) lead to a file or folder already scanned (links): scanned once",
                outcome.duplicates
            ));
        }
        for l in &outcome.links {
            term::note(&match l.why {
                walk::LinkWhy::OutsideTree => format!(
                    "{}: a link to {}, outside the scanned folder: scanned",
                    pickleguard::terminal_safe(&l.path),
                    pickleguard::terminal_safe(&l.target)
                ),
            });
        }
        if outcome.files.iter().all(|f| f.error.is_some()) {
            term::warn(if outcome.files.is_empty() {
                "nothing scanned: no file found under the given paths (exit code 3)"
            } else {
                "nothing scanned: no file could be read (exit code 3)"
            });
        }
        if outcome.loops > 0 {
            term::note(&format!(
                "{} directory loop(s) skipped while following links",
                outcome.loops
            ));
        }
    }
}
