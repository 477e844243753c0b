"""After install() ... uninstall(), does any module still hold an object pickleguard put in
place? Run by tests/test_python_install.py in a fresh interpreter, with the libraries
imported at one point: ``before`` install(), ``during`` (while installed), or ``after``
(imported while installed, then install() again and uninstall()).

Walks every loaded module, the classes each defines and their bases, for a function or
class of the pickleguard package. Prints one JSON object: {"leaks": [...], "identity": {...}}.
"""

import _pickle
import importlib
import json
import os
import sys
import types
import warnings

WHEN = sys.argv[1]
LIBS = ["joblib", "joblib.externals.loky", "joblib._memmapping_reducer", "pandas", "dill",
        "cloudpickle", "torch", "torch.multiprocessing", "numpy", "shelve",
        "multiprocessing.reduction", "multiprocessing.managers", "concurrent.futures.process"]

ORIGINAL = {"loads": _pickle.loads, "load": _pickle.load, "Unpickler": _pickle.Unpickler}

import pickleguard  # noqa: E402

PKG = os.path.dirname(pickleguard.__file__) + os.sep


def ours(v):
    if isinstance(v, (types.FunctionType, classmethod, staticmethod)):
        code = getattr(getattr(v, "__func__", v), "__code__", None)
        return code is not None and code.co_filename.startswith(PKG)
    if isinstance(v, type):
        m = vars(v).get("__module__", "")
        return (isinstance(m, str) and m.startswith("pickleguard")) or "_pg_group" in vars(v)
    return False


def leaks():
    out = set()
    for name, mod in list(sys.modules.items()):
        if not isinstance(mod, types.ModuleType) or name.startswith("pickleguard"):
            continue
        for k, v in list(vars(mod).items()):
            if ours(v):
                out.add(f"{name}.{k}")
            if isinstance(v, type) and vars(v).get("__module__") == name:
                for k2, v2 in list(vars(v).items()):
                    if ours(v2):
                        out.add(f"{name}.{k}.{k2}")
                for b in v.__mro__[1:]:
                    if ours(b):
                        out.add(f"{name}.{k} <base {b.__module__}.{b.__qualname__}>")
                        break
    return sorted(out)


def identity():
    """Known copy sites (each library's own import of a pickle function or class)."""
    import pickle
    import shelve

    import cloudpickle
    import dill._dill as dd
    import joblib._memmapping_reducer as jmr
    import joblib.externals.loky.backend.reduction as lr
    import torch
    import torch.serialization as ser
    from multiprocessing.reduction import ForkingPickler
    return {
        "pickle.loads": pickle.loads is ORIGINAL["loads"],
        "pickle.load": pickle.load is ORIGINAL["load"],
        "pickle.Unpickler": pickle.Unpickler is ORIGINAL["Unpickler"],
        "ForkingPickler.loads": vars(ForkingPickler)["loads"] is ORIGINAL["loads"],
        "ForkingPickler.dumps": not hasattr(ForkingPickler.dumps, "_pg_original"),
        "loky.reduction.loads": lr.loads is ORIGINAL["loads"],
        "joblib._memmapping_reducer.loads": jmr.loads is ORIGINAL["loads"],
        "cloudpickle.loads": cloudpickle.loads is ORIGINAL["loads"],
        "dill._dill.StockUnpickler": dd.StockUnpickler is ORIGINAL["Unpickler"],
        "shelve.Unpickler": shelve.Unpickler is ORIGINAL["Unpickler"],
        "torch.load": torch.load is ser.load and not hasattr(ser.load, "_pg_original"),
    }


def import_all():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lib in LIBS:
            importlib.import_module(lib)


def dill_loads_like_original():
    """A class that subclassed the installed pickle.Unpickler keeps it as its base (CPython
    cannot change the base of a class with a different layout); uninstalled, that base looks
    up no guard and the class loads like the original."""
    import io
    import pickle

    import dill._dill as dd
    data = pickle.dumps(os.path.join)  # posixpath.join: not in the ml profile
    return dd.Unpickler(io.BytesIO(data)).load() is os.path.join


if WHEN == "before":
    import_all()
pickleguard.install()
if WHEN in ("during", "after"):
    import_all()
pickleguard.uninstall()
if WHEN == "after":
    pickleguard.install()
    pickleguard.uninstall()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    print(json.dumps({"leaks": leaks(), "identity": identity(),
                      "dill_loads_like_original": dill_loads_like_original()}))
