//! The finding types are listed once, in `FindingType::ALL`; the docs that list them again
//! (the JSON schema, the report page, the security page's table) must say the same, in the
//! same order.

use pickleguard::FindingType;

fn doc(name: &str) -> String {
    let path = format!("{}/../../docs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ids() -> Vec<String> {
    FindingType::ALL
        .iter()
        .map(|t| t.as_str().to_string())
        .collect()
}

/// The `UPPER_CASE` words in backticks of `text`, in order.
fn backticked_ids(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| w.len() > 1 && w.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_json_schema_enum_is_the_list() {
    let schema: serde_json::Value = serde_json::from_str(&doc("report.schema.json")).unwrap();
    let listed: Vec<String> = schema["$defs"]["finding"]["properties"]["type"]["enum"]
        .as_array()
        .expect("$defs.finding.properties.type.enum")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, ids());
}

#[test]
fn the_report_page_lists_every_type() {
    let page = doc("report-schema.md");
    let start = page
        .find("Finding types:")
        .expect("a `Finding types:` paragraph");
    let para = &page[start..];
    let para = &para[..para.find("\n\n").unwrap_or(para.len())];
    // The paragraph also names severities (`SAFE`) and modes in backticks.
    let listed: Vec<String> = backticked_ids(para)
        .into_iter()
        .filter(|w| FindingType::parse(w).is_some() || w.contains('_'))
        .collect();
    assert_eq!(listed, ids());
}

#[test]
fn the_security_table_has_a_row_per_type() {
    let page = doc("security.md");
    let start = page
        .find("## Findings and the verdict")
        .expect("the findings section");
    let section = &page[start..];
    let rows: Vec<String> = section
        .lines()
        .skip_while(|l| !l.starts_with("| type |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| backticked_ids(l.split('|').nth(1).unwrap_or("")).concat())
        .collect();
    assert_eq!(rows, ids());
}

#[test]
fn every_type_is_described() {
    for t in FindingType::ALL {
        for text in [t.summary(), t.description(), t.help()] {
            assert!(!text.is_empty(), "{}", t.as_str());
        }
    }
}
