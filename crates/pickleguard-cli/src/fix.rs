//! The one-line fix under each finding of the text report: what a user can do about it.
//! Allowing is offered only where the policy, not a danger, decided (a MEDIUM import or call
//! the policy does not know); everything dangerous says not to load the file.

use pickleguard::{Finding, FindingType, Severity};

/// What to do about `f`, found in the file shown as `path`.
pub fn fix(f: &Finding, path: &str) -> String {
    let explain = format!(
        "`pickleguard explain {}` shows what loading would do",
        quote(path)
    );
    let global = match (&f.module, &f.name) {
        (Some(m), Some(n)) => Some(format!("{m}:{n}")),
        _ => None,
    };
    match f.kind {
        FindingType::UnknownImport | FindingType::ReduceCall | FindingType::Disallowed
            if f.severity <= Severity::Medium && global.is_some() =>
        {
            let g = global.unwrap_or_default();
            format!(
                "if you trust this file, allow {g}: `--allow {g}`, an [[allow]] entry in pickleguard.toml, `pickleguard policy learn DIR` on files you trust, or `register_safe_class(\"{g}\")` in Python"
            )
        }
        FindingType::TrailingData => {
            "nothing to do: no loader runs these bytes (remove them to silence this)".into()
        }
        FindingType::Malformed => format!(
            "get an intact copy of the file; what comes before the break still runs when it is loaded ({explain})"
        ),
        FindingType::Unscannable => {
            "extract or decrypt the content and scan that; do not load the file unchecked".into()
        }
        FindingType::ResourceLimit => {
            "if you trust the file's size, raise the limit (`--timeout`, `--max-size`, or [limits] in pickleguard.toml); otherwise do not load it".into()
        }
        FindingType::StructuralTamper => {
            format!("do not load this file: different loaders read different content ({explain})")
        }
        _ => format!("do not load this file ({explain})"),
    }
}

fn quote(path: &str) -> String {
    if path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+:,=@%".contains(&b))
    {
        path.to_string()
    } else {
        format!("'{}'", path.replace('\'', "'\\''"))
    }
}
