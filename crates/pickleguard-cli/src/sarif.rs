//! SARIF 2.1.0 output: one run, one rule per finding type, one result per finding with the
//! file as artifact location and the opcode's byte offset as region.

use crate::scan::Outcome;
use pickleguard::{Finding, Policy, Severity};
use serde_json::{json, Map, Value};
use std::path::{Component, Path, PathBuf};

pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// A rule: one per finding type.
pub struct Rule {
    pub id: &'static str,
    pub name: &'static str,
    pub short: &'static str,
    pub full: &'static str,
    pub help: &'static str,
    pub default: Severity,
}

/// Every finding type the core reports (docs/report-schema.md).
pub const RULES: &[Rule] = &[
    Rule {
        id: "DANGEROUS_IMPORT",
        name: "DangerousImport",
        short: "The pickle imports a dangerous callable",
        full: "Loading the file imports a global from the dangerous catalogue: a process runner, eval/exec, a file or network function, an importer or another loader. Nearly every pickle exploit starts with such an import.",
        help: "Do not load this file. A model or data file has no reason to reference this global; if the file comes from a source you trust, find out why it does before allowing anything.",
        default: Severity::Critical,
    },
    Rule {
        id: "UNKNOWN_IMPORT",
        name: "UnknownImport",
        short: "The pickle imports a global the policy does not know",
        full: "Loading the file imports a class or function outside the active policy (the curated ML profile in `ml` mode, your entries in `allowlist` mode). It may be harmless application code, or the start of an exploit through a gadget the catalogue does not list.",
        help: "Check what the global is. If it is your own harmless class, allow it: `--allow MODULE:NAME`, an `[[allow]]` entry in pickleguard.toml, or `pickleguard policy learn` on files you trust.",
        default: Severity::Medium,
    },
    Rule {
        id: "REDUCE_CALL",
        name: "ReduceCall",
        short: "Loading the pickle calls a function",
        full: "A REDUCE, INST or OBJ opcode calls a callable with arguments while the file is loaded. The finding names the callable and its literal arguments.",
        help: "Do not load the file unless the call is one you expect (a rebuild helper of a library you use). Run `pickleguard explain FILE` to see every call in context.",
        default: Severity::Critical,
    },
    Rule {
        id: "DYNAMIC_CALL",
        name: "DynamicCall",
        short: "Loading the pickle calls something produced at load time",
        full: "The callable is itself the result of another call (e.g. `getattr(__import__('os'), 'system')`), so its identity is only known while loading: a classic way to hide an import from scanners.",
        help: "Treat the file as malicious unless you can explain the construction; `pickleguard explain FILE` shows it as Python.",
        default: Severity::Critical,
    },
    Rule {
        id: "ATTRIBUTE_INJECTION",
        name: "AttributeInjection",
        short: "Loading the pickle sets attributes on a class, module or function",
        full: "A BUILD opcode targets something that is not a fresh instance (a class, a module, a function), changing global state of the loading process.",
        help: "Do not load the file: data files never need to patch classes or modules.",
        default: Severity::High,
    },
    Rule {
        id: "EXTENSION_CODE",
        name: "ExtensionCode",
        short: "The pickle uses copyreg extension codes",
        full: "EXT1/EXT2/EXT4 name a global by a number from the loading process's copyreg registry, so the global cannot be known from the file alone.",
        help: "Real files almost never use extension codes; treat the file as suspicious.",
        default: Severity::High,
    },
    Rule {
        id: "NESTED_PICKLE",
        name: "NestedPickle",
        short: "The pickle loads another pickle hidden inside it",
        full: "A call such as `pickle.loads(b'...')` or a loader of serialized data receives literal bytes: the inner payload runs when the outer file is loaded. The inner bytes are analysed too.",
        help: "Look at the findings of the inner payload (member `nested in ...`).",
        default: Severity::High,
    },
    Rule {
        id: "CODE_STRING",
        name: "CodeString",
        short: "The pickle hands code to eval, exec or compile",
        full: "A string argument reaches a function that runs it as Python code.",
        help: "Do not load the file.",
        default: Severity::Critical,
    },
    Rule {
        id: "OBFUSCATION",
        name: "Obfuscation",
        short: "The pickle hides data behind an encoding",
        full: "base64, hex, zlib or similar wrapping of arguments that are decoded while loading: a common way to hide a payload from scanners. The decoded bytes are analysed.",
        help: "Treat the file as malicious unless the encoding is expected.",
        default: Severity::High,
    },
    Rule {
        id: "MALFORMED",
        name: "Malformed",
        short: "The stream breaks after it could already have run something",
        full: "The loader stops with an error here, but every opcode before the break runs first: a payload followed by garbage is still a payload.",
        help: "Look at the other findings of the file; a damaged file should not be loaded either.",
        default: Severity::Medium,
    },
    Rule {
        id: "TRAILING_DATA",
        name: "TrailingData",
        short: "Bytes follow the last pickle",
        full: "Data after the last STOP that no loader runs. Harmless in itself, sometimes a sign of tampering.",
        help: "No action needed unless the file is not supposed to carry extra data.",
        default: Severity::Low,
    },
    Rule {
        id: "UNSCANNABLE",
        name: "Unscannable",
        short: "Part of the file cannot be analysed",
        full: "An encrypted archive, an unknown compression or an unsupported container: the loader might read a pickle the analysis cannot see, so the file is not safe.",
        help: "Convert the file to a format pickleguard can read, or to a format without code (safetensors).",
        default: Severity::High,
    },
    Rule {
        id: "RESOURCE_LIMIT",
        name: "ResourceLimit",
        short: "The analysis stopped at a limit",
        full: "A size, depth or count limit was reached before the end of the data, so the rest was not checked.",
        help: "Raise the limit in the `[limits]` table of the policy file if the file is legitimately this large.",
        default: Severity::High,
    },
    Rule {
        id: "STRUCTURAL_TAMPER",
        name: "StructuralTamper",
        short: "Different loaders would see different content",
        full: "The container disagrees with itself (e.g. zip local and central names differ, bad CRC, flipped flags): a known trick to show a scanner one file and a loader another.",
        help: "Do not load the file; legitimate writers do not produce such archives.",
        default: Severity::High,
    },
    Rule {
        id: "DISALLOWED",
        name: "Disallowed",
        short: "A construct the mode forbids",
        full: "Something the active mode does not accept, e.g. any global in `strict` mode.",
        help: "Use a more permissive mode, or allow the global explicitly, if the file is trusted.",
        default: Severity::Medium,
    },
    Rule {
        id: "RUNTIME_STRICTER",
        name: "RuntimeStricter",
        short: "Safe here, refused by a name-only load check",
        full: "The scan accepts this global by how it is used (its arguments), but an unpickler that pickleguard does not scan first judges each global by its name alone and refuses it: loading the file that way fails.",
        help: "Load the file with safe_load, or through the patched torch.load / joblib.load / pandas.read_pickle / pickle.load, which scan the stream first.",
        // Informational: its results carry level "none" (severity SAFE); "note" as the rule's
        // default is the mildest level a rule configuration here uses.
        default: Severity::Low,
    },
];

