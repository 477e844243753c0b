#!/usr/bin/env python3
"""Ground truth of the globals that benign files make CPython import, and how they are used.

    python tools/collect_globals.py DIR [--out tools/benign_globals.json] [--details FILE]

DIR is a benign corpus written by tests/corpus/gen_benign.py (with its manifest.json).

Two independent views of every file:

* **Dynamic** (what really happens): each file is loaded with its own loader while every
  unpickler involved records the globals it resolves. Raw pickles go through a recording
  subclass of ``pickle._Unpickler`` (``find_class`` records module/name, then defers to
  ``super``); ``torch.load`` gets the same class through ``pickle_module=``; ``numpy.load`` and
  ``pandas.read_pickle`` call ``pickle.load``, and ``torch.storage._load_from_bytes`` calls
  ``torch.load`` again, so ``pickle.load``/``pickle.Unpickler`` are swapped for the recording
  ones while a file loads; joblib's ``NumpyUnpickler`` (a ``pickle._Unpickler`` subclass bound
  at import time) gets its ``find_class`` and its REDUCE/NEWOBJ/... handlers patched.
  The dispatch hooks also classify each use at run time.
* **Static** (what a scanner sees): every pickle stream of the file (raw pickles, every .pkl
  member of a torch zip, the five pickles of a legacy torch file, the pickle of an object .npy
  or .npz member, pandas' compressed pickles, and the legacy torch files nested as bytes in
  ``torch.storage._load_from_bytes(...)`` calls) is walked with ``pickletools.genops`` and a
  small symbolic stack: a global is a ``call`` when it is the callable of REDUCE (or the class
  of INST/OBJ), ``new`` when it is the class of NEWOBJ/NEWOBJ_EX or the first argument of
  ``copyreg._reconstructor`` / ``copyreg.__newobj__`` / ``__newobj_ex__``, and ``value``
  when it is only referenced (an argument, an element, a persistent id, BUILD state).
  joblib streams interleave raw array bytes with pickle opcodes, so for joblib files the
  uses come from the dynamic view.

Output (sorted by key): ``{"module.name": {"module", "name", "uses", "libraries", "files",
"containers", "arg_shapes", ...}}`` where ``arg_shapes`` lists the distinct argument shapes
of its REDUCE calls (literal short strings kept, other values by type), most frequent first,
``result_called`` is true when what the call returns is called in turn (``getattr(ZoneInfo,
'_unpickle')(...)``, sympy's ``functools.partial(...)`` rebuilt by BUILD, then called),
``canonical`` is the Python 3 name when the pickle spells a Python 2 alias
(``__builtin__.set`` → ``builtins.set``), and ``nested_only`` is true for globals seen only in
pickles nested inside another pickle's bytes. Files marked ``custom`` in the manifest (the
deliberately unknown sample class) are left out. ``--details`` writes per-file globals and
every static/dynamic disagreement.
"""
from __future__ import annotations

import argparse
import bz2
import collections
import contextlib
import gzip
import io
import json
import lzma
import os
import pickle
import pickletools
import sys
import tarfile
import warnings
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
warnings.filterwarnings("ignore")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

RECONSTRUCTORS = {("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor"),
                  ("copyreg", "__newobj__"), ("copy_reg", "__newobj__"),
                  ("copyreg", "__newobj_ex__"), ("copy_reg", "__newobj_ex__")}
NESTED_LOADERS = {("torch.storage", "_load_from_bytes")}
MAX_SHAPES = 12


# ======================================================================================
# Static view: pickletools.genops + a symbolic stack
# ======================================================================================


class Sym:
    __slots__ = ("kind", "value", "items", "uses", "data")

    def __init__(self, kind, value=None, items=None):
        self.kind = kind  # global, lit, tuple, call, list, dict, other, mark
        self.value = value
        self.items = items
        self.data = None  # bytes a call evaluates to: _codecs.encode(<str>, 'latin1')


CODECS_ENCODE = {("_codecs", "encode"), ("codecs", "encode")}


def bytes_of(x: Sym):
    if x.kind == "lit" and isinstance(x.value, (bytes, bytearray)):
        return bytes(x.value)
    return x.data


MARK = Sym("mark")


