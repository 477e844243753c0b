//! pickleguard: find what loading a Python pickle would import and call, without executing it.
//!
//! Layers: [`reader`] decodes opcodes without copying, [`machine`] runs them symbolically,
//! [`policy`] judges globals by name, [`analysis`] judges calls and arguments and recurses
//! into nested payloads, and [`report`] is what comes out.

pub mod analysis;
pub mod bigint;
pub mod container;
mod context;
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
mod scan;
pub mod value;

pub use container::decompressed_bytes;
pub use context::budget;
pub use context::observe::{Graph, JoblibRead, PickleRun, RunEnd, ScanObserver};
pub use context::streams::{PickleStream, StreamData};
pub use context::LoadScans;
pub use context::ReadHint;
pub use disasm::{listed, Listed};
pub use limits::Limits;
pub use machine::{CallKind, CallNode, GlobalRef, Method};
pub use opcodes::Op;
pub use policy::{Mode, Policy, PolicyFile};
pub use render::{py_str, shorten, NamedStyle};
pub use report::{
    Finding, FindingType, GlobalUse, Limit, MemberPath, MemberView, Report, Segment, Severity,
    StopReason, Use,
};
pub use scan::Scan;
pub use value::Value;

/// Analyse raw pickle bytes (one or several pickles) with a policy: [`Scan::pickle`].
pub fn analyze_pickle(data: &[u8], policy: &Policy) -> Report {
    Scan::new(policy).pickle(data)
}

/// Analyse a whole file's bytes, whatever container it is: [`Scan::file`].
pub fn scan_bytes(data: &[u8], policy: &Policy) -> Report {
    Scan::new(policy).file(data)
}

/// [`scan_bytes`] for a file `torch.load` is about to load through a restricted unpickler:
/// [`Scan::before_torch_load`].
pub fn scan_bytes_before_torch_load(data: &[u8], policy: &Policy) -> Report {
    Scan::new(policy).before_torch_load().file(data)
}

/// [`scan_bytes`] for a file about to be loaded through a restricted unpickler that scans the
/// pickles `scans` names itself: [`Scan::before_load`].
pub fn scan_bytes_before_load(data: &[u8], policy: &Policy, scans: LoadScans) -> Report {
    Scan::new(policy).before_load(scans).file(data)
}

/// Scan a file as [`scan_bytes`] does, and list every pickle stream it analysed:
/// [`Scan::file_with_streams`].
pub fn scan_with_streams(data: &[u8], policy: &Policy) -> (Report, Vec<PickleStream>) {
    Scan::new(policy).file_with_streams(data)
}
