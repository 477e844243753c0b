//! Where the verdict cache keeps its records: per rules (engine and policy), a handful of
//! append-only segment files, each written by exactly one process and loaded whole, once, by
//! every scan. A re-scan of an unchanged tree therefore opens a few files for the cache, not
//! one per verdict (docs/cli.md, "Verdict cache", has the layout and its guarantees).
//!
//! Safety rests on three rules. A segment has one writer, which holds an exclusive `flock` on
//! it from creation to close, so records never interleave. Every record carries its length and
//! a BLAKE3 checksum: a reader stops at the first record that is incomplete or does not verify
//! (a crash, a full disk, a damaged file), so nothing unverified is ever returned. Compaction
//! merges only segments it could lock (no writer left), writes the merged records to a new
//! segment before unlinking the old ones, and runs in one process at a time (`compact.lock`).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// First line of every segment; a segment of another layout is not read.
const MAGIC: &[u8] = b"pickleguard-cache-segment 2\n";
/// A record: body length (u32 LE), BLAKE3 of the body, body (`key` `\n` `value`).
const HEADER: usize = 4 + 32;
/// A record larger than this is not written (a report with that many findings is rescanned).
const MAX_RECORD: usize = 64 << 20;
/// More finished segments than this are merged into one by the next scan that opens the cache.
const MAX_SEGMENTS: usize = 8;
/// Live records beyond this size are dropped, oldest first, when segments are merged.
const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// For tests and small disks: the bound on live record bytes per rules, in bytes.
pub const MAX_BYTES_ENV: &str = "PICKLEGUARD_CACHE_MAX_BYTES";
/// A rules directory no scan has opened for this long is removed (an old engine or policy).
const UNUSED_RULES: Duration = Duration::from_secs(30 * 24 * 3600);
/// A temporary file this old belongs to a process that died before renaming it.
const STALE_TMP: Duration = Duration::from_secs(3600);
/// The stamp that records a rules directory's last use is refreshed at most this often.
const STAMP_EVERY: Duration = Duration::from_secs(3600);

/// One process's segment, open for appending.
struct Writer {
    file: File,
    /// The process that created it: a forked child must not append to its parent's segment.
    pid: u32,
}

/// What a segment has given so far.
struct Loaded {
    /// Bytes consumed (header and whole, verified records).
    offset: u64,
    /// A record failed its checksum: nothing after it is trusted.
    dead: bool,
}

/// Where a record's key and value sit in the loaded segment data.
#[derive(Clone, Copy)]
struct Loc {
    chunk: u32,
    key: u32,
    key_len: u32,
    value_len: u32,
}

/// FxHash's mixing, 8 bytes at a time: keys are already well spread (hashes and numbers), and
/// SipHash over 200,000 keys was a tenth of a cached re-scan. A collision is harmless: a
/// lookup compares the whole key, so it only turns into a miss.
fn key_hash(key: &[u8]) -> u64 {
    let mut h: u64 = key.len() as u64;
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    for &b in chunks.remainder() {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    h
}

/// A hasher for keys that are already [`key_hash`]es.
#[derive(Default)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type ByHash = HashMap<u64, Loc, std::hash::BuildHasherDefault<PassThrough>>;

#[derive(Default)]
struct Index {
    /// Segment data as read, verified; records point into it (no copy per record).
    chunks: Vec<Vec<u8>>,
    records: ByHash,
    /// Records stored by this process.
    own: HashMap<String, Arc<[u8]>>,
    segments: HashMap<OsString, Loaded>,
    /// Bytes of verified records read, duplicates included (for the compaction trigger).
    read_bytes: u64,
}

/// The records of one rules directory.
pub struct Store {
    dir: PathBuf,
    /// The rules line every segment starts with (after the magic): a segment copied into
    /// another rules' directory is not read.
    rules: String,
    index: RwLock<Index>,
    writer: Mutex<Option<Writer>>,
    /// Writing failed once (disk full, directory gone): stop trying for this store.
    broken: std::sync::atomic::AtomicBool,
}

fn is_segment(name: &str) -> bool {
    name.starts_with("seg-") && name.ends_with(".pgc")
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{nanos:020}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn older_than(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|d| d > age)
}

/// The record for `key` and `value`, ready to append.
pub fn encode(key: &str, value: &[u8]) -> Option<Vec<u8>> {
    let len = key.len() + 1 + value.len();
    if len > MAX_RECORD || key.contains('\n') {
        return None;
    }
    let mut body = Vec::with_capacity(HEADER + len);
    body.extend_from_slice(&(len as u32).to_le_bytes());
    body.extend_from_slice(&[0; 32]);
    body.extend_from_slice(key.as_bytes());
    body.push(b'\n');
    body.extend_from_slice(value);
    let sum = blake3::hash(&body[HEADER..]);
    body[4..HEADER].copy_from_slice(sum.as_bytes());
    Some(body)
}

/// Why reading a segment's records stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// At the end, or at an incomplete record (its writer may still be writing it).
    End,
    /// At a record that does not verify: nothing after it is read, ever.
    Damaged,
}

