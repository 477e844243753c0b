//! From command-line paths to the list of files to scan: directories are walked recursively,
//! `--include` / `--exclude` globs filter, symbolic links met while walking are skipped unless
//! `--follow-symlinks`, and anything that cannot be read is kept as an error entry.

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
            });
        } else {
            // A FIFO (`<(cmd)`), a character device: read it as a stream.
            out.targets.push(Target {
                display,
                source: Source::Stream(Some(p.clone())),
                size: 0,
            });
        }
    }
    out
}

fn walk_dir(root: &Path, args: &WalkArgs, filters: &Filters, out: &mut Walked) {
    let walker = walkdir::WalkDir::new(root)
        .follow_links(args.follow_symlinks)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_type().is_dir() || filters.dir_ok(e.path()));
    for entry in walker {
        match entry {
            Ok(e) => {
                let ft = e.file_type();
                if ft.is_symlink() {
                    // Only reached when links are not followed.
                    out.skipped_links += 1;
                    continue;
                }
                if !ft.is_file() || !filters.file_ok(e.path()) {
                    continue;
                }
                let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                out.targets.push(Target {
                    display: e.path().display().to_string(),
                    source: Source::File(e.path().to_path_buf()),
                    size,
                });
            }
            Err(e) => {
                if e.loop_ancestor().is_some() {
                    out.loops += 1;
                    continue;
                }
                let display = e.path().unwrap_or(root).display().to_string();
                let error = match e.io_error() {
                    Some(io) => io.to_string(),
                    None => e.to_string(),
                };
                out.failures.push(Failure { display, error });
            }
        }
    }
}
