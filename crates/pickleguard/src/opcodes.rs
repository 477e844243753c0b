//! The 68 opcodes of CPython 3.11's `pickletools.opcodes`, with the shape of their argument.

/// How an opcode's inline argument is encoded (names follow `pickletools`' argument
/// descriptors, which say what each is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ArgKind {
    None,
    Uint1,
    Uint2,
    Int4,
    Uint4,
    Uint8,
    Long1,
    Long4,
    String1,
    String4,
    Bytes1,
    Bytes4,
    Bytes8,
    Unicode1,
    Unicode4,
    Unicode8,
    ByteArray8,
    /// `INT`, `GET`, `PUT`: a decimal line.
    DecimalNlShort,
    /// `LONG`: a decimal line, optionally ending in `L`.
    DecimalNlLong,
    FloatNl,
    Float8,
    /// `STRING`: a quoted, escaped line.
    StringNl,
    /// `PERSID`: an unescaped line.
    StringNlNoEscape,
    /// `GLOBAL`, `INST`: two unescaped lines.
    StringNlPair,
    /// `UNICODE`: a raw-unicode-escape line.
    UnicodeNl,
}

macro_rules! opcodes {
    ($($name:ident = $code:expr, $arg:ident;)*) => {
        /// A pickle opcode (its variants are `pickletools`' names, with the byte as value).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(non_camel_case_types, clippy::upper_case_acronyms, missing_docs)]
        #[repr(u8)]
        pub enum Op { $($name = $code,)* }

        impl Op {
            /// Every opcode, in table order.
            pub const ALL: &'static [Op] = &[$(Op::$name,)*];

            /// The opcode for a byte, if CPython knows it.
            #[inline]
            pub fn from_byte(b: u8) -> Option<Op> {
                OP_TABLE[b as usize]
            }

            /// The name `pickletools` uses.
            pub fn name(self) -> &'static str {
                match self { $(Op::$name => stringify!($name),)* }
            }

            /// How its inline argument is encoded.
            #[inline]
            pub fn arg_kind(self) -> ArgKind {
                match self { $(Op::$name => ArgKind::$arg,)* }
            }
        }

        static OP_TABLE: [Option<Op>; 256] = {
            let mut t: [Option<Op>; 256] = [None; 256];
            $(t[$code as usize] = Some(Op::$name);)*
            t
        };
    };
}

opcodes! {
    MARK = b'(', None;
    STOP = b'.', None;
    POP = b'0', None;
    POP_MARK = b'1', None;
    DUP = b'2', None;
    FLOAT = b'F', FloatNl;
    INT = b'I', DecimalNlShort;
    BININT = b'J', Int4;
    BININT1 = b'K', Uint1;
    LONG = b'L', DecimalNlLong;
    BININT2 = b'M', Uint2;
    NONE = b'N', None;
    PERSID = b'P', StringNlNoEscape;
    BINPERSID = b'Q', None;
    REDUCE = b'R', None;
    STRING = b'S', StringNl;
    BINSTRING = b'T', String4;
    SHORT_BINSTRING = b'U', String1;
    UNICODE = b'V', UnicodeNl;
    BINUNICODE = b'X', Unicode4;
    APPEND = b'a', None;
    BUILD = b'b', None;
    GLOBAL = b'c', StringNlPair;
    DICT = b'd', None;
    EMPTY_DICT = b'}', None;
    APPENDS = b'e', None;
    GET = b'g', DecimalNlShort;
    BINGET = b'h', Uint1;
    INST = b'i', StringNlPair;
    LONG_BINGET = b'j', Uint4;
    LIST = b'l', None;
    EMPTY_LIST = b']', None;
    OBJ = b'o', None;
    PUT = b'p', DecimalNlShort;
    BINPUT = b'q', Uint1;
    LONG_BINPUT = b'r', Uint4;
    SETITEM = b's', None;
    TUPLE = b't', None;
    EMPTY_TUPLE = b')', None;
    SETITEMS = b'u', None;
    BINFLOAT = b'G', Float8;
    PROTO = 0x80, Uint1;
    NEWOBJ = 0x81, None;
    EXT1 = 0x82, Uint1;
    EXT2 = 0x83, Uint2;
    EXT4 = 0x84, Int4;
    TUPLE1 = 0x85, None;
    TUPLE2 = 0x86, None;
    TUPLE3 = 0x87, None;
    NEWTRUE = 0x88, None;
    NEWFALSE = 0x89, None;
    LONG1 = 0x8a, Long1;
    LONG4 = 0x8b, Long4;
    BINBYTES = b'B', Bytes4;
    SHORT_BINBYTES = b'C', Bytes1;
    SHORT_BINUNICODE = 0x8c, Unicode1;
    BINUNICODE8 = 0x8d, Unicode8;
    BINBYTES8 = 0x8e, Bytes8;
    EMPTY_SET = 0x8f, None;
    ADDITEMS = 0x90, None;
    FROZENSET = 0x91, None;
    NEWOBJ_EX = 0x92, None;
    STACK_GLOBAL = 0x93, None;
    MEMOIZE = 0x94, None;
    FRAME = 0x95, Uint8;
    BYTEARRAY8 = 0x96, ByteArray8;
    NEXT_BUFFER = 0x97, None;
    READONLY_BUFFER = 0x98, None;
}

