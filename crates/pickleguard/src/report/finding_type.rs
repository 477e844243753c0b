//! The kinds of finding a report carries, with what the report, SARIF, the docs and the Python
//! package say about each (docs/report-schema.md lists them; `tests/finding_types.rs` checks the
//! docs against [`FindingType::ALL`]).

use super::Severity;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
/// What a finding is about.
pub enum FindingType {
    /// The pickle imports a dangerous callable.
    DangerousImport,
    /// The pickle imports a global the policy does not know.
    UnknownImport,
    /// Loading the pickle calls a function.
    ReduceCall,
    /// Loading the pickle calls something produced at load time.
    DynamicCall,
    /// Loading the pickle sets attributes on a class, module or function.
    AttributeInjection,
    /// The pickle uses copyreg extension codes.
    ExtensionCode,
    /// The pickle loads another pickle hidden inside it.
    NestedPickle,
    /// The pickle hands code to eval, exec or compile.
    CodeString,
    /// The pickle hides data behind an encoding.
    Obfuscation,
    /// The stream breaks after it could already have run something.
    Malformed,
    /// Bytes follow the last pickle.
    TrailingData,
    /// Part of the file cannot be analysed.
    Unscannable,
    /// The analysis stopped at a limit.
    ResourceLimit,
    /// Different loaders would see different content.
    StructuralTamper,
    /// A construct the mode forbids.
    Disallowed,
    /// Informational (severity SAFE): a global the scan accepted by its use or arguments that
    /// a name-only `find_class` refuses (an unpickler no scan of its stream precedes).
    RuntimeStricter,
}

/// What is said about a finding type wherever it is described.
struct About {
    id: &'static str,
    name: &'static str,
    summary: &'static str,
    description: &'static str,
    help: &'static str,
    default: Severity,
}

impl FindingType {
    /// Every finding type, in the order the docs and SARIF's rules list them.
    pub const ALL: [FindingType; 16] = [
        FindingType::DangerousImport,
        FindingType::UnknownImport,
        FindingType::ReduceCall,
        FindingType::DynamicCall,
        FindingType::AttributeInjection,
        FindingType::ExtensionCode,
        FindingType::NestedPickle,
        FindingType::CodeString,
        FindingType::Obfuscation,
        FindingType::Malformed,
        FindingType::TrailingData,
        FindingType::Unscannable,
        FindingType::ResourceLimit,
        FindingType::StructuralTamper,
        FindingType::Disallowed,
        FindingType::RuntimeStricter,
    ];