def shape(x, depth=0) -> str:
    """Render a symbolic value as an argument shape: short strings literally, the rest by type."""
    if x is None:
        return "?"
    k = x.kind
    if k == "global":
        return f"global:{x.value[0]}.{x.value[1]}"
    if k == "lit":
        v = x.value
        if isinstance(v, str):
            # names, dtype codes, encodings, short paths: literally; data strings: by type
            return repr(v) if len(v) <= 32 and v.isascii() and v.isprintable() else "<str>"
        if isinstance(v, (bytes, bytearray)):
            return f"<{type(v).__name__}>"
        if v is None or isinstance(v, bool):
            return repr(v)
        return f"<{type(v).__name__}>"
    if k == "tuple":
        if depth >= 3:
            return "(...)"
        inner = ", ".join(shape(i, depth + 1) for i in x.items)
        return f"({inner}{',' if len(x.items) == 1 else ''})"
    if k == "call":
        return f"call:{render_callable(x.value)}"
    return f"<{k}>"


def render_callable(f: Sym) -> str:
    if f is None:
        return "?"
    if f.kind == "global":
        return f"{f.value[0]}.{f.value[1]}"
    if f.kind == "call":
        func, args = f.value, f.items
        return f"{render_callable(func)}{shape(args) if args is not None else '(?)'}"
    return f"<{f.kind}>"


class StaticResult:
    def __init__(self):
        # (module, name) -> {"uses": set, "shapes": Counter, "nested": bool-of-all}
        self.globals: dict[tuple, dict] = {}
        self.dynamic_calls: collections.Counter = collections.Counter()
        self.errors: list[str] = []
        self.complete = True

    def use(self, key, use, nested):
        g = self.globals.setdefault(key, {"uses": set(), "shapes": collections.Counter(), "top": False,
                                          "result_called": False})
        if use:
            g["uses"].add(use)
        if not nested:
            g["top"] = True
        return g


