"""Objects and pickle streams for the differential tests (tests/test_differential.py).

Everything here is benign and deterministic. The module is imported under the name
`differential_objects` (pytest puts tests/ on sys.path), so the classes below are reachable
by `find_class('differential_objects', ...)` when the streams are loaded back.

`all_streams()` returns the corpus: every object of `objects()` pickled with protocols 0-5
by the C pickler (`pickle.dumps`) and the pure-Python one (`pickle._dumps`), some of them
passed through `pickletools.optimize`, pickles with persistent ids, extension codes,
out-of-band buffers, and hand-made streams for the opcodes no pickler emits.
"""
from __future__ import annotations

import array
import collections
import contextlib
import copyreg
import datetime
import decimal
import enum
import fractions
import functools
import io
import operator
import pathlib
import pickle
import pickletools
import re
import struct
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional

MODULE = __name__


# --------------------------------------------------------------------------------------
# Module-level classes (picklable by reference)


class Plain:
    def __init__(self, a=1, b=None):
        self.a = a
        self.b = [1, 2] if b is None else b

    def method(self):
        return self.a


class Empty:
    pass


class Slotted:
    __slots__ = ("x", "y")

    def __init__(self, x=1, y="two"):
        self.x = x
        self.y = y


class SlottedWithDict:
    __slots__ = ("x", "__dict__")

    def __init__(self):
        self.x = 3
        self.extra = "d"


class SlottedWithGetstate:
    __slots__ = ("x",)

    def __init__(self, x=5):
        self.x = x

    def __getstate__(self):
        return {"x": self.x}

    def __setstate__(self, state):
        self.x = state["x"]


class WithState:
    def __init__(self):
        self.secret = 42

    def __getstate__(self):
        return ("v1", self.secret)

    def __setstate__(self, state):
        _, self.secret = state


class FalsyState:
    """__getstate__ returns a falsy value: no BUILD is written (protocol 2+)."""

    def __getstate__(self):
        return {}

    def __setstate__(self, state):  # pragma: no cover - never called
        pass


def _rebuild(cls, *args):
    obj = cls.__new__(cls)
    obj.args = args
    return obj


class Reduce2:
    def __reduce__(self):
        return (_rebuild, (Reduce2, 1, "two", 3.0))


class Reduce3:
    def __reduce__(self):
        return (Reduce3, (), {"state": [1, 2, 3]})


class ReduceList(list):
    """__reduce__ with a list iterator (APPENDS after REDUCE)."""

    def __reduce__(self):
        return (ReduceList, (), None, iter(list(self)))


class ReduceDict(dict):
    """__reduce__ with a dict-items iterator (SETITEMS after REDUCE)."""

    def __reduce__(self):
        return (ReduceDict, (), {"attr": 1}, None, iter(sorted(self.items())))


def set_state(obj, state):
    obj.__dict__.update(state)
    obj.via_setter = True


class Reduce6:
    """6-tuple __reduce__ with a state setter (protocol 5 writes REDUCE + POP)."""

    def __init__(self):
        self.value = 6

    def __reduce__(self):
        return (Reduce6, (), {"value": self.value}, None, None, set_state)


GLOBAL_CONSTANT = "a module-level constant"


class ReduceToName:
    """__reduce__ returning a string: pickled as a global reference."""

    def __reduce__(self):
        return "GLOBAL_CONSTANT"


class ReduceEx:
    def __reduce_ex__(self, protocol):
        return (_rebuild, (ReduceEx, protocol))


class NewArgs:
    def __new__(cls, a, b):
        self = super().__new__(cls)
        self.a, self.b = a, b
        return self

    def __getnewargs__(self):
        return (self.a, self.b)


class NewArgsEx:
    def __new__(cls, a, *, key):
        self = super().__new__(cls)
        self.a, self.key = a, key
        return self

    def __getnewargs_ex__(self):
        return ((self.a,), {"key": self.key})


