//! Bounds on the work one analysis may do. Hitting one is a `RESOURCE_LIMIT` finding and an
//! incomplete (so not safe) report, never a hang or an unbounded allocation.

use serde::{Deserialize, Serialize};

/// The bounds of one scan (a policy's `[limits]`, docs/policy-format.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Opcodes per input (all pickles together).
    pub max_ops: u64,
    /// Values on the stack at once.
    pub max_stack: usize,
    /// Memo entries.
    pub max_memo: u64,
    /// MARKs open at once.
    pub max_marks: usize,
    /// Containers built in one pickle.
    pub max_nodes: usize,
    /// Calls (REDUCE, NEWOBJ, BUILD, ...) in one pickle.
    pub max_calls: usize,
    /// Imports (GLOBAL, STACK_GLOBAL, INST, EXT*) in one pickle: real pickles memoise their
    /// globals (a few hundred even in large checkpoints); a stream of nothing but EXT1 or
    /// GLOBAL opcodes would otherwise keep a record per opcode.
    pub max_globals: usize,
    /// Pickles nested inside pickles (`pickle.loads(b'...')`, encoded payloads).
    pub max_nesting: u32,
    /// Pickles one after another in a single stream.
    pub max_pickles: u64,
    /// Bytes produced by decoding one obfuscated argument.
    pub max_decoded: usize,
    /// Bytes one scan may decompress (all streams and archive members together).
    pub max_decompressed: u64,
    /// Decompressed bytes per byte of input, over a whole scan (applies above 128 MiB).
    pub max_ratio: u64,
    /// Members of one archive (zip, tar).
    pub max_members: u64,
}

impl Default for Limits {
    fn default() -> Self {
        // Sized so that the largest real checkpoints (GBs of opcodes) never trip them, while
        // memory stays bounded: each entry is a 16-byte value.
        Limits {
            max_ops: 1 << 36,
            max_stack: 1 << 24,
            max_memo: 1 << 27,
            max_marks: 1 << 20,
            max_nodes: 1 << 27,
            max_calls: 1 << 25,
            max_globals: 1 << 20,
            max_nesting: 8,
            max_pickles: 1 << 20,
            max_decoded: 64 << 20,
            max_decompressed: 16 << 30,
            // Deflate cannot pass ~1032:1, so 1000 never bounded a gzip / zlib bomb: a 10 MB
            // one held 10 GB in memory. Real checkpoints compress well under 100:1 beyond the
            // 128 MiB floor (container/budget.rs).
            max_ratio: 100,
            max_members: 1 << 20,
        }
    }
}

impl Limits {
    /// Each limit the smaller of the two, and the names of those `other` would have raised.
    pub fn tightened_by(&self, other: &Limits) -> (Limits, Vec<&'static str>) {
        // Exhaustive, so that a new limit cannot be left out of the list below.
        let Limits {
            max_ops: _,
            max_stack: _,
            max_memo: _,
            max_marks: _,
            max_nodes: _,
            max_calls: _,
            max_globals: _,
            max_nesting: _,
            max_pickles: _,
            max_decoded: _,
            max_decompressed: _,
            max_ratio: _,
            max_members: _,
        } = other;
        let mut out = self.clone();
        let mut raised = Vec::new();
        macro_rules! each {
            ($($f:ident),*) => {$(
                if other.$f < self.$f {
                    out.$f = other.$f;
                } else if other.$f > self.$f {
                    raised.push(stringify!($f));
                }
            )*};
        }
        each!(
            max_ops,
            max_stack,
            max_memo,
            max_marks,
            max_nodes,
            max_calls,
            max_globals,
            max_nesting,
            max_pickles,
            max_decoded,
            max_decompressed,
            max_ratio,
            max_members
        );
        (out, raised)
    }
}
