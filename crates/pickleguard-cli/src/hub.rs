//! The Hugging Face cache layout: `<cache>/models--org--name/snapshots/<revision>/<file>`,
//! every file a link into `../../blobs/`. Files found there are reported by repository,
//! revision and file (docs/report-schema.md, `hf`).

use serde::{Deserialize, Serialize};
use std::path::{Component, Path};

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
            dir.canonicalize().ok()?.join(name)
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
