//! Reports as plain Python data (dicts and lists, the JSON schema of docs/report-schema.md);
//! the Python layer wraps them in `PickleAnalysis` / `Finding`.

use pickleguard::{Finding, Report, Use};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

fn finding<'py>(py: Python<'py>, f: &Finding) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new_bound(py);
    d.set_item("type", f.kind.as_str())?;
    d.set_item("severity", f.severity.as_str())?;
    d.set_item("description", &f.description)?;
    d.set_item("position", f.position)?;
    d.set_item("module", &f.module)?;
    d.set_item("name", &f.name)?;
    d.set_item("callable", &f.callable)?;
    d.set_item("args", &f.args)?;
    d.set_item("member", f.member.as_ref().map(|m| m.as_str()))?;
    Ok(d)
}

fn use_name(u: Use) -> &'static str {
    match u {
        Use::New => "new",
        Use::Call => "call",
        Use::Value => "value",
    }
}

pub fn to_dict<'py>(py: Python<'py>, r: &Report, mode: &str) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new_bound(py);
    d.set_item("format", &r.format)?;
    d.set_item("is_safe", r.is_safe)?;
    d.set_item("risk_level", r.risk_level.as_str())?;
    d.set_item("complete", r.complete)?;
    d.set_item("stopped_by", r.stopped_by.as_ref().map(|s| s.render()))?;
    d.set_item("mode", mode)?;
    let findings = PyList::empty_bound(py);
    for f in &r.findings {
        findings.append(finding(py, f)?)?;
    }
    d.set_item("findings", findings)?;
    let globals = PyList::empty_bound(py);
    for g in &r.globals {
        let e = PyDict::new_bound(py);
        e.set_item("module", &g.module)?;
        e.set_item("name", &g.name)?;
        let uses: Vec<&str> = g.uses.iter().map(|u| use_name(*u)).collect();
        e.set_item("uses", uses)?;
        e.set_item("count", g.count)?;
        globals.append(e)?;
    }
    d.set_item("globals", globals)?;
    Ok(d)
}
