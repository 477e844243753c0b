//! Policies as data: the dangerous catalogue, module aliases, the `ml` profile and user
//! files (format in docs/policy-format.md). Judges a global by name; arguments are judged by
//! `analysis` with the rules found here.

use crate::limits::Limits;
use crate::report::{FindingType, Severity};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

mod block;
mod category;
mod file;
mod schema;
mod tables;
pub use category::Category;
pub use file::{toml_str, AllowEntry, PolicyFile};
pub use schema::{ArgPattern, Grammar, MAX_GRAMMAR_LEN};
use tables::LazyTables;

/// How much a policy refuses (docs/policy-format.md, "Modes").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every global is refused.
    Strict,
    /// The catalogued dangers are refused; the ML profile's globals are accepted by use.
    Ml,
    /// Everything not allowed by name is refused.
    Allowlist,
    /// Nothing is refused: findings are reported, the verdict is safe.
    Audit,
}

impl Mode {
    /// A mode from its name (any case), `None` for an unknown one.
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s.to_ascii_lowercase().as_str() {
            "strict" => Mode::Strict,
            "ml" => Mode::Ml,
            "allowlist" => Mode::Allowlist,
            "audit" => Mode::Audit,
            _ => return None,
        })
    }

    /// The mode's name, as policy files and the command line spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::Ml => "ml",
            Mode::Allowlist => "allowlist",
            Mode::Audit => "audit",
        }
    }

    /// How much a mode refuses: audit refuses nothing, ml the dangerous, allowlist everything
    /// not listed, strict every global. A policy file that cannot be trusted may only move up.
    pub fn strictness(self) -> u8 {
        match self {
            Mode::Audit => 0,
            Mode::Ml => 1,
            Mode::Allowlist => 2,
            Mode::Strict => 3,
        }
    }
}

/// Operations a policy can allow on a global, as bits.
pub mod uses {
    /// NEWOBJ / NEWOBJ_EX / `copyreg.__newobj__`: `cls.__new__(cls, ...)`.
    pub const NEW: u8 = 1;
    /// REDUCE / INST / OBJ: `callable(*args)`.
    pub const CALL: u8 = 2;
    /// Referenced or stored without being called.
    pub const VALUE: u8 = 4;
    /// BUILD on an instance: `__setstate__(state)` or `__dict__` / slot update.
    pub const BUILD: u8 = 8;
    /// SETITEM(S) on an instance that is not a dict: `__setitem__(k, v)`.
    pub const SETITEM: u8 = 16;
    /// APPEND(S) / ADDITEMS on an instance that is not a list/set: `append`, `extend`, `add`.
    pub const APPEND: u8 = 32;
    /// `copyreg._reconstructor(cls, base, state)` with this class as `base`:
    /// `base.__init__(obj, state)`.
    pub const INIT: u8 = 64;
    /// Every use.
    pub const ALL: u8 = NEW | CALL | VALUE | BUILD | SETITEM | APPEND | INIT;

    /// Why `qualname` (allowed as `allowed`, in words) may not be used as `want`, and the
    /// operation the user adds to its `[[allow]]` entry if they trust it. Messages name
    /// operations only through [`super::Op`], so they follow the policy format.
    pub fn missing(qualname: &str, allowed: &str, want: u8) -> String {
        let (module, name) = qualname.rsplit_once('.').unwrap_or(("", qualname));
        let op = super::Op::ALL
            .into_iter()
            .find(|o| o.bit() == want)
            .map(super::Op::as_str)
            .unwrap_or("value");
        format!(
            "the policy allows {qualname} only as {allowed}; this needs the `{op}` operation ([[allow]] module = \"{module}\", {op} = [\"{name}\"])"
        )
    }
}

/// One operation of [`uses`], by name (as policy files and findings spell it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Call,
    New,
    Build,
    SetItem,
    Append,
    Init,
    Value,
}

impl Op {
    pub const ALL: [Op; 7] = [
        Op::Call,
        Op::New,
        Op::Build,
        Op::SetItem,
        Op::Append,
        Op::Init,
        Op::Value,
    ];

    pub fn parse(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Call => "call",
            Op::New => "new",
            Op::Build => "build",
            Op::SetItem => "setitem",
            Op::Append => "append",
            Op::Init => "init",
            Op::Value => "value",
        }
    }

    pub fn bit(self) -> u8 {
        match self {
            Op::Call => uses::CALL,
            Op::New => uses::NEW,
            Op::Build => uses::BUILD,
            Op::SetItem => uses::SETITEM,
            Op::Append => uses::APPEND,
            Op::Init => uses::INIT,
            Op::Value => uses::VALUE,
        }
    }

    /// What CPython runs for this operation on a class (for findings).
    pub fn runs(self) -> &'static str {
        match self {
            Op::Call => "the callable itself",
            Op::New => "__new__",
            Op::Build => "__setstate__ (or its __dict__/slot update)",
            Op::SetItem => "__setitem__",
            Op::Append => "append/extend",
            Op::Init => "__init__",
            Op::Value => "nothing",
        }
    }
}

