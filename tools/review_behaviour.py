#!/usr/bin/env python3
"""What the classes of the ML profile run when a pickle rebuilds them.

    python tools/review_behaviour.py [--out policies/behaviour_review.json] [--profile FILE ...]
                                     [--depth N] [--no-walk]

Loading a pickle calls code: NEWOBJ runs ``cls.__new__``, BUILD runs ``__setstate__``,
SETITEMS/APPENDS on a non-builtin object run ``__setitem__`` / ``append`` / ``extend``,
``copyreg._reconstructor`` runs ``base.__init__``, REDUCE runs the callable. A profile entry
may only grant such an operation where what it runs is known (docs/security.md). This tool
imports the libraries in a trusted environment and, for every class the profiles name and
every class defined in the modules they name (a ``pkg.*`` entry walks the package's
submodules), records which of those methods are *custom* (defined below ``object`` / ``dict``
/ ``list`` in the MRO, with the defining class) and follows their code to *sinks*: ``eval``,
``exec``, ``compile``, ``sympify`` / ``parse_expr``, formula parsers (patsy, formulaic,
statsmodels), pandas' ``eval``/``query``, ``open`` and other file openers, ``os`` /
``subprocess`` / ``shutil``, ``importlib`` / ``__import__``, ``pickle`` / ``marshal`` loads,
``getattr`` / ``setattr`` with a computed name, and stores into module globals.

Following is static (``dis`` on the bytecode, nested code objects included) and
over-approximates: every global, closure cell, ``self.<attr>`` (resolved on the class being
reviewed, so an override counts), ``super().<attr>`` and ``from x import y`` a function names
counts as reached. A reached Python function of the same library (top-level package; the
standard library counts module by module) is followed to ``--depth`` levels; a reached class
is followed into its ``__init__``/``__new__``. C, Cython and other compiled methods have no
bytecode to follow: they are reported as ``opaque``, never as clean.

The report (JSON, deterministic: sorted keys, no time stamps, no addresses) holds the library
versions it ran against, the profile entries it read, and per class the custom methods with
their sinks and the shortest path to each. tests/test_behaviour_review.py checks it against
the profile: an operation granted on a class whose method for it is custom (or opaque) needs
``reviewed = [...]`` naming that method and a ``note`` on the entry.
"""
from __future__ import annotations

import argparse
import builtins
import dis
import functools
import importlib
import inspect
import json
import pkgutil
import re
import sys
import tomllib
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROFILES = (ROOT / "policies" / "ml.toml", ROOT / "policies" / "ml_corpus.toml")
DEFAULT_OUT = ROOT / "policies" / "behaviour_review.json"

#: The methods an unpickling operation can run, in report order.
METHODS = ("__new__", "__init__", "__setstate__", "__setitem__", "append", "extend",
           "__reduce__", "__reduce_ex__")

#: Profile operation -> the methods it runs on the class it names.
OP_METHODS = {
    "new": ("__new__",),
    "build": ("__setstate__",),
    "setitem": ("__setitem__",),
    "append": ("append", "extend"),
    "init": ("__init__",),
    "call": ("__new__", "__init__"),
    "value": (),
}
OPS = tuple(OP_METHODS)
#: A v1 profile's `new` rebuilds a type every way a pickle can: NEWOBJ, copyreg's
#: reconstructor (which runs `base.__init__`), BUILD and SETITEMS/APPENDS on the result.
V1_NEW_OPS = ("new", "init", "build", "setitem", "append")

sys.path.insert(0, str(Path(__file__).resolve().parent))
# One definition of "default behaviour", shared with tools/gen_profile.py.
from behaviour_defaults import custom_methods as _custom_methods  # noqa: E402
from behaviour_defaults import is_default_owner, qualname as _class_qualname  # noqa: E402

#: The libraries the review imports (missing ones are listed in the report and skipped).
LIBRARIES = ("numpy", "scipy", "pandas", "sklearn", "torch", "torchvision", "statsmodels",
             "patsy", "formulaic", "sympy", "networkx", "dill", "cloudpickle", "joblib",
             "xgboost", "lightgbm", "transformers", "tokenizers")