def static_stream(data: bytes, res: StaticResult, nested: bool = False, depth: int = 0) -> int:
    """Analyse one pickle starting at data[0]; return the number of bytes it used."""
    stack: list[Sym] = []
    memo: dict = {}
    created: list[Sym] = []
    f = io.BytesIO(data)

    def pop():
        return stack.pop() if stack else Sym("other")

    def pop_mark():
        items = []
        while stack:
            x = stack.pop()
            if x is MARK:
                break
            items.append(x)
        items.reverse()
        return items

    def value(x, seen=None):
        """x is consumed as data: every global inside it is referenced as a value."""
        if x is None:
            return
        if x.kind == "global":
            res.use(x.value, "value", nested)
            x.uses = True
        elif x.kind == "tuple":
            seen = seen or set()
            if id(x) in seen:
                return
            seen.add(id(x))
            for i in x.items:
                value(i, seen)

    def new_global(mod, name):
        s = Sym("global", (mod, name))
        s.uses = False
        res.use((mod, name), None, nested)
        created.append(s)
        return s

    def call(func, args, use="call"):
        if func.kind == "global":
            g = res.use(func.value, use, nested)
            func.uses = True
            g["shapes"][shape(args)] += 1
            key = func.value
            if args is not None and args.kind == "tuple":
                for i, a in enumerate(args.items):
                    if key in RECONSTRUCTORS and i == 0 and a.kind == "global":
                        res.use(a.value, "new", nested)
                        a.uses = True
                    else:
                        value(a)
                if key in NESTED_LOADERS and args.items and bytes_of(args.items[0]) is not None and depth < 4:
                    static_legacy_torch(bytes_of(args.items[0]), res, nested=True, depth=depth + 1)
                if key in CODECS_ENCODE and len(args.items) == 2 and all(a.kind == "lit" for a in args.items) \
                        and isinstance(args.items[0].value, str) and args.items[1].value in ("latin1", "latin-1"):
                    out = Sym("call", func, args)
                    out.data = args.items[0].value.encode("latin1")
                    return out
            else:
                value(args)
        else:
            res.dynamic_calls[render_callable(func)] += 1
            if func.kind == "call" and func.value is not None and func.value.kind == "global":
                # the result of a call is called in turn: getattr(cls, 'name')(...), partial(...)()
                res.use(func.value.value, None, nested)["result_called"] = True
            value(args)
        return Sym("call", func, args)

    end = 0
    for op, arg, pos in pickletools.genops(f):
        name = op.name
        end = f.tell()
        if name in ("PROTO", "FRAME", "READONLY_BUFFER"):
            continue
        if name == "STOP":
            value(pop())
            break
        if name == "MARK":
            stack.append(MARK)
        elif name in ("GLOBAL", "INST"):
            mod, _, qual = arg.partition(" ")
            g = new_global(mod, qual)
            if name == "GLOBAL":
                stack.append(g)
            else:
                args = Sym("tuple", items=pop_mark())
                stack.append(call(g, args))
        elif name == "STACK_GLOBAL":
            qual, mod = pop(), pop()
            if mod.kind == "lit" and qual.kind == "lit" and isinstance(mod.value, str) and isinstance(qual.value, str):
                stack.append(new_global(mod.value, qual.value))
            else:
                res.errors.append(f"STACK_GLOBAL with computed operands at {pos}")
                stack.append(new_global("?", "?"))
        elif name == "OBJ":
            items = pop_mark()
            cls = items[0] if items else Sym("other")
            stack.append(call(cls, Sym("tuple", items=items[1:])))
        elif name == "REDUCE":
            args = pop()
            func = pop()
            stack.append(call(func, args))
        elif name == "NEWOBJ":
            args = pop()
            cls = pop()
            stack.append(call(cls, args, use="new"))
        elif name == "NEWOBJ_EX":
            kwargs = pop()
            args = pop()
            cls = pop()
            value(kwargs)
            stack.append(call(cls, args, use="new"))
        elif name == "BUILD":
            value(pop())
        elif name in ("EMPTY_TUPLE",):
            stack.append(Sym("tuple", items=[]))
        elif name == "TUPLE":
            stack.append(Sym("tuple", items=pop_mark()))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = [pop() for _ in range(n)][::-1]
            stack.append(Sym("tuple", items=items))
        elif name in ("EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET"):
            stack.append(Sym(name[6:].lower()))
        elif name in ("LIST", "DICT", "FROZENSET"):
            for x in pop_mark():
                value(x)
            stack.append(Sym(name.lower()))
        elif name == "APPEND":
            value(pop())
        elif name == "SETITEM":
            value(pop())
            value(pop())
        elif name in ("APPENDS", "SETITEMS", "ADDITEMS"):
            for x in pop_mark():
                value(x)
        elif name == "POP":
            value(pop())
        elif name == "POP_MARK":
            for x in pop_mark():
                value(x)
        elif name == "DUP":
            stack.append(stack[-1] if stack else Sym("other"))
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = stack[-1] if stack else Sym("other")
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1] if stack else Sym("other")
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo.get(arg, Sym("other")))
        elif name == "PERSID":
            stack.append(Sym("persid"))
        elif name == "BINPERSID":
            pid = pop()
            if pid.kind == "tuple" and len(pid.items) >= 2 and pid.items[0].kind == "lit" \
                    and pid.items[0].value == "module" and pid.items[1].kind == "global":
                # legacy torch.save of a whole module: persistent_load(('module', cls, file, source))
                # returns cls, which NEWOBJ / copyreg._reconstructor then instantiate
                for x in pid.items[2:]:
                    value(x)
                stack.append(pid.items[1])
            else:
                value(pid)
                stack.append(Sym("persid"))
        elif name in ("EXT1", "EXT2", "EXT4"):
            res.errors.append(f"extension code {arg} at {pos}")
            stack.append(Sym("ext"))
        elif name == "NEXT_BUFFER":
            stack.append(Sym("buffer"))
        elif name in ("NONE", "NEWTRUE", "NEWFALSE"):
            stack.append(Sym("lit", {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}[name]))
        else:  # every other opcode pushes one literal (ints, floats, strings, bytes)
            stack.append(Sym("lit", arg))
    else:
        raise ValueError("pickle ended without STOP")
    for g in created:
        if not g.uses:
            res.use(g.value, "value", nested)
    return end


def static_all_pickles(data: bytes, res: StaticResult, nested=False, depth=0, count=None):
    """Analyse every pickle in data, one after another (count: stop after that many)."""
    pos, n = 0, 0
    while pos < len(data) and (count is None or n < count):
        used = static_stream(data[pos:], res, nested=nested, depth=depth)
        pos += used
        n += 1
    return pos


def static_legacy_torch(data: bytes, res: StaticResult, nested=False, depth=0):
    # magic number, protocol version, sys_info, the object, the storage keys; then raw bytes
    static_all_pickles(data, res, nested=nested, depth=depth, count=5)