/// The catalogue as loaded: an entry whose category is not a [`Category`] fails to load.
#[derive(Clone, Debug, Deserialize)]
struct DangerFile {
    #[serde(default)]
    entry: Vec<DangerEntry>,
}

/// One entry of the dangerous catalogue.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DangerEntry {
    pub module: String,
    pub names: Vec<String>,
    pub category: Category,
    pub severity: Severity,
    pub description: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct AliasFile {
    #[serde(default)]
    modules: HashMap<String, String>,
    #[serde(default)]
    names: HashMap<String, String>,
}

/// What a version 2 entry says about one class or callable beyond its operations: the
/// schema of what flows in and the review that lets its custom methods run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Behaviour {
    /// Every string handed to this class's operations must match it.
    pub strings: Option<Grammar>,
    /// Patterns for keys of a BUILD state.
    pub state: Vec<(String, ArgPattern)>,
    /// `getattr(cls, 'NAME')` is an enum member.
    pub members: bool,
    pub reviewed: Vec<String>,
    pub note: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rule {
    pub args: Vec<ArgPattern>,
    pub min_args: usize,
    pub nested: bool,
    /// `[f, a]`: the callee calls argument `f` with argument `a` as its arguments.
    pub calls: Option<[usize; 2]>,
    /// The patterns as written, to show the policy again.
    pub source: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    engine: String,
    policy: Policy,
}

/// Allowed names of one module (or module pattern).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct ModuleAllow {
    names: HashMap<String, u8>,
    /// Uses granted to every (non-dotted, non-dangerous) name by a `*`.
    wildcard: u8,
    user: bool,
}

/// [`Policy::judge_name_only`]'s answer.
#[derive(Clone, Debug)]
pub struct NameJudgement {
    pub verdict: GlobalVerdict,
    /// The import finding for the bare name, if any: type, severity, description.
    pub finding: Option<(FindingType, Severity, String)>,
    /// The finding reaches the threshold: a name-only `find_class` refuses the import.
    pub refused: bool,
}

/// The judgement of one global by name.
#[derive(Clone, Debug)]
pub struct GlobalVerdict {
    /// Module and name after alias normalisation.
    pub module: String,
    pub name: String,
    pub danger: Option<DangerEntry>,
    /// Uses the policy allows (0: not allowed at all).
    pub allowed: u8,
    /// `module.name`, made once: calls look up their argument rules by it.
    qual: String,
    /// Whether the policy has argument rules for it.
    pub has_rules: bool,
    /// What a version 2 entry says about it beyond its operations.
    pub behaviour: Option<Arc<Behaviour>>,
}

impl GlobalVerdict {
    pub fn qualname(&self) -> &str {
        &self.qual
    }
}

/// A policy travels between processes (a cluster's client and its workers) as a snapshot:
/// the exact structure, so that the receiver judges as the sender would
/// ([`Policy::to_snapshot`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Policy {
    /// How much it refuses.
    pub mode: Mode,
    /// The lowest severity that makes a report unsafe (`fail_on`).
    pub threshold: Severity,
    /// The bounds on one scan's work.
    pub limits: Limits,
    /// The catalogue, aliases, profile and the user's additions, built on first use.
    #[serde(flatten)]
    tables: LazyTables,
}

/// Version 1 lists as operations: a v1 entry trusted the whole class, so what it makes also
/// takes state and items (`new`/`call` => + build, setitem, append); every grant may be stored.
const V1_OBJECT_OPS: u8 = uses::BUILD | uses::SETITEM | uses::APPEND | uses::VALUE;

fn grant(m: &mut ModuleAllow, name: &str, bits: u8) {
    if name == "*" {
        m.wildcard |= bits;
    } else {
        *m.names.entry(name.to_string()).or_insert(0) |= bits;
    }
}

fn parse_uses(e: &AllowEntry, version: i64, m: &mut ModuleAllow) {
    if version >= 2 {
        let bits = e
            .ops
            .iter()
            .filter_map(|o| Op::parse(o))
            .fold(0, |b, o| b | o.bit());
        for n in e.entry_names() {
            grant(m, n, bits);
        }
        return;
    }
    for (list, bit) in [
        (&e.new, uses::NEW | V1_OBJECT_OPS),
        (&e.call, uses::CALL | V1_OBJECT_OPS),
        (&e.value, uses::VALUE),
    ] {
        for n in list {
            grant(m, n, bit);
        }
    }
}

impl Policy {
    /// The built-in policy for a mode (the `ml` profile for `ml` and `audit`).
    pub fn new(mode: Mode) -> Policy {
        Policy {
            mode,
            threshold: Severity::Medium,
            limits: Limits::default(),
            tables: LazyTables::builtin(matches!(mode, Mode::Ml | Mode::Audit)),
        }
    }

    /// Extend with a user's policy file: its entries are explicit choices and win over the
    /// catalogue; its mode and threshold replace the current ones when set.
    pub fn extend(&mut self, file: &PolicyFile) -> Result<(), String> {
        self.tables.get_mut().add_file(file, true)?;
        if let Some(f) = &file.fail_on {
            self.threshold = Severity::parse(f).ok_or_else(|| format!("invalid fail_on {f:?}"))?;
        }
        if let Some(l) = &file.limits {
            self.limits = l.clone();
        }
        Ok(())
    }

