//! `_native.Policy`: the core policy, shared by the static scan and the restricted
//! unpickler's `find_class` (one source of truth).

use pickleguard::Severity;
use pickleguard::{uses, Mode, Policy, PolicyFile};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::sync::{Arc, Mutex};

/// The verdict on one global, by name.
#[pyclass(module = "pickleguard._native", frozen, get_all)]
#[derive(Clone)]
pub struct Verdict {
    /// Module and name after alias normalisation (`posix` -> `os`).
    pub module: String,
    pub name: String,
    /// Operations the policy allows, as bits (`NEW` | `CALL` | `VALUE` | `BUILD` | `SETITEM` |
    /// `APPEND` | `INIT`); 0: not allowed.
    pub allowed: u8,
    /// Severity of the catalogue entry it reaches, or None.
    pub danger: Option<String>,
    pub category: Option<String>,
    pub description: Option<String>,
    /// What the static scan reports for importing it: `(type, severity, description)`, or
    /// None when importing it is fine.
    pub finding: Option<(String, String, String)>,
    /// Whether the restricted unpickler refuses it under this policy's threshold.
    pub refused: bool,
}

#[pymethods]
impl Verdict {
    fn __repr__(&self) -> String {
        format!(
            "Verdict(module={:?}, name={:?}, allowed={}, danger={:?}, refused={})",
            self.module,
            self.name,
            self.allowed,
            self.danger,
            if self.refused { "True" } else { "False" }
        )
    }
}

/// A policy: a mode's built-in profile, extended by policy files and allow/block entries.
///
/// Thread-safe. Analyses take a snapshot (an `Arc`) and run without the GIL and without any
/// lock held; changes copy the policy when a snapshot is in use, so they never wait for an
/// analysis and an analysis never sees half a change.
#[pyclass(module = "pickleguard._native", name = "Policy", frozen)]
pub struct PyPolicy {
    inner: Mutex<Arc<Policy>>,
}

pub fn parse_mode(mode: &str) -> PyResult<Mode> {
    Mode::parse(mode).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown mode {mode:?}: expected 'strict', 'ml', 'allowlist' or 'audit'"
        ))
    })
}

fn parse_severity(s: &str) -> PyResult<Severity> {
    Severity::parse(s).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown level {s:?}: expected SAFE, LOW, MEDIUM, HIGH or CRITICAL"
        ))
    })
}

impl PyPolicy {
    pub fn snapshot(&self) -> Arc<Policy> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update<R>(&self, f: impl FnOnce(&mut Policy) -> R) -> R {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(Arc::make_mut(&mut g))
    }
}

/// The import finding the static scan makes for a bare global (the core's
/// `Policy::judge_name_only`: one decision for the scan's note and `find_class`).
fn import_finding(p: &Policy, module: &str, name: &str) -> Verdict {
    let j = p.judge_name_only(module, name);
    let v = &j.verdict;
    Verdict {
        module: v.module.clone(),
        name: v.name.clone(),
        allowed: v.allowed,
        danger: v.danger.as_ref().map(|d| d.severity.as_str().to_string()),
        category: v.danger.as_ref().map(|d| d.category.to_string()),
        description: v.danger.as_ref().map(|d| d.description.clone()),
        finding: j.finding.as_ref().map(|(kind, sev, desc)| {
            (
                kind.as_str().to_string(),
                sev.as_str().to_string(),
                desc.clone(),
            )
        }),
        refused: j.refused,
    }
}

#[pymethods]
impl PyPolicy {
    #[new]
    #[pyo3(signature = (mode = "ml"))]
    fn new(mode: &str) -> PyResult<Self> {
        Ok(PyPolicy {
            inner: Mutex::new(Arc::new(Policy::new(parse_mode(mode)?))),
        })
    }

    /// `strict`, `ml`, `allowlist` or `audit`.
    #[getter]
    fn mode(&self) -> &'static str {
        self.snapshot().mode.as_str()
    }

    /// Lowest severity that makes a report unsafe (`MEDIUM` by default).
    #[getter]
    fn get_threshold(&self) -> &'static str {
        self.snapshot().threshold.as_str()
    }

    #[setter]
    fn set_threshold(&self, level: &str) -> PyResult<()> {
        let s = parse_severity(level)?;
        self.update(|p| p.threshold = s);
        Ok(())
    }

    /// How many bytes loading `input_len` compressed bytes may decompress to, and the
    /// limit's name (the scan's own bound, docs/containers.md).
    fn decompression_allowance(&self, input_len: u64) -> (u64, &'static str) {
        let (bytes, limit) = pickleguard::budget::allowance(input_len, &self.snapshot().limits);
        (bytes, limit.name())
    }

    /// Allow `module:name` for every use (`*` wildcards; `pkg.*` covers submodules).
    fn allow(&self, py: Python<'_>, module: &str, name: &str) {
        py.allow_threads(|| self.update(|p| p.allow(module, name)))
    }

    /// Block `module:name` whatever else allows it (`*` wildcards; `pkg.*` covers submodules).
    fn block(&self, py: Python<'_>, module: &str, name: &str) {
        py.allow_threads(|| self.update(|p| p.block(module, name)))
    }

    /// Extend with a policy file's text (`pickleguard.toml` format, or a whole
    /// `pyproject.toml` whose `[tool.pickleguard]` table is used when `pyproject` is true).
    /// `file_name`: the file's name, which says which of the two it is, as the command line
    /// reads `--policy` (`PolicyFile::from_named`).
    #[pyo3(signature = (text, pyproject = false, file_name = None))]
    fn extend_toml(
        &self,
        py: Python<'_>,
        text: &str,
        pyproject: bool,
        file_name: Option<&str>,
    ) -> PyResult<()> {
        let name = file_name.unwrap_or(if pyproject { "pyproject.toml" } else { "" });
        let file = PolicyFile::from_named(name, text).map_err(PyValueError::new_err)?;
        py.allow_threads(|| self.update(|p| p.extend(&file)))
            .map_err(PyValueError::new_err)
    }

    /// Judge a global by name (what `find_class(module, name)` is asked).
    fn judge(&self, module: &str, name: &str) -> Verdict {
        import_finding(&self.snapshot(), module, name)
    }

    /// True when the restricted unpickler may import `module.name`: the policy allows it
    /// for some use and the import is not a finding at the policy's threshold.
    fn allows(&self, module: &str, name: &str) -> bool {
        !import_finding(&self.snapshot(), module, name).refused
    }

    /// A copy that can be changed independently.
    fn copy(&self) -> Self {
        PyPolicy {
            inner: Mutex::new(self.snapshot()),
        }
    }

    /// The exact policy as JSON, for workers of a cluster (`pickleguard.distributed`).
    fn to_snapshot(&self) -> String {
        self.snapshot().to_snapshot()
    }

    /// The effective policy as TOML.
    fn to_toml(&self) -> String {
        self.snapshot().to_toml()
    }

    fn __repr__(&self) -> String {
        let p = self.snapshot();
        format!(
            "Policy(mode={:?}, threshold={:?})",
            p.mode.as_str(),
            p.threshold.as_str()
        )
    }
}

pub const NEW: u8 = uses::NEW;
pub const CALL: u8 = uses::CALL;
pub const VALUE: u8 = uses::VALUE;
pub const BUILD: u8 = uses::BUILD;
pub const SETITEM: u8 = uses::SETITEM;
pub const APPEND: u8 = uses::APPEND;
pub const INIT: u8 = uses::INIT;
