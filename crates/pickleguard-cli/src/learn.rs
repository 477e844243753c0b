//! `pickleguard policy show` and `pickleguard policy learn`.

use crate::cli::{LearnArgs, ShowArgs};
use crate::scan::run_scan;
use crate::{config, term, ExitStatus};
use pickleguard::{terminal_safe, toml_str, Policy, Severity, Use};
use std::collections::BTreeMap;
use std::fmt::Write;

/// `pickleguard policy show [MODE]`.
pub fn show(a: &ShowArgs) -> Result<ExitStatus, String> {
    let eff = config::build(&a.policy, a.mode_arg.map(|m| m.mode()))?;
    let mut out = String::new();
    out.push_str("# The effective pickleguard policy, from:\n");
    for s in &eff.sources {
        let _ = writeln!(out, "#   {}", terminal_safe(&s.to_string()));
    }
    out.push_str(
        "# Names here are allowed by name; dangerous callables are still judged by their\n\
         # arguments (the rules of the profile) and never reached by a `*`.\n",
    );
    out.push_str(&eff.policy.to_toml());
    term::write_stdout(out.as_bytes())?;
    Ok(ExitStatus::Safe)
}

/// Uses of the names of one module, for the learned file.
#[derive(Default)]
struct ModuleUses {
    new: Vec<String>,
    call: Vec<String>,
    value: Vec<String>,
}

fn toml_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", items.join(", "))
}

/// Write the learned policy file from the globals of every file (grouped by module).
pub fn learned_toml(
    globals: &BTreeMap<(String, String), Vec<Use>>,
    files: usize,
    policy: &Policy,
    paths: &[String],
) -> String {
    let mut by_module: BTreeMap<&str, ModuleUses> = BTreeMap::new();
    for ((module, name), uses) in globals {
        let e = by_module.entry(module.as_str()).or_default();
        for u in uses {
            match u {
                Use::New => e.new.push(name.clone()),
                Use::Call => e.call.push(name.clone()),
                Use::Value => e.value.push(name.clone()),
            }
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Learned by `pickleguard policy learn` from {files} file(s) in: {}",
        terminal_safe(&paths.join(", "))
    );
    out.push_str(
        "# Every entry was seen in a file you trusted: review it before committing it.\n\
         # Use it with: pickleguard scan --mode allowlist --policy THIS_FILE PATH...\n\
         # (or add `mode = \"allowlist\"` here to make allowlist the default).\n",
    );
    for (module, u) in &by_module {
        out.push('\n');
        let mut names: Vec<&String> = u.new.iter().chain(&u.call).chain(&u.value).collect();
        names.sort();
        names.dedup();
        for n in names {
            let v = policy.judge(module, n);
            if let Some(d) = &v.danger {
                let _ = writeln!(
                    out,
                    "# warning: {}.{} is in the dangerous catalogue ({}: {})",
                    terminal_safe(module),
                    terminal_safe(n),
                    d.severity.as_str(),
                    d.description
                );
            }
        }
        out.push_str("[[allow]]\n");
        let _ = writeln!(out, "module = {}", toml_str(module));
        for (key, list) in [("new", &u.new), ("call", &u.call), ("value", &u.value)] {
            if !list.is_empty() {
                let _ = writeln!(out, "{key} = {}", toml_list(list));
            }
        }
    }
    out
}

/// `pickleguard policy learn DIR...`.
pub fn command(a: &LearnArgs) -> Result<ExitStatus, String> {
    let eff = config::build(&a.policy, None)?;
    let policy = &eff.policy;
    let outcome = run_scan(&a.paths, &a.walk, policy, !a.quiet)?;
    let mut refused = Vec::new();
    let mut errors = Vec::new();
    let mut globals: BTreeMap<(String, String), Vec<Use>> = BTreeMap::new();
    let mut learned_from = 0;
    for f in &outcome.files {
        if let Some(e) = &f.error {
            errors.push(format!("{}: {}", terminal_safe(&f.path), terminal_safe(e)));
            continue;
        }
        let critical: Vec<_> = f
            .report
            .findings
            .iter()
            .filter(|x| x.severity == Severity::Critical)
            .collect();
        if !critical.is_empty() {
            for c in critical {
                refused.push(format!(
                    "{}: CRITICAL {} at byte {}: {}",
                    terminal_safe(&f.path),
                    c.kind.as_str(),
                    c.position,
                    terminal_safe(&c.description)
                ));
            }
            continue;
        }
        if f.report.format == "not_pickle" {
            continue;
        }
        if !f.report.complete {
            term::warn(&format!(
                "{}: analysis incomplete ({}); learned only what was read",
                terminal_safe(&f.path),
                terminal_safe(
                    &f.report
                        .stopped_by
                        .as_ref()
                        .map_or("stopped early".into(), |s| s.render())
                )
            ));
        }
        learned_from += 1;
        for g in &f.report.globals {
            let e = globals
                .entry((g.module.clone(), g.name.clone()))
                .or_default();
            for u in &g.uses {
                if !e.contains(u) {
                    e.push(*u);
                }
            }
            e.sort();
        }
    }
    for e in &errors {
        term::error(e);
    }
    if !errors.is_empty() {
        term::error("nothing learned: some files could not be read");
        return Ok(ExitStatus::Error);
    }
    if !refused.is_empty() {
        for r in &refused {
            term::error(r);
        }
        term::error(
            "refusing to learn from files with CRITICAL findings: remove them from the trusted set or find out what they do (pickleguard explain FILE)",
        );
        return Ok(ExitStatus::Unsafe);
    }
    let paths: Vec<String> = a.paths.iter().map(|p| p.display().to_string()).collect();
    let text = learned_toml(&globals, learned_from, policy, &paths);
    match &a.output {
        Some(p) if p.as_os_str() != "-" => {
            std::fs::write(p, text.as_bytes()).map_err(|e| format!("{}: {e}", p.display()))?;
            if !a.quiet {
                term::note(&format!(
                    "learned {} global(s) from {learned_from} file(s); wrote {}",
                    globals.len(),
                    p.display()
                ));
            }
        }
        _ => term::write_stdout(text.as_bytes())?,
    }
    Ok(ExitStatus::Safe)
}
