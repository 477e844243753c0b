//! pickleguard: find what loading a Python pickle would import and call, without executing it.
//!
//! Layers (docs/architecture.md): the reader decodes opcodes without copying, the machine runs
//! them symbolically, the policy judges globals by name, the analysis judges calls and
//! arguments and recurses into nested payloads, the containers find every pickle a loader
//! would run inside a file, and a [`Report`] is what comes out. Every layer is private: a
//! caller starts a scan with [`Scan`] (or one of the functions below), under a [`Policy`], and
//! reads the [`Report`]. The rest of this root is what the command line and the Python
//! bindings need besides: container sniffing ([`container_kind`], [`reads_sparsely`]), side
//! files ([`side_files`]), the decompression allowance ([`budget`]), the disassembly
//! ([`disassemble`]) and the opcode table ([`Op`]).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

// The layers below are reached from outside only through the doc-hidden [`internals`]: they
// are not documented as API (their own docs are for readers of the core).
#[allow(missing_docs)]
mod analysis;
#[allow(missing_docs)]
mod bigint;
#[allow(missing_docs)]
mod file_reading;
#[allow(missing_docs)]
mod machine;
#[allow(missing_docs)]
mod reader;
#[allow(missing_docs)]
mod render;
#[allow(missing_docs)]
mod value;

mod container;
mod context;
mod decode;
mod disasm;
mod limits;
mod opcodes;
mod policy;
mod readings;
mod report;
mod scan;

pub use container::side_files;
pub use container::{
    container_kind, decompressed_bytes, is_torch_legacy, reads_sparsely, storage_members,
};
pub use context::budget;
pub use context::observe::{Graph, JoblibRead, PickleRun, RunEnd, ScanObserver};
pub use context::streams::{PickleStream, StreamData};
pub use context::{LoadScans, ReadHint};
pub use disasm::{disassemble, listed, DisError, DisOp, DisPickle, Disassembly, Listed};
pub use limits::Limits;
pub use machine::is_dotted_name;
pub use machine::{CallKind, CallNode, GlobalRef, Method};
pub use opcodes::{ArgKind, Op};
pub use policy::{toml_str, uses, Mode, Policy, PolicyFile};
pub use render::{shorten, str_lit, terminal_safe, NamedStyle};
pub use report::{
    Finding, FindingType, GlobalUse, Limit, MemberPath, MemberView, Report, Segment, Severity,
    StopReason, Use, MAX_FINDINGS,
};
pub use scan::Scan;
pub use value::Value;

/// The machine and what it runs on, for the example that prints joblib's reads and the tests
/// and fuzz targets that compare the machine's two loops and the file readings with the
/// input. Not part of the API: it changes with the core.
#[doc(hidden)]
pub mod internals {
    pub use crate::analysis::{joblib_array_data, JoblibData};
    pub use crate::machine::{Machine, Outcome};
    /// The readings of a stream from a file object.
    pub mod file_reading {
        pub use crate::file_reading::*;
    }
}

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