def npy_pickle(data: bytes) -> bytes | None:
    import numpy as np

    f = io.BytesIO(data)
    version = np.lib.format.read_magic(f)
    hdr = (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(f)
    if not hdr[2].hasobject:
        return None
    return data[f.tell():]


def pandas_decompress(data: bytes, compression: str) -> bytes:
    if compression == "none":
        return data
    if compression == "gzip":
        return gzip.decompress(data)
    if compression == "bz2":
        return bz2.decompress(data)
    if compression == "xz":
        return lzma.decompress(data)
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    if compression == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            (member,) = z.namelist()
            return z.read(member)
    if compression == "tar":
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            (member,) = t.getmembers()
            return t.extractfile(member).read()
    raise ValueError(compression)


def static_file(path: Path, entry: dict) -> StaticResult | None:
    """None when the container interleaves non-pickle bytes (joblib)."""
    res = StaticResult()
    data = path.read_bytes()
    container = entry["container"]
    if container.startswith("joblib"):
        return None
    if entry["loader"] == "pandas.read_pickle":
        static_all_pickles(pandas_decompress(data, entry.get("compression", "none")), res)
    elif container == "raw":
        static_all_pickles(data, res)
    elif container == "pytorch_zip":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for member in z.namelist():
                if member.endswith(".pkl"):
                    static_all_pickles(z.read(member), res)
    elif container == "pytorch_legacy":
        static_legacy_torch(data, res)
    elif container == "numpy_npy":
        p = npy_pickle(data)
        if p is not None:
            static_all_pickles(p, res)
    elif container == "numpy_npz":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for member in z.namelist():
                p = npy_pickle(z.read(member))
                if p is not None:
                    static_all_pickles(p, res)
    else:
        raise ValueError(f"unknown container {container}")
    return res


# ======================================================================================
# Dynamic view: recording unpicklers
# ======================================================================================


class Recorder:
    def __init__(self):
        self.globals: dict[tuple, dict] = {}
        self.depth = 0
        # id(resolved object) -> the names it was resolved from; shared by every unpickler of
        # the load, because joblib routes a nested unpickler's find_class through the outer one
        self.found_ids: dict[int, set] = {}
        self.keep: list = []

    def found(self, module, name):
        g = self.globals.setdefault((module, name), {"uses": set(), "top": False})
        if self.depth <= 1:
            g["top"] = True

    def use(self, key, use):
        self.globals.setdefault(key, {"uses": set(), "top": self.depth <= 1})["uses"].add(use)


RECORDER: Recorder | None = None


def _hooked_dispatch(base_dispatch: dict) -> dict:
    """Copy of an unpickler dispatch table whose call-like opcodes classify their callable."""
    d = dict(base_dispatch)

    def classify(self, func, args, use):
        if RECORDER is None:
            return
        found = RECORDER.found_ids
        for key in found.get(id(func), ()):
            RECORDER.use(key, use)
        if use == "call" and any(k in RECONSTRUCTORS for k in found.get(id(func), ())) \
                and isinstance(args, tuple) and args:
            for key in found.get(id(args[0]), ()):
                RECORDER.use(key, "new")

    def wrap(code, picker):
        orig = base_dispatch[code[0]]

        def handler(self):
            func, args, use = picker(self)
            classify(self, func, args, use)
            return orig(self)

        d[code[0]] = handler

    wrap(pickle.REDUCE, lambda s: (s.stack[-2], s.stack[-1], "call"))
    wrap(pickle.NEWOBJ, lambda s: (s.stack[-2], None, "new"))
    wrap(pickle.NEWOBJ_EX, lambda s: (s.stack[-3], None, "new"))
    wrap(pickle.OBJ, lambda s: (s.stack[0] if s.stack else None, None, "call"))
    return d


def _record_find(self, module, name):
    obj = self._pg_orig_find_class(module, name)
    if RECORDER is not None:
        RECORDER.found(module, name)
        if getattr(self, "_pg_in_inst", False):
            RECORDER.use((module, name), "call")
        RECORDER.found_ids.setdefault(id(obj), set()).add((module, name))
        RECORDER.keep.append(obj)
    return obj


class RecordingUnpickler(pickle._Unpickler):
    """pickle's pure-Python unpickler that records every global it resolves."""

    dispatch = _hooked_dispatch(pickle._Unpickler.dispatch)

    def find_class(self, module, name):
        return _record_find(self, module, name)

    def _pg_orig_find_class(self, module, name):
        return super().find_class(module, name)

    def load(self):
        if RECORDER is not None:
            RECORDER.depth += 1
        try:
            return super().load()
        finally:
            if RECORDER is not None:
                RECORDER.depth -= 1


def _inst_hook(base):
    orig = base[pickle.INST[0]]

    def load_inst(self):
        # INST resolves its class through find_class and calls it right away
        self._pg_in_inst = True
        try:
            return orig(self)
        finally:
            self._pg_in_inst = False

    return load_inst


RecordingUnpickler.dispatch[pickle.INST[0]] = _inst_hook(RecordingUnpickler.dispatch)


def _rec_load(file, **kw):
    return RecordingUnpickler(file, **kw).load()


def _rec_loads(data, /, **kw):
    return RecordingUnpickler(io.BytesIO(data), **kw).load()


RECORDING_PICKLE = type(sys)("pickleguard_recording_pickle")
RECORDING_PICKLE.__dict__.update({k: getattr(pickle, k) for k in dir(pickle) if not k.startswith("__")})
RECORDING_PICKLE.Unpickler = RecordingUnpickler
RECORDING_PICKLE.load = _rec_load
RECORDING_PICKLE.loads = _rec_loads


@contextlib.contextmanager
def recording(rec: Recorder):
    """Route every unpickling entry point of this process through the recorder."""
    global RECORDER
    saved = {k: getattr(pickle, k) for k in ("Unpickler", "load", "loads")}
    pickle.Unpickler, pickle.load, pickle.loads = RecordingUnpickler, _rec_load, _rec_loads
    joblib_saved = None
    try:
        from joblib import numpy_pickle

        NU = numpy_pickle.NumpyUnpickler
        joblib_saved = (NU, NU.__dict__.get("find_class"), NU.dispatch, numpy_pickle.__dict__.get("Unpickler"))
        # joblib >= 1.5 reads object arrays with a fresh pickle._Unpickler (bound at import)
        if "Unpickler" in numpy_pickle.__dict__:
            numpy_pickle.Unpickler = RecordingUnpickler
        NU._pg_orig_find_class = NU.find_class
        NU.find_class = _record_find
        NU.dispatch = _hooked_dispatch(NU.dispatch)
        NU.dispatch[pickle.INST[0]] = _inst_hook(NU.dispatch)
    except ImportError:
        pass
    RECORDER = rec
    rec.depth = 0
    try:
        yield
    finally:
        RECORDER = None
        for k, v in saved.items():
            setattr(pickle, k, v)
        if joblib_saved:
            NU, fc, disp, inner = joblib_saved
            if inner is not None:
                numpy_pickle.Unpickler = inner
            if fc is None:
                del NU.find_class
            else:
                NU.find_class = fc
            NU.dispatch = disp
            del NU._pg_orig_find_class


def dynamic_file(path: Path, entry: dict) -> Recorder:
    rec = Recorder()
    loader = entry["loader"]
    with recording(rec):
        if loader == "pickle.load":
            with open(path, "rb") as f:
                RecordingUnpickler(f).load()
        elif loader == "torch.load":
            import torch

            torch.load(path, weights_only=False, pickle_module=RECORDING_PICKLE)
        elif loader == "joblib.load":
            import joblib

            rec.depth = 0
            joblib.load(path)
        elif loader == "numpy.load":
            import numpy as np

            res = np.load(path, allow_pickle=True)
            if hasattr(res, "files"):
                with res:
                    for k in res.files:
                        res[k]
        elif loader == "pandas.read_pickle":
            import pandas as pd

            comp = entry.get("compression", "none")
            pd.read_pickle(path, compression=None if comp == "none" else comp)
        else:
            raise ValueError(loader)
    return rec


# ======================================================================================
# Driver
# ======================================================================================


def canonical(module: str, name: str) -> tuple[str, str]:
    import _compat_pickle

    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "tools" / "benign_globals.json")
    ap.add_argument("--details", type=Path, help="write per-file globals and disagreements here")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT / "tests" / "corpus"))
    from gen_benign import install_sample_module

    install_sample_module()
    manifest = json.loads((args.dir / "manifest.json").read_text())
    table: dict[str, dict] = {}
    details = {"files": {}, "disagreements": [], "errors": [], "dynamic_calls": collections.Counter()}
    for i, entry in enumerate(manifest):
        path = args.dir / entry["file"]
        try:
            st = static_file(path, entry)
        except Exception as exc:  # noqa: BLE001
            details["errors"].append(f"{entry['file']}: static: {type(exc).__name__}: {exc}")
            st = None
        try:
            dy = dynamic_file(path, entry)
        except Exception as exc:  # noqa: BLE001
            details["errors"].append(f"{entry['file']}: dynamic: {type(exc).__name__}: {exc}")
            dy = Recorder()
        if st is not None:
            details["dynamic_calls"].update(st.dynamic_calls)
            for e in st.errors:
                details["errors"].append(f"{entry['file']}: static: {e}")
            # disagreements: a name one view saw and the other did not
            s_names, d_names = set(st.globals), set(dy.globals)
            for key in sorted(s_names - d_names):
                details["disagreements"].append({"file": entry["file"], "global": ".".join(key),
                                                 "seen_by": "static only"})
            for key in sorted(d_names - s_names):
                details["disagreements"].append({"file": entry["file"], "global": ".".join(key),
                                                 "seen_by": "dynamic only"})
            for key in sorted(s_names & d_names):
                su, du = st.globals[key]["uses"], dy.globals[key]["uses"]
                # the dynamic view cannot see `value` uses; compare call/new only
                if (su - {"value"}) != (du - {"value"}):
                    details["disagreements"].append({"file": entry["file"], "global": ".".join(key),
                                                     "static_uses": sorted(su), "dynamic_uses": sorted(du)})
        if entry.get("custom"):
            continue
        merged: dict[tuple, dict] = {}
        if st is not None:
            for key, g in st.globals.items():
                merged[key] = {"uses": set(g["uses"]), "shapes": g["shapes"], "top": g["top"],
                               "result_called": g["result_called"]}
        for key, g in dy.globals.items():
            m = merged.get(key)
            if m is None:
                m = merged[key] = {"uses": set(g["uses"]) or {"value"}, "shapes": collections.Counter(),
                                   "top": g["top"], "result_called": False}
            elif st is None:
                m["uses"] |= g["uses"]
        details["files"][entry["file"]] = sorted(".".join(k) + ":" + "/".join(sorted(v["uses"]))
                                                 for k, v in merged.items())
        for (module, name), g in merged.items():
            key = f"{module}.{name}"
            t = table.setdefault(key, {"module": module, "name": name, "uses": set(), "libraries": set(),
                                       "containers": set(), "files": 0, "_shapes": collections.Counter(),
                                       "_top": False, "_result_called": False})
            t["uses"] |= g["uses"]
            t["libraries"].add(entry["library"])
            t["containers"].add(entry["container"])
            t["files"] += 1
            t["_shapes"].update(g["shapes"])
            t["_top"] = t["_top"] or g["top"]
            t["_result_called"] = t["_result_called"] or g["result_called"]
        if (i + 1) % 250 == 0:
            print(f"{i + 1}/{len(manifest)} files", file=sys.stderr)

    out = {}
    for key in sorted(table):
        t = table[key]
        rec = {
            "module": t["module"],
            "name": t["name"],
            "uses": sorted(t["uses"]),
            "libraries": sorted(t["libraries"]),
            "containers": sorted(t["containers"]),
            "files": t["files"],
        }
        cmod, cname = canonical(t["module"], t["name"])
        if (cmod, cname) != (t["module"], t["name"]):
            rec["canonical"] = f"{cmod}.{cname}"
        if t["_shapes"]:
            shapes = sorted(t["_shapes"].items(), key=lambda kv: (-kv[1], kv[0]))
            rec["arg_shapes"] = [s for s, _ in shapes[:MAX_SHAPES]]
            if len(shapes) > MAX_SHAPES:
                rec["arg_shapes_more"] = len(shapes) - MAX_SHAPES
        if not t["_top"]:
            rec["nested_only"] = True
        if t["_result_called"]:
            rec["result_called"] = True
        out[key] = rec
    args.out.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    if args.details:
        details["dynamic_calls"] = dict(details["dynamic_calls"].most_common())
        args.details.write_text(json.dumps(details, indent=1, sort_keys=True) + "\n")
    by_lib = collections.Counter(lib for r in out.values() for lib in r["libraries"])
    print(f"{len(out)} globals from {len(manifest)} files; per library: "
          + ", ".join(f"{k} {v}" for k, v in sorted(by_lib.items())), file=sys.stderr)
    print(f"{len(details['disagreements'])} static/dynamic disagreements, {len(details['errors'])} errors",
          file=sys.stderr)
    for e in details["errors"][:20]:
        print("  " + e, file=sys.stderr)
    return 1 if details["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