/// The SARIF level of a severity.
pub fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
        Severity::Safe => "none",
    }
}

/// GitHub code scanning's numeric severity for a level.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.8",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
        Severity::Safe => "0.0",
    }
}

fn rule_json(r: &Rule) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "shortDescription": {"text": r.short},
        "fullDescription": {"text": r.full},
        "help": {"text": r.help},
        "defaultConfiguration": {"level": level(r.default)},
        "properties": {
            "tags": ["security", "deserialization", "pickle"],
            "precision": "high",
            "security-severity": security_severity(r.default),
        },
    })
}

/// Percent-encode a path for a URI (RFC 3986: unreserved characters and `/` are kept).
pub fn percent_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Remove `.` and resolve `..` lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The artifact location of a reported path: relative to the working directory (with
/// `uriBaseId` `%SRCROOT%`) when it is inside it, an absolute `file://` URI otherwise.
pub fn artifact_location(path: &str, cwd: &Path) -> Value {
    let p = Path::new(path);
    let abs = if p.is_absolute() {
        normalize(p)
    } else {
        normalize(&cwd.join(p))
    };
    match abs.strip_prefix(cwd) {
        Ok(rel) if !rel.as_os_str().is_empty() => {
            let s = rel.to_string_lossy().replace('\\', "/");
            json!({"uri": percent_encode(&s), "uriBaseId": "%SRCROOT%"})
        }
        _ => {
            let s = abs.to_string_lossy().replace('\\', "/");
            let s = if s.starts_with('/') {
                s
            } else {
                format!("/{s}")
            };
            json!({"uri": format!("file://{}", percent_encode(&s))})
        }
    }
}

/// Whether a finding's position is a byte offset in the file itself (not inside a container
/// member or a nested payload).
pub fn offset_in_file(f: &Finding) -> bool {
    f.member.as_deref().is_none_or(later_pickle)
}

/// Whether a member label is "pickle #N at byte S": another pickle of the same raw stream.
pub fn later_pickle(label: &str) -> bool {
    let Some(rest) = label.strip_prefix("pickle #") else {
        return false;
    };
    let mut parts = rest.splitn(2, " at byte ");
    let n = parts.next().unwrap_or("");
    let s = parts.next().unwrap_or("");
    digits(n) && digits(s)
}

pub fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn result_json(path: &str, f: &Finding, rule_index: usize, cwd: &Path) -> Value {
    let mut physical = Map::new();
    physical.insert("artifactLocation".into(), artifact_location(path, cwd));
    let mut text = f.description.clone();
    if offset_in_file(f) {
        physical.insert(
            "region".into(),
            json!({"byteOffset": f.position, "byteLength": 1}),
        );
        text.push_str(&format!(" (at byte {})", f.position));
    }
    let mut location = Map::new();
    location.insert("physicalLocation".into(), Value::Object(physical));
    if let Some(m) = &f.member {
        if !offset_in_file(f) {
            text.push_str(&format!(" (in {m}, at byte {} of it)", f.position));
        } else {
            text.push_str(&format!(" (in {m})"));
        }
        location.insert(
            "logicalLocations".into(),
            json!([{"fullyQualifiedName": m, "kind": "resource"}]),
        );
    }
    let mut props = Map::new();
    props.insert("severity".into(), json!(f.severity.as_str()));
    props.insert("position".into(), json!(f.position));
    for (k, v) in [
        ("member", &f.member),
        ("module", &f.module),
        ("name", &f.name),
        ("callable", &f.callable),
    ] {
        if let Some(v) = v {
            props.insert(k.into(), json!(v));
        }
    }
    if let Some(a) = &f.args {
        props.insert("args".into(), json!(a));
    }
    let fingerprint = format!(
        "{}:{}:{}:{}.{}",
        f.kind.as_str(),
        f.member.as_deref().unwrap_or(""),
        f.position,
        f.module.as_deref().unwrap_or(""),
        f.name.as_deref().unwrap_or("")
    );
    json!({
        "ruleId": f.kind.as_str(),
        "ruleIndex": rule_index,
        "level": level(f.severity),
        "message": {"text": text},
        "locations": [Value::Object(location)],
        "partialFingerprints": {"pickleguardFinding/v1": fingerprint},
        "properties": Value::Object(props),
    })
}

/// Where users learn about the tool (the workspace's `repository`).
fn information_uri() -> &'static str {
    match env!("CARGO_PKG_REPOSITORY") {
        // Not `pickleguard` on the package index: that is an unrelated project.
        "" => "https://pypi.org/project/pickleguard-scan/",
        r => r,
    }
}

