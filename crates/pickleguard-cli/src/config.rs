//! The effective policy: the built-in profile of the mode, the user's config file (found
//! upward from the working directory), `--policy` files and the command-line flags, in that
//! order of increasing precedence.

use crate::cli::PolicyArgs;
use pickleguard::{Mode, Policy, PolicyFile, Severity};
use std::path::{Path, PathBuf};

/// A config file found while walking up from the working directory.
#[derive(Debug)]
pub struct Found {
    pub path: PathBuf,
    pub file: PolicyFile,
}

/// Parse a `pyproject.toml` and take its `[tool.pickleguard]` table, if any.
pub fn from_pyproject(text: &str, path: &Path) -> Result<Option<PolicyFile>, String> {
    let doc: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: invalid TOML: {e}", path.display()))?;
    let Some(section) = doc
        .get("tool")
        .and_then(|t| t.as_table())
        .and_then(|t| t.get("pickleguard"))
    else {
        return Ok(None);
    };
    let file: PolicyFile = section
        .clone()
        .try_into()
        .map_err(|e| format!("{}: invalid [tool.pickleguard]: {e}", path.display()))?;
    file.check_version()
        .map_err(|e| format!("{}: [tool.pickleguard]: {e}", path.display()))?;
    Ok(Some(file))
}

/// Read a policy file (`pickleguard.toml` format, or a `pyproject.toml`).
pub fn read_policy_file(path: &Path) -> Result<PolicyFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if path.file_name().is_some_and(|n| n == "pyproject.toml") {
        return from_pyproject(&text, path)?
            .ok_or_else(|| format!("{}: no [tool.pickleguard] section", path.display()));
    }
    PolicyFile::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Find the config that applies to `start`: in each directory from `start` up to the root,
/// `pickleguard.toml` first, then a `pyproject.toml` that has a `[tool.pickleguard]` table.
/// The first one found wins; files are not merged.
pub fn discover(start: &Path) -> Result<Option<Found>, String> {
    for dir in start.ancestors() {
        let own = dir.join("pickleguard.toml");
        if own.is_file() {
            let file = read_policy_file(&own)?;
            return Ok(Some(Found { path: own, file }));
        }
        let py = dir.join("pyproject.toml");
        if py.is_file() {
            let text =
                std::fs::read_to_string(&py).map_err(|e| format!("{}: {e}", py.display()))?;
            if let Some(file) = from_pyproject(&text, &py)? {
                return Ok(Some(Found { path: py, file }));
            }
        }
    }
    Ok(None)
}

/// The effective policy and where its parts came from.
pub struct Effective {
    pub policy: Policy,
    /// Human-readable list of the sources, lowest precedence first.
    pub sources: Vec<String>,
}

/// Split `MODULE:NAME` (the last `:` separates, names have none).
pub fn parse_allow(s: &str) -> Result<(String, String), String> {
    let (m, n) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("--allow expects MODULE:NAME, got {s:?}"))?;
    let (m, n) = (m.trim(), n.trim());
    if m.is_empty() || n.is_empty() {
        return Err(format!("--allow expects MODULE:NAME, got {s:?}"));
    }
    Ok((m.to_string(), n.to_string()))
}

/// Build the policy the command runs with. `mode_override` (e.g. `policy show MODE`) beats
/// every other source of the mode.
pub fn build(args: &PolicyArgs, mode_override: Option<Mode>) -> Result<Effective, String> {
    let found = if args.no_config {
        None
    } else {
        let cwd = std::env::current_dir().map_err(|e| format!("working directory: {e}"))?;
        discover(&cwd)?
    };
    let files = args
        .policy
        .iter()
        .map(|p| read_policy_file(p).map(|f| (p.clone(), f)))
        .collect::<Result<Vec<_>, _>>()?;
    let mode = mode_override
        .or(args.mode.map(|m| m.mode()))
        .or(files.iter().rev().find_map(|(_, f)| f.mode))
        .or(found.as_ref().and_then(|f| f.file.mode))
        .unwrap_or(Mode::Ml);
    let mut policy = Policy::new(mode);
    let mut sources = vec![format!("built-in {} profile", mode.as_str())];
    if let Some(f) = &found {
        policy
            .extend(&f.file)
            .map_err(|e| format!("{}: {e}", f.path.display()))?;
        sources.push(format!("config {}", f.path.display()));
    }
    for (p, f) in &files {
        policy
            .extend(f)
            .map_err(|e| format!("{}: {e}", p.display()))?;
        sources.push(format!("--policy {}", p.display()));
    }
    for a in &args.allow {
        let (m, n) = parse_allow(a)?;
        policy.allow(&m, &n);
        sources.push(format!("--allow {m}:{n}"));
    }
    if !args.allow.is_empty() && mode == Mode::Strict {
        crate::term::warn("--allow has no effect in strict mode (no global is ever allowed)");
    }
    if let Some(l) = args.fail_on {
        policy.threshold = l.severity();
        sources.push(format!("--fail-on {}", l.severity().as_str()));
    }
    if policy.threshold == Severity::Safe {
        // A threshold of SAFE would make every file unsafe; treat it as LOW.
        policy.threshold = Severity::Low;
    }
    Ok(Effective { policy, sources })
}