class Outer:
    class Inner:
        class Deeper:
            pass

        def __init__(self):
            self.v = "inner"


class Color(enum.Enum):
    RED = 1
    GREEN = "green"


class Perm(enum.IntFlag):
    R = 4
    W = 2
    X = 1


Point = collections.namedtuple("Point", "x y")


class ListSub(list):
    pass


class DictSub(dict):
    pass


class IntSub(int):
    pass


class StrSub(str):
    pass


class Hashable:
    """Node (hashed by identity) used to build recursive frozensets."""

    def __init__(self, name):
        self.name = name
        self.parent = None


class Ünïcödé:  # a non-ASCII global name (protocol 3 writes it as UTF-8 in GLOBAL)
    pass


class InitArgs:
    """Target of hand-made INST / OBJ streams."""

    def __init__(self, *args):
        self.args = args


class Ref:
    """Objects pickled by persistent id."""

    def __init__(self, key):
        self.key = key


class ExtTarget1:
    pass


class ExtTarget2:
    pass


class ExtTarget4:
    pass


def module_function(x=1):
    return x


# --------------------------------------------------------------------------------------
# The objects


def _recursive_tuple():
    lst = []
    tup = (lst, 1)
    lst.append(tup)
    return tup


def _recursive_frozenset():
    node = Hashable("n")
    fs = frozenset([node, 1])
    node.parent = fs
    return fs


def _self_list():
    lst = [1]
    lst.append(lst)
    return lst


def _self_dict():
    d = {"k": 1}
    d["self"] = d
    return d


def _shared():
    shared = [1, 2]
    inner = {"s": shared}
    return [shared, shared, inner, (shared, inner)]


def _many_memo():
    # > 256 memoised objects: BINGET/BINPUT become LONG_BINGET/LONG_BINPUT.
    strs = ["s%d" % i for i in range(300)]
    lists = [[i] for i in range(300)]
    return [strs, lists, strs[::-1], lists[::-1]]


def _complex_structure():
    return {
        "name": "model",
        "layers": [
            {"w": [0.5 * i for i in range(5)], "b": (i, -i), "act": "relu" if i % 2 else None}
            for i in range(6)
        ],
        "meta": collections.OrderedDict([("created", datetime.date(2020, 1, 2)), ("v", 3)]),
        "tags": {"a", "b"},
        "frozen": frozenset({1, 2}),
        "blob": b"\x00\x01" * 20,
        "nested": [[[[[]]]], ((),), {"": {"": {}}}],
        "objs": [Plain(), Plain(2, "x"), Slotted()],
    }


