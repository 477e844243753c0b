//! Every bound that can stop a scan is `Limit::ALL`; the report page's `stopped_by` row lists
//! their names for whoever reads `limit:<name>`, and must list them all, no more.

use pickleguard::{Limit, StopReason};

fn stopped_by_row() -> String {
    let path = format!("{}/../../docs/report-schema.md", env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    page.lines()
        .find(|l| l.starts_with("| `stopped_by` |"))
        .expect("the stopped_by row")
        .to_string()
}

#[test]
fn the_report_page_names_every_limit() {
    let row = stopped_by_row();
    let names = &row[row.find("The `<name>`s").expect("the list of names")..];
    let mut listed: Vec<&str> = names
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| *w != "<name>" && *w != "Limit")
        .collect();
    let mut all: Vec<&str> = Limit::ALL.iter().map(|l| l.name()).collect();
    listed.sort_unstable();
    all.sort_unstable();
    assert_eq!(listed, all);
}

#[test]
fn each_limit_name_reads_back_as_its_limit() {
    for l in Limit::ALL {
        assert_eq!(Limit::from_name(l.name()), Some(l));
        let stop: StopReason = l.into();
        assert_eq!(StopReason::parse(&stop.render()), Some(stop));
    }
}
