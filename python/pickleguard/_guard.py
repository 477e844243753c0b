"""``PickleGuard``: a policy (held in Rust) plus the ways to use it: analyse, scan, check,
load. What is common to every integration lives here: the policy and its process-wide
entries, the restricted unpicklers and ``pickle``-like modules, one pickle's scan-then-load;
what a file is and how its own library reads it is ``_formats`` (``safe_load``'s dispatcher)
and the ``_*file`` modules."""

from __future__ import annotations

import _pickle
import logging
import mmap
import os
import pickle
import stat
import threading
import types
import weakref
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from . import _native
from ._accepted import Accepted, accepted_globals, current
from ._analysis import Finding, PickleAnalysis, PickleSecurityError
from ._audit import DEFAULT_LOG_FILE, log_analysis, logger
from ._entries import split_entry
from ._formats import load_any
from ._gate import GATE_MIN_BYTES, Gate, gate_allowed
from ._io import Span, advise_for_scan, describe, is_buffer, map_path, next_pickle, unmap
from ._scope import scoped
from ._sidefiles import side_dir
from ._unpickler import _PY_ORIG_LOAD, RestrictedUnpickler, compat_names, restricted_class

__all__ = ["PickleGuard", "register_safe_class", "unregister_safe_class", "MODES"]

MODES = ("strict", "ml", "allowlist", "audit")

Entry = Union[str, Tuple[str, str], type]

_lock = threading.RLock()
_registered: List[Tuple[str, str]] = []
_guards: "weakref.WeakSet[PickleGuard]" = weakref.WeakSet()


def register_safe_class(obj: Any = None, name: Optional[str] = None) -> Any:
    """Add a class (or any global) to the process allowlist: every ``PickleGuard`` (and the
    module-level helpers) in ``ml``, ``allowlist`` and ``audit`` mode accept it from now on.
    (``strict`` mode allows no global at all.)

    Use as a decorator (``@register_safe_class``), or call with a class, ``'module:Name'``,
    ``('module', 'Name')`` or ``('module', 'Name')`` as two arguments.
    """
    if obj is None:
        raise TypeError("register_safe_class() needs a class or a 'module:name'")
    if isinstance(obj, str) and name is not None:
        entry = (obj, name)
    else:
        entry = split_entry(obj, default_name="*")
    with _lock:
        if entry not in _registered:
            _registered.append(entry)
        for g in list(_guards):
            g._rebuild()
    return obj


def unregister_safe_class(obj: Any = None, name: Optional[str] = None) -> bool:
    """Undo ``register_safe_class`` for the same entry (same argument forms). Every guard's
    policy is rebuilt without it; what a guard was given itself (``allowed_modules``,
    ``allow()``, a policy file) stays. Returns whether the entry was registered."""
    if obj is None:
        raise TypeError("unregister_safe_class() needs a class or a 'module:name'")
    entry = (obj, name) if isinstance(obj, str) and name is not None else split_entry(obj, default_name="*")
    with _lock:
        if entry not in _registered:
            return False
        _registered.remove(entry)
        for g in list(_guards):
            g._rebuild()
    return True