#: Packages whose `pkg.*` walk is limited to this many submodule levels (importing every
#: model module of transformers takes minutes and gigabytes, and adds nothing the profile
#: grants by name).
WALK_DEPTH = {"transformers": 1, "torch": 3, "tokenizers": 1}
WALK_SKIP = re.compile(r"(^|\.)(tests?|testing|_testing|conftest|benchmarks?|_?vendor(ed)?|"
                       r"setup|__main__|_pytest|contrib|_remote_module_non_scriptable|this)(\.|$)")

# ---------------------------------------------------------------------------------- sinks

#: Exact callables, by `module.qualname` of the object reached.
SINK_NAMES = {
    "builtins.eval": "eval",
    "builtins.exec": "exec",
    "builtins.compile": "compile",
    "builtins.open": "open",
    "io.open": "open",
    "_io.open": "open",
    "io.FileIO": "open",
    "_io.FileIO": "open",
    "codecs.open": "open",
    "builtins.__import__": "import",
    "builtins.breakpoint": "exec",
    "sympy.core.sympify.sympify": "sympify",
    "sympy.parsing.sympy_parser.parse_expr": "parse_expr",
    "sympy.parsing.sympy_parser.eval_expr": "eval",
    "sympy.parsing.sympy_parser.stringify_expr": "parse_expr",
    "pandas.core.computation.eval.eval": "pandas_eval",
    "pandas.core.frame.DataFrame.eval": "pandas_eval",
    "pandas.core.frame.DataFrame.query": "pandas_eval",
    "numpy.load": "file_load",
    "numpy.save": "file_write",
    "numpy.lib._npyio_impl.load": "file_load",
    "numpy.lib._npyio_impl.save": "file_write",
    "numpy.lib._npyio_impl.savetxt": "file_write",
    "torch.serialization.load": "file_load",
    "torch.serialization.save": "file_write",
    "joblib.numpy_pickle.load": "file_load",
    "joblib.numpy_pickle.dump": "file_write",
    "tempfile.mkstemp": "file_write",
    "tempfile.mkdtemp": "file_write",
    "pathlib.Path.open": "open",
    "pathlib.Path.touch": "file_write",
    "pathlib.Path.mkdir": "file_write",
    "pathlib.Path.write_text": "file_write",
    "pathlib.Path.write_bytes": "file_write",
    "pathlib.Path.unlink": "file_write",
}
#: Whole modules whose callables are sinks, with the few harmless exceptions.
SINK_MODULES = {
    "os": ("os", {"fspath", "fsencode", "fsdecode", "getenv", "getpid", "cpu_count",
                  "process_cpu_count", "getcwd", "urandom", "get_terminal_size", "stat",
                  "lstat", "sched_getaffinity", "strerror", "devnull", "sep", "linesep",
                  "environ", "name", "curdir", "pardir", "extsep", "altsep", "pathsep",
                  "PathLike", "terminal_size", "stat_result", "fstat", "getppid"}),
    "posix": ("os", None),   # the same module as `os`, with the same exceptions (below)
    "nt": ("os", None),
    "subprocess": ("subprocess", set()),
    "shutil": ("shutil", {"get_terminal_size", "which"}),
    "importlib": ("import", set()),
    "pickle": ("pickle_load", {"dumps", "dump", "Pickler", "PickleError", "PicklingError",
                               "UnpicklingError", "HIGHEST_PROTOCOL", "DEFAULT_PROTOCOL",
                               "PickleBuffer"}),
    "_pickle": ("pickle_load", {"dumps", "dump", "Pickler", "PickleError", "PicklingError",
                                "UnpicklingError", "PickleBuffer"}),
    "marshal": ("pickle_load", {"dumps", "dump", "version"}),
    "runpy": ("exec", set()),
    "code": ("exec", set()),
    "ctypes": ("ctypes", set()),
    "pty": ("subprocess", set()),
}
#: Formula parsers: functions of these packages whose qualified name matches.
FORMULA = re.compile(r"^(patsy|formulaic|statsmodels\.formula)\b.*"
                     r"(formula|Formula|dmatri|design_matri|EvalEnvironment\.eval|EvalFactor|"
                     r"model_matrix|ModelSpec|incr_dbuilder|get_matrices|eval_env)")
