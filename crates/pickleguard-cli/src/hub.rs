//! The Hugging Face cache layout: `<cache>/models--org--name/snapshots/<revision>/<file>`,
//! every file a link into `../../blobs/`. Files found there are reported by repository,
//! revision and file (docs/report-schema.md, `hf`).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// What a Hugging Face repository holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HubKind {
    Model,
    Dataset,
    Space,
}

/// Where a scanned file sits in a Hugging Face cache (read back from a report by a cluster
/// scan's merge, hence `Deserialize`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubRef {
    pub kind: HubKind,
    /// `org/name` (or `name`).
    pub repo: String,
    /// The snapshot folder's name: the commit hash the cache resolved.
    pub revision: String,
    /// The file's path inside the snapshot, `/`-separated.
    pub file: String,
}

fn repo_kind(dir: &str) -> Option<(HubKind, &str)> {
    [
        ("models--", HubKind::Model),
        ("datasets--", HubKind::Dataset),
        ("spaces--", HubKind::Space),
    ]
    .iter()
    .find_map(|(prefix, kind)| dir.strip_prefix(prefix).map(|rest| (*kind, rest)))
    .filter(|(_, rest)| !rest.is_empty())
}

/// The `models--org--name` folder a path lies in, if any.
pub fn repo_root(path: &Path) -> Option<&Path> {
    path.ancestors().find(|a| {
        a.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| repo_kind(n).is_some())
    })
}

/// The repository, revision and file of `path` (the path as found, a link in a snapshot;
/// relative paths are resolved through their folder so that `scan .` inside a snapshot
/// still knows where it is).
pub fn locate(path: &Path) -> Option<HubRef> {
    let full = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            canonical_dir(dir)?.join(name)
        }
        _ => return None,
    };
    let parts: Vec<&str> = full
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    let at = parts.iter().rposition(|p| repo_kind(p).is_some())?;
    let (kind, encoded) = repo_kind(parts[at])?;
    if parts.get(at + 1) != Some(&"snapshots") || parts.len() < at + 4 {
        return None;
    }
    Some(HubRef {
        kind,
        repo: encoded.replace("--", "/"),
        revision: parts[at + 2].to_string(),
        file: parts[at + 3..].join("/"),
    })
}

/// `dir` resolved, remembered: a tree's files share few folders, and resolving one costs a
/// `readlink` per component (five per file of a 100,000-file tree, most of a cached re-scan's
/// system time). Relative folders are made absolute first against the working directory as
/// it was at the first call (the command line never changes it; the Python module does not
/// report `hf`).
fn canonical_dir(dir: &Path) -> Option<PathBuf> {
    type Seen = HashMap<PathBuf, Option<PathBuf>>;
    static SEEN: Mutex<Option<Seen>> = Mutex::new(None);
    static CWD: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let key = if dir.is_relative() {
        CWD.get_or_init(|| std::env::current_dir().ok())
            .as_ref()?
            .join(dir)
    } else {
        dir.to_path_buf()
    };
    if let Some(hit) = SEEN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|m| m.get(&key))
    {
        return hit.clone();
    }
    let found = key.canonicalize().ok();
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let m = seen.get_or_insert_with(HashMap::new);
    if m.len() >= 65_536 {
        m.clear();
    }
    m.insert(key, found.clone());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_repo_revision_and_file() {
        let dir = std::env::temp_dir().join(format!("pg-hub-{}", std::process::id()));
        let snap = dir.join("models--org--name/snapshots/abc123/sub");
        std::fs::create_dir_all(&snap).unwrap();
        let r = locate(&snap.join("training_args.bin")).unwrap();
        assert_eq!(
            r,
            HubRef {
                kind: HubKind::Model,
                repo: "org/name".into(),
                revision: "abc123".into(),
                file: "sub/training_args.bin".into(),
            }
        );
        assert!(locate(&dir.join("models--org--name/blobs")).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
