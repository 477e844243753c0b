//! The verdict cache (`pickleguard scan --cache DIR`, Python `pickleguard.cache`): a file's
//! report is kept under a key of (content hash, rules), the rules being the engine id and the
//! effective policy's fingerprint. A local file is first looked up by its identity (device,
//! inode, size, mtime and ctime in nanoseconds, under the same rules): a hit there reads no
//! byte of the file. Format and guarantees: docs/cli.md, "Verdict cache".
//!
//! Entries are written to a temporary file and renamed into place, so concurrent writers
//! (threads, processes, machines on one shared directory) never leave a half-written entry
//! under a key; every entry carries a checksum of its body and the full key it was stored
//! under, and anything that does not verify is a miss, never a verdict.

use crate::scan::{self, FileResult, MMAP_THRESHOLD};
use crate::walk::{Source, Target};
use pickleguard::{Policy, Report};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// First line of every entry; another value (an older or newer layout) is a miss.
const MAGIC: &str = "pickleguard-cache 1";
/// Sub-directory of the cache directory holding this layout's entries.
const LAYOUT_DIR: &str = "v1";

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
    pub fn add(&mut self, other: &CacheStats) {
        self.cache_hits += other.cache_hits;
        self.cache_confirmed += other.cache_confirmed;
        self.scanned += other.scanned;
    }
}

/// A local file's identity; any change to its bytes through the file system changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Identity {
    #[cfg(unix)]
    fn of(m: &std::fs::Metadata) -> Option<Identity> {
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
    fn of(_: &std::fs::Metadata) -> Option<Identity> {
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

/// One stored verdict.
#[derive(Serialize, Deserialize)]
struct Entry {
    /// The full key (before hashing into a file name), checked on every read.
    key: String,
    identity: Option<Identity>,
    /// BLAKE3 of the whole file, when the scan read it whole.
    content: Option<String>,
    bytes: u64,
    report: Report,
}

/// An open cache, bound to one policy and this engine.
pub struct Cache {
    root: PathBuf,
    rules: String,
    hits: AtomicU64,
    confirmed: AtomicU64,
    scanned: AtomicU64,
    seq: AtomicU64,
}

impl Cache {
    /// Open (and create) the cache directory for scans under `policy`.
    pub fn open(dir: &Path, policy: &Policy) -> Result<Cache, String> {
        let root = dir.join(LAYOUT_DIR);
        std::fs::create_dir_all(&root).map_err(|e| format!("--cache {}: {e}", dir.display()))?;
        let rules = blake3::hash(format!("{}\n{}", engine_id(), policy.fingerprint()).as_bytes())
            .to_hex()
            .to_string();
        Ok(Cache {
            root,
            rules,
            hits: AtomicU64::new(0),
            confirmed: AtomicU64::new(0),
            scanned: AtomicU64::new(0),
            seq: AtomicU64::new(0),
        })
    }

    /// The hash of (engine, policy) every key of this cache includes.
    pub fn rules(&self) -> &str {
        &self.rules
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
        match &t.source {
            Source::File(p) => self.scan_file(p, &t.display, policy),
            Source::Stream(_) => {
                self.scanned.fetch_add(1, Ordering::Relaxed);
                scan::scan_target(t, policy)
            }
        }
    }

    fn scan_file(&self, path: &Path, display: &str, policy: &Policy) -> FileResult {
        for _ in 0..ATTEMPTS {
            match self.try_file(path, display, policy) {
                // Entries hold the file's own report: its side files and its place in a Hugging
                // Face cache are settled here, as an uncached scan settles them.
                Ok(Some(mut r)) => {
                    scan::settle_side_files(&mut r.report, path, policy);
                    return FileResult {
                        hub: crate::hub::locate(Path::new(display)),
                        ..r
                    };
                }
                Ok(None) => continue,
                Err(e) => return FileResult::failed(display.to_string(), e.to_string()),
            }
        }
        FileResult::failed(
            display.to_string(),
            format!("the file changed while it was being read ({ATTEMPTS} attempts)"),
        )
    }

    /// `Ok(None)`: the file changed between the first and last look at it.
    fn try_file(
        &self,
        path: &Path,
        display: &str,
        policy: &Policy,
    ) -> std::io::Result<Option<FileResult>> {
        let mut file = File::open(path)?;
        let before = file.metadata()?;
        let identity = Identity::of(&before);
        let id_key = identity.map(|i| self.identity_key(&i));
        if let (Some(i), Some(k)) = (identity, &id_key) {
            if let Some(e) = self.get(k).filter(|e| e.identity == Some(i)) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(found(display, e)));
            }
        }
        let bytes = scan::load_file(&mut file, before.len())?;
        let len = bytes.len() as u64;
        // A sparse container is not hashed: hashing would read every weight, where its scan
        // reads headers and pickles only; it is cached by identity alone.
        let whole = len < MMAP_THRESHOLD
            || !pickleguard::container::reads_sparsely(&bytes[..bytes.len().min(4096)]);
        let content = whole.then(|| blake3::hash(&bytes).to_hex().to_string());
        let c_key = content.as_ref().map(|c| self.content_key(c, len));
        let stored = c_key
            .as_ref()
            .and_then(|k| self.get(k))
            .filter(|e| e.content == content && e.bytes == len);
        let (report, from_cache) = match stored {
            Some(e) => (e.report, true),
            None => (pickleguard::scan_bytes(&bytes, policy), false),
        };
        drop(bytes);
        let after = Identity::of(&file.metadata()?);
        if after != identity || file.metadata()?.len() != len {
            return Ok(None);
        }
        if from_cache {
            self.confirmed.fetch_add(1, Ordering::Relaxed);
        } else {
            self.scanned.fetch_add(1, Ordering::Relaxed);
        }
        let racy = identity.is_some_and(|i| i.racy());
        if !racy {
            let mut entry = Entry {
                key: String::new(),
                identity: None,
                content,
                bytes: len,
                report,
            };
            if let Some(k) = c_key.filter(|_| !from_cache) {
                entry.key = k;
                self.put(&entry);
            }
            if let Some(k) = id_key {
                entry.key = k;
                entry.identity = identity;
                self.put(&entry);
            }
            return Ok(Some(found(display, entry)));
        }
        Ok(Some(FileResult {
            path: display.to_string(),
            report,
            error: None,
            bytes: len,
            hub: None,
        }))
    }

    fn identity_key(&self, i: &Identity) -> String {
        format!(
            "identity {} {} {} {} {} {}",
            self.rules, i.dev, i.ino, i.size, i.mtime_ns, i.ctime_ns
        )
    }

    fn content_key(&self, content: &str, len: u64) -> String {
        format!("content {} {content} {len}", self.rules)
    }

    fn entry_path(&self, key: &str) -> PathBuf {
        let name = blake3::hash(key.as_bytes()).to_hex();
        self.root.join(&name[..2]).join(&name[2..])
    }

    /// The entry stored under `key`, if one is there and verifies.
    fn get(&self, key: &str) -> Option<Entry> {
        let data = std::fs::read(self.entry_path(key)).ok()?;
        let entry = parse_entry(&data)?;
        (entry.key == key).then_some(entry)
    }

    /// Store an entry; a cache that cannot be written only costs a later re-scan.
    fn put(&self, entry: &Entry) {
        let Ok(body) = serde_json::to_vec(entry) else {
            return;
        };
        let path = self.entry_path(&entry.key);
        let Some(dir) = path.parent() else {
            return;
        };
        let _ = std::fs::create_dir_all(dir);
        let tmp = dir.join(format!(
            ".tmp-{}-{}-{:?}",
            std::process::id(),
            self.seq.fetch_add(1, Ordering::Relaxed),
            std::thread::current().id()
        ));
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(MAGIC.as_bytes())?;
            f.write_all(b"\n")?;
            f.write_all(blake3::hash(&body).to_hex().as_bytes())?;
            f.write_all(b"\n")?;
            f.write_all(&body)
        });
        if written.is_err() || std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

