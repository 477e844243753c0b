//! A scan split across processes (Python's `pickleguard.distributed`, `scan --dask`): the
//! command line's arguments are planned here (policy resolved once, tree walked once), batches
//! of files are scanned anywhere the same build runs, and the merged results are printed by
//! the same writers as a local scan. Everything crossing a process boundary is JSON.

use crate::cache::{Cache, CacheStats};
use crate::cli::{Cli, Command, FileLimits, Format, ScanArgs};
use crate::hub::{self, HubRef};
use crate::judge::{Judge, RemoteNames};
use crate::output::FileEntry;
use crate::scan::{self, FileResult, Outcome};
use crate::walk::{self, Filters, Source, Target};
use crate::{config, output, sarif, term, ExitStatus};
use pickleguard::{Mode, Policy, Report, Severity};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// One file to scan elsewhere.
#[derive(Serialize, Deserialize)]
pub struct Planned {
    pub display: String,
    pub path: PathBuf,
    pub size: u64,
}

/// What `plan` decided: the files, the policy as a snapshot, and the output settings.
#[derive(Serialize)]
pub struct Plan {
    pub targets: Vec<Planned>,
    /// Paths that could not be walked: reported as errors, as a local scan does.
    pub failures: Vec<(String, String)>,
    pub skipped_links: usize,
    pub loops: usize,
    pub duplicates: usize,
    /// Links to files outside the scanned tree: the merged report lists them.
    pub links: Vec<walk::LinkNote>,
    /// The config files the policy came from: the merged report lists them.
    pub configs: Vec<config::ConfigUse>,
    /// [`Policy::to_snapshot`] of the effective policy.
    pub policy: String,
    pub mode: &'static str,
    pub fail_on: &'static str,
    pub cache: Option<PathBuf>,
    /// The per-file bounds every worker applies.
    pub bounds: Bounds,
    pub dask: Option<String>,
    pub jobs: Option<u16>,
    pub format: &'static str,
}

fn scan_args(argv: &[String]) -> Result<ScanArgs, String> {
    match Cli::try_parse_from_args(argv)? {
        Command::Scan(a) => Ok(a),
        _ => Err("expected `pickleguard scan ...`".into()),
    }
}

impl Cli {
    fn try_parse_from_args(argv: &[String]) -> Result<Command, String> {
        use clap::Parser;
        Cli::try_parse_from(argv)
            .map(|c| c.command)
            .map_err(|e| e.render().to_string().trim_end().to_string())
    }
}

/// Plan `pickleguard scan ARGS` (argv with the program name first) without scanning.
pub fn plan(argv: &[String]) -> Result<Plan, String> {
    let a = scan_args(argv)?;
    if a.hub.cache_verify {
        return Err(
            "--cache-verify is not available with a cluster scan yet: scan locally, \
                    or use --cache alone"
                .into(),
        );
    }
    // A config inside a scanned tree only tightens, as in a local scan.
    let eff = config::build_for(&a.policy, None, &a.paths)?;
    let filters = Filters::new(&a.walk)?;
    let walked = walk::collect(&a.paths, &a.walk, &filters);
    // Workers do not share the client's working directory: they get absolute paths, the
    // report keeps the paths as given.
    let cwd = std::env::current_dir().map_err(|e| format!("working directory: {e}"))?;
    let mut targets = Vec::with_capacity(walked.targets.len());
    for t in walked.targets {
        match t.source {
            Source::File(path) => targets.push(Planned {
                display: t.display,
                path: cwd.join(path),
                size: t.size,
            }),
            Source::Stream(_) => {
                return Err(format!(
                    "{}: standard input and pipes cannot be scanned on a cluster",
                    t.display
                ))
            }
        }
    }
    Ok(Plan {
        targets,
        failures: walked
            .failures
            .into_iter()
            .map(|f| (f.display, f.error))
            .collect(),
        skipped_links: walked.skipped_links,
        loops: walked.loops,
        duplicates: walked.duplicates,
        links: walked.links,
        configs: eff.configs,
        policy: eff.policy.to_snapshot(),
        mode: eff.policy.mode.as_str(),
        fail_on: eff.policy.threshold.as_str(),
        cache: a.hub.cache,
        bounds: Bounds::of(&a.walk.limits),
        dask: a.hub.dask,
        jobs: a.walk.jobs,
        format: match a.format {
            Format::Text => "text",
            Format::Json => "json",
            Format::Sarif => "sarif",
            Format::Jsonl => "jsonl",
        },
    })
}

