"""Layer 4: the restricted unpickler.

``RestrictedUnpickler`` is a ``pickle.Unpickler`` (the C one) whose ``find_class`` asks the
Rust policy (``_native.Policy``, the same object the static scan uses: one source of truth)
and whose ``load`` first scans exactly the pickle it is about to read. Persistent ids are
refused unless a ``persistent_load`` is supplied (torch supplies its own). A subclass keeps
all of this: torch's ``UnpicklerWrapper`` and dill's ``Unpickler`` call ``super().find_class``.
"""

from __future__ import annotations

import _compat_pickle
import _pickle
import pickle
import weakref
from typing import Any, Callable, Optional

from ._accepted import accepted_globals, current
from ._io import MemoryReader, Span, describe, next_pickle

__all__ = ["RestrictedUnpickler", "compat_names"]


def compat_names(module: str, name: str) -> Optional[tuple]:
    """What CPython's ``fix_imports`` turns a protocol 0-2 global into, when it changes it."""
    key = (module, name)
    if key in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[key]
    if module in _compat_pickle.IMPORT_MAPPING:
        return (_compat_pickle.IMPORT_MAPPING[module], name)
    return None


class _Source:
    """What the C unpickler reads from: during a guarded ``load`` the scanned bytes of the
    current pickle (a ``MemoryReader``), otherwise the caller's file itself."""

    __slots__ = ("file", "reader", "span", "__weakref__")

    def __init__(self, file: Any) -> None:
        if not hasattr(file, "read") and not isinstance(file, (bytes, bytearray, memoryview)):
            raise TypeError("file must have 'read' and 'readline' attributes")
        self.file = file
        self.reader: Optional[MemoryReader] = None
        self.span: Optional[Span] = None

    def _target(self) -> Any:
        return self.reader if self.reader is not None else self.file

    def read(self, n: int = -1) -> Any:
        return self._target().read(n)

    def readline(self, *a: Any) -> Any:
        return self._target().readline(*a)

    def readinto(self, b: Any) -> int:
        t = self._target()
        ri = getattr(t, "readinto", None)
        if ri is not None:
            return ri(b)
        data = t.read(len(b))
        memoryview(b).cast("B")[:len(data)] = data
        return len(data)

    def peek(self, n: int = 0) -> Any:
        t = self._target()
        p = getattr(t, "peek", None)
        return p(n) if p is not None else b""

    def begin(self, span: Span) -> None:
        self.span = span
        self.reader = span.reader()

    def end(self) -> None:
        span, reader = self.span, self.reader
        self.span = self.reader = None
        if span is not None and reader is not None:
            span.commit(reader.pos)

    def name(self) -> str:
        return describe(self.file)


def _refuser(ref: Any) -> Callable[[Any], Any]:
    def persistent_load(pid: Any) -> Any:
        me = ref()
        if me is None:  # pragma: no cover (the C unpickler calls it while it is alive)
            raise pickle.UnpicklingError("A load persistent id instruction was encountered, "
                                         "but no persistent_load function was specified.")
        return me._pg_refuse_persistent(pid)

    return persistent_load


class _RestrictedMixin:
    """The restriction, for any ``Unpickler`` class built on the C one (``_pickle.Unpickler``).

    The guard is found, in order: ``guard=`` given to the constructor, the class's
    ``_pg_guard`` (``PickleGuard.Unpickler``), the class's ``_pg_group`` (what ``install()``
    put in place; none after ``uninstall()``, and then the class loads like the original).
    """

    _pg_guard: Any = None
    _pg_group: Any = None
    #: What errors call the stream when the caller names nothing (set per torch.load).
    _pg_default_label: Optional[str] = None

    def __init__(self, file: Any, *args: Any, **kwargs: Any) -> None:
        guard = kwargs.pop("guard", None)
        prescanned = kwargs.pop("_pg_prescanned", False)
        name = kwargs.pop("_pg_name", None)
        gate = kwargs.pop("_pg_gate", None)
        accepted = kwargs.pop("_pg_accepted", None)
        src = _Source(file)
        d = self.__dict__
        d["_pg_source"] = src
        d["_pg_label"] = name
        d["_pg_gate"] = gate
        d["_pg_instance_guard"] = guard
        d["_pg_prescanned"] = prescanned
        # The globals the scan of the pickle being loaded accepted (set per load).
        d["_pg_accepted"] = accepted
        super().__init__(src, *args, **kwargs)  # type: ignore[call-arg]
        try:
            getattr(self, "persistent_load")  # noqa: B009
        except AttributeError:
            # No persistent_load of a subclass: refuse persistent ids (the caller may still
            # assign one, as torch does). Held through a weak reference: a bound method of
            # the unpickler kept on it makes a cycle that holds the source's buffer (an mmap
            # cannot be closed) until the garbage collector runs.
            self.persistent_load = _refuser(weakref.ref(self))  # type: ignore[attr-defined]

    def _pg_active_guard(self) -> Any:
        g = self.__dict__.get("_pg_instance_guard")
        if g is not None:
            return g
        cls = type(self)
        if cls._pg_guard is not None:
            return cls._pg_guard
        group = cls._pg_group
        return group.guard if group is not None else None

    def _pg_name(self) -> str:
        return (self.__dict__.get("_pg_label") or type(self)._pg_default_label
                or describe(self.__dict__["_pg_source"].file))

    def _pg_refuse_persistent(self, pid: Any) -> Any:
        gate = self.__dict__.get("_pg_gate")
        if gate is not None:
            gate.wait()
        # Without a persistent_load, CPython's unpickler raises this itself: nothing can run,
        # so it is the loader's error, not a policy refusal (a PNG read as a pickle reaches a
        # PERSID; the scan calls it harmless, and the guarded load fails as CPython's does).
        # In strict mode the scan refuses persistent ids before loading starts.
        raise pickle.UnpicklingError(
            "A load persistent id instruction was encountered, but no persistent_load "
            f"function was specified (persistent id {pid!r} in {self._pg_name()}).")

    def find_class(self, module: str, name: str) -> Any:
        d = self.__dict__
        gate = d.get("_pg_gate")
        if gate is not None:
            gate.wait()  # the static verdict comes before any global exists
        accepted = d.get("_pg_accepted")
        if accepted is None and gate is not None:
            accepted = gate.accepted
        # A global the passing scan of these bytes saw is imported without more questions
        # (what _check_global would decide first, without naming the source for an error).
        if accepted is None or (module, name) not in accepted:
            guard = self._pg_active_guard()
            if guard is not None:
                guard._check_global(module, name, self._pg_name(), accepted)
        return super().find_class(module, name)  # type: ignore[misc]

    def load(self) -> Any:
        src: _Source = self.__dict__["_pg_source"]
        guard = self._pg_active_guard()
        if guard is None or self.__dict__.get("_pg_prescanned"):
            return super().load()  # type: ignore[misc]
        span = next_pickle(src.file)
        try:
            analysis = guard._check_span(span, self._pg_name())
        except BaseException:
            span.commit(span.end)
            raise
        self.__dict__["_pg_accepted"] = accepted_globals(analysis)
        src.begin(span)
        try:
            return super().load()  # type: ignore[misc]
        finally:
            self.__dict__["_pg_accepted"] = None
            src.end()