fn found(display: &str, e: Entry) -> FileResult {
    FileResult {
        path: display.to_string(),
        report: e.report,
        error: None,
        bytes: e.bytes,
        hub: None,
    }
}

/// Magic line, checksum line, body; `None` for anything else.
fn parse_entry(data: &[u8]) -> Option<Entry> {
    let rest = data.strip_prefix(MAGIC.as_bytes())?.strip_prefix(b"\n")?;
    if rest.len() < 65 || rest[64] != b'\n' {
        return None;
    }
    let (sum, body) = (&rest[..64], &rest[65..]);
    if blake3::hash(body).to_hex().as_bytes() != sum {
        return None;
    }
    serde_json::from_slice(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_entries_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let policy = Policy::new(pickleguard::Mode::Ml);
        let cache = Cache::open(dir.path(), &policy).unwrap();
        let mut report = Report::new("raw_pickle");
        report.finish(policy.threshold);
        let entry = Entry {
            key: cache.content_key("abc", 3),
            identity: None,
            content: Some("abc".into()),
            bytes: 3,
            report,
        };
        cache.put(&entry);
        let path = cache.entry_path(&entry.key);
        assert!(cache.get(&entry.key).is_some());
        let good = std::fs::read(&path).unwrap();
        // Every truncation and every single flipped byte is refused.
        for cut in 0..good.len() {
            assert!(parse_entry(&good[..cut]).is_none(), "cut at {cut}");
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x20;
            assert!(parse_entry(&bad).is_none(), "flip at {i}");
        }
        // A verifying entry under another key (a renamed file) is not this key's verdict.
        let other = cache.entry_path("content other");
        std::fs::create_dir_all(other.parent().unwrap()).unwrap();
        std::fs::copy(&path, other).unwrap();
        assert!(cache.get("content other").is_none());
    }
}
