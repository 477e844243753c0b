//! What the analysis modules' tests share: a pickle assembler, and the machine run and
//! judging cache that a module's functions take, so each module's decisions can be called
//! directly on the smallest pickle that reaches them.

use super::*;
use crate::context::{Options, ScanContext};

/// A pickle written opcode by opcode (protocol 2 unless [`P::proto`] says otherwise).
pub(super) struct P(pub(super) Vec<u8>);

impl P {
    pub(super) fn new() -> P {
        P(vec![0x80, 2])
    }
    /// Without a PROTO opcode (protocol 0/1 style).
    pub(super) fn bare() -> P {
        P(Vec::new())
    }
    /// GLOBAL `module.name`.
    pub(super) fn g(mut self, module: &str, name: &str) -> P {
        self.0.push(b'c');
        self.0
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        self
    }
    /// BINUNICODE.
    pub(super) fn s(mut self, t: &str) -> P {
        self.0.push(b'X');
        self.0.extend_from_slice(&(t.len() as u32).to_le_bytes());
        self.0.extend_from_slice(t.as_bytes());
        self
    }
    /// BINBYTES.
    pub(super) fn b(mut self, b: &[u8]) -> P {
        self.0.push(b'B');
        self.0.extend_from_slice(&(b.len() as u32).to_le_bytes());
        self.0.extend_from_slice(b);
        self
    }
    /// BININT1.
    pub(super) fn i(mut self, v: u8) -> P {
        self.0.extend_from_slice(&[b'K', v]);
        self
    }
    pub(super) fn op(mut self, ops: &[u8]) -> P {
        self.0.extend_from_slice(ops);
        self
    }
    /// Where the next opcode goes.
    pub(super) fn at(&self) -> u64 {
        self.0.len() as u64
    }
    /// STOP.
    pub(super) fn done(mut self) -> Vec<u8> {
        self.0.push(b'.');
        self.0
    }
}

pub(super) const MARK: u8 = b'(';
pub(super) const TUPLE: u8 = b't';
pub(super) const EMPTY_TUPLE: u8 = b')';
pub(super) const EMPTY_DICT: u8 = b'}';
pub(super) const EMPTY_LIST: u8 = b']';
pub(super) const REDUCE: u8 = b'R';
pub(super) const NEWOBJ: u8 = 0x81;
pub(super) const BUILD: u8 = b'b';
pub(super) const SETITEMS: u8 = b'u';
pub(super) const SETITEM: u8 = b's';
pub(super) const APPEND: u8 = b'a';
pub(super) const NONE: u8 = b'N';
pub(super) const TUPLE1: u8 = 0x85;
pub(super) const TUPLE2: u8 = 0x86;
pub(super) const POP: u8 = b'0';
pub(super) const BINPUT: u8 = b'q';
pub(super) const BINGET: u8 = b'h';
pub(super) const BINPERSID: u8 = b'Q';

/// The `ml` profile.
pub(super) fn ml() -> Policy {
    Policy::new(Mode::Ml)
}

/// The `ml` profile with a policy file on top.
pub(super) fn ml_with(toml: &str) -> Policy {
    let mut p = ml();
    p.extend(&crate::policy::PolicyFile::parse(toml).expect("test policy parses"))
        .expect("test policy applies");
    p
}

/// A whole scan of `data` as a raw pickle under the `ml` profile.
pub(super) fn scan(data: &[u8]) -> Report {
    crate::analyze_pickle(data, &ml())
}

/// Run the first pickle of `data` to its STOP (as the C unpickler, joblib's pauses on) and
/// hand `f` the machine, the judging cache and the stream's context under `policy`.
pub(super) fn judged<R>(
    data: &[u8],
    policy: &Policy,
    f: impl FnOnce(&Machine<'_>, &Judged<'_>, &Context<'_>) -> R,
) -> R {
    let scan = ScanContext::new(
        policy,
        data,
        Options::default(),
        crate::container::scan_nested,
    );
    let ctx = Context::new(&scan);
    let mut m = Machine::new(data, policy.limits.clone());
    m.joblib = true;
    let out = m.run(0);
    assert!(matches!(out, Outcome::Stop { .. }), "{out:?}");
    let j = Judged::new(&m, policy, &ctx);
    f(&m, &j, &ctx)
}

/// Whether each call's result is trusted, as [`judge`] decides in stream order (its findings
/// are dropped): what a module's function is handed for the calls before the one it judges.
pub(super) fn trusted(
    m: &Machine<'_>,
    policy: &Policy,
    ctx: &Context,
    j: &Judged<'_>,
) -> Vec<bool> {
    let mut used = vec![0u8; m.globals.len()];
    let mut trusted = vec![false; m.calls.len()];
    let mut scratch = Report::new("raw_pickle");
    for (ci, c) in m.calls.iter().enumerate() {
        trusted[ci] = judge_call(
            m,
            policy,
            ctx,
            j,
            &mut used,
            &trusted,
            ci as CallId,
            c,
            &mut scratch,
        );
    }
    trusted
}

/// The index of the last call of `kind` the machine recorded.
pub(super) fn last(m: &Machine<'_>, kind: CallKind) -> usize {
    m.calls
        .iter()
        .rposition(|c| c.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} call in {:?}", m.calls))
}

/// The report's one finding.
pub(super) fn only(r: &Report) -> &Finding {
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    &r.findings[0]
}

/// The finding of `kind` whose description says `says`.
pub(super) fn finding<'r>(r: &'r Report, kind: FindingType, says: &str) -> &'r Finding {
    r.findings
        .iter()
        .find(|f| f.kind == kind && f.description.contains(says))
        .unwrap_or_else(|| panic!("no {kind:?} finding says {says:?}: {:#?}", r.findings))
}