#: Attribute names that evaluate whatever object they are looked up on; reported when the
#: object cannot be resolved statically (`self.data.eval(...)`).
EVAL_ATTRS = {"eval": "eval?", "query": "pandas_eval?", "sympify": "sympify?",
              "parse_expr": "parse_expr?", "from_formula": "formula?", "system": "os?",
              "popen": "os?", "tofile": "file_write?", "to_csv": "file_write?",
              "to_pickle": "file_write?", "get_matrices": "formula?"}


def qualified(obj: Any) -> str | None:
    """`module.qualname` of a function, class, method or module; None for other objects."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    f = inspect.unwrap(obj) if callable(obj) else obj
    mod = getattr(f, "__module__", None)
    qual = getattr(f, "__qualname__", None) or getattr(f, "__name__", None)
    if isinstance(f, (types.MethodDescriptorType, types.WrapperDescriptorType,
                      types.ClassMethodDescriptorType)) and mod is None:
        owner = getattr(f, "__objclass__", None)
        mod = getattr(owner, "__module__", None)
    if isinstance(mod, str) and isinstance(qual, str):
        return mod + "." + qual
    return None


def sink_of(obj: Any) -> str | None:
    """The sink kind `obj` is, or None."""
    name = qualified(obj)
    if name is None:
        return None
    if name in SINK_NAMES:
        return SINK_NAMES[name]
    mod, _, attr = name.rpartition(".")
    top = name.split(".", 1)[0]
    if isinstance(obj, types.ModuleType):
        return "import" if name.startswith("importlib") else None
    for m in (mod, top):
        spec = SINK_MODULES.get(m)
        if spec is not None:
            kind, allowed = spec
            if allowed is None:
                allowed = SINK_MODULES["os"][1]
            if attr.split(".")[0] not in allowed:
                return kind
    if name.startswith("importlib."):
        return "import"
    if FORMULA.search(name):
        return "formula"
    return None


# ---------------------------------------------------------------------------------- following

@dataclass
class Reach:
    """What one method reaches."""
    sinks: dict = field(default_factory=dict)    # kind -> shortest path (list of names)
    opaque: bool = False                         # the method itself has no bytecode

    def add(self, kind: str, path: list[str]) -> None:
        old = self.sinks.get(kind)
        if old is None or (len(path), path) < (len(old), old):
            self.sinks[kind] = path


def library_of(name: str | None) -> str | None:
    if not name:
        return None
    top = name.split(".", 1)[0]
    if top in sys.stdlib_module_names:
        # The standard library is not one library: follow within the module only.
        parts = name.split(".")
        return ".".join(parts[:2]) if top in ("logging", "xml", "email", "concurrent") else top
    return top


def code_of(fn: Any) -> types.CodeType | None:
    fn = inspect.unwrap(fn) if callable(fn) else fn
    if isinstance(fn, (staticmethod, classmethod)):
        fn = fn.__func__
    if isinstance(fn, types.MethodType):
        fn = fn.__func__
    if isinstance(fn, functools.partial):
        fn = fn.func
    if isinstance(fn, types.FunctionType):
        return fn.__code__
    return None


def python_function(fn: Any) -> types.FunctionType | None:
    fn = inspect.unwrap(fn) if callable(fn) else fn
    if isinstance(fn, (staticmethod, classmethod)):
        fn = fn.__func__
    if isinstance(fn, types.MethodType):
        fn = fn.__func__
    if isinstance(fn, functools.partial):
        fn = fn.func
    return fn if isinstance(fn, types.FunctionType) else None


def all_code(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from all_code(c)


def static_attr(obj: Any, name: str) -> Any:
    """`obj.name` without running descriptors of classes; modules are asked directly (a lazy
    module may import the submodule, which is fine in the trusted environment)."""
    try:
        if isinstance(obj, type):
            return inspect.getattr_static(obj, name)
        if isinstance(obj, types.ModuleType):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return getattr(obj, name)
    except Exception:  # noqa: BLE001 - an attribute that does not resolve is just unknown
        return None
    return None


_MISSING = object()


class Follower:
    """Follows methods to sinks, with a memo per (function, reviewed class)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.memo: dict = {}

    def method(self, cls: type, name: str, fn: Any) -> Reach:
        r = Reach()
        f = python_function(fn)
        if f is None:
            r.opaque = True
            return r
        self._follow(f, cls, self.depth, [qualified(f) or name], r, set())
        return r

    def _follow(self, f: types.FunctionType, cls: type | None, depth: int, path: list[str],
                r: Reach, seen: set) -> None:
        key = (f.__code__, cls)
        if key in seen:
            return
        seen.add(key)
        lib = library_of(getattr(f, "__module__", None))
        for ref, how in self._references(f, cls):
            kind = EVAL_ATTRS.get(ref) if how == "unresolved_attr" else None
            if kind:
                r.add(kind, path + ["." + ref])
                continue
            if how == "dynamic_getattr":
                r.add("getattr_dynamic", path + ["getattr(<computed>)"])
                continue
            if how == "dynamic_setattr":
                r.add("setattr_dynamic", path + ["setattr(<computed>)"])
                continue
            if how == "store_global":
                r.add("store_global", path + ["global " + ref])
                continue
            if how != "object":
                continue
            obj = ref
            s = sink_of(obj)
            name = qualified(obj) or repr(type(obj))
            if s is not None:
                r.add(s, path + [name])
                continue
            if depth <= 0:
                continue
            targets: list[Any] = []
            if isinstance(obj, type):
                for m in ("__init__", "__new__"):
                    owner = _owner(obj, m)
                    if owner is not None and not is_default_owner(_class_qualname(owner)):
                        targets.append(owner.__dict__[m])
                sub_cls = obj
            else:
                targets.append(obj)
                sub_cls = cls if _is_method_of(obj, cls) else None
            for t in targets:
                g = python_function(t)
                if g is None or library_of(getattr(g, "__module__", None)) != lib:
                    continue
                self._follow(g, sub_cls, depth - 1, path + [qualified(g) or name], r, seen)

    def _references(self, f: types.FunctionType, cls: type | None) -> list:
        key = (f.__code__, cls)
        hit = self.memo.get(key)
        if hit is None:
            hit = self.memo[key] = list(references(f, cls))
        return hit