/// The SARIF log of a scan, pretty-printed.
pub fn sarif(outcome: &Outcome, policy: &Policy) -> String {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let mut rules: Vec<Value> = RULES.iter().map(rule_json).collect();
    let mut rule_ids: Vec<String> = RULES.iter().map(|r| r.id.to_string()).collect();
    let mut results = Vec::new();
    let mut notifications = Vec::new();
    for file in &outcome.files {
        if let Some(e) = &file.error {
            notifications.push(json!({
                "level": "error",
                "message": {"text": format!("{}: {e}", file.path)},
                "locations": [{"physicalLocation": {"artifactLocation": artifact_location(&file.path, &cwd)}}],
            }));
            continue;
        }
        for f in &file.report.findings {
            let id = f.kind.as_str();
            let index = match rule_ids.iter().position(|r| r == id) {
                Some(i) => i,
                None => {
                    // A finding type newer than this table: describe it generically.
                    rules.push(json!({
                        "id": id,
                        "shortDescription": {"text": id},
                        "defaultConfiguration": {"level": level(f.severity)},
                    }));
                    rule_ids.push(id.to_string());
                    rule_ids.len() - 1
                }
            };
            results.push(result_json(&file.path, f, index, &cwd));
        }
    }
    let mut srcroot = cwd.to_string_lossy().replace('\\', "/");
    if !srcroot.ends_with('/') {
        srcroot.push('/');
    }
    if !srcroot.starts_with('/') {
        srcroot.insert(0, '/');
    }
    let mut invocation = json!({"executionSuccessful": notifications.is_empty()});
    if !notifications.is_empty() {
        invocation["toolExecutionNotifications"] = Value::Array(notifications);
    }
    let log = json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "pickleguard",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": information_uri(),
                "rules": rules,
            }},
            "invocations": [invocation],
            "originalUriBaseIds": {"%SRCROOT%": {"uri": format!("file://{}", percent_encode(&srcroot))}},
            "results": results,
            "properties": {
                "mode": policy.mode.as_str(),
                "fail_on": policy.threshold.as_str(),
                "files": outcome.files.len(),
                "unsafe": outcome.unsafe_count(),
                "errors": outcome.errors(),
                "configs": outcome.configs,
                "links": outcome.links,
            },
        }],
    });
    let mut s = serde_json::to_string_pretty(&log).unwrap_or_default();
    s.push('\n');
    s
}