class RestrictedUnpickler(_RestrictedMixin, _pickle.Unpickler):  # type: ignore[misc]
    """``pickle.Unpickler`` restricted by a ``PickleGuard`` (``guard=``; by default the one
    ``install()`` set up, or none: then it loads like ``pickle.Unpickler``)."""


def restricted_class(base: type, **attrs: Any) -> type:
    """A restricted subclass of another C-based Unpickler class (dill's, a custom one)."""
    if issubclass(base, _RestrictedMixin):
        return type(base.__name__, (base,), attrs)
    return type(base.__name__, (_RestrictedMixin, base), attrs)


# ---------------------------------------------------------------- the pure-Python unpickler

_PY_ORIG_FIND_CLASS = pickle._Unpickler.find_class  # type: ignore[attr-defined]
_PY_ORIG_LOAD = pickle._Unpickler.load  # type: ignore[attr-defined]
_PY_DISPATCH = pickle._Unpickler.dispatch  # type: ignore[attr-defined]


def py_find_class(cls: type, guard_of: Any) -> Any:
    """A ``find_class`` for a pure-Python Unpickler class (``pickle._Unpickler``, joblib's
    ``NumpyUnpickler``, pandas' compat unpickler) that asks ``guard_of()`` first, then runs
    the class's own ``find_class`` (or the next one in its MRO)."""
    own = cls.__dict__.get("find_class")

    def find_class(self: Any, module: str, name: str) -> Any:
        accepted = getattr(self, "_pg_accepted", None)
        if accepted is None:
            accepted = current()
        # Accepted by the passing scan of these bytes: _check_global's first answer.
        if accepted is None or (module, name) not in accepted:
            guard = guard_of()
            if guard is not None:
                guard._check_global(module, name, f"<{type(self).__name__}>", accepted)
        if own is not None:
            return own(self, module, name)
        return super(cls, self).find_class(module, name)  # type: ignore[arg-type]

    find_class.__qualname__ = f"{cls.__qualname__}.find_class"
    find_class.__module__ = __name__
    return find_class


def py_load(guard_of: Any) -> Any:
    """``pickle._Unpickler.load`` that scans the pickle it is about to read first, when the
    class reads a standard stream (not joblib's or pandas' own opcode handlers, which read
    other data in between; those keep the run-time check of ``find_class``)."""

    def load(self: Any) -> Any:
        guard = guard_of()
        read = getattr(self, "_file_read", None)
        fileobj = getattr(read, "__self__", None)
        if (guard is None or type(self).dispatch is not _PY_DISPATCH or fileobj is None
                or not hasattr(self, "_file_readline")):
            return _PY_ORIG_LOAD(self)
        span = next_pickle(fileobj)
        try:
            analysis = guard._check_span(span, describe(fileobj))
        except BaseException:
            span.commit(span.end)
            raise
        reader = span.reader(as_bytes=True)
        saved = (self._file_read, self._file_readline)
        self._file_read, self._file_readline = reader.read, reader.readline
        self._pg_accepted = accepted_globals(analysis)
        try:
            return _PY_ORIG_LOAD(self)
        finally:
            self._pg_accepted = None
            self._file_read, self._file_readline = saved
            span.commit(reader.pos)

    load.__qualname__ = "load"
    return load