def _owner(cls: type, name: str) -> type | None:
    for k in cls.__mro__:
        if name in k.__dict__:
            return k
    return None


def _is_method_of(obj: Any, cls: type | None) -> bool:
    if cls is None:
        return False
    f = python_function(obj)
    return f is not None and any(
        python_function(v) is f for k in cls.__mro__ for v in k.__dict__.values()
        if python_function(v) is not None)


def references(f: types.FunctionType, cls: type | None) -> Iterator[tuple[Any, str]]:
    """What `f`'s bytecode names, resolved where possible: ("object", obj),
    ("unresolved_attr", name), ("dynamic_getattr"|"dynamic_setattr", None),
    ("store_global", name)."""
    glob = f.__globals__
    cells = {}
    if f.__closure__:
        for n, c in zip(f.__code__.co_freevars, f.__closure__):
            try:
                cells[n] = c.cell_contents
            except ValueError:
                pass
    self_name = f.__code__.co_varnames[0] if f.__code__.co_argcount else None
    owner = _defining_class(f, cls)
    for code in all_code(f.__code__):
        ins = list(dis.get_instructions(code))
        cur: Any = _MISSING
        imported: Any = _MISSING
        for i, x in enumerate(ins):
            op = x.opname
            if op in ("LOAD_GLOBAL", "LOAD_NAME"):
                cur = glob.get(x.argval, _MISSING)
                if cur is _MISSING:
                    cur = getattr(builtins, x.argval, _MISSING)
                if cur is builtins.getattr or cur is builtins.setattr:
                    # setattr(self, <computed>, v) is what BUILD does anyway; a computed
                    # name on anything else (a module, a class) is a store we cannot see.
                    if not _constant_second_arg(ins, i) and not (
                            cur is builtins.setattr and _first_arg_is(ins, i, self_name)):
                        yield (None, "dynamic_getattr" if cur is builtins.getattr
                               else "dynamic_setattr")
                        cur = _MISSING
                        continue
                if cur is not _MISSING:
                    yield (cur, "object")
            elif op in ("LOAD_DEREF", "LOAD_CLASSDEREF"):
                cur = cells.get(x.argval, _MISSING)
                if cur is not _MISSING:
                    yield (cur, "object")
            elif op == "LOAD_FAST" and x.argval == self_name and cls is not None and code is f.__code__:
                cur = cls
            elif op in ("LOAD_ATTR", "LOAD_METHOD"):
                if cur is _MISSING:
                    yield (x.argval, "unresolved_attr")
                    continue
                nxt = static_attr(cur, x.argval)
                if nxt is None:
                    cur = _MISSING
                    yield (x.argval, "unresolved_attr")
                    continue
                cur = nxt
                yield (cur, "object")
            elif op == "LOAD_SUPER_ATTR":  # 3.12+: super().name
                nxt = _super_attr(cls, owner, x.argval)
                cur = _MISSING
                if nxt is not None:
                    yield (nxt, "object")
            elif op == "IMPORT_NAME":
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        imported = importlib.import_module(x.argval) if x.argval else _MISSING
                except Exception:  # noqa: BLE001 - an optional backend that is not installed
                    imported = _MISSING
                cur = imported
                if imported is not _MISSING and sink_of(imported):
                    yield (imported, "object")
            elif op == "IMPORT_FROM":
                if imported is not _MISSING:
                    obj = static_attr(imported, x.argval)
                    if obj is None:
                        try:
                            obj = importlib.import_module(imported.__name__ + "." + x.argval)
                        except Exception:  # noqa: BLE001
                            obj = None
                    if obj is not None:
                        yield (obj, "object")
            elif op in ("STORE_GLOBAL", "DELETE_GLOBAL"):
                yield (x.argval, "store_global")
                cur = _MISSING
            elif op == "LOAD_CONST" or op.startswith("PRECALL") or op == "PUSH_NULL" or op == "CACHE":
                if op == "LOAD_CONST":
                    cur = _MISSING
            else:
                cur = _MISSING
        # `super().x` before 3.12: LOAD_GLOBAL super, CALL, LOAD_ATTR x -> resolved here.
        names = [x.argval for x in ins if x.opname in ("LOAD_ATTR", "LOAD_METHOD")]
        if "super" in code.co_names and owner is not None:
            for n in names:
                nxt = _super_attr(cls, owner, n)
                if nxt is not None:
                    yield (nxt, "object")