/// The verified records of `data` (from a record boundary), the bytes they span, and why
/// reading stopped.
pub fn decode(data: &[u8]) -> (Vec<(&str, &[u8])>, usize, Stop) {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let rest = &data[at..];
        if rest.len() < HEADER {
            return (out, at, Stop::End);
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > MAX_RECORD {
            return (out, at, Stop::Damaged);
        }
        if rest.len() < HEADER + len {
            return (out, at, Stop::End);
        }
        let body = &rest[HEADER..HEADER + len];
        if blake3::hash(body).as_bytes() != &rest[4..HEADER] {
            return (out, at, Stop::Damaged);
        }
        let Some(nl) = body.iter().position(|&b| b == b'\n') else {
            return (out, at, Stop::Damaged);
        };
        let Ok(key) = std::str::from_utf8(&body[..nl]) else {
            return (out, at, Stop::Damaged);
        };
        out.push((key, &body[nl + 1..]));
        at += HEADER + len;
    }
}

impl Store {
    /// Open the rules directory `dir` (created if missing), load every segment, and merge
    /// them if there are too many.
    pub fn open(dir: &Path, rules: &str) -> std::io::Result<Store> {
        std::fs::create_dir_all(dir)?;
        let stamp = dir.join("stamp");
        // Best effort: a cache shared read-only still serves its verdicts.
        if !stamp.exists() || older_than(&stamp, STAMP_EVERY) {
            let _ = std::fs::write(&stamp, b"");
        }
        if let Some(parent) = dir.parent() {
            prune_unused_rules(parent, dir);
        }
        let store = Store {
            dir: dir.to_path_buf(),
            rules: rules.to_string(),
            index: RwLock::new(Index::default()),
            writer: Mutex::new(None),
            broken: false.into(),
        };
        store.refresh();
        store.compact_if_needed();
        Ok(store)
    }

    fn header(&self) -> Vec<u8> {
        let mut h = MAGIC.to_vec();
        h.extend_from_slice(self.rules.as_bytes());
        h.push(b'\n');
        h
    }

