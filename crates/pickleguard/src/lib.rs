//! pickleguard: find what loading a Python pickle would import and call, without executing it.
//!
//! Layers: [`reader`] decodes opcodes without copying, [`machine`] runs them symbolically,
//! [`policy`] judges globals by name, [`analysis`] judges calls and arguments and recurses
//! into nested payloads, and [`report`] is what comes out.

pub mod analysis;
pub mod bigint;
pub mod container;
pub mod decode;
pub mod disasm;
pub mod file_reading;
pub mod limits;
pub mod machine;
pub mod opcodes;
pub mod policy;
pub mod reader;
mod readings;
pub mod render;
pub mod report;
pub mod value;

pub use analysis::{analyze_stream, Context};
pub use container::streams::{scan_with_streams, PickleStream, StreamData};
pub use container::{
    decompressed_bytes, scan_bytes, scan_bytes_before_load, scan_bytes_before_torch_load, LoadScans,
};
pub use limits::Limits;
pub use policy::{Mode, Policy, PolicyFile};
pub use report::{Finding, FindingType, GlobalUse, Report, Severity, Use};

/// Analyse raw pickle bytes (one or several pickles) with a policy.
pub fn analyze_pickle(data: &[u8], policy: &Policy) -> Report {
    let mut r = analyze_stream(data, policy, &Context::default());
    analysis::note_name_only_refusals(&mut r, policy);
    r
}
