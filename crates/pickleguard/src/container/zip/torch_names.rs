//! Which members of a torch zip are tensor storages: bytes `torch.load` reads as numbers,
//! never as a pickle, and that a scan never reads.

use super::Member;

/// Which of a zip's member names (central directory order) are tensor storages of a torch
/// archive: bytes torch.load reads as raw numbers, never as a pickle, and that a scan never
/// reads. A reader fetching a remote archive skips exactly these (docs/cli.md, "Remote
/// sources").
pub fn storage_members(names: &[&str]) -> Vec<bool> {
    let root = root_of(names.iter().copied());
    names
        .iter()
        .map(|n| root.as_deref().is_some_and(|r| is_storage(r, n)))
        .collect()
}

/// The archive root of a torch zip (`archive/` for `archive/data.pkl`), if this is one: a
/// `data.pkl` with a `version` or `byteorder` record beside it.
pub(super) fn torch_root(members: &[Member]) -> Option<String> {
    root_of(members.iter().map(|m| m.name.as_str()))
}

fn root_of<'a>(members: impl Iterator<Item = &'a str> + Clone) -> Option<String> {
    let names: std::collections::HashSet<&str> = members.clone().collect();
    for name in members {
        let Some(root) = name.strip_suffix("data.pkl") else {
            continue;
        };
        if !(root.is_empty() || root.ends_with('/')) {
            continue;
        }
        let has = |n: &str| names.contains(format!("{root}{n}").as_str());
        if has("version") || has(".data/version") || has("byteorder") {
            return Some(root.to_string());
        }
    }
    None
}

/// A tensor storage record of a torch zip: `<root>data/<key>` (and TorchScript's
/// `<root>constants/<key>`). torch.load reads them as raw bytes, never as pickles.
pub(super) fn is_storage(root: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(root) else {
        return false;
    };
    let key = rest
        .strip_prefix("data/")
        .or_else(|| rest.strip_prefix("constants/"));
    matches!(key, Some(k) if !k.is_empty() && !k.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storages_are_the_data_records_of_a_torch_archive_only() {
        let torch = [
            "m/data.pkl",
            "m/version",
            "m/data/0",
            "m/data/1",
            "m/data/x/y",
            "m/code.py",
        ];
        assert_eq!(
            storage_members(&torch),
            [false, false, true, true, false, false]
        );
        // Without a version or byteorder record beside data.pkl it is no torch archive.
        assert_eq!(storage_members(&["m/data.pkl", "m/data/0"]), [false, false]);
        assert_eq!(
            root_of(["data.pkl", "byteorder"].into_iter()),
            Some(String::new())
        );
        assert!(is_storage("", "constants/3"));
        assert!(!is_storage("m/", "n/data/0"));
    }
}
