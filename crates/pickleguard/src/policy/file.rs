//! Policy files as written: `[[allow]]` and `[[rule]]` tables, format versions 1 and 2
//! (docs/policy-format.md). Version 1 lists names per use (`new`, `call`, `value`); version 2
//! names classes and callables with the operations allowed on them.

use crate::limits::Limits;
use serde::Deserialize;
use std::collections::BTreeMap;

use super::Mode;

/// The newest format version this build reads.
pub const FORMAT_VERSION: i64 = 2;

/// An `[[allow]]` table of a profile or a user file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowEntry {
    pub module: String,
    // Version 1: names per use.
    #[serde(default)]
    pub new: Vec<String>,
    #[serde(default)]
    pub call: Vec<String>,
    #[serde(default)]
    pub value: Vec<String>,
    // Version 2: names and the operations allowed on them.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub ops: Vec<String>,
    /// Custom methods the operations run that were reviewed (`__setstate__`, ...).
    #[serde(default)]
    pub reviewed: Vec<String>,
    /// What the review found (why running those methods on pickle data is fine).
    #[serde(default)]
    pub note: Option<String>,
    /// Where the entry comes from (library, version, where it was seen).
    #[serde(default)]
    pub source: Option<String>,
    /// The grammar every string handed to this class's operations must match.
    #[serde(default)]
    pub strings: Option<String>,
    /// Patterns for keys of a BUILD state (`{ shapes = "grammar:names|none" }`).
    #[serde(default)]
    pub state: BTreeMap<String, String>,
    /// `getattr(cls, 'NAME')` of a public name is an enum member: a value.
    #[serde(default)]
    pub members: bool,
}

impl AllowEntry {
    /// The names a version 2 entry covers.
    pub fn entry_names(&self) -> Vec<&str> {
        self.name
            .iter()
            .map(|s| s.as_str())
            .chain(self.names.iter().map(|s| s.as_str()))
            .collect()
    }
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
    /// `[f, a]`: the callee calls argument `f` with the tuple argument `a` as its arguments;
    /// that call is judged like any other (f's grant and rules).
    #[serde(default)]
    pub calls: Option<[usize; 2]>,
}

/// A policy file: a profile shipped in `policies/` or a user's `pickleguard.toml`. Unknown
/// keys are errors: a misspelt `[[alow]]` or `fail-on` silently ignored would leave the user
/// with a policy they did not write.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// The format version (`1` when absent, or `2`).
    #[serde(default)]
    pub version: Option<i64>,
    /// `mode = ...`: the mode the file asks for.
    #[serde(default)]
    pub mode: Option<Mode>,
    /// `fail_on = ...`: the lowest severity that makes a file unsafe (as written).
    #[serde(default)]
    pub fail_on: Option<String>,
    /// The `[[allow]]` tables.
    #[serde(default)]
    pub allow: Vec<AllowEntry>,
    /// The `[[rule]]` tables.
    #[serde(default)]
    pub rule: Vec<RuleEntry>,
    /// The `[limits]` table.
    #[serde(default)]
    pub limits: Option<Limits>,
}

impl PolicyFile {
    /// A policy file from its TOML text, its version and entries checked
    /// (docs/policy-format.md).
    pub fn parse(text: &str) -> Result<PolicyFile, String> {
        let f: PolicyFile =
            toml::from_str(text).map_err(|e| format!("invalid policy file: {e}"))?;
        f.check_version()?;
        f.check_entries()?;
        Ok(f)
    }

    /// The `[tool.pickleguard]` table of a `pyproject.toml`'s text as a policy file, `None`
    /// when it has none. The command line's config discovery and `--policy pyproject.toml`
    /// and the Python package's `policy_file=` all read it here.
    pub fn from_pyproject(text: &str) -> Result<Option<PolicyFile>, String> {
        let doc: toml::Table = text.parse().map_err(|e| format!("invalid TOML: {e}"))?;
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
            .map_err(|e| format!("invalid [tool.pickleguard]: {e}"))?;
        file.check_version()
            .map_err(|e| format!("[tool.pickleguard]: {e}"))?;
        // The same entry checks as `parse`, here where the table is read: a caller that
        // only tightens with it (a config found inside a scanned path) never extends a
        // policy with it, and would otherwise skip them.
        file.check_entries()?;
        Ok(Some(file))
    }

    /// The policy a file named `file_name` (its last path component) holds: a
    /// `pyproject.toml`'s `[tool.pickleguard]` table, any other file whole. The command
    /// line's `--policy` and the Python package's `policy_file=` both read files here.
    pub fn from_named(file_name: &str, text: &str) -> Result<PolicyFile, String> {
        if file_name == "pyproject.toml" {
            return PolicyFile::from_pyproject(text)?
                .ok_or_else(|| "no [tool.pickleguard] section".to_string());
        }
        PolicyFile::parse(text)
    }

    /// The file's format version (1 when it names none).
    pub fn format_version(&self) -> i64 {
        self.version.unwrap_or(1)
    }