    /// Read what other processes appended since the last look: new segments, and records
    /// added to known ones.
    pub fn refresh(&self) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut names: Vec<OsString> = rd
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n.to_str().is_some_and(is_segment))
            .collect();
        // Names start with the creation time: later records override earlier ones.
        names.sort();
        let header = self.header();
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        // A merge replaced segments this index holds: start again from the directory, so that
        // a long-lived process (a Dask worker, a Python service) does not keep every merged
        // copy of the same records in memory.
        if index.segments.keys().any(|k| !names.contains(k)) {
            let own = std::mem::take(&mut index.own);
            *index = Index {
                own,
                ..Index::default()
            };
        }
        for name in names {
            let known = index.segments.get(&name).map(|l| (l.offset, l.dead));
            if known.is_some_and(|(_, dead)| dead) {
                continue;
            }
            let Ok(mut f) = File::open(self.dir.join(&name)) else {
                continue;
            };
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let from = known.map_or(0, |(offset, _)| offset);
            let mut data = Vec::with_capacity(len.saturating_sub(from) as usize);
            let start = match known {
                Some((offset, _)) => {
                    if f.seek(SeekFrom::Start(offset)).is_err() {
                        continue;
                    }
                    offset
                }
                None => 0,
            };
            // Offsets are 32 bits: a bigger segment (never written with the default bound)
            // is not read.
            if f.read_to_end(&mut data).is_err() || data.len() > u32::MAX as usize {
                continue;
            }
            let mut body = &data[..];
            let mut offset = start;
            if known.is_none() {
                if data.len() < header.len() {
                    // Its creator has not written the header yet; look again next time.
                    continue;
                }
                if !data.starts_with(&header) {
                    index.segments.insert(
                        name,
                        Loaded {
                            offset: 0,
                            dead: true,
                        },
                    );
                    continue;
                }
                body = &data[header.len()..];
                offset = header.len() as u64;
            }
            let (records, used, stop) = decode(body);
            let base = body.as_ptr() as usize - data.as_ptr() as usize;
            let chunk = index.chunks.len() as u32;
            let mut added = 0u64;
            let mut locs = Vec::with_capacity(records.len());
            for (k, v) in records {
                added += (HEADER + k.len() + 1 + v.len()) as u64;
                let at = k.as_ptr() as usize - body.as_ptr() as usize + base;
                locs.push((
                    key_hash(k.as_bytes()),
                    Loc {
                        chunk,
                        key: at as u32,
                        key_len: k.len() as u32,
                        value_len: v.len() as u32,
                    },
                ));
            }
            if !locs.is_empty() {
                index.records.extend(locs);
                index.chunks.push(data);
            }
            index.read_bytes += added;
            index.segments.insert(
                name,
                Loaded {
                    offset: offset + used as u64,
                    dead: stop == Stop::Damaged,
                },
            );
        }
    }

    /// `f` of the value stored under `key`, if a verified record holds it.
    pub fn get<T>(&self, key: &str, f: impl FnOnce(&[u8]) -> Option<T>) -> Option<T> {
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = index.own.get(key) {
            return f(v);
        }
        let loc = index.records.get(&key_hash(key.as_bytes()))?;
        let data = index.chunks.get(loc.chunk as usize)?;
        let k = loc.key as usize;
        let v = k + loc.key_len as usize + 1;
        if data.get(k..k + loc.key_len as usize)? != key.as_bytes() {
            return None;
        }
        f(data.get(v..v + loc.value_len as usize)?)
    }

    /// Store a record; a cache that cannot be written only costs a later re-scan.
    pub fn put(&self, key: &str, value: &[u8]) {
        use std::sync::atomic::Ordering;
        let Some(record) = encode(key, value) else {
            return;
        };
        self.index
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .own
            .insert(key.to_string(), Arc::from(value));
        if self.broken.load(Ordering::Relaxed) {
            return;
        }
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if w.as_ref().is_some_and(|w| w.pid != std::process::id()) {
            // Forked: the parent's segment is the parent's. Closing this copy of the
            // descriptor leaves the parent's lock in place (flock belongs to the open file).
            *w = None;
        }
        if w.is_none() {
            match self.new_segment() {
                Ok(n) => *w = Some(n),
                Err(_) => {
                    self.broken.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
        if let Some(writer) = w.as_mut() {
            // One write per record; after a failed (maybe partial) write the segment ends
            // there for readers (an incomplete record), and this store stops writing.
            if writer.file.write_all(&record).is_err() {
                *w = None;
                self.broken.store(true, Ordering::Relaxed);
            }
        }
    }

    /// A new segment for this process: created under a temporary name, locked, given its
    /// header, then renamed, so a compactor never sees it unlocked.
    fn new_segment(&self) -> std::io::Result<Writer> {
        let suffix = unique_suffix();
        let tmp = self.dir.join(format!(".tmp-{suffix}"));
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&tmp)?;
        let made = file
            .try_lock()
            .map_err(std::io::Error::other)
            .and_then(|()| file.write_all(&self.header()))
            .and_then(|()| std::fs::rename(&tmp, self.dir.join(format!("seg-{suffix}.pgc"))));
        if let Err(e) = made {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(Writer {
            file,
            pid: std::process::id(),
        })
    }

    fn max_bytes() -> u64 {
        std::env::var(MAX_BYTES_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MAX_BYTES)
    }

    /// Merge the segments when there are too many, when most of what they hold is
    /// overridden, or when they hold more than the size bound.
    fn compact_if_needed(&self) {
        let (segments, read, live) = {
            let index = self.index.read().unwrap_or_else(|e| e.into_inner());
            let live: u64 = index
                .records
                .values()
                .map(|l| (HEADER + l.key_len as usize + 1 + l.value_len as usize) as u64)
                .sum();
            (index.segments.len(), index.read_bytes, live)
        };
        let bound = Self::max_bytes();
        if segments > MAX_SEGMENTS || read > 2 * live + (1 << 20) || live > bound {
            let _ = self.compact(bound);
        }
    }

    /// Merge every finished segment into one, dropping overridden records and, above
    /// `bound` bytes, the oldest ones. Returns how many segments were merged.
    pub fn compact(&self, bound: u64) -> std::io::Result<usize> {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("compact.lock"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(0),
            Err(TryLockError::Error(e)) => return Err(e),
        }
        let mut names: Vec<(OsString, File)> = Vec::new();
        for e in std::fs::read_dir(&self.dir)?.flatten() {
            let name = e.file_name();
            let Some(s) = name.to_str() else { continue };
            if s.starts_with(".tmp-") && older_than(&e.path(), STALE_TMP) {
                let _ = std::fs::remove_file(e.path());
                continue;
            }
            if !is_segment(s) {
                continue;
            }
            let Ok(f) = File::open(e.path()) else {
                continue;
            };
            // A segment whose writer still holds it is left alone.
            if f.try_lock().is_ok() {
                names.push((name, f));
            }
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        let header = self.header();
        // Records in write order; a later record for a key replaces the earlier one.
        let mut order: Vec<(String, Vec<u8>)> = Vec::new();
        let mut at: HashMap<String, usize> = HashMap::new();
        // Only segments read here are removed (one of other rules, or unreadable, stays).
        names.retain_mut(|(_, f)| {
            let mut data = Vec::new();
            if f.read_to_end(&mut data).is_err() || !data.starts_with(&header) {
                return false;
            }
            let (records, _, _) = decode(&data[header.len()..]);
            for (k, v) in records {
                if let Some(&i) = at.get(k) {
                    order[i].1.clear();
                }
                at.insert(k.to_string(), order.len());
                order.push((k.to_string(), v.to_vec()));
            }
            true
        });
        let mut live: u64 = order
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (HEADER + k.len() + 1 + v.len()) as u64)
            .sum();
        // Over the bound: drop the oldest records down to three quarters of it, so that the
        // next merges do not each drop a few.
        let target = if live > bound {
            bound / 4 * 3
        } else {
            u64::MAX
        };
        let mut out = header.clone();
        for (k, v) in &order {
            if v.is_empty() {
                continue;
            }
            if live > target {
                live -= (HEADER + k.len() + 1 + v.len()) as u64;
                continue;
            }
            if let Some(r) = encode(k, v) {
                out.extend_from_slice(&r);
            }
        }
        let suffix = unique_suffix();
        let tmp = self.dir.join(format!(".tmp-{suffix}"));
        let written = File::create(&tmp)
            .and_then(|mut f| f.write_all(&out))
            .and_then(|()| std::fs::rename(&tmp, self.dir.join(format!("seg-{suffix}.pgc"))));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        for (name, _) in &names {
            let _ = std::fs::remove_file(self.dir.join(name));
        }
        Ok(names.len())
    }

    /// Segment files in the directory now.
    #[cfg(test)]
    pub fn segment_count(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name().to_str().is_some_and(is_segment))
                    .count()
            })
            .unwrap_or(0)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Remove the rules directories next to `ours` that no scan has opened for a long time.
fn prune_unused_rules(parent: &Path, ours: &Path) {
    let Ok(rd) = std::fs::read_dir(parent) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p == ours || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if older_than(&p.join("stamp"), UNUSED_RULES) {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_records_end_the_segment() {
        let mut data = Vec::new();
        for i in 0..3 {
            data.extend(encode(&format!("k{i}"), format!("v{i}").as_bytes()).unwrap());
        }
        let (r, used, stop) = decode(&data);
        assert_eq!(r.len(), 3);
        assert_eq!((used, stop), (data.len(), Stop::End));
        // Every truncation gives a prefix of the records, never a damaged or partial one.
        for cut in 0..data.len() {
            let (r, _, stop) = decode(&data[..cut]);
            assert_eq!(stop, Stop::End, "cut at {cut}");
            for (i, (k, v)) in r.iter().enumerate() {
                assert_eq!(
                    (*k, *v),
                    (format!("k{i}").as_str(), format!("v{i}").as_bytes())
                );
            }
        }
        // Every flipped byte: the records before it and nothing from the damaged one on.
        let one = data.len() / 3;
        for i in 0..data.len() {
            let mut bad = data.clone();
            bad[i] ^= 0x20;
            let (r, _, _) = decode(&bad);
            assert!(r.len() <= i / one, "flip at {i}: {r:?}");
            for (j, (k, v)) in r.iter().enumerate() {
                assert_eq!(
                    (*k, *v),
                    (format!("k{j}").as_str(), format!("v{j}").as_bytes())
                );
            }
        }
    }

    #[test]
    fn a_long_lived_reader_follows_merges_without_keeping_copies() {
        let dir = tempfile::tempdir().unwrap();
        let rules_dir = dir.path().join("r");
        let reader = Store::open(&rules_dir, "rules").unwrap();
        for round in 0..30 {
            let w = Store::open(&rules_dir, "rules").unwrap();
            w.put(&format!("k{round}"), b"v");
            drop(w);
            reader.refresh();
            assert!(reader.get(&format!("k{round}"), |_| Some(())).is_some());
        }
        let index = reader.index.read().unwrap();
        let held: usize = index.chunks.iter().map(Vec::len).sum();
        let on_disk: u64 = std::fs::read_dir(&rules_dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(is_segment))
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert!(held as u64 <= on_disk, "{held} > {on_disk}");
    }

    #[test]
    fn merging_keeps_the_latest_and_bounds_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let rules_dir = dir.path().join("r");
        for round in 0..12 {
            let s = Store::open(&rules_dir, "rules").unwrap();
            s.put("same", format!("round {round}").as_bytes());
            s.put(&format!("only {round}"), b"x");
        }
        let s = Store::open(&rules_dir, "rules").unwrap();
        assert!(
            s.segment_count() <= MAX_SEGMENTS + 1,
            "{}",
            s.segment_count()
        );
        assert_eq!(s.get("same", |v| Some(v.to_vec())).unwrap(), b"round 11");
        for round in 0..12 {
            assert!(
                s.get(&format!("only {round}"), |_| Some(())).is_some(),
                "{round}"
            );
        }
        // A bound of a few records keeps the newest ones.
        let rec = (HEADER + "only 10".len() + 2) as u64;
        assert!(s.compact(rec * 4).unwrap() >= 1);
        let s = Store::open(&rules_dir, "other").unwrap();
        assert!(
            s.get("same", |_| Some(())).is_none(),
            "a segment of other rules is not read"
        );
        let s = Store::open(&rules_dir, "rules").unwrap();
        assert!(s.get("only 0", |_| Some(())).is_none());
        assert!(s.get("only 11", |_| Some(())).is_some());
        assert_eq!(s.segment_count(), 1);
    }
}
