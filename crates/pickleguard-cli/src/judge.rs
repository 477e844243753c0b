//! How one file of a scan is judged, whichever way the scan runs: a local scan, `--format
//! jsonl`, a batch on a cluster (`pickleguard.distributed`), the local copy of a remote source.
//! Every one of them calls [`Judge::target`], the one place that applies the per-file bounds
//! (`--max-size`, `--timeout`), goes through the verdict cache and gives a remote source its
//! URL as its name.
//!
//! Bounds and cache (docs/cli.md, "Verdict cache"): the cache only ever sees a complete
//! analysis, never a verdict a bound produced. `--max-size` is decided here, from the file's
//! size, before the cache is asked, so a cached verdict of a file over the limit is never
//! reported; `--timeout` abandons waiting for the file's judgement (reading, hashing, cache and
//! analysis together) and reports a RESOURCE_LIMIT that is not stored. The analysis gets the
//! same instant as its deadline (`pickleguard::Scan::deadline`), so an abandoned scan ends its
//! own work there instead of running on beside the next files; a report the deadline cut
//! short is never stored. A scan that finishes after its timeout without being cut (it was
//! reading or hashing), in its abandoned thread, stores its complete verdict: reused later,
//! under any bounds, it is the verdict that scan would have given with no bound at all.

use crate::cache::{Cache, Served};
use crate::cli::FileLimits;
use crate::scan::{self, FileResult};
use crate::walk::{Source, Target};
use pickleguard::{Finding, FindingType, Limit, Policy, Report, Severity};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything a scan applies to each of its files.
pub struct Judge {
    policy: Arc<Policy>,
    limits: FileLimits,
    cache: Option<Arc<Cache>>,
    names: RemoteNames,
}

impl Judge {
    pub fn new(policy: Arc<Policy>) -> Judge {
        Judge {
            policy,
            limits: FileLimits::default(),
            cache: None,
            names: RemoteNames::default(),
        }
    }

    pub fn limits(mut self, limits: FileLimits) -> Judge {
        self.limits = limits;
        self
    }

    pub fn cache(mut self, cache: Option<Arc<Cache>>) -> Judge {
        self.cache = cache;
        self
    }