    /// Apply the parts of `file` that make this policy stricter (docs/policy-format.md,
    /// "Configs inside a scanned tree"): a lower `fail_on`, smaller limits. Allow entries and
    /// rules only ever widen what passes, so they are dropped, as is a `fail_on` that is not
    /// lower; the mode is settled before the policy is built ([`Mode::strictness`]). Returns
    /// what was dropped, for the report.
    pub fn tighten(&mut self, file: &PolicyFile) -> Result<Vec<String>, String> {
        let mut dropped = Vec::new();
        if !file.allow.is_empty() {
            dropped.push(format!(
                "{} allow entr{}",
                file.allow.len(),
                if file.allow.len() == 1 { "y" } else { "ies" }
            ));
        }
        if !file.rule.is_empty() {
            dropped.push(format!(
                "{} rule{}",
                file.rule.len(),
                if file.rule.len() == 1 { "" } else { "s" }
            ));
        }
        if let Some(f) = &file.fail_on {
            let level = Severity::parse(f).ok_or_else(|| format!("invalid fail_on {f:?}"))?;
            if level < self.threshold {
                self.threshold = level;
            } else if level > self.threshold {
                dropped.push(format!("fail_on {}", level.as_str()));
            }
        }
        if let Some(l) = &file.limits {
            let (tight, raised) = self.limits.tightened_by(l);
            self.limits = tight;
            dropped.extend(
                raised
                    .into_iter()
                    .map(|name| format!("limits.{name} (higher)")),
            );
        }
        Ok(dropped)
    }

    /// Allow `module:name` for every operation (the command line's `--allow`,
    /// `register_safe_class`; `*` wildcards): the user vouches for what the class does.
    pub fn allow(&mut self, module: &str, name: &str) {
        let t = self.tables.get_mut();
        let module = t.norm_module(module).to_string();
        let slot = t.slot(module);
        slot.user = true;
        grant(slot, name, uses::ALL);
    }

    /// The module a loader really imports for `m` (aliases of renamed and private modules
    /// resolved).
    pub fn norm_module<'s>(&'s self, m: &'s str) -> &'s str {
        self.tables.get().norm_module(m)
    }

    fn normalise(&self, module: &str, name: &str) -> (String, String) {
        let t = self.tables.get();
        let m = t.norm_module(module);
        let key = format!("{m}.{name}");
        if let Some(to) = t
            .alias_names
            .get(&key)
            .or_else(|| t.alias_names.get(&format!("{module}.{name}")))
        {
            if let Some((a, b)) = to.rsplit_once('.') {
                return (a.to_string(), b.to_string());
            }
        }
        (m.to_string(), name.to_string())
    }

    fn danger_in(&self, module: &str, name: &str) -> Option<&DangerEntry> {
        let first = name.split('.').next().unwrap_or(name);
        let hit = |e: &&DangerEntry| e.names.iter().any(|n| n == "*" || n == name || n == first);
        if let Some(list) = self.tables.get().danger_exact.get(module) {
            if let Some(e) = list.iter().find(hit) {
                return Some(e);
            }
        }
        self.tables
            .get()
            .danger_prefix
            .iter()
            .filter(|(p, _)| {
                module == p
                    || (module.starts_with(p.as_str())
                        && module.as_bytes().get(p.len()) == Some(&b'.'))
            })
            .map(|(_, e)| e)
            .find(hit)
    }

    /// The catalogue entry a global reaches, following attribute walks through other modules
    /// (`tempfile._os.system` reaches `os.system`).
    pub fn danger(&self, module: &str, name: &str) -> Option<&DangerEntry> {
        // The most severe of the direct match and every re-rooted walk: `shutil.os.system`
        // matches a catch-all for `shutil` and, more severely, `os.system`.
        let mut best = self.danger_in(module, name);
        let segs: Vec<&str> = name.split('.').collect();
        for i in 0..segs.len().saturating_sub(1) {
            let rest = segs[i + 1..].join(".");
            for m in [
                self.norm_module(segs[i].trim_start_matches('_')),
                self.norm_module(segs[i]),
            ] {
                if let Some(e) = self.danger_in(m, &rest) {
                    if best.map(|b| e.severity > b.severity).unwrap_or(true) {
                        best = Some(e);
                    }
                }
            }
        }
        best
    }

    fn allowed_uses(&self, module: &str, name: &str, dangerous: bool) -> u8 {
        let dotted = name.contains('.');
        let mut bits = 0;
        let mut consider = |m: &ModuleAllow| {
            if let Some(b) = m.names.get(name) {
                // An exact entry from the profile does not override the catalogue unless the
                // user wrote it; a profile entry for a dangerous name must come with a rule.
                if !dangerous || m.user {
                    bits |= *b;
                }
            }
            if m.wildcard != 0 && !dotted && !dangerous && !name.starts_with("__") {
                bits |= m.wildcard;
            }
        };
        if let Some(m) = self.tables.get().allow_exact.get(module) {
            consider(m);
        }
        for (p, m) in &self.tables.get().allow_prefix {
            if module == p
                || (module.starts_with(p.as_str()) && module.as_bytes().get(p.len()) == Some(&b'.'))
            {
                consider(m);
            }
        }
        bits
    }