def _constant_second_arg(ins: list, i: int) -> bool:
    """Whether the getattr/setattr loaded at ins[i] is called with a constant name: its
    second argument is pushed by a LOAD_CONST right after the first argument's one load."""
    j = i + 1
    while j < len(ins) and ins[j].opname in ("PUSH_NULL", "CACHE", "PRECALL"):
        j += 1
    # first argument: one load (LOAD_FAST/LOAD_GLOBAL/LOAD_DEREF/LOAD_CONST) plus attributes
    if j >= len(ins) or not ins[j].opname.startswith("LOAD_"):
        return False
    j += 1
    while j < len(ins) and ins[j].opname in ("LOAD_ATTR", "LOAD_METHOD", "CACHE"):
        j += 1
    return j < len(ins) and ins[j].opname == "LOAD_CONST" and isinstance(ins[j].argval, str)


def _first_arg_is(ins: list, i: int, local: str | None) -> bool:
    j = i + 1
    while j < len(ins) and ins[j].opname in ("PUSH_NULL", "CACHE", "PRECALL"):
        j += 1
    return (local is not None and j < len(ins) and ins[j].opname == "LOAD_FAST"
            and ins[j].argval == local
            and j + 1 < len(ins) and ins[j + 1].opname not in ("LOAD_ATTR", "LOAD_METHOD"))


def _defining_class(f: types.FunctionType, cls: type | None) -> type | None:
    if cls is None:
        return None
    for k in cls.__mro__:
        for v in k.__dict__.values():
            if python_function(v) is f:
                return k
    return None


def _super_attr(cls: type | None, owner: type | None, name: str) -> Any:
    if cls is None or owner is None:
        return None
    mro = cls.__mro__
    try:
        rest = mro[mro.index(owner) + 1:]
    except ValueError:
        return None
    for k in rest:
        if name in k.__dict__:
            return k.__dict__[name]
    return None


# ---------------------------------------------------------------------------------- classes

