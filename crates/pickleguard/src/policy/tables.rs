//! The tables a policy judges with: the dangerous catalogue, the module aliases, the
//! built-in profile and what a user added. The shipped files are parsed when a judgement
//! first needs them, not when a policy is made: a process that judges no global (a pickle of
//! plain data, `--version`, a cache hit) never pays for them.

use super::{
    parse_uses, AliasFile, AllowEntry, ArgPattern, Behaviour, DangerEntry, DangerFile, Grammar,
    ModuleAllow, PolicyFile, Rule,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

// policies/*.toml, converted to JSON by build.rs (parsed ~10x faster than TOML).
const DANGEROUS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/dangerous.json"));
const ALIASES_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/aliases.json"));
const ML_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/ml.json"));
const ML_CORPUS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/ml_corpus.json"));

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct Tables {
    pub(super) danger_exact: HashMap<String, Vec<DangerEntry>>,
    pub(super) danger_prefix: Vec<(String, DangerEntry)>,
    pub(super) alias_modules: HashMap<String, String>,
    pub(super) alias_names: HashMap<String, String>,
    pub(super) allow_exact: HashMap<String, ModuleAllow>,
    pub(super) allow_prefix: Vec<(String, ModuleAllow)>,
    pub(super) rules: HashMap<String, Vec<Rule>>,
    /// Version 2 entries' schemas and reviews, by qualified name.
    pub(super) behaviour: HashMap<String, Arc<Behaviour>>,
}

/// A policy's tables, built from the shipped files on first use (or given whole by a
/// snapshot). Each policy owns its own: there is no process-wide copy to share or mutate.
#[derive(Clone, Debug)]
pub(super) struct LazyTables {
    /// Whether the built-in tables include the `ml` profile (modes `ml` and `audit`).
    profile: bool,
    cell: OnceLock<Tables>,
}

impl LazyTables {
    pub(super) fn builtin(profile: bool) -> LazyTables {
        LazyTables {
            profile,
            cell: OnceLock::new(),
        }
    }

    pub(super) fn get(&self) -> &Tables {
        self.cell.get_or_init(|| Tables::builtin(self.profile))
    }

    #[cfg(test)]
    pub(super) fn is_built(&self) -> bool {
        self.cell.get().is_some()
    }

    pub(super) fn get_mut(&mut self) -> &mut Tables {
        self.get();
        self.cell.get_mut().expect("initialised just above")
    }
}

/// A snapshot carries the tables themselves (the receiver judges with exactly them).
impl Serialize for LazyTables {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(s)
    }
}

impl<'de> Deserialize<'de> for LazyTables {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let tables = Tables::deserialize(d)?;
        Ok(LazyTables {
            profile: false,
            cell: OnceLock::from(tables),
        })
    }
}

impl Tables {
    /// The shipped catalogue and aliases, and the `ml` profile if `profile`. The files were
    /// checked when the build converted them (build.rs) and by the tests, so an error here
    /// is a broken build.
    fn builtin(profile: bool) -> Tables {
        let danger: DangerFile =
            serde_json::from_str(DANGEROUS_JSON).expect("policies/dangerous.toml is valid");
        let aliases: AliasFile =
            serde_json::from_str(ALIASES_JSON).expect("policies/aliases.toml is valid");
        let mut t = Tables {
            alias_modules: aliases.modules,
            alias_names: aliases.names,
            ..Tables::default()
        };
        for e in danger.entry {
            if let Some(prefix) = e.module.strip_suffix(".*") {
                t.danger_prefix.push((prefix.to_string(), e));
            } else {
                t.danger_exact.entry(e.module.clone()).or_default().push(e);
            }
        }
        if profile {
            for (name, json) in [("ml.toml", ML_JSON), ("ml_corpus.toml", ML_CORPUS_JSON)] {
                let f: PolicyFile =
                    serde_json::from_str(json).unwrap_or_else(|e| panic!("policies/{name}: {e}"));
                t.add_file(&f, false)
                    .unwrap_or_else(|e| panic!("policies/{name}: {e}"));
            }
        }
        t
    }

    pub(super) fn norm_module<'s>(&'s self, m: &'s str) -> &'s str {
        self.alias_modules.get(m).map(|s| s.as_str()).unwrap_or(m)
    }

    /// The allow entry of a (normalised) module, or of a `pkg.*` prefix, made if new.
    pub(super) fn slot(&mut self, module: String) -> &mut ModuleAllow {
        if let Some(prefix) = module.strip_suffix(".*") {
            if let Some(i) = self.allow_prefix.iter().position(|(p, _)| p == prefix) {
                &mut self.allow_prefix[i].1
            } else {
                self.allow_prefix
                    .push((prefix.to_string(), ModuleAllow::default()));
                &mut self.allow_prefix.last_mut().expect("just pushed").1
            }
        } else {
            self.allow_exact.entry(module).or_default()
        }
    }

    pub(super) fn add_file(&mut self, file: &PolicyFile, user: bool) -> Result<(), String> {
        file.check_version()?;
        file.check_entries()?;
        let version = file.format_version();
        for e in &file.allow {
            let module = self.norm_module(&e.module).to_string();
            if version >= 2 {
                self.add_behaviour(&module, e)?;
            }
            let slot = self.slot(module);
            slot.user |= user;
            parse_uses(e, version, slot);
        }
        for r in &file.rule {
            let mut args = r
                .args
                .iter()
                .map(|a| ArgPattern::parse(a, version))
                .collect::<Result<Vec<_>, _>>()?;
            let norm = |q: &str| self.norm_qual(q);
            for a in args.iter_mut() {
                a.normalise(&norm);
            }
            let key = self.norm_qual(&r.callable);
            if !key.contains('.') {
                return Err(format!("rule callable {:?} needs module.name", r.callable));
            }
            let min_args = r
                .min_args
                .unwrap_or(args.len() - usize::from(args.last() == Some(&ArgPattern::Rest)));
            self.rules.entry(key).or_default().push(Rule {
                min_args,
                args,
                nested: r.nested,
                calls: r.calls,
                source: r.args.clone(),
            });
        }
        Ok(())
    }

    /// Record a version 2 entry's schema and review for each name it covers.
    fn add_behaviour(&mut self, module: &str, e: &AllowEntry) -> Result<(), String> {
        let plain = e.strings.is_none()
            && e.state.is_empty()
            && !e.members
            && e.reviewed.is_empty()
            && e.note.is_none();
        if plain {
            return Ok(());
        }
        let mut state = Vec::new();
        for (k, p) in &e.state {
            state.push((k.clone(), ArgPattern::parse(p, 2)?));
        }
        let b = Arc::new(Behaviour {
            strings: e.strings.as_deref().and_then(Grammar::parse),
            state,
            members: e.members,
            reviewed: e.reviewed.clone(),
            note: e.note.clone(),
        });
        for n in e.entry_names() {
            if n != "*" {
                self.behaviour.insert(format!("{module}.{n}"), b.clone());
            }
        }
        Ok(())
    }

    /// `module.name` with the module's alias resolved.
    fn norm_qual(&self, q: &str) -> String {
        match q.rsplit_once('.') {
            Some((m, n)) => format!("{}.{n}", self.norm_module(m)),
            None => q.to_string(),
        }
    }
}
