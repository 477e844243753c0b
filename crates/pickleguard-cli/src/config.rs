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

/// A config's path in a message: its folder may be a scanned one, named by whoever made it.
fn shown(path: &Path) -> String {
    pickleguard::terminal_safe(&path.display().to_string()).into_owned()
}

/// Parse a `pyproject.toml` and take its `[tool.pickleguard]` table, if any.
pub fn from_pyproject(text: &str, path: &Path) -> Result<Option<PolicyFile>, String> {
    PolicyFile::from_pyproject(text).map_err(|e| format!("{}: {e}", shown(path)))
}

/// Read a policy file (`pickleguard.toml` format, or a `pyproject.toml`).
pub fn read_policy_file(path: &Path) -> Result<PolicyFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", shown(path)))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    PolicyFile::from_named(name, &text).map_err(|e| format!("{}: {e}", shown(path)))
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
            let text = std::fs::read_to_string(&py).map_err(|e| format!("{}: {e}", shown(&py)))?;
            if let Some(file) = from_pyproject(&text, &py)? {
                return Ok(Some(Found { path: py, file }));
            }
        }
    }
    Ok(None)
}

/// How much of a config file a command trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    /// Named with `--policy`, or discovered outside every scanned path: applied whole.
    Applied,
    /// Discovered inside a scanned path (a downloaded repository can ship it): only what
    /// tightens the policy was applied.
    TightenOnly,
}

/// A config file the command read, and what it did with it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ConfigUse {
    pub path: String,
    /// `discovered` (found upward from the working directory) or `--policy`.
    pub origin: &'static str,
    pub trust: Trust,
    /// What was not applied (loosening parts of a config used only to tighten).
    pub ignored: Vec<String>,
}

/// The effective policy and where its parts came from.
pub struct Effective {
    pub policy: Policy,
    /// Human-readable list of the sources, lowest precedence first.
    pub sources: Vec<String>,
    /// The config files read, in the order applied.
    pub configs: Vec<ConfigUse>,
}

/// Whether `config` lies inside one of the scanned paths (a directory holding it, or the file
/// itself), comparing canonical paths so that `.`, `..` and links do not hide it.
pub fn inside_scanned(config: &Path, scanned: &[PathBuf]) -> bool {
    let Ok(config) = config.canonicalize() else {
        return false;
    };
    scanned.iter().filter(|p| p.as_os_str() != "-").any(|p| {
        p.canonicalize()
            .is_ok_and(|root| config == root || config.starts_with(&root))
    })
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
    build_for(args, mode_override, &[])
}

/// [`build`] for a command that reads `scanned`: a config discovered inside one of them is
/// used only to tighten the policy (docs/policy-format.md, "Configs inside a scanned tree").
pub fn build_for(
    args: &PolicyArgs,
    mode_override: Option<Mode>,
    scanned: &[PathBuf],
) -> Result<Effective, String> {
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
    // The discovered config named with --policy as well is applied (once) as --policy.
    let found = found.filter(|f| {
        let named = f.path.canonicalize().ok();
        !files
            .iter()
            .any(|(p, _)| p.canonicalize().ok().is_some_and(|c| Some(c) == named))
    });
    let untrusted = found
        .as_ref()
        .is_some_and(|f| inside_scanned(&f.path, scanned));
    let trusted_found = found.as_ref().filter(|_| !untrusted);
    let mut mode = mode_override
        .or(args.mode.map(|m| m.mode()))
        .or(files.iter().rev().find_map(|(_, f)| f.mode))
        .or(trusted_found.and_then(|f| f.file.mode))
        .unwrap_or(Mode::Ml);
    let mut dropped = Vec::new();
    if let Some(f) = found.as_ref().filter(|_| untrusted) {
        match f.file.mode {
            Some(m) if mode_override.is_none() && m.strictness() > mode.strictness() => mode = m,
            Some(m) if m != mode => dropped.push(format!("mode {}", m.as_str())),
            _ => {}
        }
    }
    let mut policy = Policy::new(mode);
    let mut sources = vec![format!("built-in {} profile", mode.as_str())];
    let mut configs = Vec::new();
    if let Some(f) = trusted_found {
        policy
            .extend(&f.file)
            .map_err(|e| format!("{}: {e}", shown(&f.path)))?;
        sources.push(format!("config {}", f.path.display()));
        configs.push(ConfigUse {
            path: f.path.display().to_string(),
            origin: "discovered",
            trust: Trust::Applied,
            ignored: Vec::new(),
        });
    }
    for (p, f) in &files {
        policy.extend(f).map_err(|e| format!("{}: {e}", shown(p)))?;
        sources.push(format!("--policy {}", p.display()));
        configs.push(ConfigUse {
            path: p.display().to_string(),
            origin: "--policy",
            trust: Trust::Applied,
            ignored: Vec::new(),
        });
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
    if let Some(f) = found.as_ref().filter(|_| untrusted) {
        // Last, so that what it keeps is measured against everything else.
        dropped.extend(
            policy
                .tighten(&f.file)
                .map_err(|e| format!("{}: {e}", shown(&f.path)))?,
        );
        if policy.threshold == Severity::Safe {
            policy.threshold = Severity::Low;
        }
        sources.push(format!(
            "config {} (inside a scanned path: used only to tighten)",
            f.path.display()
        ));
        configs.push(ConfigUse {
            path: f.path.display().to_string(),
            origin: "discovered",
            trust: Trust::TightenOnly,
            ignored: dropped,
        });
    }
    Ok(Effective {
        policy,
        sources,
        configs,
    })
}