    /// A global as torch.jit's C++ unpickler resolves it in a TorchScript archive's records
    /// (`torch/csrc/jit/serialization/unpickler.cpp`), when that differs from a Python import:
    /// `__torch__.*` names are classes compiled from the archive's own TorchScript code (the
    /// unpickler never imports a Python module for them), and `torch.jit._pickle`'s builders
    /// make typed lists. Outside `ml`/`audit` mode, and for every other name, `None`: judged as
    /// usual (the C++ unpickler refuses names it does not know, but another loader may not).
    pub fn torchscript_verdict(&self, module: &str, name: &str) -> Option<GlobalVerdict> {
        if !matches!(self.mode, Mode::Ml | Mode::Audit) {
            return None;
        }
        let class = module == "__torch__" || module.starts_with("__torch__.");
        let builder = module == "torch.jit._pickle"
            && matches!(
                name,
                "build_intlist"
                    | "build_floatlist"
                    | "build_doublelist"
                    | "build_boollist"
                    | "build_tensorlist"
                    | "build_complexlist"
                    | "restore_type_tag"
            );
        if !(class || builder) || self.is_blocked(module, name) {
            return None;
        }
        // The C++ unpickler runs no Python for these: the archive's own classes take state
        // through their compiled __setstate__, the builders make lists.
        let allowed = if class {
            uses::ALL & !uses::INIT
        } else {
            uses::CALL | uses::VALUE
        };
        Some(GlobalVerdict {
            module: module.to_string(),
            name: name.to_string(),
            danger: None,
            allowed,
            qual: format!("{module}.{name}"),
            has_rules: false,
            behaviour: None,
        })
    }

    /// Judge a global by name.
    pub fn judge(&self, module: &str, name: &str) -> GlobalVerdict {
        let (m, n) = self.normalise(module, name);
        let danger = self.danger(&m, &n).cloned();
        let mut allowed = if self.mode == Mode::Strict {
            0
        } else {
            self.allowed_uses(&m, &n, danger.is_some())
        };
        // A dangerous name the profile lists is allowed only through its argument rules.
        let qual = format!("{m}.{n}");
        let has_rules = self.tables.get().rules.contains_key(&qual);
        if allowed == 0 && danger.is_some() && has_rules && self.mode != Mode::Strict {
            if let Some(ma) = self.tables.get().allow_exact.get(&m) {
                allowed = ma.names.get(&n).copied().unwrap_or(0);
            }
        }
        if danger.is_some() && self.is_blocked(&m, &n) {
            allowed = 0;
        }
        let behaviour = self.tables.get().behaviour.get(&qual).cloned();
        GlobalVerdict {
            module: m,
            name: n,
            danger,
            allowed,
            qual,
            has_rules,
            behaviour,
        }
    }

    /// What `find_class(module, name)` alone decides, with no use or argument to look at:
    /// the import finding the scan would make for the bare name, and whether it reaches the
    /// threshold. The restricted unpickler falls back to this where no scan of its stream
    /// precedes the load (docs/security.md, "One decision"); the scan notes the globals it
    /// accepts that this refuses ([`crate::analysis::note_name_only_refusals`]).
    pub fn judge_name_only(&self, module: &str, name: &str) -> NameJudgement {
        let verdict = self.judge(module, name);
        let finding = if let Some(d) = &verdict.danger {
            Some((
                FindingType::DangerousImport,
                d.severity,
                format!(
                    "imports {module}.{name}: {} ({})",
                    d.description, d.category
                ),
            ))
        } else if verdict.allowed == 0 {
            let why = match self.mode {
                Mode::Strict => "strict mode allows no imports".to_string(),
                m => format!("not in the {} policy", m.as_str()),
            };
            Some((
                FindingType::UnknownImport,
                Severity::Medium,
                format!("imports {module}.{name}: {why}"),
            ))
        } else {
            None
        };
        let refused = finding
            .as_ref()
            .is_some_and(|(_, sev, _)| *sev >= self.threshold);
        NameJudgement {
            verdict,
            finding,
            refused,
        }
    }

    /// The argument rules for the global `qualname` (`module.name`), if it has any.
    pub fn rules_for(&self, qualname: &str) -> Option<&[Rule]> {
        self.tables.get().rules.get(qualname).map(|v| v.as_slice())
    }