/// `--max-size` and `--timeout` as they cross to workers (bytes, seconds).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct Bounds {
    pub max_size: Option<u64>,
    pub timeout: Option<f64>,
}

impl Bounds {
    pub fn of(l: &FileLimits) -> Bounds {
        Bounds {
            max_size: l.max_size,
            timeout: l.timeout.map(|d| d.as_secs_f64()),
        }
    }

    pub fn limits(&self) -> Result<FileLimits, String> {
        let timeout = match self.timeout {
            Some(s) => {
                Some(Duration::try_from_secs_f64(s).map_err(|e| format!("timeout {s}: {e}"))?)
            }
            None => None,
        };
        Ok(FileLimits {
            max_size: self.max_size,
            timeout,
        })
    }
}

/// The bounds of `pickleguard scan ARGS` (what a remote scan must know before it fetches).
pub fn bounds(argv: &[String]) -> Result<Bounds, String> {
    Ok(Bounds::of(&scan_args(argv)?.walk.limits))
}

#[derive(Serialize)]
struct BatchOut<'a> {
    files: Vec<FileEntry<'a>>,
    cache: Option<CacheStats>,
}

/// Scan `(display, path)` pairs one after another under a policy snapshot, within `bounds`,
/// through the cache in `cache_dir` if given: the entries of the JSON report, and what the
/// cache did. A URL's files are scanned here too, from the local copies the worker made of
/// them, under the names `remote_names` (`LOCAL=URL`, as `--remote-name`) gives them.
pub fn scan_batch(
    files: &[(String, PathBuf)],
    snapshot: &str,
    cache_dir: Option<&Path>,
    bounds: &Bounds,
    remote_names: &[String],
) -> Result<String, String> {
    let policy = Arc::new(Policy::from_snapshot(snapshot)?);
    // A worker process runs many batches: the cache is loaded once, then kept up to date.
    let cache = cache_dir.map(|d| Cache::shared(d, &policy)).transpose()?;
    let judge = Judge::new(policy)
        .limits(bounds.limits()?)
        .cache(cache)
        .names(RemoteNames::parse(remote_names)?);
    let mut stats = CacheStats::default();
    let results: Vec<FileResult> = files
        .iter()
        .map(|(display, path)| {
            let t = Target {
                display: display.clone(),
                source: Source::File(path.clone()),
                size: 0,
                identity: None,
            };
            // `display` is relative to the client's working directory, not this worker's:
            // the client's merge locates files in a Hugging Face cache.
            let (r, how) = judge.target_served(&t);
            if let Some(how) = how {
                stats.count(how);
            }
            FileResult { hub: None, ..r }
        })
        .collect();
    let out = BatchOut {
        files: results.iter().map(FileEntry::of).collect(),
        cache: judge.cache_ref().map(|_| stats),
    };
    serde_json::to_string(&out).map_err(|e| e.to_string())
}

/// A file entry of a JSON report, read back.
#[derive(Deserialize)]
struct EntryIn {
    path: String,
    #[serde(flatten)]
    report: Report,
    error: Option<String>,
    #[serde(default)]
    hf: Option<HubRef>,
}

/// A config use of a JSON report, read back.
#[derive(Deserialize)]
struct ConfigIn {
    path: String,
    origin: String,
    trust: config::Trust,
    #[serde(default)]
    ignored: Vec<String>,
}

impl ConfigIn {
    fn into_use(self) -> Result<config::ConfigUse, String> {
        let origin = match self.origin.as_str() {
            "discovered" => "discovered",
            "--policy" => "--policy",
            o => return Err(format!("invalid report: unknown config origin {o:?}")),
        };
        Ok(config::ConfigUse {
            path: self.path,
            origin,
            trust: self.trust,
            ignored: self.ignored,
        })
    }
}