    pub fn names(mut self, names: RemoteNames) -> Judge {
        self.names = names;
        self
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn cache_ref(&self) -> Option<&Cache> {
        self.cache.as_deref()
    }

    /// Judge one file: bounded, through the cache, under its reported name.
    pub fn target(&self, t: &Target) -> FileResult {
        self.target_served(t).0
    }

    /// [`Judge::target`], and how the cache served the verdict (`None`: the cache had no part
    /// in it, e.g. a bound decided).
    pub fn target_served(&self, t: &Target) -> (FileResult, Option<Served>) {
        let (mut r, how) = self.bounded(t);
        self.names.apply(&mut r);
        (r, how)
    }

    fn bounded(&self, t: &Target) -> (FileResult, Option<Served>) {
        let over = |len: u64| self.limits.max_size.filter(|&max| len > max);
        if let Source::File(p) = &t.source {
            // The walk's size, or (a batch planned elsewhere) the file's own.
            let len = match t.size {
                0 => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
                n => n,
            };
            if let Some(max) = over(len) {
                return (over_limit(t, len, limit_finding::too_big(len, max)), None);
            }
        }
        // A remote file's local copy is a temporary file: its identity means nothing later.
        let cache = match self.names.covers(&t.display) {
            true => None,
            false => self.cache.clone(),
        };
        let (r, how) = match self.limits.timeout {
            Some(timeout) => self.timed(t, cache, timeout),
            None => unbounded(t, &self.policy, cache.as_deref(), None),
        };
        // A file that grew past the limit between the walk and the read.
        match over(r.bytes) {
            Some(max) if r.error.is_none() => (
                over_limit(t, r.bytes, limit_finding::too_big(r.bytes, max)),
                None,
            ),
            _ => (r, how),
        }
    }

    /// The judgement runs on a thread of its own, left alone when time runs out: its analysis
    /// stops at the same deadline, its result is dropped. A report the deadline stopped gets
    /// the timeout's verdict even when it arrives first, so the output does not depend on
    /// which of the two noticed the time first.
    fn timed(
        &self,
        t: &Target,
        cache: Option<Arc<Cache>>,
        timeout: Duration,
    ) -> (FileResult, Option<Served>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let (target, policy) = (t.clone(), Arc::clone(&self.policy));
        let deadline = Instant::now() + timeout;
        let spawned = std::thread::Builder::new()
            .name("pickleguard-timed".into())
            .spawn(move || {
                let _ = tx.send(unbounded(
                    &target,
                    &policy,
                    cache.as_deref(),
                    Some(deadline),
                ));
            });
        if let Err(e) = spawned {
            let why = format!("cannot start a scan: {e}");
            return (FileResult::failed(t.display.clone(), why), None);
        }
        match rx.recv_timeout(timeout) {
            Ok(r) if !r.0.report.stopped_by_time_limit() => r,
            _ => (
                over_limit(t, t.size, limit_finding::timed_out(timeout)),
                None,
            ),
        }
    }
}

/// Judge `t` without a per-file bound; `deadline` ends the analysis's own work (`--timeout`).
fn unbounded(
    t: &Target,
    policy: &Policy,
    cache: Option<&Cache>,
    deadline: Option<Instant>,
) -> (FileResult, Option<Served>) {
    crate::contain::judged(
        &t.display,
        || judged(t, policy, cache, deadline),
        |r| (r, None),
    )
}

fn judged(
    t: &Target,
    policy: &Policy,
    cache: Option<&Cache>,
    deadline: Option<Instant>,
) -> (FileResult, Option<Served>) {
    match cache {
        Some(c) => {
            let (r, how) = c.scan_target_served(t, policy, deadline);
            (r, Some(how))
        }
        None => (scan::scan_target(t, policy, deadline), None),
    }
}

/// A file not judged to the end because of a per-file limit: not safe.
fn over_limit(t: &Target, len: u64, (what, desc): (Limit, String)) -> FileResult {
    let mut report = Report::new("not_scanned");
    report.push(Finding::new(
        FindingType::ResourceLimit,
        Severity::High,
        0,
        desc,
    ));
    report.complete = false;
    report.stopped_by = Some(what.into());
    report.finish(Severity::Low);
    FileResult {
        path: t.display.clone(),
        report,
        error: None,
        bytes: len,
        hub: crate::hub::locate(std::path::Path::new(&t.display)),
    }
}

/// The wording of the per-file limits, in one place.
mod limit_finding {
    use pickleguard::Limit;
    use std::time::Duration;

    pub fn too_big(len: u64, max: u64) -> (Limit, String) {
        (
            Limit::MaxSize,
            format!("not scanned: {len} bytes is more than --max-size ({max} bytes); nothing in it was checked"),
        )
    }

    pub fn timed_out(t: Duration) -> (Limit, String) {
        (
            Limit::Timeout,
            format!(
                "the scan took longer than --timeout ({}s) and was abandoned; the file was not checked to the end",
                t.as_secs_f64()
            ),
        )
    }
}

/// The names of remote sources (`pickleguard scan URL`, docs/cli.md): the Python side fetches
/// each into a local copy and passes `--remote-name LOCAL=URL`; a file under LOCAL is reported
/// under URL, in every format, as it is judged.
#[derive(Default, Clone, Debug)]
pub struct RemoteNames(Vec<(String, String)>);

impl RemoteNames {
    pub fn parse(args: &[String]) -> Result<RemoteNames, String> {
        let mut map = Vec::new();
        for n in args {
            let (local, url) = n
                .split_once('=')
                .ok_or_else(|| format!("--remote-name expects LOCAL=URL, got {n:?}"))?;
            map.push((local.to_string(), url.trim_end_matches('/').to_string()));
        }
        Ok(RemoteNames(map))
    }

    /// The URL `path` is reported under, if it is a remote file's local copy.
    fn name(&self, path: &str) -> Option<String> {
        self.0.iter().find_map(|(local, url)| {
            let rest = path.strip_prefix(local.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then(|| format!("{url}{rest}"))
        })
    }

    fn covers(&self, path: &str) -> bool {
        self.name(path).is_some()
    }

    fn apply(&self, f: &mut FileResult) {
        if let Some(n) = self.name(&f.path) {
            f.path = n;
        }
    }
}
