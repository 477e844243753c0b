//! From command-line paths to the list of files to scan: directories are walked recursively,
//! `--include` / `--exclude` globs filter, links to files are followed (each file scanned once),
//! links to directories only with `--follow-symlinks`, and anything that cannot be read is kept
//! as an error entry.

use crate::cache::Identity;
use crate::cli::WalkArgs;
use globset::{Glob, GlobSet, GlobSetBuilder};
use std::path::{Path, PathBuf};

/// Where a file's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A regular file.
    File(PathBuf),
    /// Something read as a stream: standard input, or a FIFO / device named explicitly.
    Stream(Option<PathBuf>),
}

/// One file to scan.
#[derive(Clone, Debug)]
pub struct Target {
    /// The path as given or found while walking (`<stdin>` for `-`).
    pub display: String,
    pub source: Source,
    /// Size when the walk saw it (0 for streams).
    pub size: u64,
    /// The file's identity when the walk saw it (a link's target's, not the link's): the
    /// verdict cache looks the file up by it instead of asking the file system again.
    pub identity: Option<Identity>,
}

/// A path that could not be walked or read.
#[derive(Clone, Debug)]
pub struct Failure {
    pub display: String,
    pub error: String,
}

#[derive(Debug, Default)]
pub struct Walked {
    pub targets: Vec<Target>,
    pub failures: Vec<Failure>,
    /// Symbolic links met while walking and not followed.
    pub skipped_links: usize,
    /// Directory loops met while following links.
    pub loops: usize,
    /// Paths to a file or directory already visited through another path (links).
    pub duplicates: usize,
    /// Directories read (each once, however many paths lead to it).
    pub dirs_read: usize,
    /// Links to files outside the scanned tree (followed, and said so).
    pub links: Vec<LinkNote>,
}

/// Why a link is mentioned in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkWhy {
    /// Its target lies outside the scanned tree: scanned, and said so.
    OutsideTree,
}

/// A link the walk met that the report mentions.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LinkNote {
    pub path: String,
    pub target: String,
    pub why: LinkWhy,
}

/// The display name of standard input.
pub const STDIN: &str = "<stdin>";

/// Include / exclude filters.
pub struct Filters {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

fn globset(patterns: &[String], flag: &str) -> Result<Option<GlobSet>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let g = Glob::new(p).map_err(|e| format!("{flag} {p:?}: {e}"))?;
        b.add(g);
    }
    b.build().map(Some).map_err(|e| format!("{flag}: {e}"))
}

impl Filters {
    pub fn new(args: &WalkArgs) -> Result<Filters, String> {
        Ok(Filters {
            include: globset(&args.include, "--include")?,
            exclude: globset(&args.exclude, "--exclude")?,
        })
    }

    fn hit(set: &GlobSet, path: &Path) -> bool {
        let stripped = path.strip_prefix(".").unwrap_or(path);
        set.is_match(path)
            || set.is_match(stripped)
            || path.file_name().is_some_and(|n| set.is_match(n))
    }

    /// Whether a file passes both filters.
    pub fn file_ok(&self, path: &Path) -> bool {
        if let Some(ex) = &self.exclude {
            if Self::hit(ex, path) {
                return false;
            }
        }
        match &self.include {
            Some(inc) => Self::hit(inc, path),
            None => true,
        }
    }

    /// Whether a directory found while walking is entered.
    pub fn dir_ok(&self, path: &Path) -> bool {
        match &self.exclude {
            Some(ex) => !Self::hit(ex, path),
            None => true,
        }
    }
}

/// Walk the command-line paths.
pub fn collect(paths: &[PathBuf], args: &WalkArgs, filters: &Filters) -> Walked {
    let mut out = Walked::default();
    let mut stdin_seen = false;
    for p in paths {
        if p.as_os_str() == "-" {
            if !stdin_seen {
                stdin_seen = true;
                out.targets.push(Target {
                    display: STDIN.to_string(),
                    source: Source::Stream(None),
                    size: 0,
                    identity: None,
                });
            }
            continue;
        }
        let display = p.display().to_string();
        // Paths named on the command line are followed even when they are links.
        let meta = match std::fs::metadata(p) {
            Ok(m) => m,
            Err(e) => {
                out.failures.push(Failure {
                    display,
                    error: e.to_string(),
                });
                continue;
            }
        };
        if meta.is_dir() {
            walk_dir(p, args, filters, &mut out);
        } else if !filters.file_ok(p) {
            continue;
        } else if meta.is_file() {
            out.targets.push(Target {
                display,
                source: Source::File(p.clone()),
                size: meta.len(),
                identity: Identity::of(&meta),
            });
        } else {
            // A FIFO (`<(cmd)`), a character device: read it as a stream.
            out.targets.push(Target {
                display,
                source: Source::Stream(Some(p.clone())),
                size: 0,
                identity: None,
            });
        }
    }
    out
}

/// A file or directory's identity: two paths to it (links, bind mounts) are one visit.
#[cfg(unix)]
fn identity(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

#[cfg(not(unix))]
fn identity(_: &std::fs::Metadata) -> (u64, u64) {
    // No inode numbers: every path is its own identity (links are rare there).
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    (
        u64::MAX,
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    )
}

/// The state of one directory walk.
struct DirWalk<'a> {
    args: &'a WalkArgs,
    filters: &'a Filters,
    /// Canonical roots a link may point into without a notice: the walked directory, and the
    /// Hugging Face repository folder holding it (snapshots link into `../../blobs/`).
    roots: Vec<PathBuf>,
    seen: std::collections::HashSet<(u64, u64)>,
}