def objects() -> list[tuple[str, Any]]:
    """(name, object) pairs; each is pickled with every protocol that accepts it."""
    out: list[tuple[str, Any]] = []
    add = lambda name, obj: out.append((name, obj))  # noqa: E731

    add("none", None)
    add("true", True)
    add("false", False)
    add("bools", [True, False, True])
    for v in (0, 1, -1, 127, 128, 255, 256, -256, 65535, 65536, -65536, 2**31 - 1, -(2**31),
              2**31, -(2**31) - 1, 2**32, 2**63 - 1, -(2**63), 2**63, 2**64 - 1, 2**64,
              -(2**64), 10**30, -(2**1000), 2**2040, 2**2047, 2**2048, 2**10000):
        label = v if abs(v) < 2**70 else ("big" if v > 0 else "negbig") + str(v.bit_length())
        add("int_%s" % label, v)
    add("int_sub", IntSub(7))
    for name, v in (("zero", 0.0), ("negzero", -0.0), ("one", 1.0), ("pi", 3.141592653589793),
                    ("tiny", 5e-324), ("big", 1e308), ("max", sys.float_info.max),
                    ("inf", float("inf")), ("ninf", float("-inf")), ("nan", float("nan")),
                    ("third", 1 / 3), ("neg", -2.5e-10)):
        add("float_" + name, v)
    add("complex", complex(1.5, -2))
    add("complex_inf", complex(float("inf"), 0))
    add("str_empty", "")
    add("str_ascii", "hello world")
    add("str_specials", "a\\b\n\r\x00\x1a\t'\"")
    add("str_latin1", "caf\xe9 \xff")
    add("str_bmp", "\u20ac\u4e2d\ufffd")
    add("str_nonbmp", "\U0001f600\U00010000\U0010ffff")
    add("str_surrogate", "a\ud800b\udfff")
    add("str_255", "x" * 255)
    add("str_256", "y" * 256)
    add("str_300_utf8", "\xe9" * 150)
    add("str_65536", "z" * 65536)
    add("str_70k", "w" * 70000)
    add("str_sub", StrSub("sub"))
    add("bytes_empty", b"")
    add("bytes_short", b"\x00\x01abc\xff")
    add("bytes_255", bytes(range(255)))
    add("bytes_300", bytes(range(256)) + b"x" * 44)
    add("bytes_70k", b"\xab" * 70000)
    add("bytearray_empty", bytearray())
    add("bytearray", bytearray(b"mutable\x00\xff"))
    add("bytearray_70k", bytearray(b"\xcd" * 70000))
    for n in range(5):
        add("tuple_%d" % n, tuple(range(n)))
    add("tuple_nested", ((), ((),), (((1,),),)))
    add("list_empty", [])
    add("list_1", [1])
    add("list_mixed", [1, "a", 2.5, None, b"b", [2, [3]]])
    add("list_1000", list(range(1000)))  # APPENDS batches of 1000
    add("list_2500", [str(i) for i in range(2500)])
    add("dict_empty", {})
    add("dict_1", {"a": 1})
    add("dict_mixed", {1: "one", "two": 2, (3,): [3], None: {}, 2.5: b"x"})
    add("dict_1500", {i: i for i in range(1500)})
    add("set_empty", set())
    add("set", {1, 2, "three"})
    add("set_2000", set(range(2000)))
    add("frozenset_empty", frozenset())
    add("frozenset", frozenset({1, "a"}))
    add("frozenset_nested", frozenset({frozenset({1}), (2, 3)}))
    add("shared_refs", _shared())
    add("self_list", _self_list())
    add("self_dict", _self_dict())
    add("recursive_tuple", _recursive_tuple())
    add("recursive_frozenset", _recursive_frozenset())
    add("many_memo", _many_memo())
    add("complex_structure", _complex_structure())
    add("datetime", datetime.datetime(2021, 3, 4, 5, 6, 7, 890))
    add("datetime_utc", datetime.datetime(2021, 3, 4, 5, 6, 7, tzinfo=datetime.timezone.utc))
    add("datetime_ist", datetime.datetime(2021, 3, 4, tzinfo=datetime.timezone(
        datetime.timedelta(hours=5, minutes=30), "IST")))
    add("date", datetime.date(1999, 12, 31))
    add("time", datetime.time(23, 59, 1, 5))
    add("time_tz", datetime.time(1, 2, tzinfo=datetime.timezone(datetime.timedelta(hours=-3))))
    add("timedelta", datetime.timedelta(days=3, seconds=5, microseconds=7))
    add("timezone", datetime.timezone.utc)
    with contextlib.suppress(Exception):
        import zoneinfo

        add("zoneinfo", zoneinfo.ZoneInfo("UTC"))
    add("decimal", decimal.Decimal("3.14159"))
    add("decimal_nan", decimal.Decimal("-NaN"))
    add("fraction", fractions.Fraction(1, 3))
    add("uuid", uuid.UUID("12345678-1234-5678-1234-567812345678"))
    add("enum", Color.RED)
    add("enum_str", Color.GREEN)
    add("intflag", Perm.R | Perm.W)
    add("ordereddict", collections.OrderedDict([("b", 1), ("a", 2)]))
    add("defaultdict", collections.defaultdict(list, {"k": [1]}))
    add("deque", collections.deque([1, 2, 3], maxlen=5))
    add("counter", collections.Counter("hello"))
    add("chainmap", collections.ChainMap({"a": 1}, {"b": 2}))
    add("namedtuple", Point(1, y=2))
    add("range", range(1, 10, 3))
    add("slice", slice(1, None, 2))
    add("ellipsis", ...)
    add("notimplemented", NotImplemented)
    add("nonetype", type(None))
    add("array", array.array("i", [1, 2, 3]))
    add("array_d", array.array("d", [1.5]))
    add("regex", re.compile(r"a+b", re.I))
    add("path", pathlib.PurePosixPath("/tmp/x"))
    add("exception", ValueError("bad", 1))
    add("oserror", OSError(2, "missing"))
    add("plain", Plain())
    add("empty_obj", Empty())
    add("slotted", Slotted())
    add("slotted_dict", SlottedWithDict())
    add("slotted_getstate", SlottedWithGetstate())
    add("with_state", WithState())
    add("falsy_state", FalsyState())
    add("reduce2", Reduce2())
    add("reduce3", Reduce3())
    add("reduce_list", ReduceList([1, 2, 3]))
    add("reduce_dict", ReduceDict(b=2, a=1))
    add("reduce6", Reduce6())
    add("reduce_to_name", ReduceToName())
    add("reduce_ex", ReduceEx())
    add("newargs", NewArgs(1, "b"))
    add("newargs_ex", NewArgsEx(1, key="k"))
    add("nested_class", Outer.Inner)
    add("nested_class_deeper", Outer.Inner.Deeper)
    add("nested_instance", Outer.Inner())
    add("unicode_class", Ünïcödé)
    add("unicode_instance", Ünïcödé())
    add("list_sub", ListSub([1, 2]))
    add("dict_sub", DictSub(a=1))
    add("function", module_function)
    add("builtin_function", len)
    add("builtin_print", print)
    add("class_value", Plain)
    add("builtin_type", int)
    add("classes", [Plain, Slotted, Plain, dict, Plain])  # repeated globals come from the memo
    add("bound_method", Plain().method)
    add("builtin_method", [1].append)
    add("method_descriptor", str.upper)
    add("classmethod", dict.fromkeys)
    add("partial", functools.partial(max, 1, key=abs))
    add("itemgetter", operator.itemgetter(1, 2))
    add("attrgetter", operator.attrgetter("a.b"))
    add("methodcaller", operator.methodcaller("split", ","))
    add("mixed_everything", [Plain(), Color.RED, datetime.date(2000, 1, 1), decimal.Decimal(1),
                             Point(1, 2), [Plain, Plain], {"f": module_function}])
    return out


