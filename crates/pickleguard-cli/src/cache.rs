//! The verdict cache (`pickleguard scan --cache DIR`, Python `pickleguard.cache`): a file's
//! report is kept under a key of (content hash, rules), the rules being the engine id and the
//! effective policy's fingerprint. A local file is first looked up by its identity (device,
//! inode, size, mtime and ctime in nanoseconds, under the same rules): a hit there reads no
//! byte of the file. Format and guarantees: docs/cli.md, "Verdict cache".
//!
//! Records live in a few append-only segment files per rules ([`store`]), loaded once when the
//! cache is opened: a re-scan of an unchanged tree costs a `stat` per file, not a cache file
//! per file. Anything that does not verify there is a miss, never a verdict.

mod store;

use crate::scan::{self, FileResult, MMAP_THRESHOLD};
use crate::walk::{Source, Target};
use pickleguard::{Policy, Report};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use store::Store;

/// Sub-directory of the cache directory holding this layout (one directory per rules in it).
const LAYOUT_DIR: &str = "v2";

pub use store::MAX_BYTES_ENV;

/// For tests only: a value appended to the engine id, standing for another engine build
/// (docs/cli.md). Unset or empty in real use.
pub const ENGINE_SALT_ENV: &str = "PICKLEGUARD_CACHE_ENGINE_SALT";

/// How often a file that changes while it is read is read again before it is reported as an
/// error (not safe).
const ATTEMPTS: usize = 3;

/// A file modified this recently may be modified again within the file system's timestamp
/// granularity without its identity changing ("racy" as git calls it): its verdict is not
/// stored.
const RACY_WINDOW: Duration = Duration::from_secs(1);

/// The build's engine: the version, a hash of the core's sources and shipped policies
/// (build.rs), and the test-only salt.
pub fn engine_id() -> String {
    let mut id = format!(
        "pickleguard {} engine {}",
        env!("CARGO_PKG_VERSION"),
        env!("PICKLEGUARD_ENGINE_SOURCE")
    );
    if let Ok(salt) = std::env::var(ENGINE_SALT_ENV) {
        if !salt.is_empty() {
            id.push_str(" salt ");
            id.push_str(&salt);
        }
    }
    id
}

/// The hash of (engine, policy) that names a cache's rules directory: the one place the
/// command line, `pickleguard.distributed` and Python's `scan_file(cache=)` get it from.
pub fn rules_id(policy: &Policy) -> String {
    blake3::hash(format!("{}\n{}", engine_id(), policy.fingerprint()).as_bytes())
        .to_hex()
        .to_string()
}

/// What a scan with a cache did, file by file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheStats {
    /// Verdicts reused from the file's identity alone: no byte of the file was read.
    pub cache_hits: u64,
    /// Verdicts reused after reading and hashing the file (its identity had changed, or its
    /// bytes are another file's).
    pub cache_confirmed: u64,
    /// Files analysed.
    pub scanned: u64,
}

impl CacheStats {
    pub fn count(&mut self, how: Served) {
        match how {
            Served::Hit => self.cache_hits += 1,
            Served::Confirmed => self.cache_confirmed += 1,
            Served::Scanned => self.scanned += 1,
        }
    }

    pub fn add(&mut self, other: &CacheStats) {
        self.cache_hits += other.cache_hits;
        self.cache_confirmed += other.cache_confirmed;
        self.scanned += other.scanned;
    }
}

/// A local file's identity; any change to its bytes through the file system changes it.
/// The walk takes it from the `stat` it makes anyway ([`Target::identity`]), so that a cached
/// re-scan costs one metadata call per file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Identity {
    #[cfg(unix)]
    pub fn of(m: &std::fs::Metadata) -> Option<Identity> {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Some(Identity {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        })
    }

    /// Without inode and ctime there is no identity to trust: always hash.
    #[cfg(not(unix))]
    pub fn of(_: &std::fs::Metadata) -> Option<Identity> {
        None
    }

    fn racy(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        now - self.mtime_ns.max(self.ctime_ns) < RACY_WINDOW.as_nanos() as i128
    }
}