    /// The id reports use (`"DANGEROUS_IMPORT"`), as serde writes it.
    pub fn as_str(self) -> &'static str {
        self.about().id
    }

    /// The finding type of an id, as reports write it.
    pub fn parse(id: &str) -> Option<FindingType> {
        FindingType::ALL.into_iter().find(|t| t.as_str() == id)
    }

    /// A CamelCase name (SARIF's `rule.name`).
    pub fn name(self) -> &'static str {
        self.about().name
    }

    /// One line: what loading a file with such a finding does.
    pub fn summary(self) -> &'static str {
        self.about().summary
    }

    /// A paragraph on what the finding means.
    pub fn description(self) -> &'static str {
        self.about().description
    }

    /// What to do about it.
    pub fn help(self) -> &'static str {
        self.about().help
    }

    /// The severity a rule of this type is configured with (findings carry their own).
    pub fn default_severity(self) -> Severity {
        self.about().default
    }

    fn about(self) -> About {
        match self {
            FindingType::DangerousImport => About {
                id: "DANGEROUS_IMPORT",
                name: "DangerousImport",
                summary: "The pickle imports a dangerous callable",
                description: "Loading the file imports a global from the dangerous catalogue: a process runner, eval/exec, a file or network function, an importer or another loader. Nearly every pickle exploit starts with such an import.",
                help: "Do not load this file. A model or data file has no reason to reference this global; if the file comes from a source you trust, find out why it does before allowing anything.",
                default: Severity::Critical,
            },
            FindingType::UnknownImport => About {
                id: "UNKNOWN_IMPORT",
                name: "UnknownImport",
                summary: "The pickle imports a global the policy does not know",
                description: "Loading the file imports a class or function outside the active policy (the curated ML profile in `ml` mode, your entries in `allowlist` mode). It may be harmless application code, or the start of an exploit through a gadget the catalogue does not list.",
                help: "Check what the global is. If it is your own harmless class, allow it: `--allow MODULE:NAME`, an `[[allow]]` entry in pickleguard.toml, or `pickleguard policy learn` on files you trust.",
                default: Severity::Medium,
            },
            FindingType::ReduceCall => About {
                id: "REDUCE_CALL",
                name: "ReduceCall",
                summary: "Loading the pickle calls a function",
                description: "A REDUCE, INST or OBJ opcode calls a callable with arguments while the file is loaded. The finding names the callable and its literal arguments.",
                help: "Do not load the file unless the call is one you expect (a rebuild helper of a library you use). Run `pickleguard explain FILE` to see every call in context.",
                default: Severity::Critical,
            },
            FindingType::DynamicCall => About {
                id: "DYNAMIC_CALL",
                name: "DynamicCall",
                summary: "Loading the pickle calls something produced at load time",
                description: "The callable is itself the result of another call (e.g. `getattr(__import__('os'), 'system')`), so its identity is only known while loading: a classic way to hide an import from scanners.",
                help: "Treat the file as malicious unless you can explain the construction; `pickleguard explain FILE` shows it as Python.",
                default: Severity::Critical,
            },
            FindingType::AttributeInjection => About {
                id: "ATTRIBUTE_INJECTION",
                name: "AttributeInjection",
                summary: "Loading the pickle sets attributes on a class, module or function",
                description: "A BUILD opcode targets something that is not a fresh instance (a class, a module, a function), changing global state of the loading process.",
                help: "Do not load the file: data files never need to patch classes or modules.",
                default: Severity::High,
            },
            FindingType::ExtensionCode => About {
                id: "EXTENSION_CODE",
                name: "ExtensionCode",
                summary: "The pickle uses copyreg extension codes",
                description: "EXT1/EXT2/EXT4 name a global by a number from the loading process's copyreg registry, so the global cannot be known from the file alone.",
                help: "Real files almost never use extension codes; treat the file as suspicious.",
                default: Severity::High,
            },
            FindingType::NestedPickle => About {
                id: "NESTED_PICKLE",
                name: "NestedPickle",
                summary: "The pickle loads another pickle hidden inside it",
                description: "A call such as `pickle.loads(b'...')` or a loader of serialized data receives literal bytes: the inner payload runs when the outer file is loaded. The inner bytes are analysed too.",
                help: "Look at the findings of the inner payload (member `nested in ...`).",
                default: Severity::High,
            },
            FindingType::CodeString => About {
                id: "CODE_STRING",
                name: "CodeString",
                summary: "The pickle hands code to eval, exec or compile",
                description: "A string argument reaches a function that runs it as Python code.",
                help: "Do not load the file.",
                default: Severity::Critical,
            },
            FindingType::Obfuscation => About {
                id: "OBFUSCATION",
                name: "Obfuscation",
                summary: "The pickle hides data behind an encoding",
                description: "base64, hex, zlib or similar wrapping of arguments that are decoded while loading: a common way to hide a payload from scanners. The decoded bytes are analysed.",
                help: "Treat the file as malicious unless the encoding is expected.",
                default: Severity::High,
            },
            FindingType::Malformed => About {
                id: "MALFORMED",
                name: "Malformed",
                summary: "The stream breaks after it could already have run something",
                description: "The loader stops with an error here, but every opcode before the break runs first: a payload followed by garbage is still a payload.",
                help: "Look at the other findings of the file; a damaged file should not be loaded either.",
                default: Severity::Medium,
            },
            FindingType::TrailingData => About {
                id: "TRAILING_DATA",
                name: "TrailingData",
                summary: "Bytes follow the last pickle",
                description: "Data after the last STOP that no loader runs. Harmless in itself, sometimes a sign of tampering.",
                help: "No action needed unless the file is not supposed to carry extra data.",
                default: Severity::Low,
            },
            FindingType::Unscannable => About {
                id: "UNSCANNABLE",
                name: "Unscannable",
                summary: "Part of the file cannot be analysed",
                description: "An encrypted archive, an unknown compression or an unsupported container: the loader might read a pickle the analysis cannot see, so the file is not safe.",
                help: "Convert the file to a format pickleguard can read, or to a format without code (safetensors).",
                default: Severity::High,
            },
            FindingType::ResourceLimit => About {
                id: "RESOURCE_LIMIT",
                name: "ResourceLimit",
                summary: "The analysis stopped at a limit",
                description: "A size, depth or count limit was reached before the end of the data, so the rest was not checked.",
                help: "Raise the limit in the `[limits]` table of the policy file if the file is legitimately this large.",
                default: Severity::High,
            },
            FindingType::StructuralTamper => About {
                id: "STRUCTURAL_TAMPER",
                name: "StructuralTamper",
                summary: "Different loaders would see different content",
                description: "The container disagrees with itself (e.g. zip local and central names differ, bad CRC, flipped flags): a known trick to show a scanner one file and a loader another.",
                help: "Do not load the file; legitimate writers do not produce such archives.",
                default: Severity::High,
            },
            FindingType::Disallowed => About {
                id: "DISALLOWED",
                name: "Disallowed",
                summary: "A construct the mode forbids",
                description: "Something the active mode does not accept, e.g. any global in `strict` mode.",
                help: "Use a more permissive mode, or allow the global explicitly, if the file is trusted.",
                default: Severity::Medium,
            },
            FindingType::RuntimeStricter => About {
                id: "RUNTIME_STRICTER",
                name: "RuntimeStricter",
                summary: "Safe here, refused by a name-only load check",
                description: "The scan accepts this global by how it is used (its arguments), but an unpickler that pickleguard does not scan first judges each global by its name alone and refuses it: loading the file that way fails.",
                help: "Load the file with safe_load, or through the patched torch.load / joblib.load / pandas.read_pickle / pickle.load, which scan the stream first.",
                // Informational: its findings are severity SAFE; LOW as the default is the
                // mildest level a SARIF rule configuration here uses ("note").
                default: Severity::Low,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FindingType;

    #[test]
    fn ids_are_what_serde_writes_and_parse_back() {
        for t in FindingType::ALL {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(FindingType::parse(t.as_str()), Some(t));
            assert_eq!(
                t.name().to_ascii_lowercase(),
                t.as_str().replace('_', "").to_ascii_lowercase()
            );
        }
        assert_eq!(FindingType::parse("NOT_A_TYPE"), None);
        let mut ids: Vec<&str> = FindingType::ALL.iter().map(|t| t.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            FindingType::ALL.len(),
            "a type listed twice in ALL"
        );
    }
}