# --------------------------------------------------------------------------------------
# Streams


@dataclass
class Stream:
    name: str
    data: bytes
    loadable: bool = True  # load it with a recording find_class to learn the real globals
    buffers: Optional[list] = None  # out-of-band buffers for loading
    encoding: str = "ASCII"  # Unpickler(encoding=...) for protocol 0-2 STRING opcodes
    globals_wildcard: bool = False  # STACK_GLOBAL on computed names: ["?", "?"] allowed
    load_error_ok: bool = False  # loading stops in find_class (the global is still recorded)
    expect_genops_differs: bool = False  # pickletools decodes an argument unlike the loaders
    mutate: bool = False  # used by the truncation tests
    tags: set = field(default_factory=set)


class _PidMixin:
    def __init__(self, file, protocol):
        super().__init__(file, protocol)
        self.pg_protocol = protocol

    def persistent_id(self, obj):
        if isinstance(obj, Ref):
            # Protocol 0 writes PERSID (an ASCII line), 1+ BINPERSID (any object).
            return "ref-%s" % obj.key if self.pg_protocol == 0 else ("ref", obj.key)
        return None


class _PidPickler(_PidMixin, pickle.Pickler):
    pass


class _PyPidPickler(_PidMixin, pickle._Pickler):
    pass


def _dump_with(cls, obj, proto):
    f = io.BytesIO()
    cls(f, proto).dump(obj)
    return f.getvalue()