/// A file named by a pickle's loader (docs/containers.md, "Side files"), as the verdict
/// that followed it found it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Side {
    name: String,
    /// `None`: no regular file of that name was there.
    identity: Option<Identity>,
}

/// What an identity record holds: where the file's own report is, and the side files its
/// final verdict followed.
#[derive(Serialize, Deserialize)]
struct ByIdentity {
    /// BLAKE3 of the whole file: the own report is the content record's.
    content: Option<String>,
    bytes: u64,
    /// The own report, for a file that was not hashed (a sparse container).
    report: Option<Report>,
    /// The side files followed, when each was seen unchanged before and after it was read;
    /// `None`: follow them again on every use.
    sides: Option<Vec<Side>>,
    /// The report after its side files were followed, when there were any.
    settled: Option<Report>,
}

/// How a verdict was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// From the file's identity: no byte of it was read.
    Hit,
    /// Read and hashed; the same bytes had been judged.
    Confirmed,
    /// Analysed.
    Scanned,
}

impl Served {
    pub fn as_str(self) -> &'static str {
        match self {
            Served::Hit => "hit",
            Served::Confirmed => "confirmed",
            Served::Scanned => "scanned",
        }
    }
}

/// An open cache, bound to one policy and this engine.
pub struct Cache {
    store: Store,
    rules: String,
    /// `--cache-verify`: identity records are never trusted; every file is read and hashed.
    verify: bool,
    hits: AtomicU64,
    confirmed: AtomicU64,
    scanned: AtomicU64,
}

impl Cache {
    /// Open (and create) the cache directory for scans under `policy`.
    pub fn open(dir: &Path, policy: &Policy) -> Result<Cache, String> {
        let rules = rules_id(policy);
        let store = Store::open(&dir.join(LAYOUT_DIR).join(&rules[..32]), &rules)
            .map_err(|e| format!("--cache {}: {e}", dir.display()))?;
        Ok(Cache {
            store,
            rules,
            verify: false,
            hits: AtomicU64::new(0),
            confirmed: AtomicU64::new(0),
            scanned: AtomicU64::new(0),
        })
    }