/// Walk a directory: every directory and file is visited once by (device, inode), whatever
/// the links leading to it, so a DAG of links costs its size, not its number of paths.
/// Links to files are followed (a model folder's files are often links into a cache); links
/// to directories only with `--follow-symlinks`.
fn walk_dir(root: &Path, args: &WalkArgs, filters: &Filters, out: &mut Walked) {
    let mut roots = Vec::new();
    if let Ok(c) = root.canonicalize() {
        if let Some(repo) = crate::hub::repo_root(&c) {
            roots.push(repo.to_path_buf());
        }
        roots.push(c);
    }
    let mut w = DirWalk {
        args,
        filters,
        roots,
        seen: std::collections::HashSet::new(),
    };
    let mut ancestors = Vec::new();
    match std::fs::metadata(root) {
        Ok(m) => w.dir(root, root, &m, &mut ancestors, out),
        Err(e) => out.failures.push(Failure {
            display: root.display().to_string(),
            error: e.to_string(),
        }),
    }
}

impl DirWalk<'_> {
    /// `shown`: the path as found (through links), for the report; `real`: a path to the same
    /// folder with its links resolved, for the file system (a path through 40 links is
    /// refused by the kernel).
    fn dir(
        &mut self,
        shown: &Path,
        real: &Path,
        meta: &std::fs::Metadata,
        ancestors: &mut Vec<(u64, u64)>,
        out: &mut Walked,
    ) {
        let id = identity(meta);
        if ancestors.contains(&id) {
            out.loops += 1;
            return;
        }
        if !self.seen.insert(id) {
            out.duplicates += 1;
            return;
        }
        out.dirs_read += 1;
        let entries = match std::fs::read_dir(real) {
            Ok(rd) => rd,
            Err(e) => {
                out.failures.push(Failure {
                    display: shown.display().to_string(),
                    error: e.to_string(),
                });
                return;
            }
        };
        let mut children: Vec<_> = entries
            .filter_map(|e| e.ok())
            .map(|e| (e.file_name(), e))
            .collect();
        // A Hugging Face repository folder: its snapshots first, so that each blob is
        // reported by the snapshot path that names it (repo / revision / file); blobs no
        // snapshot names are still scanned after.
        let hub_repo = crate::hub::repo_root(shown).is_some_and(|r| r == shown);
        children.sort_by(|(a, _), (b, _)| {
            (hub_repo && a == "blobs", a).cmp(&(hub_repo && b == "blobs", b))
        });
        ancestors.push(id);
        for (name, e) in children {
            // The entry's `lstat` is made relative to the open directory (Linux: `statx` on
            // its descriptor), not by resolving the whole path again: a path lookup per file
            // was half the walk's cost on a 100,000-file tree.
            let lmeta = e.metadata();
            self.entry(&shown.join(&name), &real.join(&name), lmeta, ancestors, out);
        }
        ancestors.pop();
    }

    /// `lmeta`: the entry's own metadata, not following a link.
    fn entry(
        &mut self,
        path: &Path,
        real: &Path,
        lmeta: std::io::Result<std::fs::Metadata>,
        ancestors: &mut Vec<(u64, u64)>,
        out: &mut Walked,
    ) {
        let lmeta = match lmeta {
            Ok(m) => m,
            Err(e) => {
                out.failures.push(Failure {
                    display: path.display().to_string(),
                    error: e.to_string(),
                });
                return;
            }
        };
        let link = lmeta.file_type().is_symlink();
        let meta = if link {
            match std::fs::metadata(real) {
                Ok(m) => m,
                Err(e) => {
                    // A dangling link (or one through too many links): a file a loader named
                    // by this path could not read, so an error entry like any unreadable file.
                    out.failures.push(Failure {
                        display: path.display().to_string(),
                        error: format!("a link to {}: {e}", read_link_text(real)),
                    });
                    return;
                }
            }
        } else {
            lmeta
        };
        if meta.is_dir() {
            if !self.filters.dir_ok(path) {
                return;
            }
            if link && !self.args.follow_symlinks {
                out.skipped_links += 1;
                return;
            }
            match real.canonicalize() {
                Ok(resolved) => self.dir(path, &resolved, &meta, ancestors, out),
                Err(e) => out.failures.push(Failure {
                    display: path.display().to_string(),
                    error: e.to_string(),
                }),
            }
            return;
        }
        if !meta.is_file() || !self.filters.file_ok(path) {
            return;
        }
        if !self.seen.insert(identity(&meta)) {
            out.duplicates += 1;
            return;
        }
        if link {
            let target = real.canonicalize().ok();
            let inside = target
                .as_ref()
                .is_some_and(|t| self.roots.iter().any(|r| t.starts_with(r)));
            if !inside {
                out.links.push(LinkNote {
                    path: path.display().to_string(),
                    target: target
                        .map_or_else(|| read_link_text(real), |t| t.display().to_string()),
                    why: LinkWhy::OutsideTree,
                });
            }
        }
        out.targets.push(Target {
            display: path.display().to_string(),
            source: Source::File(real.to_path_buf()),
            size: meta.len(),
            identity: Identity::of(&meta),
        });
    }
}

fn read_link_text(path: &Path) -> String {
    std::fs::read_link(path)
        .map(|t| t.display().to_string())
        .unwrap_or_default()
}
