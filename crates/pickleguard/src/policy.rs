//! Policies as data: the dangerous catalogue, module aliases, the `ml` profile and user
//! files (format in docs/policy-format.md). Judges a global by name; arguments are judged by
//! `analysis` with the rules found here.

use crate::limits::Limits;
use crate::report::Severity;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

// policies/*.toml, converted to JSON by build.rs (parsed ~10x faster at start-up).
const DANGEROUS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/dangerous.json"));
const ALIASES_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/aliases.json"));
const ML_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/ml.json"));
const ML_CORPUS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/ml_corpus.json"));

mod block;
pub use block::BLOCKED;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Strict,
    Ml,
    Allowlist,
    Audit,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s.to_ascii_lowercase().as_str() {
            "strict" => Mode::Strict,
            "ml" => Mode::Ml,
            "allowlist" => Mode::Allowlist,
            "audit" => Mode::Audit,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::Ml => "ml",
            Mode::Allowlist => "allowlist",
            Mode::Audit => "audit",
        }
    }
}

/// Ways a global may be used, as bits.
pub mod uses {
    pub const NEW: u8 = 1;
    pub const CALL: u8 = 2;
    pub const VALUE: u8 = 4;
    pub const ALL: u8 = NEW | CALL | VALUE;
}

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
    pub category: String,
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

/// An `[[allow]]` table of a profile or a user file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowEntry {
    pub module: String,
    #[serde(default)]
    pub new: Vec<String>,
    #[serde(default)]
    pub call: Vec<String>,
    #[serde(default)]
    pub value: Vec<String>,
}

/// A `[[rule]]`: a call is accepted only when its arguments match.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleEntry {
    pub callable: String,
    pub args: Vec<String>,
    #[serde(default)]
    pub min_args: Option<usize>,
    /// The bytes argument is a serialized file that the callee loads: analyse it, and accept
    /// the call only if it is safe.
    #[serde(default)]
    pub nested: bool,
}

/// A policy file: a profile shipped in `policies/` or a user's `pickleguard.toml`. Unknown
/// keys are errors: a misspelt `[[alow]]` or `fail-on` silently ignored would leave the user
/// with a policy they did not write.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// The format version (`1`); optional, any other value is refused.
    #[serde(default)]
    pub version: Option<i64>,
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub fail_on: Option<String>,
    #[serde(default)]
    pub allow: Vec<AllowEntry>,
    #[serde(default)]
    pub rule: Vec<RuleEntry>,
    #[serde(default)]
    pub limits: Option<Limits>,
}

impl PolicyFile {
    pub fn parse(text: &str) -> Result<PolicyFile, String> {
        let f: PolicyFile =
            toml::from_str(text).map_err(|e| format!("invalid policy file: {e}"))?;
        f.check_version()?;
        Ok(f)
    }

    /// Refuse a format version this build does not read.
    pub fn check_version(&self) -> Result<(), String> {
        match self.version {
            None | Some(1) => Ok(()),
            Some(v) => Err(format!(
                "invalid policy file: format version {v} is not supported (this pickleguard reads version 1)"
            )),
        }
    }
}

/// One positional argument pattern of a rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ArgPattern {
    Any,
    Data,
    Str,
    Bytes,
    Int,
    Float,
    Bool,
    None,
    Tuple,
    List,
    Dict,
    IntTuple,
    Ident,
    Exact(String),
    Global,
    GlobalCall,
    GlobalNew,
    Persistent,
    /// An attribute name that is not a dunder (`_private` is fine, `__globals__` is not).
    Attr,
    /// An object a call the policy accepted has made (not a global, not plain data).
    Instance,
    OneOf(Vec<ArgPattern>),
}