def custom_methods(cls: type) -> dict:
    """name -> defining class, for the METHODS whose behaviour is not the default one
    (tools/behaviour_defaults.py)."""
    return _custom_methods(cls, METHODS)


def review_class(cls: type, follower: Follower) -> dict:
    methods = {}
    for m, owner in custom_methods(cls).items():
        fn = owner.__dict__[m]
        reach = follower.method(cls, m, fn)
        entry: dict = {"defined_in": qualified(owner) or owner.__name__,
                       "kind": "opaque" if reach.opaque else "python"}
        if reach.sinks:
            entry["sinks"] = {k: reach.sinks[k] for k in sorted(reach.sinks)}
        methods[m] = entry
    return methods


# ---------------------------------------------------------------------------------- profiles

@dataclass
class Grant:
    """One operation a profile entry grants on one name."""
    profile: str
    module: str
    name: str          # a class or function name, or "*"
    op: str
    reviewed: tuple
    note: str | None
    v1: bool


def read_profile(path: Path) -> list[Grant]:
    """Every (module, name, op) a profile grants, in the v1 format (`[[allow]]` with
    `call`/`new`/`value` name lists) or the v2 one (entries naming a class or callable with
    `name`/`names` and per-operation keys, optional `reviewed` and `note`)."""
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    version = doc.get("version", 1)
    grants: list[Grant] = []
    for key, tables in doc.items():
        if not isinstance(tables, list):
            continue
        for t in tables:
            if not isinstance(t, dict) or not isinstance(t.get("module"), str):
                continue
            grants.extend(_grants_of(path.name, t, version))
    return grants


def _grants_of(profile: str, t: dict, version: Any) -> Iterator[Grant]:
    module = t["module"]
    reviewed = tuple(t.get("reviewed", ()))
    note = t.get("note")
    own = []
    if isinstance(t.get("name"), str):
        own.append(t["name"])
    if isinstance(t.get("names"), list):
        own.extend(str(n) for n in t["names"])
    v1 = version == 1
    ops_table = t.get("ops") if isinstance(t.get("ops"), dict) else {}
    if isinstance(t.get("ops"), list):   # v2: ops = ["call", "new", ...] on the entry's names
        ops_table = {op: True for op in t["ops"] if op in OPS}
    for op in OPS:
        spec = t.get(op, ops_table.get(op))
        if spec is None or spec is False:
            continue
        if isinstance(spec, list) and all(isinstance(n, str) for n in spec) and spec:
            names = spec          # v1 style: the names this op is granted on
        else:
            names = own           # v2 style: a schema for the entry's own names
        expanded = V1_NEW_OPS if (v1 and op == "new") else (op,)
        for n in names:
            for o in expanded:
                yield Grant(profile, module, n, o, reviewed, note, v1)


