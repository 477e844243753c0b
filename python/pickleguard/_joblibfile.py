"""A joblib dump read through a guard: joblib's ``NumpyUnpickler`` (which reads each array's
bytes straight from the stream after its ``NumpyArrayWrapper``), restricted."""

from __future__ import annotations

import weakref
from typing import Any, Callable, Dict, Optional

from ._sidefiles import GuardedNumpy

__all__ = ["unpickler_class", "is_joblib", "load_dump"]

_classes: "weakref.WeakKeyDictionary[Any, type]" = weakref.WeakKeyDictionary()


def unpickler_class(guard: Any) -> type:
    """joblib's ``NumpyUnpickler`` restricted by ``guard`` (one class per guard)."""
    cls = _classes.get(guard)
    if cls is None:
        from joblib.numpy_pickle import NumpyUnpickler

        class _JoblibRestrictedUnpickler(NumpyUnpickler):  # type: ignore[misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                np: Any = getattr(self, "np", None)
                if np is not None:
                    # Side files of legacy wrappers are loaded through the guard.
                    setattr(self, "np", GuardedNumpy(guard, np))

            def find_class(self, module: str, name: str) -> Any:
                guard._check_global(module, name, self.filename or "<joblib>")
                return super().find_class(module, name)

        cls = _classes[guard] = _JoblibRestrictedUnpickler
    return cls


def is_joblib(analysis: Any) -> bool:
    """Whether a scanned pickle is read as joblib reads it (array bytes in the stream, or
    legacy side files): the core found a joblib dump, or a global of joblib's wrappers."""
    return analysis.format == "joblib" or any(
        str(g.get("module", "")).startswith("joblib.numpy_pickle") for g in analysis.globals)


def load_dump(guard: Any, opener: Callable[[], Any], path: Optional[str],
              kwargs: Dict[str, Any], mapped: Any = None, start: int = 0) -> Any:
    """``safe_load`` of a joblib dump the guard scanned (call inside ``accepting``).
    ``mapped``: the scan's ``mmap`` of the file (the dump at ``start``), read in place of
    ``opener()``'s file: the same bytes, and ``mmap.read`` costs no system call per read (the
    caller unmaps it; the map is left where joblib's reads end)."""
    cls = unpickler_class(guard)
    eno = kwargs.get("ensure_native_byte_order", True)
    if mapped is not None:
        mapped.seek(start)
        return cls(path or "", mapped, eno, mmap_mode=None).load()
    with opener() as f:
        return cls(path or "", f, eno, mmap_mode=None).load()