    /// Everything a judgement depends on, as one canonical string: equal fingerprints judge
    /// every input alike, and any difference (mode, threshold, limits, an allowed or blocked
    /// name, an operation, a rule, a version 2 schema or review, an alias) changes it. Verdict
    /// caches key on it; unlike `to_toml` it keeps limits, blocks and aliases.
    pub fn fingerprint(&self) -> String {
        fn sorted<V>(m: &HashMap<String, V>, show: impl Fn(&V) -> String) -> String {
            let mut v: Vec<(&String, String)> = m.iter().map(|(k, v)| (k, show(v))).collect();
            v.sort();
            format!("{v:?}")
        }
        let allow = |a: &ModuleAllow| {
            let mut names: Vec<(&String, &u8)> = a.names.iter().collect();
            names.sort();
            format!("{names:?}/{}/{}", a.wildcard, a.user)
        };
        // Prefixes are judged together (their grants are joined), so the order they were
        // added in (`--allow` on the command line, `allowed_modules` in Python) is no part of
        // the judgement, and none of the fingerprint.
        let prefixed = |v: &[(String, ModuleAllow)]| {
            let mut v: Vec<String> = v.iter().map(|(k, a)| format!("{k}={}", allow(a))).collect();
            v.sort();
            v.join(";")
        };
        let t = self.tables.get();
        format!(
            "mode={:?}\nthreshold={:?}\nlimits={:?}\ndanger={}\ndanger_prefix={:?}\n\
             alias_modules={}\nalias_names={}\nallow={}\nallow_prefix={}\nrules={}\n\
             behaviour={}\n",
            self.mode,
            self.threshold,
            self.limits,
            sorted(&t.danger_exact, |v| format!("{v:?}")),
            t.danger_prefix,
            sorted(&t.alias_modules, |v| v.clone()),
            sorted(&t.alias_names, |v| v.clone()),
            sorted(&t.allow_exact, allow),
            prefixed(&t.allow_prefix),
            sorted(&t.rules, |v| format!("{v:?}")),
            sorted(&t.behaviour, |v| format!("{v:?}")),
        )
    }

    /// This policy as JSON for another process of the same build ([`Policy::from_snapshot`]).
    pub fn to_snapshot(&self) -> String {
        let snap = Snapshot {
            engine: env!("CARGO_PKG_VERSION").to_string(),
            policy: self.clone(),
        };
        serde_json::to_string(&snap).unwrap_or_default()
    }

    /// A policy from [`Policy::to_snapshot`]; a snapshot of another version is refused (its
    /// structure, and so its judgement, may differ).
    pub fn from_snapshot(text: &str) -> Result<Policy, String> {
        let snap: Snapshot =
            serde_json::from_str(text).map_err(|e| format!("invalid policy snapshot: {e}"))?;
        if snap.engine != env!("CARGO_PKG_VERSION") {
            return Err(format!(
                "policy snapshot of pickleguard {} given to pickleguard {}: use one version on every machine",
                snap.engine,
                env!("CARGO_PKG_VERSION")
            ));
        }
        Ok(snap.policy)
    }

    /// The effective policy as TOML (`pickleguard policy show`), in format version 2.
    pub fn to_toml(&self) -> String {
        let mut out = format!(
            "version = 2\nmode = \"{}\"\nfail_on = \"{}\"\n",
            self.mode.as_str(),
            self.threshold.as_str()
        );
        let t = self.tables.get();
        let mut mods: Vec<(String, &ModuleAllow)> = t
            .allow_exact
            .iter()
            .map(|(k, v)| (k.clone(), v))
            .chain(t.allow_prefix.iter().map(|(k, v)| (format!("{k}.*"), v)))
            .collect();
        mods.sort_by(|a, b| a.0.cmp(&b.0));
        let ops_of = |bits: u8| -> String {
            let v: Vec<String> = Op::ALL
                .iter()
                .filter(|o| bits & o.bit() != 0)
                .map(|o| toml_str(o.as_str()))
                .collect();
            v.join(", ")
        };
        for (m, a) in mods {
            // Names with the same operations and no schema share one table.
            let mut groups: std::collections::BTreeMap<u8, Vec<&String>> = Default::default();
            let mut own: Vec<(&String, u8)> = Vec::new();
            for (n, bits) in &a.names {
                if t.behaviour.contains_key(&format!("{m}.{n}")) {
                    own.push((n, *bits));
                } else {
                    groups.entry(*bits).or_default().push(n);
                }
            }
            if a.wildcard != 0 {
                groups.entry(a.wildcard).or_default();
            }
            for (bits, mut names) in groups {
                names.sort();
                let mut list: Vec<String> = names.iter().map(|n| toml_str(n)).collect();
                if a.wildcard == bits {
                    list.push("\"*\"".into());
                }
                if list.is_empty() {
                    continue;
                }
                out.push_str(&format!(
                    "\n[[allow]]\nmodule = {}\nnames = [{}]\nops = [{}]\n",
                    toml_str(&m),
                    list.join(", "),
                    ops_of(bits)
                ));
            }
            own.sort();
            for (n, bits) in own {
                let b = &t.behaviour[&format!("{m}.{n}")];
                out.push_str(&format!(
                    "\n[[allow]]\nmodule = {}\nname = {}\nops = [{}]\n",
                    toml_str(&m),
                    toml_str(n),
                    ops_of(bits)
                ));
                if !b.reviewed.is_empty() {
                    let r: Vec<String> = b.reviewed.iter().map(|x| toml_str(x)).collect();
                    out.push_str(&format!("reviewed = [{}]\n", r.join(", ")));
                }
                if let Some(note) = &b.note {
                    out.push_str(&format!("note = {}\n", toml_str(note)));
                }
                if let Some(g) = b.strings {
                    out.push_str(&format!("strings = {}\n", toml_str(g.as_str())));
                }
                if b.members {
                    out.push_str("members = true\n");
                }
                if !b.state.is_empty() {
                    let kv: Vec<String> = b
                        .state
                        .iter()
                        .map(|(k, p)| format!("{} = {}", toml_str(k), toml_str(&pattern_text(p))))
                        .collect();
                    out.push_str(&format!("state = {{ {} }}\n", kv.join(", ")));
                }
            }
        }
        // Rules travel with the names they restrict: without them an exact entry in a user
        // file would let a dangerous name through with any arguments.
        let mut rules: Vec<(&String, &Vec<Rule>)> = t.rules.iter().collect();
        rules.sort_by(|a, b| a.0.cmp(b.0));
        for (callable, list) in rules {
            for r in list {
                let args: Vec<String> = r.source.iter().map(|a| toml_str(a)).collect();
                out.push_str(&format!(
                    "\n[[rule]]\ncallable = {}\nargs = [{}]\nmin_args = {}\n",
                    toml_str(callable),
                    args.join(", "),
                    r.min_args
                ));
                if r.nested {
                    out.push_str("nested = true\n");
                }
                if let Some([f, a]) = r.calls {
                    out.push_str(&format!("calls = [{f}, {a}]\n"));
                }
            }
        }
        out
    }
}

