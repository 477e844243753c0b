#!/usr/bin/env python3
"""Generate the benign corpus: what users of the ML stack really save.

    python tests/corpus/gen_benign.py --out DIR [--only raw|all]

Every file is written by the real library (pickle, torch.save, joblib.dump, numpy.save(z),
DataFrame.to_pickle, ...) from small deterministic objects, and described by one entry of
``DIR/manifest.json`` (a JSON list, sorted by file):

    file        path relative to DIR
    library     the library whose objects it holds (stdlib, numpy, torch, sklearn, ...)
    what        a short name for the object
    container   raw, pytorch_zip, pytorch_legacy, joblib, joblib_<compression>, numpy_npy,
                numpy_npz, pandas_<compression>
    protocol    the pickle protocol of the (main) pickle, or null for a file without a pickle
    loader      pickle.load, torch.load, joblib.load, numpy.load or pandas.read_pickle
    sha256      of the file
    deterministic   false when the library writes bytes that change from run to run
                (torch's legacy format names storages by their memory address); ``note`` says why
    custom      true for the one sample of a class outside every library
                (module ``pickleguard_benign_sample``): a scanner must report it as an unknown
                import, not as dangerous and not as safe
    compression for pandas.read_pickle / joblib: the compression used
    has_pickle  false for .npy/.npz files that hold no pickle at all
    torch_weights_only  for torch.load files: whether torch.load(weights_only=True) accepts it

``--only raw`` writes only the raw pickle files (no torch/joblib/numpy/pandas containers).
Objects that a protocol cannot pickle (or that do not load back) are listed in
``DIR/skipped.json`` with the reason, not silently dropped.

Determinism: the script re-executes itself with PYTHONHASHSEED=0 (sets of strings would
otherwise change order), seeds every generator, and runs the two library writers that stamp
the wall clock into zip headers (numpy.savez, pandas' zip compression) under a fixed clock for
the ``zipfile`` module only. What is still nondeterministic is marked ``deterministic: false``.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import pickle
import re
import sys
import time
import traceback
import types
import warnings
from pathlib import Path

SAMPLE_MODULE = "pickleguard_benign_sample"
PROTOCOLS = range(0, pickle.HIGHEST_PROTOCOL + 1)
FIXED_EPOCH = 1577836800  # 2020-01-01T00:00:00Z
TORCH_STORAGE_NOTE = "torch names storages in the legacy format by their memory address (str(storage._cdata))"

warnings.filterwarnings("ignore")


class _NoPyarrow:
    """What users without pyarrow write (tools/matrix.py's -noarrow variants): pandas then
    keeps strings in Python objects instead of Arrow arrays. An import finder, so that
    ``"pyarrow" in sys.modules`` stays false as it is for them."""

    def find_spec(self, name, path=None, target=None):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


if os.environ.get("PICKLEGUARD_HIDE_PYARROW") == "1":
    sys.meta_path.insert(0, _NoPyarrow())
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")


# --------------------------------------------------------------------------------------
# The one custom class (a module outside every library, created at run time)
# --------------------------------------------------------------------------------------

_SAMPLE_SOURCE = '''
class SampleRecord:
    """A user's own class: pickled by reference to this module."""

    def __init__(self, name, values):
        self.name = name
        self.values = values

    def __eq__(self, other):
        return type(other) is type(self) and vars(other) == vars(self)
'''


def install_sample_module() -> types.ModuleType:
    """Create (once) the importable module ``pickleguard_benign_sample``.

    Loaders of the custom sample (verify_benign.py, tools/collect_globals.py) call this first.
    """
    mod = sys.modules.get(SAMPLE_MODULE)
    if mod is None:
        mod = types.ModuleType(SAMPLE_MODULE)
        exec(compile(_SAMPLE_SOURCE, f"<{SAMPLE_MODULE}>", "exec"), mod.__dict__)
        sys.modules[SAMPLE_MODULE] = mod
    return mod


# --------------------------------------------------------------------------------------
# Corpus writer
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def fixed_zip_clock():
    """Make ``zipfile`` stamp FIXED_EPOCH instead of the wall clock (nothing else changes)."""
    import zipfile

    real = zipfile.time
    fake = types.SimpleNamespace(**{k: getattr(real, k) for k in dir(real) if not k.startswith("__")})
    fake.time = lambda: float(FIXED_EPOCH)
    fake.localtime = lambda secs=None: real.gmtime(FIXED_EPOCH if secs is None else secs)
    zipfile.time = fake
    try:
        yield
    finally:
        zipfile.time = real


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Corpus:
    def __init__(self, out: Path, only: str):
        self.out = out
        self.only = only
        self.entries: list[dict] = []
        self.skipped: list[dict] = []
        self.errors: list[str] = []
        self._names: set[str] = set()

    # -- helpers -------------------------------------------------------------------------
    def _path(self, rel: str) -> Path:
        if rel in self._names:
            raise ValueError(f"duplicate corpus file {rel}")
        self._names.add(rel)
        p = self.out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def _entry(self, rel, library, what, container, protocol, loader, **extra):
        e = {
            "file": rel,
            "library": library,
            "what": what,
            "container": container,
            "protocol": protocol,
            "loader": loader,
        }
        e.update({k: v for k, v in extra.items() if v is not None})
        e.setdefault("deterministic", True)
        e["sha256"] = sha256_file(self.out / rel)
        self.entries.append(e)
        return e

    def skip(self, library, what, container, protocol, reason):
        self.skipped.append(
            {"library": library, "what": what, "container": container, "protocol": protocol, "reason": reason}
        )

    # -- raw pickles ---------------------------------------------------------------------
    def raw(self, library, what, obj, protocols=PROTOCOLS, deterministic=True, custom=None, dumps=None,
            check=True, note=None):
        """pickle.dumps(obj, protocol=p) for every protocol; keep those that load back.

        deterministic="auto": nondeterministic when the pickle holds a torch storage
        (pickled as torch.save(storage) in the legacy format, keyed by memory address).
        """
        dumps = dumps or pickle.dumps
        for p in protocols:
            try:
                data = dumps(obj, protocol=p)
            except Exception as exc:  # noqa: BLE001 - a protocol that cannot pickle this object
                self.skip(library, what, "raw", p, f"dumps: {type(exc).__name__}: {exc}"[:300])
                continue
            if check:
                try:
                    pickle.loads(data)
                except Exception as exc:  # noqa: BLE001
                    self.skip(library, what, "raw", p, f"loads: {type(exc).__name__}: {exc}"[:300])
                    continue
            rel = f"{library}/{what}.p{p}.pkl"
            self._path(rel).write_bytes(data)
            det = deterministic
            if det == "auto":
                det = b"_load_from_bytes" not in data
                note = None if det else TORCH_STORAGE_NOTE
            self._entry(rel, library, what, "raw", p, "pickle.load", deterministic=det, custom=custom,
                        note=note)

    # -- containers ------------------------------------------------------------------------
    def torch_save(self, library, what, obj, legacy=True, protocols=(2,)):
        """torch.save in the zip format (and the legacy format), default pickle protocol 2."""
        if self.only == "raw":
            return
        import torch

        variants = [("pytorch_zip", True, p) for p in protocols]
        if legacy:
            variants.append(("pytorch_legacy", False, 2))
        for container, new_zip, proto in variants:
            suffix = ".pt" if container == "pytorch_zip" else ".legacy.pt"
            if proto != 2:
                suffix = f".p{proto}{suffix}"
            rel = f"{library}/{what}{suffix}"
            if library == "transformers" and what.endswith("state_dict") and container == "pytorch_zip" \
                    and proto == 2:
                rel = f"{library}/{what}.bin"  # what save_pretrained(safe_serialization=False) wrote
            path = self._path(rel)
            try:
                torch.save(obj, path, _use_new_zipfile_serialization=new_zip, pickle_protocol=proto)
            except Exception as exc:  # noqa: BLE001
                path.unlink(missing_ok=True)
                self.skip(library, what, container, proto, f"torch.save: {type(exc).__name__}: {exc}"[:300])
                continue
            try:
                torch.load(path, weights_only=True)
                wo = True
            except Exception:  # noqa: BLE001
                wo = False
            # the zip format numbers storages 0, 1, ...; the legacy one uses memory addresses
            det = new_zip or re.search(rb"ctorch\n\w*Storage\n", path.read_bytes()) is None
            self._entry(rel, library, what, container, proto, "torch.load", deterministic=det,
                        torch_weights_only=wo, note=None if det else TORCH_STORAGE_NOTE)

    JOBLIB_COMPRESSIONS = (
        (None, "joblib", ""),
        ("zlib", "joblib_zlib", ".z"),
        ("gzip", "joblib_gzip", ".gz"),
        ("bz2", "joblib_bz2", ".bz2"),
        ("lzma", "joblib_lzma", ".lzma"),
        ("xz", "joblib_xz", ".xz"),
        ("lz4", "joblib_lz4", ".lz4"),
    )

    def joblib_dump(self, library, what, obj, compressions=None, deterministic=True, note=None):
        if self.only == "raw":
            return
        import joblib

        for method, container, suffix in self.JOBLIB_COMPRESSIONS:
            if compressions is not None and method not in compressions:
                continue
            rel = f"{library}/{what}.joblib{suffix}"
            path = self._path(rel)
            try:
                joblib.dump(obj, path, compress=(method, 3) if method else 0)
            except Exception as exc:  # noqa: BLE001
                path.unlink(missing_ok=True)
                self.skip(library, what, container, None, f"joblib.dump: {type(exc).__name__}: {exc}"[:300])
                continue
            self._entry(rel, library, what, container, pickle.DEFAULT_PROTOCOL, "joblib.load",
                        compression=method or "none", deterministic=deterministic, note=note)

    PANDAS_COMPRESSIONS = (
        (None, "raw", ".pkl"),
        ({"method": "gzip", "mtime": 0}, "pandas_gzip", ".pkl.gz"),
        ("bz2", "pandas_bz2", ".pkl.bz2"),
        ("xz", "pandas_xz", ".pkl.xz"),
        ("zip", "pandas_zip", ".pkl.zip"),
        ("zstd", "pandas_zstd", ".pkl.zst"),
        ("tar", "pandas_tar", ".pkl.tar"),
    )

    def pandas_to_pickle(self, library, what, obj, all_compressions=True):
        """DataFrame/Series.to_pickle (protocol 5), with every compression pandas offers."""
        if self.only == "raw":
            return
        for comp, container, suffix in self.PANDAS_COMPRESSIONS:
            if not all_compressions and comp is not None:
                continue
            rel = f"{library}/{what}.to_pickle{suffix}"
            path = self._path(rel)
            name = comp["method"] if isinstance(comp, dict) else (comp or "none")
            try:
                import pandas as pd

                with fixed_zip_clock():
                    pd.to_pickle(obj, path, compression=comp)
            except Exception as exc:  # noqa: BLE001
                path.unlink(missing_ok=True)
                self.skip(library, what, container, 5, f"to_pickle: {type(exc).__name__}: {exc}"[:300])
                continue
            self._entry(rel, library, what, container, pickle.HIGHEST_PROTOCOL, "pandas.read_pickle",
                        compression=name)

    def numpy_save(self, what, arr):
        if self.only == "raw":
            return
        import numpy as np

        rel = f"numpy/{what}.npy"
        np.save(self._path(rel), arr, allow_pickle=True)
        has_pickle = bool(arr.dtype.hasobject)
        self._entry(rel, "numpy", what, "numpy_npy", 3 if has_pickle else None, "numpy.load",
                    has_pickle=has_pickle)

    def numpy_savez(self, what, arrays, compressed=False):
        if self.only == "raw":
            return
        import numpy as np

        rel = f"numpy/{what}.npz"
        with fixed_zip_clock():
            (np.savez_compressed if compressed else np.savez)(self._path(rel), allow_pickle=True, **arrays)
        has_pickle = any(a.dtype.hasobject for a in arrays.values())
        self._entry(rel, "numpy", what, "numpy_npz", 3 if has_pickle else None, "numpy.load",
                    has_pickle=has_pickle, compression="deflate" if compressed else "stored")

    # -- output ----------------------------------------------------------------------------
    def finish(self):
        self.entries.sort(key=lambda e: e["file"])
        (self.out / "manifest.json").write_text(json.dumps(self.entries, indent=1, sort_keys=True) + "\n")
        (self.out / "skipped.json").write_text(json.dumps(self.skipped, indent=1, sort_keys=True) + "\n")


# --------------------------------------------------------------------------------------
# Content, one function per library
# --------------------------------------------------------------------------------------


def gen_stdlib(c: Corpus):
    import array
    import collections
    import datetime as dt
    import decimal
    import fractions
    import http
    import ipaddress
    import pathlib
    import random
    import re
    import signal
    import socket
    import ssl
    import uuid
    import zoneinfo
    import argparse as ap
    import urllib.parse

    L = "stdlib"
    plain = {
        "none": None, "true": True, "false": False, "int": 42, "neg": -7, "big": 2**70, "huge": -(10**40),
        "float": 3.25, "nan": float("nan"), "inf": float("-inf"), "str": "héllo\n\u2603", "empty": "",
        "list": [1, 2.0, "three", [4, [5]]], "tuple": (1, "a", None), "tuple0": (), "dict": {1: "a", "b": [2]},
    }
    c.raw(L, "plain_data", plain)
    recursive = [1, 2]
    recursive.append(recursive)
    c.raw(L, "recursive_list", recursive)
    shared = [0.5] * 3
    c.raw(L, "shared_refs", {"a": shared, "b": shared, "c": (shared, shared)})
    c.raw(L, "bytes", b"\x00\x01binary\xff" * 3)
    c.raw(L, "bytes_large", bytes(range(256)) * 300)  # > 64 KiB: FRAME, BINBYTES
    c.raw(L, "bytearray", bytearray(b"mutable\x00\xff"))
    c.raw(L, "str_large", "x" * 70000)
    c.raw(L, "complex", complex(1.5, -2.0))
    c.raw(L, "set", {1, 2, 3, "a", "b"})
    c.raw(L, "frozenset", frozenset({"x", "y", 3}))
    c.raw(L, "range", range(2, 20, 3))
    c.raw(L, "slice", slice(1, None, 2))
    c.raw(L, "ellipsis_notimpl", [Ellipsis, NotImplemented])
    c.raw(L, "builtin_types", [int, float, str, bytes, list, dict, type(None)])
    # enums: Enum, IntEnum, Flag/IntFlag, StrEnum from the standard library
    c.raw(L, "enum_intenum", [http.HTTPStatus.OK, http.HTTPStatus.NOT_FOUND])
    c.raw(L, "enum_signal", signal.Signals.SIGTERM)
    c.raw(L, "enum_socket", [socket.AddressFamily.AF_INET, socket.SocketKind.SOCK_STREAM])
    c.raw(L, "enum_flag_re", re.IGNORECASE | re.MULTILINE)
    c.raw(L, "enum_intflag_ssl", ssl.Options.OP_NO_SSLv2 | ssl.Options.OP_NO_SSLv3)
    c.raw(L, "enum_ssl_tlsversion", ssl.TLSVersion.TLSv1_2)
    c.raw(L, "enum_uuid_safe", uuid.SafeUUID.safe)
    if hasattr(http, "HTTPMethod"):
        c.raw(L, "enum_strenum_httpmethod", http.HTTPMethod.GET)
    # datetime and time zones
    tz_ist = dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")
    c.raw(L, "datetime_naive", dt.datetime(2024, 1, 2, 3, 4, 5, 678901))
    c.raw(L, "datetime_utc", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc))
    c.raw(L, "datetime_fixed_offset", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=tz_ist))
    c.raw(L, "datetime_zoneinfo", dt.datetime(2024, 7, 1, 12, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")))
    c.raw(L, "zoneinfo", zoneinfo.ZoneInfo("America/New_York"))
    c.raw(L, "zoneinfo_nocache", zoneinfo.ZoneInfo.no_cache("Asia/Tokyo"))
    c.raw(L, "date", dt.date(1999, 12, 31))
    c.raw(L, "time", dt.time(23, 59, 58, 1, tzinfo=dt.timezone.utc))
    c.raw(L, "timedelta", dt.timedelta(days=-1, seconds=5, microseconds=7))
    c.raw(L, "timezone", [dt.timezone.utc, tz_ist])
    # numbers
    c.raw(L, "decimal", [decimal.Decimal("3.14159"), decimal.Decimal("-0"), decimal.Decimal("NaN"),
                         decimal.Decimal("Infinity")])
    c.raw(L, "fraction", fractions.Fraction(22, 7))
    c.raw(L, "uuid", [uuid.UUID("12345678-1234-5678-1234-567812345678"), uuid.uuid5(uuid.NAMESPACE_DNS, "x")])
    # paths
    c.raw(L, "pathlib_pure", [pathlib.PurePosixPath("/etc/hosts"), pathlib.PureWindowsPath(r"C:\x\y.txt"),
                              pathlib.PurePath("rel/p")])
    c.raw(L, "pathlib_posix", [pathlib.PosixPath("/tmp/model.pt"), pathlib.Path("data/x.csv")])
    # collections
    c.raw(L, "ordereddict", collections.OrderedDict([("b", 1), ("a", 2)]))
    dd = collections.defaultdict(list)
    dd["k"].append(1)
    c.raw(L, "defaultdict_list", dd)
    di = collections.defaultdict(int, {"a": 3})
    c.raw(L, "defaultdict_int", di)
    c.raw(L, "defaultdict_dict", collections.defaultdict(dict, {"x": {}}))
    c.raw(L, "defaultdict_set", collections.defaultdict(set))
    c.raw(L, "deque", collections.deque([1, 2, 3], maxlen=5))
    c.raw(L, "deque_nomax", collections.deque(["a"]))
    c.raw(L, "counter", collections.Counter("abracadabra"))
    c.raw(L, "chainmap", collections.ChainMap({"a": 1}, {"b": 2}))
    c.raw(L, "namedtuple_parseresult", urllib.parse.urlparse("https://example.org/a?b=c#d"))
    c.raw(L, "structseq_struct_time", time.gmtime(0))
    c.raw(L, "simplenamespace", types.SimpleNamespace(lr=0.1, epochs=3))
    c.raw(L, "argparse_namespace", ap.Namespace(lr=0.01, batch_size=32, name="run1"))
    # misc
    c.raw(L, "re_pattern", [re.compile(r"[a-z]+\d*", re.IGNORECASE), re.compile(rb"\x00+")])
    c.raw(L, "array_double", array.array("d", [1.0, 2.5]))
    c.raw(L, "array_int", array.array("i", [1, -2, 3]))
    c.raw(L, "array_bytes", array.array("B", b"abc"))
    c.raw(L, "array_unicode", array.array("u", "hé"))
    c.raw(L, "ipaddress", [ipaddress.IPv4Address("10.0.0.1"), ipaddress.IPv6Address("::1"),
                           ipaddress.IPv4Network("192.168.0.0/24"), ipaddress.IPv6Interface("fe80::1/64")])
    r = random.Random(1234)
    c.raw(L, "random_state", r.getstate())
    c.raw(L, "random_instance", r)


def gen_custom(c: Corpus):
    mod = install_sample_module()
    c.raw("custom", "sample_record", mod.SampleRecord("run1", [1, 2, 3]), custom=True)


def gen_numpy(c: Corpus):
    import numpy as np

    L = "numpy"
    rng = np.random.default_rng(0)
    arrays = {
        "float64": rng.standard_normal((3, 4)),
        "float32": rng.standard_normal(5).astype(np.float32),
        "float16": np.arange(4, dtype=np.float16),
        "longdouble": np.arange(3, dtype=np.longdouble),
        "int8": np.arange(-3, 3, dtype=np.int8),
        "int16": np.arange(6, dtype=np.int16).reshape(2, 3),
        "int32": np.arange(6, dtype=np.int32),
        "int64": np.arange(6, dtype=np.int64),
        "uint8": np.arange(250, 256, dtype=np.uint8),
        "uint16": np.arange(3, dtype=np.uint16),
        "uint32": np.arange(3, dtype=np.uint32),
        "uint64": np.array([2**64 - 1], dtype=np.uint64),
        "complex64": (np.arange(3) + 1j).astype(np.complex64),
        "complex128": np.array([1 + 2j, -3.5j]),
        "bool": np.array([True, False, True]),
        "datetime64": np.array(["2024-01-01T00:00", "2024-06-30T12:30"], dtype="datetime64[ns]"),
        "timedelta64": np.array([1, 2, 3], dtype="timedelta64[s]"),
        "unicode": np.array(["a", "bcd"]),
        "bytes": np.array([b"ab", b"c"]),
        "structured": np.array([(1, (2.0, 3.0), "ab")], dtype=[("x", "<i4"), ("y", "<f8", (2,)), ("n", "U5")]),
        "object": np.array([1, "a", None, {"k": [1]}, 2.5], dtype=object),
        "zero_d": np.array(3.5),
        "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "empty": np.zeros((0, 3)),
        "big": np.arange(20000, dtype=np.float64),  # 160 KB: frames / BINBYTES8 paths
        "noncontiguous": np.arange(20.0).reshape(4, 5)[:, ::2],
    }
    for name, a in arrays.items():
        if name == "longdouble":  # x87 80-bit values in 16 bytes: 6 padding bytes are uninitialised
            c.raw(L, f"array_{name}", a, deterministic=False, note="numpy copies uninitialised padding bytes")
        else:
            c.raw(L, f"array_{name}", a)
    c.raw(L, "masked_array", np.ma.array([1.0, 2.0, 3.0], mask=[False, True, False], fill_value=-1.0))
    c.raw(L, "matrix", np.matrix([[1, 2], [3, 4]]))
    c.raw(L, "recarray", np.rec.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]))
    # random generators
    c.raw(L, "random_generator_pcg64", np.random.default_rng(42))
    c.raw(L, "random_randomstate", np.random.RandomState(0))
    c.raw(L, "random_get_state", np.random.RandomState(1).get_state())
    for bg in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"):
        c.raw(L, f"random_bitgen_{bg.lower()}", getattr(np.random, bg)(7))
    c.raw(L, "random_generator_mt19937", np.random.Generator(np.random.MT19937(3)))
    c.raw(L, "random_seedsequence", np.random.SeedSequence(1234))
    # scalars and dtypes
    c.raw(L, "scalars", [np.float64(1.5), np.float32(2.5), np.float16(0.5), np.int64(7), np.int32(-1),
                         np.uint8(255), np.bool_(True), np.complex128(1 - 1j), np.str_("s"), np.bytes_(b"b")])
    c.raw(L, "scalar_datetime64", [np.datetime64("2024-01-01"), np.timedelta64(5, "h")])
    c.raw(L, "scalar_void", np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")])[0])
    c.raw(L, "dtypes", [np.dtype("float32"), np.dtype("<i8"), np.dtype([("a", "u1"), ("b", "f4", (2,))]),
                        np.dtype("datetime64[ms]"), np.dtype("U3"), np.dtype(object)])
    c.raw(L, "dict_of_arrays", {"w": arrays["float32"], "idx": arrays["int64"], "meta": {"shape": (5,)}})
    # .npy / .npz
    for name in ("float64", "int32", "bool", "structured", "fortran", "datetime64", "complex128", "zero_d"):
        c.numpy_save(f"npy_{name}", arrays[name])
    c.numpy_save("npy_object", arrays["object"])
    c.numpy_save("npy_object_nested", np.array([np.arange(3), [1, 2], "x"], dtype=object))
    c.numpy_savez("npz_numeric", {"a": arrays["float64"], "b": arrays["int8"]})
    c.numpy_savez("npz_object", {"a": arrays["float64"], "obj": arrays["object"]})
    c.numpy_savez("npz_compressed_numeric", {"a": arrays["float64"], "b": arrays["uint8"]}, compressed=True)
    c.numpy_savez("npz_compressed_object", {"obj": arrays["object"], "s": arrays["structured"]}, compressed=True)
    # joblib with numpy arrays (arrays written raw between pickle opcodes)
    c.joblib_dump(L, "arrays_dict", {"a": arrays["float64"], "b": arrays["int32"], "f": arrays["fortran"],
                                     "o": arrays["object"], "s": arrays["structured"], "z": arrays["zero_d"]})


def gen_scipy(c: Corpus):
    import numpy as np
    import scipy.interpolate
    import scipy.sparse as sp
    import scipy.spatial
    import scipy.stats as st

    L = "scipy"
    dense = np.array([[0, 1.5, 0], [2.0, 0, 0], [0, 0, 3.25]])
    for fmt in ("csr", "csc", "coo", "bsr", "dia", "lil", "dok"):
        c.raw(L, f"sparse_{fmt}_matrix", getattr(sp, f"{fmt}_matrix")(dense))
    for fmt in ("csr", "coo"):
        c.raw(L, f"sparse_{fmt}_array", getattr(sp, f"{fmt}_array")(dense))
    c.joblib_dump(L, "sparse_csr_matrix", sp.csr_matrix(dense), compressions=(None, "zlib"))
    # frozen distributions pickle numpy's global RandomState: seed it first
    for what, make in (("stats_norm_frozen", lambda: st.norm(loc=1.0, scale=2.0)),
                       ("stats_gamma_frozen", lambda: st.gamma(2.0, scale=0.5)),
                       ("stats_poisson_frozen", lambda: st.poisson(3.0)),
                       ("stats_multivariate_normal_frozen", lambda: st.multivariate_normal(mean=[0.0, 1.0]))):
        np.random.seed(0)
        c.raw(L, what, make())
    c.raw(L, "spatial_kdtree", scipy.spatial.KDTree(dense))
    c.raw(L, "spatial_ckdtree", scipy.spatial.cKDTree(dense))
    c.raw(L, "interp1d", scipy.interpolate.interp1d([0.0, 1.0, 2.0], [0.0, 1.0, 4.0]))
    c.raw(L, "cubic_spline", scipy.interpolate.CubicSpline([0.0, 1.0, 2.0], [0.0, 1.0, 4.0]))


def gen_pandas(c: Corpus):
    import numpy as np
    import pandas as pd

    L = "pandas"
    n = 4
    df = pd.DataFrame({
        "int": np.arange(n, dtype="int64"),
        "float": np.linspace(0, 1, n),
        "bool": [True, False, True, False],
        "object": pd.Series(["a", None, {"k": 1}, 3], dtype=object),
        "string": pd.array(["w", "x", None, "z"], dtype="string"),
        "str_default": ["p", "q", "r", "s"],
        "category": pd.Categorical(["lo", "hi", "lo", "mid"], categories=["lo", "mid", "hi"], ordered=True),
        "dt_naive": pd.date_range("2024-01-01", periods=n, freq="D"),
        "dt_utc": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
        "dt_paris": pd.date_range("2024-03-30", periods=n, freq="D", tz="Europe/Paris"),
        "timedelta": pd.to_timedelta([1, 2, 3, 4], unit="s"),
        "period": pd.period_range("2024-01", periods=n, freq="M"),
        "interval": pd.interval_range(0, n),
        "sparse": pd.arrays.SparseArray([0.0, 0.0, 1.5, 0.0]),
        "Int64": pd.array([1, None, 3, 4], dtype="Int64"),
        "boolean": pd.array([True, None, False, True], dtype="boolean"),
        "Float64": pd.array([0.5, None, 1.5, 2.5], dtype="Float64"),
        "uint8": np.arange(n, dtype="uint8"),
        "complex": np.arange(n) * 1j,
    })
    c.raw(L, "dataframe_all_dtypes", df)
    c.pandas_to_pickle(L, "dataframe_all_dtypes", df)
    mi = pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["letter", "num"])
    df_mi = pd.DataFrame({"v": np.arange(4.0)}, index=mi)
    c.raw(L, "dataframe_multiindex", df_mi)
    c.pandas_to_pickle(L, "dataframe_multiindex", df_mi)
    s = pd.Series(np.arange(5.0), index=pd.date_range("2024-01-01", periods=5, freq="D"), name="ts")
    c.raw(L, "series_datetimeindex_freq", s)
    c.pandas_to_pickle(L, "series_datetimeindex_freq", s)
    singles = {
        "series_int": pd.Series([1, 2, 3]),
        "series_category": pd.Series(pd.Categorical(["x", "y", "x"])),
        "series_string": pd.Series(["a", None], dtype="string"),
        "series_dt_tz": pd.Series(pd.date_range("2024-01-01", periods=3, tz="America/New_York")),
        "series_period": pd.Series(pd.period_range("2024Q1", periods=2, freq="Q")),
        "series_interval": pd.Series(pd.arrays.IntervalArray.from_breaks([0, 1, 5])),
        "series_sparse": pd.Series(pd.arrays.SparseArray([0, 0, 7])),
        "index_range": pd.RangeIndex(0, 10, 2),
        "index_categorical": pd.CategoricalIndex(["a", "b", "a"]),
        "index_interval": pd.IntervalIndex.from_breaks([0, 1, 2]),
        "index_period": pd.period_range("2020", periods=3, freq="Y"),
        "index_timedelta": pd.timedelta_range("1 day", periods=3),
        "index_datetime_tz": pd.date_range("2024-01-01", periods=3, freq="15min", tz="Asia/Kolkata"),
        "scalars": [pd.Timestamp("2024-01-01 12:00", tz="UTC"), pd.Timestamp("2024-01-01"), pd.Timedelta("1h"),
                    pd.Period("2024-03", freq="M"), pd.Interval(0, 1, closed="left"), pd.NaT, pd.NA],
        "offsets": [pd.offsets.MonthEnd(2), pd.offsets.Day(3), pd.offsets.BusinessDay(), pd.DateOffset(months=1)],
        "categorical_dtype": pd.CategoricalDtype(["a", "b"], ordered=True),
        "dtypes": [pd.DatetimeTZDtype(tz="UTC"), pd.PeriodDtype("D"), pd.IntervalDtype("int64"),
                   pd.SparseDtype("float64"), pd.Int64Dtype(), pd.StringDtype()],
        "dataframe_numeric": pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=list("abc")),
    }
    for name, obj in singles.items():
        c.raw(L, name, obj)
        if isinstance(obj, (pd.Series, pd.DataFrame, pd.Index)):
            c.pandas_to_pickle(L, name, obj, all_compressions=False)
    c.pandas_to_pickle(L, "scalars", singles["scalars"], all_compressions=False)
    c.joblib_dump(L, "dataframe_all_dtypes", df, compressions=(None, "zlib", "lz4"))


def _sk_data():
    import numpy as np
    from sklearn.datasets import make_classification, make_regression

    X, y = make_classification(n_samples=60, n_features=5, n_informative=3, n_redundant=0, n_classes=2,
                               random_state=0)
    Xr, yr = make_regression(n_samples=60, n_features=5, random_state=0)
    X3 = np.vstack([X, X[:30] + 3])
    y3 = np.concatenate([y, np.full(30, 2)])
    return X, y, Xr, yr, X3, y3


def gen_sklearn(c: Corpus):
    import numpy as np
    import pandas as pd
    from sklearn import (calibration, cluster, compose, decomposition, discriminant_analysis, ensemble,
                         feature_extraction, impute, linear_model, mixture, model_selection, naive_bayes,
                         neighbors, neural_network, pipeline, preprocessing, svm, tree)

    L = "sklearn"
    X, y, Xr, yr, X3, y3 = _sk_data()
    texts = ["the cat sat", "the dog ran", "a cat and a dog", "dogs and cats run", "the end"] * 4
    ytext = [0, 1, 0, 1, 0] * 4
    frame = pd.DataFrame({"num": np.arange(8.0), "num2": np.arange(8.0) ** 2,
                          "cat": ["a", "b", "a", "c", "b", "a", "c", "c"]})
    yframe = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    Xpos = np.abs(X)

    models = {
        "logistic_regression": (linear_model.LogisticRegression(max_iter=200), X, y),
        "logistic_regression_multiclass": (linear_model.LogisticRegression(max_iter=300), X3, y3),
        "linear_regression": (linear_model.LinearRegression(), Xr, yr),
        "ridge": (linear_model.Ridge(alpha=0.5), Xr, yr),
        "lasso": (linear_model.Lasso(alpha=0.1), Xr, yr),
        "sgd_classifier": (linear_model.SGDClassifier(random_state=0, max_iter=20, tol=None), X, y),
        "random_forest_classifier": (ensemble.RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0), X, y),
        "random_forest_regressor": (ensemble.RandomForestRegressor(n_estimators=3, max_depth=3, random_state=0), Xr, yr),
        "extra_trees": (ensemble.ExtraTreesClassifier(n_estimators=3, max_depth=3, random_state=0), X, y),
        "gradient_boosting": (ensemble.GradientBoostingClassifier(n_estimators=3, max_depth=2, random_state=0), X, y),
        "gradient_boosting_regressor": (ensemble.GradientBoostingRegressor(n_estimators=3, max_depth=2, random_state=0), Xr, yr),
        "hist_gradient_boosting": (ensemble.HistGradientBoostingClassifier(max_iter=3, random_state=0), X, y),
        "hist_gradient_boosting_regressor": (ensemble.HistGradientBoostingRegressor(max_iter=3, random_state=0), Xr, yr),
        "adaboost": (ensemble.AdaBoostClassifier(n_estimators=3, random_state=0), X, y),
        "isolation_forest": (ensemble.IsolationForest(n_estimators=3, random_state=0), X, None),
        "voting_classifier": (ensemble.VotingClassifier([("lr", linear_model.LogisticRegression()),
                                                         ("nb", naive_bayes.GaussianNB())]), X, y),
        "svc": (svm.SVC(random_state=0), X, y),
        "svc_probability": (svm.SVC(probability=True, random_state=0), X, y),
        "svr": (svm.SVR(), Xr, yr),
        "linear_svc": (svm.LinearSVC(random_state=0), X, y),
        "gaussian_nb": (naive_bayes.GaussianNB(), X, y),
        "multinomial_nb": (naive_bayes.MultinomialNB(), Xpos, y),
        "knn_classifier": (neighbors.KNeighborsClassifier(n_neighbors=3), X, y),
        "knn_kdtree": (neighbors.KNeighborsClassifier(n_neighbors=3, algorithm="kd_tree"), X, y),
        "knn_balltree": (neighbors.KNeighborsRegressor(n_neighbors=3, algorithm="ball_tree"), Xr, yr),
        "decision_tree": (tree.DecisionTreeClassifier(max_depth=3, random_state=0), X, y),
        "decision_tree_regressor": (tree.DecisionTreeRegressor(max_depth=3, random_state=0), Xr, yr),
        "mlp_classifier": (neural_network.MLPClassifier(hidden_layer_sizes=(4,), max_iter=20, random_state=0), X, y),
        "kmeans": (cluster.KMeans(n_clusters=2, n_init=1, random_state=0), X, None),
        "dbscan": (cluster.DBSCAN(eps=1.5), X, None),
        "pca": (decomposition.PCA(n_components=2, random_state=0), X, None),
        "truncated_svd": (decomposition.TruncatedSVD(n_components=2, random_state=0), X, None),
        "nmf": (decomposition.NMF(n_components=2, max_iter=50, random_state=0), Xpos, None),
        "lda": (discriminant_analysis.LinearDiscriminantAnalysis(), X, y),
        "gaussian_mixture": (mixture.GaussianMixture(n_components=2, random_state=0), X, None),
        "standard_scaler": (preprocessing.StandardScaler(), X, None),
        "minmax_scaler": (preprocessing.MinMaxScaler(), X, None),
        "robust_scaler": (preprocessing.RobustScaler(), X, None),
        "quantile_transformer": (preprocessing.QuantileTransformer(n_quantiles=10, random_state=0), X, None),
        "power_transformer": (preprocessing.PowerTransformer(), X, None),
        "polynomial_features": (preprocessing.PolynomialFeatures(2), X, None),
        "onehot_encoder": (preprocessing.OneHotEncoder(handle_unknown="ignore"), frame[["cat"]], None),
        "ordinal_encoder": (preprocessing.OrdinalEncoder(), frame[["cat"]], None),
        "function_transformer": (preprocessing.FunctionTransformer(np.log1p), Xpos, None),
        "simple_imputer": (impute.SimpleImputer(strategy="median"), X, None),
        "knn_imputer": (impute.KNNImputer(n_neighbors=2), X, None),
        "tfidf_vectorizer": (feature_extraction.text.TfidfVectorizer(stop_words="english"), texts, None),
        "count_vectorizer": (feature_extraction.text.CountVectorizer(ngram_range=(1, 2)), texts, None),
        "calibrated_classifier": (calibration.CalibratedClassifierCV(linear_model.LogisticRegression(), cv=2), X, y),
        "pipeline_scaler_logreg": (pipeline.Pipeline([("scale", preprocessing.StandardScaler()),
                                                      ("clf", linear_model.LogisticRegression())]), X, y),
        "pipeline_tfidf_nb": (pipeline.make_pipeline(feature_extraction.text.TfidfVectorizer(),
                                                     naive_bayes.MultinomialNB()), texts, ytext),
        "column_transformer_pipeline": (pipeline.Pipeline([
            ("prep", compose.ColumnTransformer([
                ("num", preprocessing.StandardScaler(), ["num", "num2"]),
                ("cat", preprocessing.OneHotEncoder(handle_unknown="ignore"), ["cat"]),
            ])),
            ("clf", linear_model.LogisticRegression()),
        ]), frame, yframe),
        "grid_search_cv": (model_selection.GridSearchCV(linear_model.LogisticRegression(), {"C": [0.1, 1.0]}, cv=2),
                           X, y),
    }
    nondet = {
        "count_vectorizer": "CountVectorizer keeps _stop_words_id = id(stop_words), a memory address",
        "tfidf_vectorizer": "CountVectorizer keeps _stop_words_id = id(stop_words), a memory address",
        "pipeline_tfidf_nb": "CountVectorizer keeps _stop_words_id = id(stop_words), a memory address",
        "grid_search_cv": "cv_results_ holds measured fit/score times",
    }
    for name, (est, Xf, yf) in models.items():
        est.fit(Xf) if yf is None else est.fit(Xf, yf)
        note = nondet.get(name)
        c.raw(L, name, est, deterministic=note is None, note=note)
        c.joblib_dump(L, name, est, deterministic=note is None, note=note)
    le = preprocessing.LabelEncoder().fit(["paris", "tokyo", "paris", "amsterdam"])
    c.raw(L, "label_encoder", le)
    c.joblib_dump(L, "label_encoder", le)
    lb = preprocessing.LabelBinarizer().fit([1, 2, 6, 4, 2])
    c.raw(L, "label_binarizer", lb)
    c.raw(L, "kfold", model_selection.KFold(n_splits=3, shuffle=True, random_state=0))
    c.raw(L, "unfitted_pipeline", pipeline.make_pipeline(preprocessing.StandardScaler(), svm.SVC()))


def gen_xgboost(c: Corpus):
    import xgboost as xgb

    L = "xgboost"
    X, y, Xr, yr, _, _ = _sk_data()
    clf = xgb.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1, random_state=0, tree_method="hist")
    clf.fit(X, y)
    reg = xgb.XGBRegressor(n_estimators=3, max_depth=2, n_jobs=1, random_state=0, tree_method="hist")
    reg.fit(Xr, yr)
    booster = xgb.train({"max_depth": 2, "objective": "binary:logistic", "nthread": 1, "seed": 0,
                         "tree_method": "hist"}, xgb.DMatrix(X, label=y), num_boost_round=3)
    for name, obj in (("xgb_classifier", clf), ("xgb_regressor", reg), ("booster", booster)):
        c.raw(L, name, obj)
        c.joblib_dump(L, name, obj)


def gen_lightgbm(c: Corpus):
    import lightgbm as lgb

    L = "lightgbm"
    X, y, Xr, yr, _, _ = _sk_data()
    common = dict(n_estimators=3, num_leaves=4, min_child_samples=5, n_jobs=1, random_state=0,
                  deterministic=True, force_row_wise=True, verbose=-1)
    clf = lgb.LGBMClassifier(**common).fit(X, y)
    reg = lgb.LGBMRegressor(**common).fit(Xr, yr)
    booster = lgb.train({"objective": "binary", "num_leaves": 4, "min_data_in_leaf": 5, "num_threads": 1,
                         "seed": 0, "deterministic": True, "force_row_wise": True, "verbose": -1},
                        lgb.Dataset(X, label=y), num_boost_round=3)
    for name, obj in (("lgbm_classifier", clf), ("lgbm_regressor", reg), ("booster", booster)):
        c.raw(L, name, obj)
        c.joblib_dump(L, name, obj)


def gen_torch(c: Corpus):
    import random

    import numpy as np
    import torch
    from torch import nn

    L = "torch"
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    # pickle.dumps of a tensor embeds torch.save(storage, legacy format), whose storage key is
    # the storage's memory address: those files differ between runs.
    nd = "auto"

    def both(what, obj, raw=True, protocols=PROTOCOLS, zip_protocols=(2,)):
        if raw:
            c.raw(L, what, obj, protocols=protocols, deterministic=nd)
        c.torch_save(L, what, obj, protocols=zip_protocols)

    base = torch.randn(3, 4)
    tensors = {
        "float32": base,
        "float64": torch.arange(4, dtype=torch.float64),
        "float16": torch.ones(3, dtype=torch.float16),
        "bfloat16": torch.randn(4).to(torch.bfloat16),
        "int64": torch.arange(6).reshape(2, 3),
        "int32": torch.arange(3, dtype=torch.int32),
        "int8": torch.tensor([-1, 2], dtype=torch.int8),
        "uint8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False]),
        "complex64": torch.tensor([1 + 2j, 3 - 1j], dtype=torch.complex64),
        "zero_d": torch.tensor(2.5),
        "transposed_view": base.t(),
        "requires_grad": torch.randn(2, requires_grad=True),
    }
    for name, t in tensors.items():
        both(f"tensor_{name}", t)
    both("tensors_shared_storage", {"full": base, "row": base[1], "slice": base[:, 1:3]})
    both("parameter", nn.Parameter(torch.randn(2, 2)))
    idx = torch.tensor([[0, 1, 1], [2, 0, 2]])
    both("tensor_sparse_coo", torch.sparse_coo_tensor(idx, torch.tensor([3.0, 4.0, 5.0]), (2, 3)))
    both("tensor_sparse_csr", torch.tensor([[0.0, 1.0], [2.0, 0.0]]).to_sparse_csr())
    try:
        q = torch.quantize_per_tensor(torch.tensor([-1.0, 0.0, 1.0, 2.0]), 0.1, 10, torch.quint8)
        both("tensor_quantized", q)
    except Exception as exc:  # noqa: BLE001
        c.skip(L, "tensor_quantized", "any", None, f"{type(exc).__name__}: {exc}")
    c.raw(L, "size", torch.Size([2, 3, 4]))
    c.raw(L, "dtypes", [torch.float32, torch.int64, torch.bfloat16, torch.bool, torch.complex64])
    c.raw(L, "devices", [torch.device("cpu"), torch.device("cuda", 0), torch.device("meta")])
    c.raw(L, "memory_format_layout", [torch.contiguous_format, torch.channels_last, torch.strided])
    c.torch_save(L, "size_dtype_device", {"size": torch.Size([2, 3]), "dtype": torch.float16,
                                          "device": torch.device("cpu")}, legacy=True)

    torch.manual_seed(0)
    modules = {
        "linear": nn.Linear(4, 3),
        "conv2d": nn.Conv2d(1, 2, kernel_size=3),
        "sequential": nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                    nn.Linear(2, 2), nn.Dropout(0.1), nn.Softmax(dim=-1)),
        "lstm": nn.LSTM(input_size=4, hidden_size=3, num_layers=1, batch_first=True),
        "gru": nn.GRU(3, 2),
        "embedding": nn.Embedding(10, 4, padding_idx=0),
        "batchnorm": nn.BatchNorm1d(4),
        "layernorm": nn.LayerNorm(4),
        "multihead_attention": nn.MultiheadAttention(8, 2),
        "transformer_encoder": nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True),
            num_layers=1, enable_nested_tensor=False),
        "module_dict_list": nn.ModuleDict({"a": nn.ModuleList([nn.Linear(2, 2), nn.Tanh()]),
                                           "b": nn.GELU()}),
    }
    modules["batchnorm"].train()(torch.randn(5, 4))  # non-trivial running stats
    for name, m in modules.items():
        both(f"module_{name}", m)
        both(f"state_dict_{name}", m.state_dict())

    # optimizers and schedulers after a couple of steps
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    xb, yb = torch.randn(16, 4), torch.randint(0, 2, (16,))
    opts = {
        "sgd": torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        "adam": torch.optim.Adam(model.parameters(), lr=1e-3),
        "adamw": torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01),
    }
    scheds = {
        "steplr": torch.optim.lr_scheduler.StepLR(opts["sgd"], step_size=1, gamma=0.5),
        "cosine": torch.optim.lr_scheduler.CosineAnnealingLR(opts["adam"], T_max=10),
        "onecycle": torch.optim.lr_scheduler.OneCycleLR(opts["adamw"], max_lr=0.01, total_steps=10),
        "plateau": torch.optim.lr_scheduler.ReduceLROnPlateau(opts["sgd"]),
        "exponential": torch.optim.lr_scheduler.ExponentialLR(opts["adam"], gamma=0.9),
    }
    for _ in range(2):
        for o in opts.values():
            o.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            o.step()
        for name, s in scheds.items():
            s.step(loss.item()) if name == "plateau" else s.step()
    for name, o in opts.items():
        both(f"optimizer_{name}_state_dict", o.state_dict())
    for name, s in scheds.items():
        both(f"scheduler_{name}_state_dict", s.state_dict())

    np.random.seed(0)
    random.seed(0)
    checkpoint = {
        "epoch": 3,
        "global_step": 120,
        "model_state_dict": model.state_dict(),
        "optimizer_state_dict": opts["adamw"].state_dict(),
        "scheduler_state_dict": scheds["onecycle"].state_dict(),
        "loss": 0.4213,
        "loss_tensor": loss.detach(),
        "best_metric": torch.tensor(0.87),
        "torch_rng_state": torch.get_rng_state(),
        "numpy_rng_state": np.random.get_state(),
        "python_rng_state": random.getstate(),
        "numpy_generator": np.random.default_rng(5),
        "config": {"lr": 1e-3, "layers": [4, 8, 2], "name": "demo"},
    }
    both("checkpoint", checkpoint, zip_protocols=(2, 4, 5))
    import argparse

    both("checkpoint_with_args", {"args": argparse.Namespace(lr=0.1, epochs=2, arch="mlp"),
                                  "state_dict": model.state_dict(), "epoch": 1})
    both("whole_model_sequential", model)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0) if hasattr(torch, "amp") else None
    if scaler is not None:
        both("grad_scaler_state_dict", scaler.state_dict())


def gen_transformers(c: Corpus):
    import torch
    from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, GenerationConfig

    L = "transformers"
    torch.manual_seed(0)
    bert_cfg = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                          vocab_size=99, max_position_embeddings=64)
    gpt_cfg = GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=99, n_positions=64, bos_token_id=0,
                         eos_token_id=1)
    bert = BertModel(bert_cfg).eval()
    gpt = GPT2LMHeadModel(gpt_cfg).eval()
    c.raw(L, "bert_config", bert_cfg)
    c.raw(L, "gpt2_config", gpt_cfg)
    c.raw(L, "generation_config", GenerationConfig(max_new_tokens=5, do_sample=False))
    for name, m in (("bert_model", bert), ("gpt2_lm_head_model", gpt)):
        c.raw(L, name, m, protocols=(2, 4, 5), deterministic="auto")
        c.torch_save(L, name, m)
        c.torch_save(L, f"{name}_state_dict", m.state_dict())
    # a pipeline with an in-memory tokenizer (no download)
    try:
        from tokenizers import Tokenizer, models, pre_tokenizers
        from transformers import PreTrainedTokenizerFast, pipeline

        vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "cat"])}
        tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")
        pipe = pipeline("feature-extraction", model=bert, tokenizer=fast)
        c.raw(L, "feature_extraction_pipeline", pipe, protocols=(2, 4, 5), deterministic="auto")
        c.torch_save(L, "feature_extraction_pipeline", pipe, legacy=False)
    except Exception as exc:  # noqa: BLE001
        c.skip(L, "feature_extraction_pipeline", "any", None, f"{type(exc).__name__}: {exc}"[:300])


def gen_statsmodels(c: Corpus):
    import numpy as np
    import pandas as pd
    import statsmodels.api as sm

    L = "statsmodels"
    rng = np.random.default_rng(0)
    X = sm.add_constant(rng.standard_normal((30, 2)))
    y = X @ np.array([1.0, 2.0, -1.0]) + rng.standard_normal(30) * 0.1
    ols = sm.OLS(y, X).fit()
    c.raw(L, "ols_results", ols)
    df = pd.DataFrame(X[:, 1:], columns=["a", "b"])
    ols_pd = sm.OLS(pd.Series(y, name="y"), sm.add_constant(df)).fit()
    c.raw(L, "ols_results_pandas", ols_pd)
    ybin = (X[:, 1] + rng.standard_normal(30) > 0).astype(float)  # noisy: no perfect separation
    glm = sm.GLM(ybin, X, family=sm.families.Binomial()).fit()
    c.raw(L, "glm_binomial_results", glm)
    buf = io.BytesIO()
    ols.save(buf)  # statsmodels' own save(): pickle.dump
    rel = "statsmodels/ols_results.save.pickle"
    c._path(rel).write_bytes(buf.getvalue())
    c._entry(rel, L, "ols_results_save", "raw", pickle.HIGHEST_PROTOCOL, "pickle.load")
    c.joblib_dump(L, "ols_results", ols, compressions=(None, "zlib"))


def gen_networkx(c: Corpus):
    import networkx as nx

    L = "networkx"
    g = nx.Graph()
    g.add_edge("a", "b", weight=1.5)
    g.add_edge("b", "c", label="x")
    g.graph["name"] = "tiny"
    c.raw(L, "graph", g)
    d = nx.DiGraph([(1, 2), (2, 3), (3, 1)])
    c.raw(L, "digraph", d)
    c.raw(L, "multigraph", nx.MultiGraph([(1, 2), (1, 2)]))
    c.raw(L, "karate_club", nx.karate_club_graph())


def gen_sympy(c: Corpus):
    import sympy

    L = "sympy"
    x, y, z = sympy.symbols("x y z")
    pos = sympy.Symbol("p", positive=True)
    c.raw(L, "expression", x**2 + sympy.sin(y) / z - sympy.Rational(3, 4) * pos)
    c.raw(L, "matrix", sympy.Matrix([[x, 1], [0, y]]))
    c.raw(L, "equation", sympy.Eq(x + 1, sympy.sqrt(y)))
    c.raw(L, "numbers", [sympy.Integer(7), sympy.Rational(1, 3), sympy.Float("1.25"), sympy.pi, sympy.oo, sympy.I])
    c.raw(L, "integral", sympy.Integral(sympy.exp(-x**2), (x, 0, sympy.oo)))


def gen_dill_cloudpickle(c: Corpus):
    import cloudpickle
    import dill
    import numpy as np

    data = {"a": [1, 2, 3], "b": (1.5, "x"), "arr": np.arange(6.0).reshape(2, 3), "n": None}
    c.raw("dill", "plain_dict", data, dumps=dill.dumps)
    c.raw("dill", "numpy_array", np.arange(5, dtype=np.int32), dumps=dill.dumps)
    c.raw("cloudpickle", "plain_dict", data, dumps=cloudpickle.dumps)
    c.raw("cloudpickle", "numpy_array", np.arange(5, dtype=np.int32), dumps=cloudpickle.dumps)


SECTIONS = [
    ("stdlib", gen_stdlib),
    ("custom", gen_custom),
    ("numpy", gen_numpy),
    ("scipy", gen_scipy),
    ("pandas", gen_pandas),
    ("sklearn", gen_sklearn),
    ("xgboost", gen_xgboost),
    ("lightgbm", gen_lightgbm),
    ("torch", gen_torch),
    ("transformers", gen_transformers),
    ("statsmodels", gen_statsmodels),
    ("networkx", gen_networkx),
    ("sympy", gen_sympy),
    ("dill_cloudpickle", gen_dill_cloudpickle),
]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_everyday import SECTIONS as _EVERYDAY  # noqa: E402

SECTIONS += _EVERYDAY


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--only", choices=("raw", "all"), default="all")
    ap.add_argument("--sections", help="comma-separated subset of: " + ",".join(n for n, _ in SECTIONS))
    args = ap.parse_args(argv)

    if os.environ.get("PYTHONHASHSEED") != "0":
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *sys.argv[1:]], env)

    out = args.out
    if out.exists() and any(out.iterdir()):
        if not (out / "manifest.json").exists():
            print(f"refusing to write into non-empty {out} (no manifest.json there)", file=sys.stderr)
            return 2
        import shutil

        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(out, args.only)
    wanted = set(args.sections.split(",")) if args.sections else None
    t0 = time.time()
    for name, fn in SECTIONS:
        if wanted and name not in wanted:
            continue
        t = time.time()
        try:
            fn(corpus)
        except Exception:  # noqa: BLE001
            corpus.errors.append(name)
            traceback.print_exc()
        n = sum(1 for e in corpus.entries)
        print(f"{name:18s} {time.time() - t:6.1f}s  ({n} files so far)", file=sys.stderr)
    corpus.finish()
    print(f"wrote {len(corpus.entries)} files, skipped {len(corpus.skipped)}, in {time.time() - t0:.1f}s -> {out}",
          file=sys.stderr)
    if corpus.errors:
        print("sections that failed: " + ", ".join(corpus.errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