    /// One cache per (directory, rules) for the life of the process (the Python module opens
    /// it on every `scan_file(cache=)`): loaded once, then brought up to date with what other
    /// processes appended since (a directory listing, and a read of new records only).
    pub fn shared(dir: &Path, policy: &Policy) -> Result<Arc<Cache>, String> {
        type Open = Vec<(PathBuf, String, Arc<Cache>)>;
        static OPEN: Mutex<Open> = Mutex::new(Vec::new());
        let rules = rules_id(policy);
        let key = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, _, c)) = open.iter().find(|(d, r, _)| *d == key && *r == rules) {
            c.store.refresh();
            return Ok(c.clone());
        }
        let c = Arc::new(Cache::open(dir, policy)?);
        // A long-running process that cycles through many caches keeps the last few.
        if open.len() >= 8 {
            open.remove(0);
        }
        open.push((key, rules, c.clone()));
        Ok(c)
    }

    /// `--cache-verify`: read and hash every file, reuse verdicts by content only.
    pub fn verifying(mut self, on: bool) -> Cache {
        self.verify = on;
        self
    }

    /// The hash of (engine, policy) every key of this cache includes.
    pub fn rules(&self) -> &str {
        &self.rules
    }

    /// The directory holding this cache's records for its rules.
    pub fn records_dir(&self) -> &Path {
        self.store.dir()
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            cache_hits: self.hits.load(Ordering::Relaxed),
            cache_confirmed: self.confirmed.load(Ordering::Relaxed),
            scanned: self.scanned.load(Ordering::Relaxed),
        }
    }

    /// Scan one target through the cache (streams are always analysed, never stored).
    pub fn scan_target(&self, t: &Target, policy: &Policy) -> FileResult {
        self.scan_target_served(t, policy, None).0
    }

    /// [`Cache::scan_target`], and how the verdict was obtained; an analysis ends at
    /// `deadline` (`--timeout`), and a report it cut short is not stored.
    pub fn scan_target_served(
        &self,
        t: &Target,
        policy: &Policy,
        deadline: Option<Instant>,
    ) -> (FileResult, Served) {
        let (r, how) = match &t.source {
            Source::File(p) => self.scan_file(p, &t.display, t.identity, policy, deadline),
            Source::Stream(_) => (scan::scan_target(t, policy, deadline), Served::Scanned),
        };
        let counter = match how {
            Served::Hit => &self.hits,
            Served::Confirmed => &self.confirmed,
            Served::Scanned => &self.scanned,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        (r, how)
    }

    /// `seen`: the identity the walk saw the file with, if it did.
    fn scan_file(
        &self,
        path: &Path,
        display: &str,
        seen: Option<Identity>,
        policy: &Policy,
        deadline: Option<Instant>,
    ) -> (FileResult, Served) {
        if !self.verify {
            if let Some(r) = self.by_identity(path, display, seen, policy) {
                return (r, Served::Hit);
            }
        }
        for _ in 0..ATTEMPTS {
            match self.try_file(path, display, policy, deadline) {
                Ok(Some((r, how))) => {
                    return (
                        FileResult {
                            hub: crate::hub::locate(Path::new(display)),
                            ..r
                        },
                        how,
                    )
                }
                Ok(None) => continue,
                Err(e) => {
                    return (
                        FileResult::failed(display.to_string(), e.to_string()),
                        Served::Scanned,
                    )
                }
            }
        }
        (
            FileResult::failed(
                display.to_string(),
                format!("the file changed while it was being read ({ATTEMPTS} attempts)"),
            ),
            Served::Scanned,
        )
    }

    /// The verdict stored for the file's identity, without opening it. The identity the walk
    /// saw is as good as a fresh `stat`: either names bytes the file held during this scan,
    /// and a change after the look is a change after the scan, cached or not.
    fn by_identity(
        &self,
        path: &Path,
        display: &str,
        seen: Option<Identity>,
        policy: &Policy,
    ) -> Option<FileResult> {
        let identity = match seen {
            Some(i) => i,
            None => Identity::of(&std::fs::metadata(path).ok()?)?,
        };
        let rec: ByIdentity = self.get(&identity_key(&identity))?;
        let own = match (&rec.content, rec.report) {
            (Some(c), _) => self.get::<Report>(&content_key(c, rec.bytes))?,
            (None, Some(r)) => r,
            (None, None) => return None,
        };
        let dir = path.parent().unwrap_or(Path::new(""));
        let report = match (rec.sides, rec.settled) {
            (Some(sides), settled) if sides_unchanged(dir, &sides) => settled.unwrap_or(own),
            _ => settle(own, dir, policy).0,
        };
        Some(FileResult {
            path: display.to_string(),
            report,
            error: None,
            bytes: rec.bytes,
            hub: crate::hub::locate(Path::new(display)),
        })
    }

    /// `Ok(None)`: the file changed between the first and last look at it.
    fn try_file(
        &self,
        path: &Path,
        display: &str,
        policy: &Policy,
        deadline: Option<Instant>,
    ) -> std::io::Result<Option<(FileResult, Served)>> {
        let mut file = File::open(path)?;
        let before = file.metadata()?;
        let identity = Identity::of(&before);
        let bytes = scan::load_file(&mut file, before.len())?;
        let len = bytes.len() as u64;
        // A sparse container is not hashed: hashing would read every weight, where its scan
        // reads headers and pickles only; it is cached by identity alone.
        let whole =
            len < MMAP_THRESHOLD || !pickleguard::reads_sparsely(&bytes[..bytes.len().min(4096)]);
        let content = whole.then(|| blake3::hash(&bytes).to_hex().to_string());
        let stored = content
            .as_ref()
            .and_then(|c| self.get::<Report>(&content_key(c, len)));
        let how = if stored.is_some() {
            Served::Confirmed
        } else {
            Served::Scanned
        };
        let own = stored.unwrap_or_else(|| crate::scan::judge_bytes(&bytes, policy, deadline));
        drop(bytes);
        let after = Identity::of(&file.metadata()?);
        if after != identity || file.metadata()?.len() != len {
            return Ok(None);
        }
        let dir = path.parent().unwrap_or(Path::new(""));
        let racy = identity.is_some_and(|i| i.racy());
        // A verdict the deadline cut short belongs to this run alone: never stored.
        if racy || own.stopped_by_time_limit() {
            let report = settle(own, dir, policy).0;
            return Ok(Some((found(display, report, len), how)));
        }
        if let (Some(c), Served::Scanned) = (&content, how) {
            self.put(&content_key(c, len), &own);
        }
        let (settled, sides) = settle(own.clone(), dir, policy);
        if let Some(i) = identity {
            let rec = ByIdentity {
                content: content.clone(),
                bytes: len,
                report: content.is_none().then(|| own.clone()),
                settled: sides
                    .as_ref()
                    .is_none_or(|s| !s.is_empty())
                    .then(|| settled.clone()),
                sides,
            };
            self.put(&identity_key(&i), &rec);
        }
        Ok(Some((found(display, settled, len), how)))
    }

    fn get<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Option<T> {
        self.store.get(key, |v| serde_json::from_slice(v).ok())
    }

    fn put<T: Serialize>(&self, key: &str, value: &T) {
        if let Ok(v) = serde_json::to_vec(value) {
            self.store.put(key, &v);
        }
    }
}

