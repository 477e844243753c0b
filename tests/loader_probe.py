#!/usr/bin/env python3
"""Run the real loaders with their unpicklers instrumented: record the exact bytes each
unpickler consumes, then refuse before any global that is not plain model data is imported.
No payload ever runs (every payload needs `find_class`, and `find_class` refuses).

    python tests/loader_probe.py < requests.json > results.json

A request is `{"loader": ..., "path": ..., "kwargs": {...}}`; a result is
`{"sessions": [[[pos, hex], ...], ...], "refused": [...], "error": str | null}`: one session
per unpickler (or `pickle.load` call), each a list of (position in the file object it read,
bytes read) in order. Used by tests/test_loader_differential.py.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import sys
import warnings

import _pickle

warnings.filterwarnings("ignore")

# Globals the instrumented unpicklers let through: what benign torch/numpy/pandas/joblib
# files import. Anything else is refused (and recorded) before it is imported.
PLAIN_PREFIXES = ("torch._utils.", "torch._tensor.", "torch.serialization.", "numpy.",
                  "numpy", "pandas.", "joblib.numpy_pickle.", "collections.OrderedDict",
                  "copyreg._reconstructor", "_codecs.encode", "builtins.set", "builtins.frozenset",
                  "builtins.slice", "builtins.complex", "builtins.bytearray", "datetime.",
                  "torch.FloatStorage", "torch.float", "torch.Size", "torch.device",
                  "torch.storage.", "torch._C._nn", "pyarrow.")
# The probe also runs attack samples: a name that can write, map or remove a file, or parse
# code, is refused even under an allowed prefix (numpy.memmap with mode w+ creates its file).
DENY_WORDS = ("load", "system", "exec", "eval", "open", "import", "popen", "spawn", "call",
              "compile", "getattr", "apply", "run", "memmap", "save", "write", "tofile", "dump",
              "touch", "mkdir", "remove", "unlink", "rmtree", "csv", "file", "path",
              "sympify", "parse", "formula", "template", "partial", "shell", "vectorize")


class Refused(BaseException):
    """Raised by the instrumented find_class: propagates through every loader's handlers."""


SESSIONS: list = []
REFUSED: list = []


def plain(module: str, name: str) -> bool:
    full = f"{module}.{name}"
    if any(w in name.lower() for w in DENY_WORDS):
        return False
    return any(full.startswith(p) or module == p for p in PLAIN_PREFIXES)


class Recording(io.RawIOBase):
    """Wraps the file an unpickler reads: every byte it hands out is recorded with its
    position. No `peek`: the C unpickler then reads exactly what it consumes."""

    def __init__(self, f, session: list):
        self._f = f
        self._s = session
        self._pos = None

    def _where(self):
        try:
            return self._f.tell()
        except (OSError, AttributeError, ValueError):
            return None

    def _note(self, at, data):
        if data:
            self._s.append([at, bytes(data).hex()])

    def read(self, n=-1):
        at = self._where()
        data = self._f.read(n)
        self._note(at, data)
        return data

    def readline(self, limit=-1):
        at = self._where()
        data = self._f.readline(limit) if limit != -1 else self._f.readline()
        self._note(at, data)
        return data

    def readinto(self, b):
        at = self._where()
        data = self._f.read(len(b))
        memoryview(b).cast("B")[: len(data)] = data
        self._note(at, data)
        return len(data)

    def readable(self):
        return True


def _session() -> list:
    s: list = []
    SESSIONS.append(s)
    return s


class CRecorder(_pickle.Unpickler):
    def __init__(self, file, *a, **kw):
        super().__init__(Recording(file, _session()), *a, **kw)

    def find_class(self, module, name):
        if not plain(module, name):
            REFUSED.append(f"{module}.{name}")
            raise Refused(f"{module}.{name}")
        return super().find_class(module, name)


_py_init = pickle._Unpickler.__init__
_py_find = pickle._Unpickler.find_class


def py_init(self, file, *a, **kw):
    _py_init(self, Recording(file, _session()), *a, **kw)


def py_find(self, module, name):
    if not plain(module, name):
        REFUSED.append(f"{module}.{name}")
        raise Refused(f"{module}.{name}")
    return _py_find(self, module, name)


def c_load(file, **kw):
    return CRecorder(file, **kw).load()


def c_loads(data, /, **kw):
    return CRecorder(io.BytesIO(data), **kw).load()


def instrument() -> None:
    pickle.Unpickler = CRecorder
    pickle.load = c_load
    pickle.loads = c_loads
    pickle._Unpickler.__init__ = py_init
    pickle._Unpickler.find_class = py_find


def run(loader: str, path: str, kwargs: dict):
    if loader == "torch.load":
        import torch
        return torch.load(path, weights_only=False, **kwargs)
    if loader == "numpy.load":
        import numpy
        r = numpy.load(path, allow_pickle=True, **kwargs)
        return [r[k] for k in r.files] if hasattr(r, "files") else r
    if loader == "pandas.read_pickle":
        import pandas
        return pandas.read_pickle(path, **kwargs)
    if loader == "joblib.load":
        import joblib
        return joblib.load(path, **kwargs)
    if loader == "pickle.load_stream":
        with open(path, "rb") as f:
            while True:
                try:
                    pickle.load(f)
                except EOFError:
                    return None
    raise ValueError(loader)


def main() -> int:
    reqs = json.load(sys.stdin)
    # Import the libraries first: they must bind the real classes they subclass, as in use.
    for m in ("torch", "numpy", "pandas", "joblib"):
        try:
            __import__(m)
        except ImportError:
            pass
    instrument()
    os.chdir(os.environ.get("PROBE_CWD", os.getcwd()))
    out = []
    for r in reqs:
        SESSIONS.clear()
        REFUSED.clear()
        err = None
        try:
            run(r["loader"], r["path"], r.get("kwargs", {}))
        except Refused as e:
            err = f"refused {e}"
        except Exception as e:  # the loader failed on its own: what it read still counts
            err = f"{type(e).__name__}: {e}"[:300]
        out.append({"sessions": [list(s) for s in SESSIONS if s], "refused": list(REFUSED),
                    "error": err})
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