@contextlib.contextmanager
def _extensions():
    """Register three extension codes (EXT1, EXT2, EXT4) for the duration of the block."""
    wanted = [(ExtTarget1, 0xE1), (ExtTarget2, 0xE1E2), (ExtTarget4, 0x00E1E2E3)]
    done = []
    try:
        for cls, code in wanted:
            key = (MODULE, cls.__qualname__)
            if code in copyreg._inverted_registry or key in copyreg._extension_registry:
                continue
            copyreg.add_extension(MODULE, cls.__qualname__, code)
            done.append((key, code))
        yield
    finally:
        for (mod, name), code in done:
            copyreg.remove_extension(mod, name, code)


# Objects whose streams also go through pickletools.optimize (removes unused PUTs).
OPTIMIZE = {"shared_refs", "self_list", "self_dict", "recursive_tuple", "recursive_frozenset",
            "many_memo", "complex_structure", "classes", "mixed_everything", "plain",
            "nested_instance", "ordereddict", "datetime_ist", "list_mixed", "str_70k",
            "bytes_70k", "reduce6", "newargs_ex"}

# Streams used by the truncate-at-every-byte tests (kept small: one run per byte).
MUTATE = {"c0:mixed_everything", "c0:shared_refs", "c2:recursive_tuple",
          "py4:mixed_everything", "c5:reduce6", "c5:oob_buffers", "c3:unicode_instance",
          "c2:int_big2048", "c4:nested_instance", "c0:float_nan", "py5:bytearray",
          "hand:inst_build", "hand:obj_args", "hand:strings_proto0", "hand:persid",
          "hand:stack_global_memo", "hand:binbytes8_binunicode8", "c2:pid_refs",
          "hand:ints_text", "hand:longs_text", "hand:floats_text", "hand:unicode",
          "hand:frames", "c4:datetime_ist"}


def _pickler_streams() -> list[Stream]:
    out: list[Stream] = []
    for name, obj in objects():
        for proto in range(6):
            for tag, dump in (("c", pickle.dumps), ("py", pickle._dumps)):
                try:
                    data = dump(obj, proto)
                except (pickle.PicklingError, TypeError, ValueError, AttributeError):
                    continue  # this protocol cannot express the object (e.g. __slots__ < 2)
                sname = "%s%d:%s" % (tag, proto, name)
                out.append(Stream(sname, data, tags={"pickler", tag, "p%d" % proto}))
                if name in OPTIMIZE and tag == "c":
                    out.append(Stream("opt" + sname, pickletools.optimize(data),
                                      tags={"optimized", "p%d" % proto}))
    # A huge LONG4 (2**70000: 8751 bytes, 21,073 decimal digits), once: the other LONG4s
    # (2**2048, 2**10000) cover the opcode in every pickler and protocol.
    out.append(Stream("c4:int_huge_70000_bits", pickle.dumps(2**70000, 4), tags={"pickler"}))
    # Out-of-band and in-band PickleBuffer (protocol 5 only).
    oob = [pickle.PickleBuffer(b"read-only bytes"), pickle.PickleBuffer(bytearray(b"writable")),
           b"plain bytes", bytearray(b"plain bytearray")]
    for tag, dump in (("c", pickle.dumps), ("py", pickle._dumps)):
        bufs: list = []
        data = dump(oob, 5, buffer_callback=bufs.append)
        out.append(Stream("%s5:oob_buffers" % tag, data, buffers=bufs, tags={"oob"}))
        out.append(Stream("%s5:inband_buffers" % tag, dump(oob, 5), tags={"oob"}))
        # A callback that keeps one buffer in band.
        bufs2: list = []
        data = dump(oob, 5, buffer_callback=lambda b: bufs2.append(b) if len(bufs2) < 1 else True)
        out.append(Stream("%s5:oob_mixed" % tag, data, buffers=bufs2, tags={"oob"}))
    # Persistent ids: PERSID (protocol 0) and BINPERSID (1+).
    refs = [Ref(1), {"r": Ref(2)}, Ref(1), "not a ref"]
    for proto in range(6):
        out.append(Stream("c%d:pid_refs" % proto, _dump_with(_PidPickler, refs, proto),
                          tags={"persistent"}))
        out.append(Stream("py%d:pid_refs" % proto, _dump_with(_PyPidPickler, refs, proto),
                          tags={"persistent"}))
    # Extension codes: EXT1/EXT2/EXT4 from the registry (not loaded, see the brief).
    with _extensions():
        ext_obj = [ExtTarget1, ExtTarget2(), ExtTarget4, ExtTarget1]
        for proto in range(2, 6):
            for tag, dump in (("c", pickle.dumps), ("py", pickle._dumps)):
                out.append(Stream("%s%d:ext_codes" % (tag, proto), dump(ext_obj, proto),
                                  loadable=False, tags={"ext"}))
    # Several pickles in one file.
    parts = [pickle.dumps(1, 0), pickle.dumps([Plain()], 2), pickle.dumps({"a": b"x"}, 5),
             pickle._dumps(Color.RED, 4), pickle.dumps("last", 1)]
    out.append(Stream("concat:five_protocols", b"".join(parts), tags={"concat"}))
    out.append(Stream("concat:same_twice", pickle.dumps(Plain(), 4) * 2, tags={"concat"}))
    return out