impl Op {
    /// Opcodes that make CPython import something or call something: a stream that breaks
    /// before the first of these cannot have run anything. Persistent ids are not among them:
    /// they reach only the loader's own `persistent_load` hook (none in plain `pickle.load`).
    pub fn can_import_or_call(self) -> bool {
        matches!(
            self,
            Op::GLOBAL
                | Op::STACK_GLOBAL
                | Op::INST
                | Op::OBJ
                | Op::REDUCE
                | Op::NEWOBJ
                | Op::NEWOBJ_EX
                | Op::BUILD
                | Op::EXT1
                | Op::EXT2
                | Op::EXT4
        )
    }

    /// `pickletools`' stack effect of an opcode: (stack before, stack after).
    pub fn stack_effect(self) -> (&'static str, &'static str) {
        match self {
            Op::INT => ("[]", "[int_or_bool]"),
            Op::BININT | Op::BININT1 | Op::BININT2 | Op::LONG | Op::LONG1 | Op::LONG4 => {
                ("[]", "[int]")
            }
            Op::STRING | Op::BINSTRING | Op::SHORT_BINSTRING => ("[]", "[bytes_or_str]"),
            Op::BINBYTES | Op::SHORT_BINBYTES | Op::BINBYTES8 => ("[]", "[bytes]"),
            Op::BYTEARRAY8 => ("[]", "[bytearray]"),
            Op::NEXT_BUFFER => ("[]", "[buffer]"),
            Op::READONLY_BUFFER => ("[buffer]", "[buffer]"),
            Op::NONE => ("[]", "[None]"),
            Op::NEWTRUE | Op::NEWFALSE => ("[]", "[bool]"),
            Op::UNICODE | Op::SHORT_BINUNICODE | Op::BINUNICODE | Op::BINUNICODE8 => {
                ("[]", "[str]")
            }
            Op::FLOAT | Op::BINFLOAT => ("[]", "[float]"),
            Op::EMPTY_LIST => ("[]", "[list]"),
            Op::APPEND => ("[list, any]", "[list]"),
            Op::APPENDS => ("[list, mark, stackslice]", "[list]"),
            Op::LIST => ("[mark, stackslice]", "[list]"),
            Op::EMPTY_TUPLE => ("[]", "[tuple]"),
            Op::TUPLE => ("[mark, stackslice]", "[tuple]"),
            Op::TUPLE1 => ("[any]", "[tuple]"),
            Op::TUPLE2 => ("[any, any]", "[tuple]"),
            Op::TUPLE3 => ("[any, any, any]", "[tuple]"),
            Op::EMPTY_DICT => ("[]", "[dict]"),
            Op::DICT => ("[mark, stackslice]", "[dict]"),
            Op::SETITEM => ("[dict, any, any]", "[dict]"),
            Op::SETITEMS => ("[dict, mark, stackslice]", "[dict]"),
            Op::EMPTY_SET => ("[]", "[set]"),
            Op::ADDITEMS => ("[set, mark, stackslice]", "[set]"),
            Op::FROZENSET => ("[mark, stackslice]", "[frozenset]"),
            Op::POP => ("[any]", "[]"),
            Op::DUP => ("[any]", "[any, any]"),
            Op::MARK => ("[]", "[mark]"),
            Op::POP_MARK => ("[mark, stackslice]", "[]"),
            Op::GET | Op::BINGET | Op::LONG_BINGET => ("[]", "[any]"),
            Op::PUT | Op::BINPUT | Op::LONG_BINPUT => ("[]", "[]"),
            Op::MEMOIZE => ("[any]", "[any]"),
            Op::EXT1 | Op::EXT2 | Op::EXT4 | Op::GLOBAL => ("[]", "[any]"),
            Op::STACK_GLOBAL => ("[str, str]", "[any]"),
            Op::REDUCE | Op::BUILD | Op::NEWOBJ => ("[any, any]", "[any]"),
            Op::INST => ("[mark, stackslice]", "[any]"),
            Op::OBJ => ("[mark, any, stackslice]", "[any]"),
            Op::NEWOBJ_EX => ("[any, any, any]", "[any]"),
            Op::PROTO | Op::FRAME => ("[]", "[]"),
            Op::STOP => ("[any]", "[]"),
            Op::PERSID => ("[]", "[any]"),
            Op::BINPERSID => ("[any]", "[any]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_eight_distinct_opcodes() {
        assert_eq!(Op::ALL.len(), 68);
        let mut seen = std::collections::HashSet::new();
        for op in Op::ALL {
            assert!(seen.insert(*op as u8), "duplicate code for {}", op.name());
            assert_eq!(Op::from_byte(*op as u8), Some(*op));
        }
    }
}