class PickleGuard:
    """A policy and everything that uses it.

    ``mode``: ``'strict'`` (the default here: plain data only), ``'ml'`` (plain data plus the
    curated ML profile), ``'allowlist'`` (plain data plus exactly ``allowed_modules``) or
    ``'audit'`` (the ``ml`` judgement, logged, never blocks).

    ``allowed_modules``: entries such as ``'numpy'`` / ``('numpy', '*')`` (a whole module),
    ``'torch.nn.modules.*'`` (a package and its submodules), ``('myapp.models', 'User')`` or
    ``'myapp.models:User'`` (one name), or a class. ``blocked_modules``: the same forms; a
    plain module name also blocks its submodules; a block beats every allow.
    ``fail_on``: the lowest severity that refuses (``MEDIUM`` by default).
    ``policy_file``: a ``pickleguard.toml`` or a ``pyproject.toml`` with ``[tool.pickleguard]``.
    ``log_file``: where audit mode writes (``pickleguard.log``; ``None``: the logger only).
    """

    def __init__(self, mode: str = "strict", allowed_modules: Optional[Iterable[Entry]] = None,
                 blocked_modules: Optional[Iterable[Entry]] = None, *,
                 fail_on: Optional[str] = None,
                 policy_file: Optional[Union[str, "os.PathLike[str]"]] = None,
                 log_file: Optional[Union[str, "os.PathLike[str]"]] = DEFAULT_LOG_FILE) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
        allowed = list(allowed_modules or ())
        if mode == "strict" and allowed:
            raise ValueError("strict mode allows no global at all; use mode='allowlist' to "
                             "allow exactly allowed_modules, or mode='ml' to add them to the "
                             "ML profile")
        self._mode = mode
        # The guard's own policy (mode, file, allowed/blocked modules, allow()/block()), and
        # ``_policy``: that plus the process-wide registered entries (see _rebuild).
        self._own = _native.Policy(mode)
        if policy_file is not None:
            path = os.fspath(policy_file)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            try:
                # The core tells a pyproject.toml by its name, as `--policy` does.
                self._own.extend_toml(text, file_name=os.path.basename(path))
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
        for e in allowed:
            self._own.allow(*split_entry(e))
        for e in blocked_modules or ():
            m, n = split_entry(e)
            if isinstance(e, str) and ":" not in e and not m.endswith(".*"):
                self._own.block(m + ".*", "*")
            self._own.block(m, n)
        if fail_on is not None:
            self._own.threshold = fail_on.upper()
        # Policies with the entries of ``allowed()`` blocks added, by those entries.
        self._scoped: Dict[Tuple[Tuple[str, str], ...], Any] = {}
        self.log_file = os.fspath(log_file) if log_file is not None else None
        self._cls: Optional[type] = None
        self._pycls: Optional[type] = None
        self._module: Optional[types.ModuleType] = None
        self._labelled: Dict[str, types.ModuleType] = {}
        with _lock:
            self._rebuild()
            _guards.add(self)

    # ------------------------------------------------------------------ policy
    @property
    def mode(self) -> str:
        return self._mode

    @property
    def policy(self) -> "_native.Policy":
        """The Rust policy object (shared by the scan and the restricted unpickler)."""
        return self._policy

    def _active(self) -> "_native.Policy":
        """The policy to judge with here and now: the guard's, plus the entries of the
        ``pickleguard.allowed()`` blocks the calling thread or task is in."""
        extra = scoped()
        if not extra:
            return self._policy
        with _lock:
            p = self._scoped.get(extra)
            if p is None:
                p = self._policy.copy()
                for e in extra:
                    p.allow(*e)
                if len(self._scoped) >= 32:
                    self._scoped.clear()
                self._scoped[extra] = p
            return p

    def _rebuild(self) -> None:
        """Make ``_policy`` again from the guard's own policy and the registered entries."""
        with _lock:
            p = self._own.copy()
            for entry in _registered:
                p.allow(*entry)
            self._policy = p
            self._scoped.clear()

    def allow(self, module: str, name: str = "*") -> None:
        """Allow ``module.name`` (``*``: every plain name of the module)."""
        with _lock:
            self._own.allow(module, name)
            self._policy.allow(module, name)
            self._scoped.clear()

    def block(self, module: str, name: str = "*") -> None:
        with _lock:
            self._own.block(module, name)
            self._policy.block(module, name)
            self._scoped.clear()

    def is_allowed(self, module: str, name: str) -> bool:
        """Whether the restricted unpickler would import ``module.name``."""
        return self._active().allows(module, name)

    def __repr__(self) -> str:
        return f"PickleGuard(mode={self._mode!r}, fail_on={self._own.threshold!r})"

    # ------------------------------------------------------------------ analysis
    def analyze(self, data: Any, *, source: Optional[str] = None,
                path: Optional[str] = None) -> PickleAnalysis:
        """Analyse raw pickle bytes (any bytes-like object; not copied). ``path``: the file
        they came from, whose side files (joblib's legacy wrappers) are followed."""
        sd = side_dir(path)
        policy = self._active()
        r = (_native.analyze_pickle(_bytes_like(data), policy, side_dir=sd) if sd
             else _native.analyze_pickle(_bytes_like(data), policy))
        return PickleAnalysis._from_report(r, source)

    def scan(self, data: Any, *, source: Optional[str] = None) -> PickleAnalysis:
        """Analyse a whole file's bytes, whatever the container (torch zip, joblib, npy, ...)."""
        return self._scan(data, source)

    def _scan(self, data: Any, source: Optional[str], torch_load: bool = False,
              path: Optional[str] = None, npz_load: bool = False,
              member_load: bool = False) -> PickleAnalysis:
        buf = _bytes_like(data)
        kw: Dict[str, Any] = {}
        if torch_load:
            kw["torch_load"] = True
        if npz_load:
            kw["npz_load"] = True
        if member_load:
            kw["member_load"] = True
        sd = side_dir(path)
        if sd:
            kw["side_dir"] = sd
        # The plain call keeps the native signature that tests stand in for.
        policy = self._active()
        r = _native.scan_bytes(buf, policy, **kw) if kw else _native.scan_bytes(buf, policy)
        return PickleAnalysis._from_report(r, source)

    def scan_file(self, path: Union[str, "os.PathLike[str]"], *,
                  cache: Optional[Union[str, "os.PathLike[str]"]] = None) -> PickleAnalysis:
        """Scan a file (memory-mapped, every container). ``cache``: a verdict cache directory
        shared with ``pickleguard scan --cache`` (docs/python.md); an unchanged file judged
        under this policy before is not read again."""
        p = os.fspath(path)
        # A FIFO or device is read as a stream: never cached, as `pickleguard scan --cache`.
        if not stat.S_ISREG(os.stat(p).st_mode):
            return self._scan_special(p)
        if cache is not None:
            r, _how = _native.scan_file_cached(p, self._active(), os.fspath(cache))
            return PickleAnalysis._from_report(r, p)
        data = map_path(p)
        advise_for_scan(data)
        try:
            return self._scan(data, p, path=p)
        finally:
            unmap(data)

    def _scan_special(self, p: str) -> PickleAnalysis:
        """A FIFO or device: read within the stream bounds by the command line's own reader
        (past the size cap, its first bytes are scanned and the analysis ends in
        RESOURCE_LIMIT); silence past the timeout raises ``TimeoutError``."""
        return PickleAnalysis._from_report(_native.scan_stream(p, self._active()), p)

    def check_file(self, data: Any, source: str, torch_load: bool = False,
                   path: Optional[str] = None, npz_load: bool = False,
                   member_load: bool = False) -> PickleAnalysis:
        """Scan a whole file's bytes and ``check`` the verdict: the core's, whatever the file
        is. The flags say what loads the file next through the restricted unpickler, which
        scans the pickles it reads; those are left to that scan (analysed once, from the bytes
        the unpickler consumes; a deflated zip member inflated once, by ``zipfile``), every
        structural check of the file stays here. ``torch_load``: ``torch.load`` (a PyTorch
        zip's ``data.pkl``); ``npz_load``: the guarded ``NpzFile`` (the object arrays of an
        ``.npz``'s deflated members); ``member_load``: ``safe_load`` of an archive's one file
        (pandas' ``.pkl.zip``). ``path``: the file's path, for its side files."""
        return self.check(self._scan(data, source, torch_load, path, npz_load, member_load),
                          source)

    def check(self, analysis: PickleAnalysis, source: Optional[str] = None) -> PickleAnalysis:
        """Raise ``PickleSecurityError`` when the analysis is not safe (audit mode: log it)."""
        src = source or analysis.source or "<data>"
        if self._mode == "audit":
            if analysis.findings:
                log_analysis(analysis, src, self.log_file)
            return analysis
        if not analysis.is_safe:
            logger.info("%s: refused: %s", _native.terminal_safe(src), analysis.summary())
            raise PickleSecurityError(f"pickleguard refused to load {src}: {analysis.summary()}",
                                      analysis)
        return analysis

    # ------------------------------------------------------------------ loading
    def load(self, source: Any, **kwargs: Any) -> Any:
        """Scan, then load with the restricted unpickler. ``source``: a path, a binary file
        (read from its position; left after the pickle, as ``pickle.load`` does), or
        bytes. PyTorch checkpoints, joblib dumps, ``.npy``/``.npz`` and compressed pickles
        are recognised by content and loaded the way their library does (through the same
        policy). ``kwargs`` go to the loader (``encoding=``, ``map_location=``, ...)."""
        return load_any(self, source, kwargs)

    def loads(self, data: Any, **kwargs: Any) -> Any:
        """``load`` for bytes-like data."""
        if not is_buffer(data):
            raise TypeError(f"a bytes-like object is required, not '{type(data).__name__}'")
        return load_any(self, data, kwargs)

    @property
    def Unpickler(self) -> type:
        """A ``pickle.Unpickler`` subclass restricted by this guard."""
        if self._cls is None:
            self._cls = type("RestrictedUnpickler", (RestrictedUnpickler,), {"_pg_guard": self})
        return self._cls

    def unpickler(self, file: Any, **kwargs: Any) -> Any:
        """A restricted unpickler reading ``file``."""
        return self.Unpickler(file, **kwargs)

    @property
    def pickle_module(self) -> types.ModuleType:
        """A module with ``pickle``'s loading API restricted by this guard, for APIs that
        take one (``torch.load(f, pickle_module=...)``)."""
        if self._module is None:
            self._module = self._make_pickle_module(self.Unpickler)
        return self._module

    def pickle_module_for(self, base: Any, label: Optional[str] = None) -> types.ModuleType:
        """``pickle_module`` built on another pickle-like module's ``Unpickler`` (dill).
        ``label`` names what its unpicklers read in errors (torch hands them a ``BytesIO`` of
        ``data.pkl``: the label says which file it came from)."""
        base_cls = getattr(base, "Unpickler", None)
        if (base is None or base is pickle or base_cls is _pickle.Unpickler
                or (isinstance(base_cls, type) and issubclass(base_cls, RestrictedUnpickler))):
            if label is None:
                return self.pickle_module
            # One module per label (a checkpoint loaded again reuses it): making a class and
            # a module cost more than the guard's other Python work on a torch.load.
            m = self._labelled.get(label)
            if m is None:
                cls = restricted_class(self.Unpickler, _pg_default_label=label)
                m = self._make_pickle_module(cls)
                if len(self._labelled) >= 64:
                    self._labelled.clear()
                self._labelled[label] = m
            return m
        cls = restricted_class(base.Unpickler, _pg_guard=self, _pg_default_label=label)
        return self._make_pickle_module(cls, name=getattr(base, "__name__", "pickle"))

    def _make_pickle_module(self, cls: type, name: str = "pickle") -> types.ModuleType:
        m = types.ModuleType(f"pickleguard.restricted.{name}")
        guard = self

        def load(file: Any, **kwargs: Any) -> Any:
            return guard._load_pickle(file, kwargs, cls=cls)

        def loads(data: Any, /, **kwargs: Any) -> Any:
            return guard._load_pickle(data, kwargs, cls=cls, buffer=True)

        for attr in ("PickleError", "PicklingError", "UnpicklingError", "Pickler", "dump",
                     "dumps", "HIGHEST_PROTOCOL", "DEFAULT_PROTOCOL"):
            setattr(m, attr, getattr(pickle, attr))
        m.Unpickler = cls  # type: ignore[attr-defined]
        m.load = load  # type: ignore[attr-defined]
        m.loads = loads  # type: ignore[attr-defined]
        return m

    # ------------------------------------------------------------------ internals
    def _refuse(self, kind: str, what: str, source: str, severity: str = "HIGH",
                ftype: str = "DISALLOWED", module: Optional[str] = None,
                name: Optional[str] = None, let_through: bool = False) -> PickleSecurityError:
        """The error for a refused load; ``let_through``: audit mode logs it and goes on."""
        verdict = ("let through by audit mode (the other modes refuse it)" if let_through
                   else "refused by the restricted unpickler")
        f = Finding(ftype, severity, f"{what}: {verdict}", module=module, name=name)
        a = PickleAnalysis(False, severity, [f], mode=self._mode, source=source, stage="load")
        return PickleSecurityError(f"pickleguard refused a {kind} while loading {source}: "
                                   f"{f.description}", a)

    def _check_global(self, module: str, name: str, source: str,
                      accepted: Optional[Accepted] = None) -> None:
        """``find_class``'s question: may this global be imported? When the bytes being loaded
        were scanned (``accepted``, else the set of the load in progress), exactly the globals
        that passing scan saw are imported (see ``_accepted``). Otherwise the name is judged,
        as written and as ``fix_imports`` would rewrite it."""
        if not _native.importable_module(module):
            # Where the scan says the stream breaks (no module of that name can be imported,
            # so nothing before it was): the load stops as the scan said, not as a refusal.
            raise pickle.UnpicklingError(
                f"{source}: the pickle breaks at a global of module {module!r}, which is not "
                "an importable name; nothing was imported")
        if accepted is None:
            accepted = current()
        if accepted is not None:
            if (module, name) in accepted:
                return
            desc = f"imports {module}.{name}, which the static scan of this pickle did not see"
            err = self._refuse("global", desc, source, "HIGH", "DISALLOWED", module, name)
            if self._mode == "audit":
                log_analysis(err.analysis, source, self.log_file)
                return
            raise PickleSecurityError(
                f"pickleguard refused to import {module}.{name} while loading {source}: {desc}",
                err.analysis)
        policy = self._active()
        v = policy.judge(module, name)
        if not v.refused:
            mapped = compat_names(module, name)
            if mapped is None:
                return
            v = policy.judge(*mapped)
            if not v.refused:
                return
        ftype, sev, desc = v.finding or ("DISALLOWED", "HIGH", f"imports {module}.{name}")
        audit = self._mode == "audit"
        err = self._refuse("global", desc, source, sev, ftype, module, name, let_through=audit)
        if audit:
            log_analysis(err.analysis, source, self.log_file)
            return
        raise PickleSecurityError(
            f"pickleguard refused to import {module}.{name} while loading {source}: {desc}",
            err.analysis)

    def _check_span(self, span: Span, source: str) -> PickleAnalysis:
        a = self.analyze(span.view(), source=source)
        return self.check(a, source)

    def _load_pickle(self, src: Any, kwargs: Dict[str, Any], cls: Optional[type] = None,
                     pure: bool = False, buffer: bool = False) -> Any:
        """``pickle.load`` / ``pickle.loads`` (``buffer``) semantics: one pickle, scanned,
        then loaded with the restricted unpickler; a file is left just after it."""
        if isinstance(src, str):
            raise TypeError("a bytes-like object is required, not 'str'")
        span = next_pickle(src, buffer)
        data = is_buffer(src) and (buffer or not isinstance(src, mmap.mmap))
        if data and span.end < len(memoryview(src).cast("B")):
            # ``loads`` stops at the first STOP, but the bytes after it are part of the same
            # data, and the static scan judges them too (a second pickle that
            # ``pickle.load`` of a file would run): one verdict for the whole buffer.
            self.check(self.analyze(src, source=describe(src)), describe(src))
        return self._load_span(span, describe(src), kwargs, cls, pure)

    def _load_span(self, span: Span, source: str, kwargs: Dict[str, Any],
                   cls: Optional[type] = None, pure: bool = False) -> Any:
        """Scan one pickle, then load it restricted. A large pickle is scanned while the C
        unpickler builds plain data (see ``Gate``): nothing can run before the verdict."""
        gate = None
        if not pure and span.end - span.start >= GATE_MIN_BYTES and gate_allowed(
                cls or self.Unpickler):
            view = span.view()
            gate = Gate(self, lambda: self.analyze(view, source=source), source)
        accepted = None
        if gate is None:
            try:
                accepted = accepted_globals(self._check_span(span, source))
            except BaseException:
                span.commit(span.end)
                raise
        reader = span.reader(as_bytes=pure)
        try:
            if pure:
                up = self._py_unpickler_class()(reader, **kwargs)
                up._pg_accepted = accepted
                return up.load()
            up = (cls or self.Unpickler)(reader, _pg_prescanned=True, _pg_name=source,
                                         _pg_gate=gate, _pg_accepted=accepted, **kwargs)
            if gate is None:
                return up.load()
            return gate.finish(up.load)
        finally:
            span.commit(reader.pos)

    def _py_unpickler_class(self) -> type:
        """A restricted ``pickle._Unpickler`` (pure Python), for ``pickle._load``."""
        if self._pycls is None:
            guard = self

            class _PyRestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined,misc]
                _pg_accepted: Optional[Accepted] = None

                def find_class(self, module: str, name: str) -> Any:
                    guard._check_global(module, name, "<pickle._Unpickler>",
                                        self._pg_accepted)
                    return super().find_class(module, name)

                load = _PY_ORIG_LOAD

            self._pycls = _PyRestrictedUnpickler
        return self._pycls


def _bytes_like(data: Any) -> Any:
    if isinstance(data, str):
        raise TypeError("a bytes-like object is required, not 'str'")
    return data


_defaults: Dict[str, PickleGuard] = {}


def guard_for(mode: str = "ml", **options: Any) -> PickleGuard:
    """The shared guard of a mode (module-level helpers), or a new one for other options."""
    if options:
        return PickleGuard(mode, **options)
    g = _defaults.get(mode)
    if g is None:
        with _lock:
            g = _defaults.get(mode)
            if g is None:
                g = _defaults[mode] = PickleGuard(mode)
    return g


logging.getLogger("pickleguard").addHandler(logging.NullHandler())
