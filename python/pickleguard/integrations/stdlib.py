"""The standard library: ``pickle`` (and ``_pickle``), ``shelve``, ``multiprocessing``.

``install()`` patches ``pickle.load``/``loads``/``Unpickler`` (and ``_pickle``'s), the pure-Python
``pickle._Unpickler``'s own ``find_class``/``load`` (what joblib's, pandas' and other
subclasses inherit) and ``pickle._load``/``_loads``; ``shelve``'s ``Unpickler``; and
``ForkingPickler``'s ``loads``/``dumps``, judged as the process's own traffic
(``pickleguard._ipc``).
"""

from __future__ import annotations

import _pickle as cpickle
import pickle
import sys
from typing import Any

from .. import _ipc
from .._patching import Group
from .._unpickler import RestrictedUnpickler, py_find_class, py_load

__all__ = ["PICKLE", "SHELVE", "MULTIPROCESSING"]


def _pickle(g: Group) -> None:
    orig_load, orig_loads = pickle.load, pickle.loads
    orig_pyload, orig_pyloads = pickle._load, pickle._loads  # type: ignore[attr-defined]

    installed = type("Unpickler", (RestrictedUnpickler,), {
        "_pg_group": g, "__module__": "pickleguard",
        "__doc__": "pickle.Unpickler while pickleguard.install() is active: scans each "
                   "pickle, then loads it restricted by the installed guard."})

    def load(file: Any, *, fix_imports: bool = True, encoding: str = "ASCII",
             errors: str = "strict", buffers: Any = ()) -> Any:
        guard = g.guard
        kw = {"fix_imports": fix_imports, "encoding": encoding, "errors": errors,
              "buffers": buffers}
        if guard is None:
            return orig_load(file, **kw)
        if guard.mode != "audit" and _ipc.is_ipc_caller(sys._getframe(1).f_code):
            return _ipc.load(file, **kw)
        return guard._load_pickle(file, kw)

    def loads(data: Any, /, *, fix_imports: bool = True, encoding: str = "ASCII",
              errors: str = "strict", buffers: Any = ()) -> Any:
        guard = g.guard
        kw = {"fix_imports": fix_imports, "encoding": encoding, "errors": errors,
              "buffers": buffers}
        if guard is None:
            return orig_loads(data, **kw)
        if guard.mode != "audit" and _ipc.is_ipc_caller(sys._getframe(1).f_code):
            return _ipc.loads(data, **kw)
        if isinstance(data, str):
            raise TypeError("a bytes-like object is required, not 'str'")
        return guard._load_pickle(data, kw, buffer=True)

    def _load(file: Any, *, fix_imports: bool = True, encoding: str = "ASCII",
              errors: str = "strict", buffers: Any = None) -> Any:
        guard = g.guard
        kw = {"fix_imports": fix_imports, "encoding": encoding, "errors": errors,
              "buffers": buffers}
        if guard is None:
            return orig_pyload(file, **kw)
        return guard._load_pickle(file, kw, pure=True)

    def _loads(s: Any, /, *, fix_imports: bool = True, encoding: str = "ASCII",
               errors: str = "strict", buffers: Any = None) -> Any:
        guard = g.guard
        kw = {"fix_imports": fix_imports, "encoding": encoding, "errors": errors,
              "buffers": buffers}
        if guard is None:
            return orig_pyloads(s, **kw)
        if isinstance(s, str):
            raise TypeError("Can't load pickle from unicode string")
        return guard._load_pickle(s, kw, pure=True, buffer=True)

    for f, o in ((load, orig_load), (loads, orig_loads), (_load, orig_pyload),
                 (_loads, orig_pyloads)):
        f.__doc__ = o.__doc__
        f.__module__ = "pickle"
        f._pg_original = o  # type: ignore[attr-defined]

    guard_of = g.guard_of()
    g.set(pickle, "load", load)
    g.set(pickle, "loads", loads)
    g.set(pickle, "Unpickler", installed)
    g.set(cpickle, "load", load)
    g.set(cpickle, "loads", loads)
    g.set(cpickle, "Unpickler", installed)
    py = pickle._Unpickler  # type: ignore[attr-defined]
    g.set(py, "find_class", py_find_class(py, guard_of))
    g.set(py, "load", py_load(guard_of))
    g.set(pickle, "_load", _load)
    g.set(pickle, "_loads", _loads)


def _shelve(g: Group) -> None:
    # shelve binds ``pickle.Unpickler`` when it is imported (``from pickle import Unpickler``),
    # so a shelf opened after install() would still read with the original class. Shelf
    # files are files like any other: their values load restricted and scanned.
    import shelve

    installed = type("Unpickler", (RestrictedUnpickler,), {
        "_pg_group": g, "__module__": "pickleguard",
        "__doc__": "shelve's Unpickler while pickleguard.install() is active."})
    g.set(shelve, "Unpickler", installed)


def _multiprocessing(g: Group) -> None:
    # ForkingPickler is what Connection, Queue, SimpleQueue, pools, concurrent.futures and
    # managers pickle with: the process's own traffic, judged as such (pickleguard._ipc).
    from multiprocessing.reduction import ForkingPickler

    orig_loads = vars(ForkingPickler)["loads"]
    orig_dumps = vars(ForkingPickler)["dumps"]
    plain_loads = getattr(orig_loads, "_pg_original", orig_loads)
    dump = orig_dumps.__func__

    def loads(data: Any, /, *, fix_imports: bool = True, encoding: str = "ASCII",
              errors: str = "strict", buffers: Any = ()) -> Any:
        guard = g.guard
        kw = {"fix_imports": fix_imports, "encoding": encoding, "errors": errors,
              "buffers": buffers}
        if guard is None or guard.mode == "audit":
            return plain_loads(data, **kw)
        return _ipc.loads(data, **kw)

    def dumps(cls: Any, obj: Any, protocol: Any = None) -> Any:
        buf = dump(cls, obj, protocol)
        guard = g.guard
        if guard is not None and guard.mode != "audit":
            # Judged where it is sent: a refusal is raised to the sender (Pool.map, a
            # Future), never a worker dying on a task it cannot read.
            _ipc.check_dumped(buf)
        return buf

    loads._pg_original = plain_loads  # type: ignore[attr-defined]
    dumps._pg_original = orig_dumps  # type: ignore[attr-defined]
    g.set(ForkingPickler, "loads", staticmethod(loads))
    g.set(ForkingPickler, "dumps", classmethod(dumps))


PICKLE = Group("pickle", "pickle", _pickle)
SHELVE = Group("shelve", "shelve", _shelve)
MULTIPROCESSING = Group("multiprocessing", "multiprocessing.reduction", _multiprocessing)
