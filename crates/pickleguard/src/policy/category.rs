//! What a catalogue entry (`policies/dangerous.toml`) is dangerous for. Read into an enum when
//! the catalogue is loaded, so that a misspelt category is a load error rather than an entry
//! that silently escapes the analyses chosen by category (nested pickles, code strings).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A catalogue entry's category; the name is the catalogue's text and the reports'.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Category {
    /// Runs Python source: strings handed to it are judged as code (`CODE_STRING`).
    #[serde(rename = "code execution")]
    CodeExecution,
    /// Runs Python source under a debugger or profiler: judged as code too.
    #[serde(rename = "debugger/profiler runner")]
    DebuggerRunner,
    /// Loads serialized data: bytes handed to it are analysed as a file (`NESTED_PICKLE`).
    #[serde(rename = "deserialization")]
    Deserialization,
    #[serde(rename = "command execution")]
    CommandExecution,
    #[serde(rename = "environment")]
    Environment,
    #[serde(rename = "file")]
    File,
    #[serde(rename = "import")]
    Import,
    #[serde(rename = "memory")]
    Memory,
    #[serde(rename = "network")]
    Network,
    #[serde(rename = "persistence")]
    Persistence,
    #[serde(rename = "process")]
    Process,
    #[serde(rename = "reflection")]
    Reflection,
    /// A user block (`Policy::block`): no allow entry overrides it.
    #[serde(rename = "blocked by the user's policy")]
    Blocked,
}

impl Category {
    /// The category as the catalogue and the reports spell it.
    pub fn name(self) -> &'static str {
        match self {
            Category::CodeExecution => "code execution",
            Category::DebuggerRunner => "debugger/profiler runner",
            Category::Deserialization => "deserialization",
            Category::CommandExecution => "command execution",
            Category::Environment => "environment",
            Category::File => "file",
            Category::Import => "import",
            Category::Memory => "memory",
            Category::Network => "network",
            Category::Persistence => "persistence",
            Category::Process => "process",
            Category::Reflection => "reflection",
            Category::Blocked => "blocked by the user's policy",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// As the quoted name: `Policy::fingerprint` hashes the catalogue's `Debug` text, which
/// stays what it was when categories were strings.
impl fmt::Debug for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Category; 13] = [
        Category::CodeExecution,
        Category::DebuggerRunner,
        Category::Deserialization,
        Category::CommandExecution,
        Category::Environment,
        Category::File,
        Category::Import,
        Category::Memory,
        Category::Network,
        Category::Persistence,
        Category::Process,
        Category::Reflection,
        Category::Blocked,
    ];

    #[test]
    fn names_round_trip_through_serde() {
        for c in ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("{:?}", c.name()));
            assert_eq!(format!("{c:?}"), json);
            assert_eq!(serde_json::from_str::<Category>(&json).unwrap(), c);
        }
    }

    #[test]
    fn an_unknown_category_is_a_catalogue_error() {
        let entry = |category: &str| {
            format!(
                r#"{{"entry": [{{"module": "os", "names": ["system"], "category": "{category}",
                    "severity": "CRITICAL", "description": "runs a shell command"}}]}}"#
            )
        };
        let load = |json: &str| serde_json::from_str::<super::super::DangerFile>(json);
        let ok = load(&entry("command execution")).unwrap();
        assert_eq!(ok.entry[0].category, Category::CommandExecution);
        for typo in ["code-execution", "Deserialization", "deserialisation", ""] {
            let err = load(&entry(typo)).unwrap_err().to_string();
            assert!(err.contains("unknown variant"), "{typo:?}: {err}");
        }
    }

    /// The analyses chosen by category reach the shipped catalogue's entries.
    #[test]
    fn the_shipped_catalogue_names_the_categories_the_analysis_uses() {
        let p = crate::policy::Policy::new(crate::policy::Mode::Ml);
        for (module, name, category) in [
            ("pickle", "loads", Category::Deserialization),
            ("builtins", "exec", Category::CodeExecution),
            ("pdb", "run", Category::DebuggerRunner),
            ("os", "system", Category::CommandExecution),
        ] {
            let v = p.judge(module, name);
            assert_eq!(
                v.danger.map(|d| d.category),
                Some(category),
                "{module}.{name}"
            );
        }
    }
}