#[derive(Deserialize)]
struct DocIn {
    mode: String,
    fail_on: String,
    #[serde(default)]
    configs: Vec<ConfigIn>,
    #[serde(default)]
    links: Vec<walk::LinkNote>,
    files: Vec<EntryIn>,
    #[serde(default)]
    summary: Option<SummaryIn>,
}

#[derive(Deserialize)]
struct SummaryIn {
    #[serde(flatten)]
    cache: Option<CacheStats>,
}

/// A JSON report (docs/report-schema.md) back to an outcome and the mode and threshold it
/// was judged under; files sorted and de-duplicated by path as a local scan's are.
fn outcome_of(doc_json: &str) -> Result<(Outcome, Policy), String> {
    let doc: DocIn = serde_json::from_str(doc_json).map_err(|e| format!("invalid report: {e}"))?;
    let mode = Mode::parse(&doc.mode).ok_or_else(|| format!("unknown mode {:?}", doc.mode))?;
    let mut policy = Policy::new(mode);
    policy.threshold =
        Severity::parse(&doc.fail_on).ok_or_else(|| format!("unknown level {:?}", doc.fail_on))?;
    let mut files: Vec<FileResult> = doc
        .files
        .into_iter()
        .map(|e| FileResult {
            // A worker's entry has none: located here, where the paths are valid.
            hub: e.hf.or_else(|| match e.error {
                None => hub::locate(Path::new(&e.path)),
                Some(_) => None,
            }),
            path: e.path,
            report: e.report,
            error: e.error,
            bytes: 0,
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files.dedup_by(|a, b| a.path == b.path);
    let outcome = Outcome {
        files,
        skipped_links: 0,
        loops: 0,
        duplicates: 0,
        links: doc.links,
        configs: doc
            .configs
            .into_iter()
            .map(ConfigIn::into_use)
            .collect::<Result<_, _>>()?,
        cache: doc.summary.and_then(|s| s.cache),
    };
    Ok((outcome, policy))
}

/// Print a merged report as `pickleguard scan ARGS` would have (format, output file, colours,
/// quiet) and return its exit code. `doc_json` is a JSON report whose `files` may be in any
/// order; the notes on links, loops and duplicates come from the plan.
pub fn finish(
    argv: &[String],
    doc_json: &str,
    skipped_links: usize,
    loops: usize,
    duplicates: usize,
) -> Result<ExitStatus, String> {
    let a = scan_args(argv)?;
    let (mut outcome, policy) = outcome_of(doc_json)?;
    outcome.skipped_links = skipped_links;
    outcome.loops = loops;
    outcome.duplicates = duplicates;
    let text = render(&outcome, &policy, &a)?;
    term::write_output(a.output.as_deref(), text.as_bytes())?;
    scan::report_notes(&outcome, a.quiet);
    Ok(scan::exit_code(&outcome, policy.mode))
}

fn render(outcome: &Outcome, policy: &Policy, a: &ScanArgs) -> Result<String, String> {
    let to_file = a.output.as_ref().is_some_and(|p| p.as_os_str() != "-");
    Ok(match a.format {
        Format::Text => {
            let style = term::Style {
                on: term::use_color(a.color, to_file),
            };
            output::text(outcome, policy, style, a.quiet, a.list_globals)
        }
        Format::Json => output::json(outcome, policy),
        Format::Sarif => sarif::sarif(outcome, policy),
        Format::Jsonl => {
            let mut buf = Vec::new();
            {
                let w = crate::jsonl::Writer::new(Box::new(&mut buf));
                for f in &outcome.files {
                    w.file(f);
                }
                w.finish(outcome, policy)?;
            }
            String::from_utf8(buf).map_err(|e| e.to_string())?
        }
    })
}

/// A merged JSON report in another format ("json" normalises order; "sarif", "text",
/// "jsonl"): what `pickleguard.distributed.render` returns.
pub fn convert(doc_json: &str, format: &str) -> Result<String, String> {
    let (outcome, policy) = outcome_of(doc_json)?;
    let a = scan_args(&[
        "pickleguard".into(),
        "scan".into(),
        "--format".into(),
        format.into(),
        "--color".into(),
        "never".into(),
        "-".into(),
    ])?;
    render(&outcome, &policy, &a)
}
