"""Side files: files a loader opens because the pickle names them.

joblib < 0.10 wrote arrays to files next to the pickle, and ``joblib.load`` still reads
them: an ``NDArrayWrapper`` in the pickle makes it call ``numpy.load(<dir>/<filename>,
allow_pickle=True)`` (an object ``.npy`` there is unpickled), a ``ZNDArrayWrapper`` reads
raw zlib data. The core reports each reference as an ``UNSCANNABLE`` finding whose ``args``
hold the file name as written (docs/containers.md, "Side files"). Here those references are
settled against the real side files, and the side files' own loads go through the guard.
"""

from __future__ import annotations

import os
from typing import Any, Optional

def side_dir(path: Optional[str]) -> Optional[str]:
    """The directory joblib resolves a pickle's side files in (``os.path.dirname``)."""
    if not path:
        return None
    return os.path.dirname(os.path.abspath(path))


class GuardedNumpy:
    """What joblib's legacy wrappers see as ``unpickler.np``: numpy, except that ``load``
    goes through the guard (scan, then the restricted unpickler for object arrays; memory
    maps only without pickles)."""

    def __init__(self, guard: Any, np: Any) -> None:
        self._pg_guard = guard
        self._np = np

    def __getattr__(self, name: str) -> Any:
        # Kept on the instance: joblib's read_array asks for numpy attributes thousands of
        # times per load, and a second lookup then never reaches this method.
        value = getattr(self._np, name)
        self.__dict__[name] = value
        return value

    def load(self, file: Any, mmap_mode: Any = None, allow_pickle: bool = False,
             **kwargs: Any) -> Any:
        if mmap_mode is not None:
            return self._np.load(file, mmap_mode=mmap_mode, allow_pickle=False, **kwargs)
        return self._pg_guard.load(file)


def guarded_read(orig: Any, guard_of: Any) -> Any:
    """``NDArrayWrapper.read`` with the side file loaded through ``guard_of()``'s guard."""

    def read(self: Any, unpickler: Any) -> Any:
        guard = guard_of()
        np = getattr(unpickler, "np", None)
        if guard is None or np is None or isinstance(np, GuardedNumpy):
            return orig(self, unpickler)
        unpickler.np = GuardedNumpy(guard, np)
        try:
            return orig(self, unpickler)
        finally:
            unpickler.np = np

    read.__qualname__ = "NDArrayWrapper.read"
    read._pg_original = orig  # type: ignore[attr-defined]
    return read