    /// Refuse a format version this build does not read.
    pub fn check_version(&self) -> Result<(), String> {
        match self.version {
            None => Ok(()),
            Some(v) if (1..=FORMAT_VERSION).contains(&v) => Ok(()),
            Some(v) => Err(format!(
                "invalid policy file: format version {v} is not supported (this pickleguard reads versions 1 and 2)"
            )),
        }
    }

    /// Each entry uses the keys of its file's version; a version 2 wildcard grants only
    /// `value`.
    pub fn check_entries(&self) -> Result<(), String> {
        let v2 = self.format_version() >= 2;
        for e in &self.allow {
            let m = &e.module;
            let v1_keys = !(e.new.is_empty() && e.call.is_empty() && e.value.is_empty());
            let v2_keys = e.name.is_some()
                || !e.names.is_empty()
                || !e.ops.is_empty()
                || !e.reviewed.is_empty()
                || e.note.is_some()
                || e.strings.is_some()
                || !e.state.is_empty()
                || e.members;
            if v2 && v1_keys {
                return Err(format!(
                    "invalid policy file: [[allow]] {m}: version 2 entries use name/names + ops, not new/call/value lists"
                ));
            }
            if !v2 && v2_keys {
                return Err(format!(
                    "invalid policy file: [[allow]] {m}: name/names/ops/reviewed/... need `version = 2`"
                ));
            }
            if !v2 {
                continue;
            }
            if e.entry_names().is_empty() {
                return Err(format!("invalid policy file: [[allow]] {m}: no name"));
            }
            for op in &e.ops {
                if super::Op::parse(op).is_none() {
                    return Err(format!(
                        "invalid policy file: [[allow]] {m}: unknown op {op:?} (call, new, build, setitem, append, init, value)"
                    ));
                }
            }
            if e.entry_names().contains(&"*") && e.ops.iter().any(|o| o != "value") {
                return Err(format!(
                    "invalid policy file: [[allow]] {m}: a wildcard grants only `value`, never {:?}",
                    e.ops
                ));
            }
            if let Some(g) = &e.strings {
                if super::Grammar::parse(g).is_none() {
                    return Err(format!("invalid policy file: unknown grammar {g:?}"));
                }
            }
            for p in e.state.values() {
                super::ArgPattern::parse(p, 2).map_err(|x| format!("invalid policy file: {x}"))?;
            }
        }
        for r in &self.rule {
            for a in &r.args {
                super::ArgPattern::parse(a, self.format_version())
                    .map_err(|x| format!("invalid policy file: rule {}: {x}", r.callable))?;
            }
        }
        Ok(())
    }
}

/// `s` as a TOML basic string (quoted), as a policy file writes it: what `to_toml` and a
/// learned policy write reads back as `s`, whatever it holds.
pub fn toml_str(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn toml_strings_read_back_as_written_whatever_they_hold() {
        let mut every: String = (0u32..0x100).filter_map(char::from_u32).collect();
        every.push_str("\u{202e}\u{9b}'\"\\end");
        for s in [every.as_str(), "", "plain", "a\0b", "\u{1b}]0;pwn\u{7}"] {
            let doc: toml::Value = toml::from_str(&format!("x = {}", toml_str(s)))
                .unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert_eq!(doc["x"].as_str(), Some(s));
        }
    }

    use super::{toml_str, PolicyFile};

    const BAD_ENTRY: &str =
        "version = 2\n[[allow]]\nmodule = \"m\"\nname = \"*\"\nops = [\"call\"]\n";

    #[test]
    fn a_pyproject_table_is_checked_like_a_policy_file() {
        let own = PolicyFile::parse(BAD_ENTRY).unwrap_err();
        let table = BAD_ENTRY.replace("[[allow]]", "[[tool.pickleguard.allow]]");
        let py = PolicyFile::from_pyproject(&format!("[tool.pickleguard]\n{table}")).unwrap_err();
        assert!(own.contains("a wildcard grants only `value`"), "{own}");
        assert_eq!(py, own);
    }

    #[test]
    fn a_file_is_read_by_its_name() {
        let table = "[tool.pickleguard]\nfail_on = \"HIGH\"\n";
        assert!(PolicyFile::from_named("pyproject.toml", table)
            .unwrap()
            .fail_on
            .is_some());
        // The same text as a policy file of its own: `tool` is no key of the format.
        assert!(PolicyFile::from_named("pickleguard.toml", table).is_err());
        assert_eq!(
            PolicyFile::from_named("pyproject.toml", "[project]\nname = \"x\"\n").unwrap_err(),
            "no [tool.pickleguard] section"
        );
    }

    #[test]
    fn a_good_pyproject_table_still_reads() {
        let f = PolicyFile::from_pyproject(
            "[tool.pickleguard]\nversion = 2\n[[tool.pickleguard.allow]]\nmodule = \"m\"\nname = \"f\"\nops = [\"call\"]\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.allow.len(), 1);
    }
}
