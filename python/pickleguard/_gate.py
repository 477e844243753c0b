"""``Gate``: a large pickle's static scan running while the restricted unpickler reads it."""

from __future__ import annotations

import contextvars
import copyreg
import inspect
import pickle
import threading
import types
from typing import Any, Callable, Optional

from ._accepted import Accepted, accepted_globals
from ._analysis import NotAPickleError, PickleAnalysis, PickleSecurityError

__all__ = ["GATE_MIN_BYTES", "Gate", "Diverted", "gate_allowed"]

#: Pickles at least this large are scanned concurrently with loading (``Gate``).
GATE_MIN_BYTES = 1 << 20


def gate_allowed(cls: type) -> bool:
    """The gate covers every way the C unpickler can reach code: ``find_class`` (globals and
    extension codes) and persistent ids. A class with its own ``persistent_load`` method, or
    a process with a registered extension code (the unpickler's extension cache returns
    objects without asking ``find_class``), is loaded strictly after the scan instead."""
    if copyreg._extension_registry:  # type: ignore[attr-defined]
        return False
    pl = inspect.getattr_static(cls, "persistent_load", None)
    return pl is None or isinstance(pl, types.GetSetDescriptorType)


class Diverted(Exception):
    """The passing verdict says these bytes are not read the way the gated load reads them
    (``Gate(divert=...)``): the load stops at its first global, before anything but plain
    data was built, and the caller loads them its own way with ``analysis``."""

    def __init__(self, analysis: PickleAnalysis) -> None:
        super().__init__(analysis.format)
        self.analysis = analysis


class Gate:
    """The static scan of a pickle, running in a thread while the restricted unpickler reads
    the same bytes. Plain data (numbers, strings, lists, dicts, tuples, sets, bytes) is built
    without running any code; everything that can run code comes from ``find_class`` or a
    persistent id, and both wait here for the verdict first. The loaded object is returned
    only after a passing verdict. The Rust scan releases the GIL, so both use a core each.

    ``divert``: a passing verdict for which the load must not go on (``Diverted`` is raised
    at the first global or persistent id, or at the end)."""

    def __init__(self, guard: Any, scan: Callable[[], PickleAnalysis], source: str,
                 divert: Optional[Callable[[PickleAnalysis], bool]] = None) -> None:
        self.guard = guard
        self.source = source
        self.passed = False
        self._divert = divert
        self._result: Any = None
        self._error: Optional[BaseException] = None
        self._done = threading.Event()
        self._started = threading.Event()
        # The scan judges with the loading thread's context (its ``allowed()`` blocks).
        ctx = contextvars.copy_context()
        self._thread = threading.Thread(target=ctx.run, args=(self._run, scan), daemon=True,
                                        name="pickleguard-scan")
        self._thread.start()
        # The C unpickler holds the GIL for its whole run: let the scan thread reach the
        # Rust call (which releases the GIL) before loading starts, or it would wait.
        self._started.wait()

    def _run(self, scan: Any) -> None:
        try:
            self._started.set()
            self._result = scan()
        except BaseException as e:  # handed to the loading thread
            self._error = e
        finally:
            self._done.set()

    def wait(self) -> None:
        """Block until the verdict is known; raise ``PickleSecurityError`` if it refuses,
        ``Diverted`` if the load must not go on."""
        if self.passed:
            return
        self._done.wait()
        if self._error is not None:
            raise self._error
        self.guard.check(self._result, self.source)
        if self._divert is not None and self._divert(self._result):
            raise Diverted(self._result)
        self.passed = True

    @property
    def accepted(self) -> Optional[Accepted]:
        """The globals of the passing verdict (call ``wait`` first)."""
        return accepted_globals(self._result) if self.passed else None

    def finish(self, load: Any) -> Any:
        try:
            obj = load()
        except (PickleSecurityError, Diverted):
            raise
        except BaseException as e:
            self.wait()  # a refusal explains more than the loader's own error
            if isinstance(e, pickle.UnpicklingError) and self._result.format == "not_pickle":
                raise NotAPickleError.of(self.source, self._result) from e
            raise
        self.wait()
        return obj
