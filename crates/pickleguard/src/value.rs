//! Symbolic values of the stack machine. Plain data is kept as spans of the input and small
//! arena nodes; anything produced at load time is a reference to the global or call node that
//! would produce it.

use crate::reader::wtf8_lossy;
use std::borrow::Cow;

pub type NodeId = u32;
pub type CallId = u32;
pub type GlobalId = u32;
pub type StrId = u32;
pub type BytesId = u32;

/// Items kept per container for rendering and argument rules; values that are not plain data
/// are always kept (in `Node::extra`), whatever the container's size.
pub const KEEP_ITEMS: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    BigInt,
    Float(f64),
    Str(StrId),
    Bytes(BytesId),
    ByteArray(BytesId),
    /// An out-of-band buffer (NEXT_BUFFER / READONLY_BUFFER).
    Buffer,
    Tuple(NodeId),
    List(NodeId),
    Dict(NodeId),
    Set(NodeId),
    FrozenSet(NodeId),
    /// An imported global (GLOBAL, STACK_GLOBAL, INST's class, EXT).
    Global(GlobalId),
    /// What a call, a persistent load or a method call returns.
    Call(CallId),
}

impl Value {
    /// A value that is a leaf of plain data (containers are checked through the arena).
    #[inline]
    pub fn is_scalar_data(self) -> bool {
        matches!(
            self,
            Value::None
                | Value::Bool(_)
                | Value::Int(_)
                | Value::BigInt
                | Value::Float(_)
                | Value::Str(_)
                | Value::Bytes(_)
                | Value::ByteArray(_)
                | Value::Buffer
        )
    }

    #[inline]
    pub fn node(self) -> Option<NodeId> {
        match self {
            Value::Tuple(n)
            | Value::List(n)
            | Value::Dict(n)
            | Value::Set(n)
            | Value::FrozenSet(n) => Some(n),
            _ => None,
        }
    }

    pub fn type_name(self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::ByteArray(_) => "bytearray",
            Value::Buffer => "buffer",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Set(_) => "set",
            Value::FrozenSet(_) => "frozenset",
            Value::Global(_) => "global",
            Value::Call(_) => "call result",
        }
    }
}

/// A container's content: its length and the items worth keeping (dict items are key, value
/// pairs flattened).
#[derive(Debug, Default)]
pub struct Node {
    pub len: u64,
    pub items: Vec<Value>,
    /// Items beyond `KEEP_ITEMS` that are not plain data.
    pub extra: Vec<Value>,
}

impl Node {
    #[inline]
    pub fn push(&mut self, v: Value) {
        self.len += 1;
        if self.items.len() < KEEP_ITEMS {
            self.items.push(v);
        } else if !v.is_scalar_data() {
            self.extra.push(v);
        }
    }

    #[inline]
    pub fn push_pair(&mut self, k: Value, v: Value) {
        self.len += 1;
        if self.items.len() < KEEP_ITEMS * 2 {
            self.items.push(k);
            self.items.push(v);
        } else if !k.is_scalar_data() || !v.is_scalar_data() {
            self.extra.push(k);
            self.extra.push(v);
        }
    }

    pub fn all(&self) -> impl Iterator<Item = Value> + '_ {
        self.items.iter().chain(self.extra.iter()).copied()
    }
}

#[derive(Debug)]
pub enum StrData {
    Span(usize, usize),
    Owned(String),
}

#[derive(Debug)]
pub enum BytesData {
    Span(usize, usize),
    Owned(Vec<u8>),
}

/// Storage for the values of one stream.
#[derive(Debug, Default)]
pub struct Arena {
    /// Shape-only runs keep no values: every constructor returns a placeholder.
    pub shape: bool,
    pub nodes: Vec<Node>,
    pub strs: Vec<StrData>,
    pub bytes: Vec<BytesData>,
}

impl Arena {
    pub fn clear(&mut self) {
        self.nodes.clear();
        self.strs.clear();
        self.bytes.clear();
    }

    #[inline]
    pub fn new_node(&mut self, cap: usize) -> NodeId {
        if self.shape {
            return 0;
        }
        self.nodes.push(Node {
            len: 0,
            items: Vec::with_capacity(cap.min(KEEP_ITEMS * 2)),
            extra: Vec::new(),
        });
        (self.nodes.len() - 1) as NodeId
    }

    #[inline]
    pub fn str_span(&mut self, start: usize, len: usize) -> Value {
        if self.shape {
            return Value::Str(0);
        }
        self.strs.push(StrData::Span(start, len));
        Value::Str((self.strs.len() - 1) as StrId)
    }

    pub fn str_owned(&mut self, s: String) -> Value {
        if self.shape {
            return Value::Str(0);
        }
        self.strs.push(StrData::Owned(s));
        Value::Str((self.strs.len() - 1) as StrId)
    }

    #[inline]
    pub fn bytes_span(&mut self, start: usize, len: usize, array: bool) -> Value {
        if self.shape {
            return if array {
                Value::ByteArray(0)
            } else {
                Value::Bytes(0)
            };
        }
        self.bytes.push(BytesData::Span(start, len));
        let id = (self.bytes.len() - 1) as BytesId;
        if array {
            Value::ByteArray(id)
        } else {
            Value::Bytes(id)
        }
    }

    pub fn bytes_owned(&mut self, b: Vec<u8>) -> Value {
        if self.shape {
            return Value::Bytes(0);
        }
        self.bytes.push(BytesData::Owned(b));
        Value::Bytes((self.bytes.len() - 1) as BytesId)
    }

    pub fn text<'d>(&'d self, data: &'d [u8], id: StrId) -> Cow<'d, str> {
        match &self.strs[id as usize] {
            StrData::Span(s, l) => {
                let b = &data[*s..*s + *l];
                match std::str::from_utf8(b) {
                    Ok(t) => Cow::Borrowed(t),
                    Err(_) => Cow::Owned(wtf8_lossy(b)),
                }
            }
            StrData::Owned(s) => Cow::Borrowed(s.as_str()),
        }
    }

    /// Whether a string is `key`, without decoding it (UTF-8 bytes compare equal exactly when
    /// the texts do; what is not UTF-8 decodes with replacement characters, never to `key`
    /// when `key` has none).
    pub fn text_is(&self, data: &[u8], id: StrId, key: &str) -> bool {
        match &self.strs[id as usize] {
            StrData::Span(s, l) => &data[*s..*s + *l] == key.as_bytes(),
            StrData::Owned(s) => s == key,
        }
    }

    /// A string's bytes as the stream holds them (UTF-8 when valid).
    pub fn text_bytes<'d>(&'d self, data: &'d [u8], id: StrId) -> &'d [u8] {
        match &self.strs[id as usize] {
            StrData::Span(s, l) => &data[*s..*s + *l],
            StrData::Owned(s) => s.as_bytes(),
        }
    }

    pub fn blob<'d>(&'d self, data: &'d [u8], id: BytesId) -> &'d [u8] {
        match &self.bytes[id as usize] {
            BytesData::Span(s, l) => &data[*s..*s + *l],
            BytesData::Owned(b) => b,
        }
    }
}

/// A fast hasher for maps keyed by arena and call ids: the ids are small integers the machine
/// hands out in order, so an attacker cannot choose them to collide (maps keyed by names from
/// the stream keep std's SipHash).
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64);
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

pub type IdMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;
pub type IdSet<K> = std::collections::HashSet<K, std::hash::BuildHasherDefault<IdHasher>>;