/// A pattern as a policy file writes it.
fn pattern_text(p: &ArgPattern) -> String {
    match p {
        ArgPattern::OneOf(v) => v.iter().map(pattern_text).collect::<Vec<_>>().join("|"),
        ArgPattern::Exact(t) => format!("={t}"),
        ArgPattern::Grammar(g) => format!("grammar:{}", g.as_str()),
        ArgPattern::GlobalIs(v) => format!("global:{}", v.join("|global:")),
        ArgPattern::Made(v) => format!("made:{}", v.join("|made:")),
        ArgPattern::Data => "data".into(),
        ArgPattern::Str => "str".into(),
        ArgPattern::Bytes => "bytes".into(),
        ArgPattern::Int => "int".into(),
        ArgPattern::Float => "float".into(),
        ArgPattern::Bool => "bool".into(),
        ArgPattern::None => "none".into(),
        ArgPattern::Tuple => "tuple".into(),
        ArgPattern::List => "list".into(),
        ArgPattern::Dict => "dict".into(),
        ArgPattern::IntTuple => "int_tuple".into(),
        ArgPattern::Ident => "ident".into(),
        ArgPattern::Global => "global".into(),
        ArgPattern::GlobalCall => "global_call".into(),
        ArgPattern::GlobalNew => "global_new".into(),
        ArgPattern::Persistent => "persistent".into(),
        ArgPattern::Attr => "attr".into(),
        ArgPattern::Instance => "instance".into(),
        ArgPattern::Never => "never".into(),
        ArgPattern::Rest => "...".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_walks_reach_the_catalogue() {
        let p = Policy::new(Mode::Ml);
        for (m, n) in [
            ("posix", "system"),
            ("nt", "system"),
            ("os", "system"),
            ("__builtin__", "eval"),
            ("builtins", "exec"),
            ("tempfile", "_os.system"),
            ("torch.serialization", "os.system"),
            ("subprocess", "Popen"),
        ] {
            let v = p.judge(m, n);
            assert!(v.danger.is_some(), "{m}.{n} should be dangerous");
            assert_eq!(v.allowed & uses::CALL, 0, "{m}.{n} must not be callable");
        }
    }

    #[test]
    fn snapshots_judge_alike() {
        for mode in [Mode::Strict, Mode::Ml, Mode::Allowlist, Mode::Audit] {
            let mut p = Policy::new(mode);
            p.allow("myapp.models", "UserModel");
            p.allow("numpy", "*");
            p.threshold = Severity::High;
            p.limits.max_ops = 1234;
            let file = PolicyFile::parse(
                "[[rule]]\ncallable = \"myapp.f\"\nargs = [\"str\", \"int\"]\nmin_args = 1\n",
            )
            .unwrap();
            p.extend(&file).unwrap();
            let back = Policy::from_snapshot(&p.to_snapshot()).unwrap();
            assert_eq!(back.fingerprint(), p.fingerprint());
            assert_ne!(Policy::new(mode).fingerprint(), p.fingerprint());
        }
        assert!(Policy::from_snapshot("{}").is_err());
        let other = Policy::new(Mode::Ml).to_snapshot().replacen(
            env!("CARGO_PKG_VERSION"),
            "0.0.0-other",
            1,
        );
        assert!(Policy::from_snapshot(&other).is_err());
    }

    #[test]
    fn fingerprint_sees_every_setting() {
        let base = Policy::new(Mode::Ml).fingerprint();
        assert_eq!(base, Policy::new(Mode::Ml).fingerprint());
        // The same entries in another order: the same policy.
        let (mut a, mut b) = (Policy::new(Mode::Ml), Policy::new(Mode::Ml));
        a.allow("myapp.*", "*");
        a.allow("other.pkg.*", "*");
        b.allow("other.pkg.*", "*");
        b.allow("myapp.*", "*");
        assert_eq!(a.fingerprint(), b.fingerprint());
        let mut p = Policy::new(Mode::Ml);
        p.threshold = Severity::Critical;
        assert_ne!(p.fingerprint(), base);
        let mut p = Policy::new(Mode::Ml);
        p.limits.max_nesting += 1;
        assert_ne!(p.fingerprint(), base);
        let mut p = Policy::new(Mode::Ml);
        p.allow("a", "b");
        assert_ne!(p.fingerprint(), base);
        assert_ne!(Policy::new(Mode::Audit).fingerprint(), base);
        // Version 2: the operations, the string schema and the review of an entry.
        let v2 = |entry: &str| {
            let mut p = Policy::new(Mode::Ml);
            let text = format!("version = 2\n[[allow]]\nmodule = \"m\"\nname = \"A\"\n{entry}");
            p.extend(&PolicyFile::parse(&text).unwrap()).unwrap();
            p.fingerprint()
        };
        let entries = [
            "ops = [\"new\"]\n",
            "ops = [\"new\", \"build\"]\n",
            "ops = [\"new\", \"build\"]\nstrings = \"expr\"\n",
            "ops = [\"new\", \"build\"]\nstrings = \"ident\"\n",
            "ops = [\"new\", \"build\"]\nstrings = \"ident\"\nreviewed = [\"__setstate__\"]\n",
        ];
        let prints: Vec<String> = entries.iter().map(|e| v2(e)).collect();
        for (i, a) in prints.iter().enumerate() {
            assert_ne!(a, &base, "{}", entries[i]);
            for (j, b) in prints.iter().enumerate().skip(i + 1) {
                assert_ne!(a, b, "{} vs {}", entries[i], entries[j]);
            }
        }
    }

    #[test]
    fn fingerprint_sees_every_built_in_entry() {
        // The verdict cache keys on the fingerprint: an edit of any shipped table (a rule, a
        // grant, a catalogue entry, an alias, a review) must give another key. Edited here
        // through a snapshot, which carries the tables the files built.
        let p = Policy::new(Mode::Ml);
        let base = p.fingerprint();
        let snap: serde_json::Value = serde_json::from_str(&p.to_snapshot()).unwrap();
        fn first(v: &mut serde_json::Value) -> &mut serde_json::Value {
            match v {
                serde_json::Value::Object(m) => m.values_mut().next().expect("a table entry"),
                serde_json::Value::Array(a) => a.first_mut().expect("a table entry"),
                other => panic!("not a table: {other}"),
            }
        }
        fn append(v: &mut serde_json::Value) {
            let s = v.as_str().expect("a string").to_string();
            *v = serde_json::Value::String(s + "~");
        }
        type Edit = fn(&mut serde_json::Value);
        let edits: [(&str, Edit); 8] = [
            ("danger_exact", |t| append(&mut first(t)[0]["description"])),
            ("danger_prefix", |t| append(&mut t[0][1]["description"])),
            ("alias_modules", |t| append(first(t))),
            ("alias_names", |t| append(first(t))),
            ("allow_exact", |t| {
                let n = first(&mut first(t)["names"]);
                *n = serde_json::json!(n.as_u64().unwrap() ^ uses::INIT as u64);
            }),
            ("allow_exact", |t| {
                first(t)["user"] = serde_json::json!(true)
            }),
            ("rules", |t| {
                let m = &mut first(t)[0]["min_args"];
                *m = serde_json::json!(m.as_u64().unwrap() + 1);
            }),
            ("behaviour", |t| {
                first(t)["note"] = serde_json::json!("another review")
            }),
        ];
        for (table, edit) in edits {
            let mut v = snap.clone();
            edit(&mut v["policy"][table]);
            let edited = Policy::from_snapshot(&v.to_string()).unwrap();
            assert_ne!(edited.fingerprint(), base, "an edit of {table}");
        }
        // Rules and blocks a user adds too.
        let mut p = Policy::new(Mode::Ml);
        let rule = "[[rule]]\ncallable = \"myapp.f\"\nargs = [\"str\"]\n";
        p.extend(&PolicyFile::parse(rule).unwrap()).unwrap();
        assert_ne!(p.fingerprint(), base);
        let mut p = Policy::new(Mode::Ml);
        p.block("collections", "OrderedDict");
        assert_ne!(p.fingerprint(), base);
    }

    #[test]
    fn tables_are_built_on_first_use_and_extended_alike() {
        // A policy that judges nothing never parses the shipped files (a pickle of plain
        // data, docs/benchmarks.md); the first judgement builds them.
        let p = Policy::new(Mode::Ml);
        assert!(!p.tables.is_built());
        let plain = crate::analyze_pickle(b"\x80\x04]\x94(K\x01K\x02e.", &p);
        assert!(plain.is_safe);
        assert!(!p.tables.is_built());
        assert_ne!(p.judge("collections", "OrderedDict").allowed, 0);
        assert!(p.tables.is_built());
        // A user file extends an unbuilt policy as it extends a built one.
        let file = PolicyFile::parse("[[allow]]\nmodule = \"myapp\"\nnew = [\"Model\"]\n").unwrap();
        let (mut lazy, mut built) = (Policy::new(Mode::Ml), Policy::new(Mode::Ml));
        built.judge("os", "system");
        lazy.extend(&file).unwrap();
        built.extend(&file).unwrap();
        assert_eq!(lazy.fingerprint(), built.fingerprint());
        assert_ne!(lazy.judge("myapp", "Model").allowed, 0);
        assert_ne!(lazy.judge("collections", "OrderedDict").allowed, 0);
        assert!(lazy.judge("os", "system").danger.is_some());
    }

    #[test]
    fn snapshots_keep_version_2_schemas() {
        let text = "version = 2\n[[allow]]\nmodule = \"m\"\nname = \"A\"\nops = [\"new\", \"build\"]\nreviewed = [\"__setstate__\"]\nstrings = \"expr\"\n";
        let mut p = Policy::new(Mode::Allowlist);
        p.extend(&PolicyFile::parse(text).unwrap()).unwrap();
        let back = Policy::from_snapshot(&p.to_snapshot()).unwrap();
        assert_eq!(back.fingerprint(), p.fingerprint());
        let b = back.judge("m", "A").behaviour.expect("schema kept");
        assert_eq!(b.strings, Some(Grammar::Expr));
        assert_eq!(b.reviewed, vec!["__setstate__".to_string()]);
    }

    #[test]
    fn shipped_profiles_grant_behaviour_only_to_exact_names() {
        let p = Policy::new(Mode::Ml);
        let t = p.tables.get();
        for (module, allow) in t
            .allow_exact
            .iter()
            .map(|(m, a)| (m.clone(), a))
            .chain(t.allow_prefix.iter().map(|(m, a)| (format!("{m}.*"), a)))
        {
            assert_eq!(
                allow.wildcard & !uses::VALUE,
                0,
                "{module}: a wildcard grants more than `value`"
            );
        }
        // No module-wide grant of anything that runs code survives in the profile.
        for (m, n) in [
            ("sklearn.linear_model._logistic", "SomethingNew"),
            ("numpy", "save"),
            ("scipy.io", "loadmat"),
            ("pandas", "eval"),
            ("torch.nn.modules.linear", "NotAModule"),
        ] {
            assert_eq!(p.judge(m, n).allowed, 0, "{m}.{n}");
        }
    }

    #[test]
    fn version_1_entries_map_to_operations() {
        let f = PolicyFile::parse(
            "[[allow]]\nmodule = \"m\"\nnew = [\"A\"]\ncall = [\"f\"]\nvalue = [\"V\"]\n",
        )
        .unwrap();
        let mut p = Policy::new(Mode::Allowlist);
        p.extend(&f).unwrap();
        let object_ops = uses::BUILD | uses::SETITEM | uses::APPEND | uses::VALUE;
        assert_eq!(p.judge("m", "A").allowed, uses::NEW | object_ops);
        assert_eq!(p.judge("m", "f").allowed, uses::CALL | object_ops);
        assert_eq!(p.judge("m", "V").allowed, uses::VALUE);
    }

    #[test]
    fn version_2_entries_name_operations_and_never_any() {
        let ok = "version = 2\n[[allow]]\nmodule = \"m\"\nname = \"A\"\nops = [\"new\", \"build\"]\nreviewed = [\"__setstate__\"]\nnote = \"dict update\"\nstrings = \"expr\"\n";
        let mut p = Policy::new(Mode::Allowlist);
        p.extend(&PolicyFile::parse(ok).unwrap()).unwrap();
        let v = p.judge("m", "A");
        assert_eq!(v.allowed, uses::NEW | uses::BUILD);
        let b = v.behaviour.expect("schema recorded");
        assert_eq!(b.strings, Some(Grammar::Expr));
        assert_eq!(b.reviewed, vec!["__setstate__".to_string()]);
        for bad in [
            // A wildcard grants only `value`.
            "version = 2\n[[allow]]\nmodule = \"m\"\nnames = [\"*\"]\nops = [\"new\"]\n",
            "version = 2\n[[allow]]\nmodule = \"m\"\nname = \"A\"\nops = [\"run\"]\n",
            "version = 2\n[[allow]]\nmodule = \"m\"\nnew = [\"A\"]\n",
            "version = 1\n[[allow]]\nmodule = \"m\"\nname = \"A\"\nops = [\"new\"]\n",
            "version = 2\n[[rule]]\ncallable = \"m.f\"\nargs = [\"any\"]\n",
            "version = 3\n",
        ] {
            assert!(PolicyFile::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn strict_allows_nothing() {
        let p = Policy::new(Mode::Strict);
        assert_eq!(p.judge("collections", "OrderedDict").allowed, 0);
    }

    #[test]
    fn wildcards_never_cover_dangerous_or_dotted_names() {
        let mut p = Policy::new(Mode::Allowlist);
        p.allow("numpy", "*");
        assert_ne!(p.judge("numpy", "ndarray").allowed, 0);
        assert_eq!(p.judge("numpy", "load").allowed, 0);
        assert_eq!(p.judge("numpy", "testing.runstring").allowed, 0);
        p.allow("myapp.models", "UserModel");
        assert_ne!(p.judge("myapp.models", "UserModel").allowed, 0);
        assert_eq!(p.judge("myapp.models", "Other").allowed, 0);
    }
}