def _op(code: str) -> bytes:
    return code.encode("latin-1")


def _framed(body: bytes) -> bytes:
    """PROTO 4 and one FRAME around `body`."""
    return b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body


def _handmade_streams() -> list[Stream]:
    """Streams for opcodes (and argument spellings) the picklers never write."""
    M = MODULE.encode()
    h: list[tuple[str, bytes, dict]] = []

    def add(name, data, **kw):
        h.append((name, data, kw))

    # INST / OBJ (protocol 0/1 class instantiation), with and without BUILD.
    add("inst_noargs", b"(i" + M + b"\nInitArgs\n.")
    add("inst_args", b"(I1\nS'two'\ni" + M + b"\nInitArgs\n.")
    add("inst_build", b"(i" + M + b"\nPlain\n(dp0\nS'a'\np1\nI5\nsb.")
    add("inst_builtin", b"(I3\nibuiltins\ncomplex\n.")
    add("obj_noargs", b"(c" + M + b"\nInitArgs\no.")
    add("obj_args", b"\x80\x01(c" + M + b"\nInitArgs\nK\x01X\x03\x00\x00\x00twoq\x00h\x00o}b.")
    add("obj_binary", b"\x80\x02(c" + M + b"\nEmpty\nq\x00o}q\x01U\x01xK\x01sb.")
    # Persistent ids written by hand.
    add("persid", b"(Pabc\nP\nPref-1 x\nl.")
    add("binpersid", b"\x80\x02(X\x03\x00\x00\x00keyK\x01tQ.")
    add("persid_backslash", b"Pa\\x41\n.", expect_genops_differs=True)
    # Extension codes by hand (not loaded: they need the registry).
    add("ext1", b"\x80\x02\x82\x05.", loadable=False)
    add("ext2", b"\x80\x02\x83\x34\x12.", loadable=False)
    add("ext4", b"\x80\x02\x84\x78\x56\x34\x12.", loadable=False)
    add("ext_all", b"\x80\x02(\x82\xff\x83\xff\xff\x84\xff\xff\xff\x7fl.", loadable=False)
    # STRING and its quoting/escape rules; BINSTRING / SHORT_BINSTRING.
    add("strings_proto0", b"(S'abc'\nS\"a'b\"\nS'a\\x41\\n\\t\\\\'\nS'\\101\\0'\nS''\n"
                          b"S'a'b'\nS'a\\q'\nS'\\''\nS\"\\\"\"\nl.")
    add("string_latin1_escape", b"S'\\xff\\xe9'\n.", encoding="latin1")
    add("string_raw_high_byte", b"S'caf\xe9'\n.", encoding="latin1", expect_genops_differs=True)
    add("binstrings", b"\x80\x01(T\x03\x00\x00\x00abcU\x00U\x02\xff\x00T\x00\x00\x00\x00t.",
        encoding="latin1")
    # UNICODE (raw-unicode-escape).
    add("unicode", b"(Vabc\nV\nV\xe9\\u20ac\\U0001f600\nV\\ud800\nVa\\x41\nV\\\\u0041\n"
                   b"V\\u005c\nl.")
    # INT / LONG / FLOAT text forms (only spellings every CPython reader agrees on).
    add("ints_text", b"(I01\nI00\nI0\nI1\nI-1\nI+5\nI 5\nI5 \nI1_000\nI0001\nI2147483647\n"
                     b"I-2147483648\nI9223372036854775807\nI-9223372036854775808\n"
                     b"I9223372036854775808\nI18446744073709551615\nI18446744073709551616\n"
                     b"I-99999999999999999999999\nl.")
    add("longs_text", b"(L5L\nL5\nL-5L\nL0L\nL00L\nL-0L\nL+7L\nL 8L\nL1_0L\n"
                      b"L123456789012345678901234567890L\nL-9223372036854775809L\nl.")
    add("floats_text", b"(F1.5\nF-0.0\nF0\nF1\nFinf\nF-inf\nFnan\nFinfinity\nF-Infinity\nFNaN\n"
                       b"F1e308\nF1.7976931348623157e308\nF1e-400\nF4.9e-324\nF0.1\nF.5\nF5.\n"
                       b"F1E5\nF+2.5\nF2.2250738585072014e-308\nl.")
    add("binfloat", b"\x80\x02(G\x7f\xf8\x00\x00\x00\x00\x00\x00G\x80\x00\x00\x00\x00\x00\x00\x00"
                    b"G\x7f\xf0\x00\x00\x00\x00\x00\x00G\x00\x00\x00\x00\x00\x00\x00\x01l.")
    add("long1_long4", b"\x80\x02(\x8a\x00\x8a\x01\xff\x8a\x02\x00\x80\x8a\x09" + b"\x00" * 8 +
        b"\x01\x8b\x00\x00\x00\x00\x8b\x03\x00\x00\x00\xff\xff\x7fl.")
    # Stack and memo opcodes.
    add("pop", b"I1\nI2\n0.")
    add("pop_mark_item", b"(I1\nI2\n0t.")
    add("pop_pops_mark", b"(0N.")
    add("pop_mark", b"(I1\nI2\n1N.")
    add("dup", b"I1\n2\x86.")
    add("dup_list", b"\x80\x02]2\x86.")
    add("put_get_text", b"(I1\np0\ng0\nI2\np100\ng100\nt.")
    add("put_get_bool_spelling", b"I7\np01\ng1\n\x86.")  # pickletools reads "01" as True
    add("binput_binget", b"\x80\x02(K\x07q\x00h\x00K\x08r\x00\x01\x00\x00j\x00\x01\x00\x00"
                         b"r\x00\x00\x01\x00j\x00\x00\x01\x00q\xffh\xfft.")
    add("memoize_get", b"\x80\x04(K\x01\x94K\x02\x94h\x01h\x00t.")
    add("empty_containers", b"\x80\x04()]}\x8f(\x91t.")
    add("additems", b"\x80\x04\x8f\x94(K\x01K\x02\x90(\x90.")
    add("setitem_appends", b"\x80\x02}K\x01K\x02s]q\x00(K\x01K\x02eK\x03a\x86.")
    add("dict_list_tuple_marks", b"((I1\nI2\nd(I1\nl(I1\nt(tt.")
    add("bools", b"\x80\x02\x88\x89N\x87.")
    # Byte payloads the picklers only write for > 4 GiB, and buffer opcodes by hand.
    add("binbytes8_binunicode8", b"\x80\x04\x8e\x03\x00\x00\x00\x00\x00\x00\x00abc"
        b"\x8d\x04\x00\x00\x00\x00\x00\x00\x00\xe2\x82\xacx\x86.")
    add("binbytes_variants", b"\x80\x03(C\x00C\x02\x00\xffB\x01\x00\x00\x00zB\x00\x00\x00\x00t.")
    add("bytearray8", b"\x80\x05\x96\x02\x00\x00\x00\x00\x00\x00\x00\x01\x02.")
    add("next_buffer", b"\x80\x05(\x97\x97\x98l.", buffers=[b"first", bytearray(b"second")])
    add("unicode_variants", b"\x80\x04(\x8c\x00\x8c\x03\xe2\x82\xacX\x04\x00\x00\x00"
                            b"\xf0\x9f\x98\x80X\x03\x00\x00\x00\xed\xa0\x80t.")
    # FRAME: several frames, an empty one, and a STOP outside any frame.
    add("frames", b"\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00K\x01"
                  b"\x95\x00\x00\x00\x00\x00\x00\x00\x00"
                  b"\x95\x03\x00\x00\x00\x00\x00\x00\x00K\x02\x86.")
    # Globals: memo-fetched STACK_GLOBAL operands, SHORT_BINSTRING/STRING operands, a
    # STACK_GLOBAL on computed names, GLOBAL spellings pickletools reads differently.
    add("stack_global_memo", _framed(b"\x8c\x08builtins\x94\x8c\x03str\x94\x93h\x00\x8c\x03len"
                                     b"\x93h\x00h\x01\x93\x87."))
    add("stack_global_dup", b"\x80\x04\x8c\x08datetime2\x93.")
    add("stack_global_binstring", b"\x80\x04U\x0bcollectionsU\x0bOrderedDict\x93).")
    add("stack_global_string", b"\x80\x04S'collections'\nS'OrderedDict'\n\x93).")
    add("stack_global_computed", b"\x80\x04cbuiltins\nstr\n(Vcollections\ntR"
                                 b"\x8c\x0bOrderedDict\x93)R.", globals_wildcard=True)
    add("global_escape_not_decoded", b"cbuil\\x74ins\nint\n.", load_error_ok=True,
        expect_genops_differs=True)
    add("global_utf8", b"c" + M + b"\n\xc3\x9cn\xc3\xafc\xc3\xb6d\xc3\xa9\n.",
        expect_genops_differs=True)
    add("global_py2_names", b"c__builtin__\nset\n((c__builtin__\nlist\nttRc"
                            b"copy_reg\n_reconstructor\n0.")
    add("reduce_build_newobj", b"\x80\x02c" + M + b"\nPlain\nq\x00)\x81}X\x01\x00\x00\x00aK\x09sb"
                               b"c" + M + b"\nNewArgsEx\n(K\x01tq\x01}X\x03\x00\x00\x00keyK\x02s"
                               b"\x92\x86.")
    # Several pickles in one file, of different protocols, written by hand.
    add("concat_handmade", b"I1\n.\x80\x02K\x02.\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00K\x03."
                           b"(l.")

    out = []
    for name, data, kw in h:
        mutate = ("hand:" + name) in MUTATE
        out.append(Stream("hand:" + name, data, mutate=mutate, tags={"handmade"}, **kw))
    return out


_CACHE: list[Stream] | None = None


def all_streams() -> list[Stream]:
    global _CACHE
    if _CACHE is None:
        streams = _pickler_streams()
        streams += _handmade_streams()
        names = [s.name for s in streams]
        dup = {n for n in names if names.count(n) > 1}
        assert not dup, dup
        for s in streams:
            if s.name in MUTATE:
                s.mutate = True
        _CACHE = streams
    return _CACHE


if __name__ == "__main__":  # a quick look at the corpus
    ss = all_streams()
    print(len(ss), "streams,", sum(len(s.data) for s in ss), "bytes")