def resolve(module: str, name: str) -> Any:
    """The object `module.name` names (a dotted name walks attributes), or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj: Any = importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a module of a backend that is not installed
        return None
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except Exception:  # noqa: BLE001
            return None
    return obj


def walk_modules(pattern: str, limit: int) -> list[str]:
    """`pkg.*` -> the package and its importable submodules (sorted, bounded)."""
    if not pattern.endswith(".*"):
        return [pattern]
    base = pattern[:-2]
    top = base.split(".")[0]
    depth = WALK_DEPTH.get(top, 8)
    out = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pkg = importlib.import_module(base)
    except Exception:  # noqa: BLE001
        return []
    out.append(base)
    path = getattr(pkg, "__path__", None)
    if path is None:
        return out
    base_depth = base.count(".")
    todo = [(base, list(path))]
    while todo and len(out) < limit:
        prefix, paths = todo.pop(0)
        for info in sorted(pkgutil.iter_modules(paths), key=lambda i: i.name):
            name = prefix + "." + info.name
            if WALK_SKIP.search(name) or name.count(".") - base_depth > depth:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    mod = importlib.import_module(name)
            except BaseException:  # noqa: BLE001 - optional dependencies, import-time errors
                continue
            out.append(name)
            if info.ispkg and getattr(mod, "__path__", None) is not None:
                todo.append((name, list(mod.__path__)))
            if len(out) >= limit:
                break
    return sorted(out)


def classes_in(module_name: str) -> list[tuple[str, type]]:
    """(name, class) for every class a pickle can reach as `module_name.<name>`: defined there
    or imported into its namespace (a name wildcard covers both)."""
    mod = sys.modules.get(module_name)
    if mod is None:
        return []
    out = []
    for k, v in list(vars(mod).items()):
        if isinstance(v, type) and not k.startswith("__"):
            out.append((k, v))
    return sorted(out, key=lambda kv: kv[0])


# ---------------------------------------------------------------------------------- report

def versions() -> dict:
    out = {"python": "%d.%d.%d" % sys.version_info[:3]}
    missing = []
    for lib in LIBRARIES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = importlib.import_module(lib)
        except Exception:  # noqa: BLE001
            missing.append(lib)
            continue
        out[lib] = str(getattr(m, "__version__", "unknown"))
    return {"versions": out, "missing": missing}


def build_report(profiles: Iterable[Path], depth: int = 4, walk: bool = True,
                 module_limit: int = 400, extra_classes: Iterable[type] = ()) -> dict:
    env = versions()
    follower = Follower(depth)
    grants = []
    for p in profiles:
        grants.extend(read_profile(p))
    classes: dict[str, dict] = {}
    functions: dict[str, dict] = {}
    unresolved: set = set()

    def add_class(cls: type, named: bool, alias: str | None = None) -> None:
        key = qualified(cls)
        if key is None:
            return
        if key in classes:
            if named:
                classes[key]["named_by_profile"] = True
            if alias and alias != key and alias not in classes[key].setdefault("reachable_as", []):
                classes[key]["reachable_as"] = sorted(classes[key]["reachable_as"] + [alias])
            return
        try:
            methods = review_class(cls, follower)
        except Exception as e:  # noqa: BLE001 - report it rather than hide the class
            methods = {"<error>": {"kind": "error", "defined_in": type(e).__name__}}
        if methods or named:
            classes[key] = {"methods": methods, "named_by_profile": named}
            if alias and alias != key:
                classes[key]["reachable_as"] = [alias]

    modules: set = set()
    for g in grants:
        if g.name == "*" or g.module.endswith(".*"):
            modules.add(g.module)
            continue
        obj = resolve(g.module, g.name)
        if obj is None:
            unresolved.add(g.module + ":" + g.name)
        elif isinstance(obj, type):
            add_class(obj, True, g.module + "." + g.name)
        elif python_function(obj) is not None or callable(obj):
            key = qualified(obj) or (g.module + "." + g.name)
            if key not in functions:
                reach = follower.method(None, g.name, obj)  # type: ignore[arg-type]
                e: dict = {"kind": "opaque" if reach.opaque else "python"}
                if reach.sinks:
                    e["sinks"] = {k: reach.sinks[k] for k in sorted(reach.sinks)}
                functions[key] = e
        if not g.module.endswith(".*"):
            modules.add(g.module)
    walked: dict[str, int] = {}
    for pattern in sorted(modules):
        names = walk_modules(pattern, module_limit) if walk else (
            [pattern] if not pattern.endswith(".*") else [pattern[:-2]])
        walked[pattern] = len(names)
        for name in names:
            for attr, cls in classes_in(name):
                add_class(cls, False, name + "." + attr)
    for cls in extra_classes:
        add_class(cls, False)
    return {
        "tool": "tools/review_behaviour.py",
        "depth": depth,
        "environment": env,
        "profiles": sorted({g.profile for g in grants}),
        "modules_walked": walked,
        "unresolved_profile_names": sorted(unresolved),
        "classes": {k: classes[k] for k in sorted(classes)},
        "functions": {k: functions[k] for k in sorted(functions)},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--profile", type=Path, action="append")
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--module-limit", type=int, default=400,
                    help="at most this many modules per `pkg.*` entry")
    ap.add_argument("--no-walk", action="store_true", help="do not walk `pkg.*` submodules")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    report = build_report(args.profile or DEFAULT_PROFILES, args.depth, not args.no_walk,
                          args.module_limit)
    args.out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    n_sinks = sum(1 for c in report["classes"].values() for m in c["methods"].values()
                  if m.get("sinks"))
    print("%d classes, %d methods reaching a sink -> %s" % (len(report["classes"]), n_sinks,
                                                          args.out), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