fn identity_key(i: &Identity) -> String {
    format!(
        "identity {} {} {} {} {}",
        i.dev, i.ino, i.size, i.mtime_ns, i.ctime_ns
    )
}

fn content_key(content: &str, len: u64) -> String {
    format!("content {content} {len}")
}

/// Whether every side file is as it was when the stored verdict followed it.
fn sides_unchanged(dir: &Path, sides: &[Side]) -> bool {
    sides
        .iter()
        .all(|s| side_identity(&dir.join(&s.name)) == s.identity)
}

/// The identity of a regular file at `p`, `None` when there is none.
fn side_identity(p: &Path) -> Option<Identity> {
    std::fs::metadata(p)
        .ok()
        .filter(|m| m.is_file())
        .and_then(|m| Identity::of(&m))
}

/// Follow the side files of a file in `dir` (as [`scan::settle_side_files`] does) and note
/// which files were followed: `None` when one changed while it was read, or changed too
/// recently, or identities are not available, so the next use follows them again.
fn settle(mut report: Report, dir: &Path, policy: &Policy) -> (Report, Option<Vec<Side>>) {
    let mut sides = Some(Vec::new());
    pickleguard::side_files::settle(&mut report, policy, |name| {
        let p = dir.join(name);
        let before = side_identity(&p);
        let bytes = p
            .is_file()
            .then(|| scan::load(&Source::File(p.clone())).ok())
            .flatten();
        // Without identities (not Unix) nothing is recorded: followed again on every use.
        let stable = cfg!(unix)
            && before == side_identity(&p)
            && before.is_none_or(|i| !i.racy())
            && (bytes.is_some() == before.is_some());
        if stable {
            if let Some(s) = sides.as_mut() {
                s.push(Side {
                    name: name.to_string(),
                    identity: before,
                });
            }
        } else {
            sides = None;
        }
        bytes.map(SideBytes)
    });
    (report, sides)
}

/// A side file's bytes, lent to the core.
struct SideBytes(scan::Bytes);

impl AsRef<[u8]> for SideBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn found(display: &str, report: Report, bytes: u64) -> FileResult {
    FileResult {
        path: display.to_string(),
        report,
        error: None,
        bytes,
        hub: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_separate_policies_not_construction_order() {
        let mut a = Policy::new(pickleguard::Mode::Ml);
        let mut b = Policy::new(pickleguard::Mode::Ml);
        assert_eq!(rules_id(&a), rules_id(&b));
        a.allow("myapp.models", "Thing");
        assert_ne!(rules_id(&a), rules_id(&b));
        b.allow("myapp.models", "Thing");
        assert_eq!(rules_id(&a), rules_id(&b));
    }
}
