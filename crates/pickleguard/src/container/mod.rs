//! Containers: find every pickle a real loader would execute inside a file (zip, torch,
//! joblib, numpy, compressed streams) and analyse it. Detection is by content only.

use crate::policy::Policy;
use crate::report::Report;

/// Analyse a whole file's bytes, whatever container it is.
pub fn scan_bytes(data: &[u8], policy: &Policy) -> Report {
    crate::analyze_pickle(data, policy)
}