impl ArgPattern {
    pub fn parse(s: &str) -> Result<ArgPattern, String> {
        if s.contains('|') {
            return s
                .split('|')
                .map(ArgPattern::parse)
                .collect::<Result<_, _>>()
                .map(ArgPattern::OneOf);
        }
        if let Some(t) = s.strip_prefix('=') {
            return Ok(ArgPattern::Exact(t.to_string()));
        }
        Ok(match s {
            "any" => ArgPattern::Any,
            "data" => ArgPattern::Data,
            "str" => ArgPattern::Str,
            "bytes" => ArgPattern::Bytes,
            "int" => ArgPattern::Int,
            "float" => ArgPattern::Float,
            "bool" => ArgPattern::Bool,
            "none" => ArgPattern::None,
            "tuple" => ArgPattern::Tuple,
            "list" => ArgPattern::List,
            "dict" => ArgPattern::Dict,
            "int_tuple" => ArgPattern::IntTuple,
            "ident" => ArgPattern::Ident,
            "global" => ArgPattern::Global,
            "global_call" => ArgPattern::GlobalCall,
            "global_new" => ArgPattern::GlobalNew,
            "persistent" => ArgPattern::Persistent,
            "attr" => ArgPattern::Attr,
            "instance" => ArgPattern::Instance,
            // Any number of further arguments.
            "..." => ArgPattern::OneOf(Vec::new()),
            other => return Err(format!("unknown argument pattern {other:?}")),
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rule {
    pub args: Vec<ArgPattern>,
    pub min_args: usize,
    pub nested: bool,
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
    pub mode: Mode,
    pub threshold: Severity,
    pub limits: Limits,
    danger_exact: HashMap<String, Vec<DangerEntry>>,
    danger_prefix: Vec<(String, DangerEntry)>,
    alias_modules: HashMap<String, String>,
    alias_names: HashMap<String, String>,
    allow_exact: HashMap<String, ModuleAllow>,
    allow_prefix: Vec<(String, ModuleAllow)>,
    rules: HashMap<String, Vec<Rule>>,
}

fn parse_uses(e: &AllowEntry, m: &mut ModuleAllow) {
    for (list, bit) in [
        (&e.new, uses::NEW),
        (&e.call, uses::CALL),
        (&e.value, uses::VALUE),
    ] {
        for n in list {
            if n == "*" {
                m.wildcard |= bit | uses::VALUE;
            } else {
                *m.names.entry(n.clone()).or_insert(0) |= bit | uses::VALUE;
            }
        }
    }
}

impl Policy {
    /// The built-in policy for a mode (the `ml` profile for `ml` and `audit`).
    pub fn new(mode: Mode) -> Policy {
        let danger: DangerFile =
            serde_json::from_str(DANGEROUS_JSON).expect("policies/dangerous.toml is valid");
        let aliases: AliasFile =
            serde_json::from_str(ALIASES_JSON).expect("policies/aliases.toml is valid");
        let mut p = Policy {
            mode,
            threshold: Severity::Medium,
            limits: Limits::default(),
            danger_exact: HashMap::new(),
            danger_prefix: Vec::new(),
            alias_modules: aliases.modules,
            alias_names: aliases.names,
            allow_exact: HashMap::new(),
            allow_prefix: Vec::new(),
            rules: HashMap::new(),
        };
        for e in danger.entry {
            if let Some(prefix) = e.module.strip_suffix(".*") {
                p.danger_prefix.push((prefix.to_string(), e));
            } else {
                p.danger_exact.entry(e.module.clone()).or_default().push(e);
            }
        }
        if matches!(mode, Mode::Ml | Mode::Audit) {
            for (name, json) in [("ml.toml", ML_JSON), ("ml_corpus.toml", ML_CORPUS_JSON)] {
                let f: PolicyFile =
                    serde_json::from_str(json).unwrap_or_else(|e| panic!("policies/{name}: {e}"));
                p.add_file(&f, false)
                    .unwrap_or_else(|e| panic!("policies/{name}: {e}"));
            }
        }
        p
    }

    /// Extend with a user's policy file: its entries are explicit choices and win over the
    /// catalogue; its mode and threshold replace the current ones when set.
    pub fn extend(&mut self, file: &PolicyFile) -> Result<(), String> {
        self.add_file(file, true)?;
        if let Some(f) = &file.fail_on {
            self.threshold = Severity::parse(f).ok_or_else(|| format!("invalid fail_on {f:?}"))?;
        }
        if let Some(l) = &file.limits {
            self.limits = l.clone();
        }
        Ok(())
    }

    fn add_file(&mut self, file: &PolicyFile, user: bool) -> Result<(), String> {
        for e in &file.allow {
            let module = self.norm_module(&e.module).to_string();
            let slot = if let Some(prefix) = module.strip_suffix(".*") {
                let prefix = prefix.to_string();
                if let Some(i) = self.allow_prefix.iter().position(|(p, _)| *p == prefix) {
                    &mut self.allow_prefix[i].1
                } else {
                    self.allow_prefix.push((prefix, ModuleAllow::default()));
                    &mut self.allow_prefix.last_mut().expect("just pushed").1
                }
            } else {
                self.allow_exact.entry(module).or_default()
            };
            slot.user |= user;
            parse_uses(e, slot);
        }
        for r in &file.rule {
            let args = r
                .args
                .iter()
                .map(|a| ArgPattern::parse(a))
                .collect::<Result<Vec<_>, _>>()?;
            let (m, n) = r
                .callable
                .rsplit_once('.')
                .ok_or_else(|| format!("rule callable {:?} needs module.name", r.callable))?;
            let key = format!("{}.{}", self.norm_module(m), n);
            self.rules.entry(key).or_default().push(Rule {
                min_args: r.min_args.unwrap_or(args.len()),
                args,
                nested: r.nested,
                source: r.args.clone(),
            });
        }
        Ok(())
    }

    /// Allow `module:name` for every use (the command line's `--allow`; `*` wildcards).
    pub fn allow(&mut self, module: &str, name: &str) {
        let e = AllowEntry {
            module: module.to_string(),
            new: vec![name.to_string()],
            call: vec![name.to_string()],
            value: vec![name.to_string()],
        };
        let _ = self.add_file(
            &PolicyFile {
                allow: vec![e],
                ..Default::default()
            },
            true,
        );
    }

    pub fn norm_module<'s>(&'s self, m: &'s str) -> &'s str {
        self.alias_modules.get(m).map(|s| s.as_str()).unwrap_or(m)
    }

    fn normalise(&self, module: &str, name: &str) -> (String, String) {
        let m = self.norm_module(module);
        let key = format!("{m}.{name}");
        if let Some(to) = self
            .alias_names
            .get(&key)
            .or_else(|| self.alias_names.get(&format!("{module}.{name}")))
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
        if let Some(list) = self.danger_exact.get(module) {
            if let Some(e) = list.iter().find(hit) {
                return Some(e);
            }
        }
        self.danger_prefix
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
        if let Some(m) = self.allow_exact.get(module) {
            consider(m);
        }
        for (p, m) in &self.allow_prefix {
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
        let allowed = if class {
            uses::NEW | uses::CALL | uses::VALUE
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
        let has_rules = self.rules.contains_key(&qual);
        if allowed == 0 && danger.is_some() && has_rules && self.mode != Mode::Strict {
            if let Some(ma) = self.allow_exact.get(&m) {
                allowed = ma.names.get(&n).copied().unwrap_or(0);
            }
        }
        if danger.is_some() && self.is_blocked(&m, &n) {
            allowed = 0;
        }
        GlobalVerdict {
            module: m,
            name: n,
            danger,
            allowed,
            qual,
            has_rules,
        }
    }

    pub fn rules_for(&self, qualname: &str) -> Option<&[Rule]> {
        self.rules.get(qualname).map(|v| v.as_slice())
    }

    /// Everything a judgement depends on, as one canonical string: equal fingerprints judge
    /// every input alike, and any difference (mode, threshold, limits, an allowed or blocked
    /// name, a rule, an alias) changes it. Verdict caches key on it; unlike `to_toml` it keeps
    /// limits, blocks and aliases.
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
        let prefixed = |v: &[(String, ModuleAllow)]| {
            v.iter()
                .map(|(k, a)| format!("{k}={}", allow(a)))
                .collect::<Vec<_>>()
                .join(";")
        };
        format!(
            "mode={:?}\nthreshold={:?}\nlimits={:?}\ndanger={}\ndanger_prefix={:?}\n\
             alias_modules={}\nalias_names={}\nallow={}\nallow_prefix={}\nrules={}\n",
            self.mode,
            self.threshold,
            self.limits,
            sorted(&self.danger_exact, |v| format!("{v:?}")),
            self.danger_prefix,
            sorted(&self.alias_modules, |v| v.clone()),
            sorted(&self.alias_names, |v| v.clone()),
            sorted(&self.allow_exact, allow),
            prefixed(&self.allow_prefix),
            sorted(&self.rules, |v| format!("{v:?}")),
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

    /// The effective policy as TOML (`pickleguard policy show`).
    pub fn to_toml(&self) -> String {
        let mut out = format!(
            "version = 1\nmode = \"{}\"\nfail_on = \"{}\"\n",
            self.mode.as_str(),
            self.threshold.as_str()
        );
        let mut mods: Vec<(String, &ModuleAllow)> = self
            .allow_exact
            .iter()
            .map(|(k, v)| (k.clone(), v))
            .chain(self.allow_prefix.iter().map(|(k, v)| (format!("{k}.*"), v)))
            .collect();
        mods.sort_by(|a, b| a.0.cmp(&b.0));
        for (m, a) in mods {
            let pick = |bit: u8| {
                let mut v: Vec<String> = a
                    .names
                    .iter()
                    .filter(|(_, b)| **b & bit != 0)
                    .map(|(n, _)| format!("{n:?}"))
                    .collect();
                if a.wildcard & bit != 0 {
                    v.push("\"*\"".into());
                }
                v.sort();
                v
            };
            out.push_str(&format!("\n[[allow]]\nmodule = {m:?}\n"));
            for (key, bit) in [("new", uses::NEW), ("call", uses::CALL)] {
                let v = pick(bit);
                if !v.is_empty() {
                    out.push_str(&format!("{key} = [{}]\n", v.join(", ")));
                }
            }
            let only_value: Vec<String> = a
                .names
                .iter()
                .filter(|(_, b)| **b == uses::VALUE)
                .map(|(n, _)| format!("{n:?}"))
                .collect();
            if !only_value.is_empty() {
                let mut v = only_value;
                v.sort();
                out.push_str(&format!("value = [{}]\n", v.join(", ")));
            }
        }
        // Rules travel with the names they restrict: without them an exact entry in a user
        // file would let a dangerous name through with any arguments.
        let mut rules: Vec<(&String, &Vec<Rule>)> = self.rules.iter().collect();
        rules.sort_by(|a, b| a.0.cmp(b.0));
        for (callable, list) in rules {
            for r in list {
                let args: Vec<String> = r.source.iter().map(|a| format!("{a:?}")).collect();
                out.push_str(&format!(
                    "\n[[rule]]\ncallable = {callable:?}\nargs = [{}]\nmin_args = {}\n",
                    args.join(", "),
                    r.min_args
                ));
                if r.nested {
                    out.push_str("nested = true\n");
                }
            }
        }
        out
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
