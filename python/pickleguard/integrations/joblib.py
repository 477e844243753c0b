"""joblib: ``joblib.load``.

``patch()`` makes ``joblib.load`` scan the decompressed stream (decompressed once, by
joblib's own decompressors) and load it with joblib's ``NumpyUnpickler``, restricted. That
class subclasses ``pickle._Unpickler`` at import time, so its ``find_class`` is patched on the
class itself: every other way into it (``joblib.Memory``, object arrays' nested pickles, the
compatibility loaders) is restricted too.
"""

from __future__ import annotations

import io
import mmap
import os
import sys
import warnings
from typing import Any, Callable, Optional

from .._accepted import accepting
from .._codecs import decompress
from .._guard import guard_for
from .._io import _real_file, map_fd, map_path, unmap
from .._joblibfile import unpickler_class
from .._patching import Group
from .._sidefiles import guarded_read
from .._unpickler import py_find_class
from ._common import patch_group, unpatch_group

__all__ = ["patch", "unpatch", "load"]


def patch(mode: str = "ml", guard: Any = None, **options: Any) -> Any:
    """Protect ``joblib.load``. Returns the guard."""
    return patch_group(GROUP, mode, guard, **options)


def unpatch() -> None:
    unpatch_group(GROUP)


def _unpickle(cls: type, fobj: Any, eno: Any, filename: str = "",
              mmap_mode: Any = None) -> Any:
    """joblib's ``_unpickle`` with a given unpickler class."""
    unpickler = cls(filename, fobj, eno, mmap_mode=mmap_mode)
    try:
        obj = unpickler.load()
    except UnicodeDecodeError as exc:
        new = ValueError("You may be trying to read with python 3 a joblib pickle generated "
                         "with python 2. This feature is not supported by joblib.")
        new.__cause__ = exc
        raise new
    if getattr(unpickler, "compat_mode", False):
        warnings.warn(f"The file '{filename}' has been generated with a joblib version less "
                      "than 0.10. Please regenerate this pickle file.", DeprecationWarning,
                      stacklevel=3)
    return obj


def _scan_and_unpickle(guard: Any, cls: type, f: Any, name: str, mmap_mode: Any, eno: Any,
                       is_path: bool) -> Any:
    import joblib.numpy_pickle as npk
    from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap

    start = f.tell()
    with _validate_fileobject_and_memmap(f, name, mmap_mode) as (fobj, validated):
        source = name or "<joblib>"
        if isinstance(fobj, str):
            # A pre-0.10 dump with companion .npy files: joblib's compatibility loader
            # (its unpicklers are restricted at the class while patched).
            with accepting(guard.check_file(map_path(fobj), fobj, path=fobj)):
                return npk.load_compatibility(fobj)
        if fobj is f:
            # Where joblib's unpickler reads from: joblib rewinds a file without `peek` (a
            # BytesIO) to its start while it looks for a compressor's magic.
            start = f.tell()
            data: Optional[Any] = None
            whole: Any = None
            if _real_file(f):
                try:
                    whole = map_fd(f.fileno())
                    data = memoryview(whole)[start:] if start else whole
                except (OSError, ValueError):
                    data = None
            if data is None:
                here = f.tell()
                f.seek(start)
                data = f.read()
                f.seek(here)
            analysis = guard.check(guard.analyze(data, source=source, path=name if is_path else None))
            del data
            if isinstance(whole, mmap.mmap) and validated is None:
                # joblib's unpickler reads the scanned map (``mmap.read``, no system call per
                # read), and a file object is left where joblib's reads would have left it.
                whole.seek(start)
                try:
                    with accepting(analysis):
                        if is_path:
                            return _unpickle(cls, whole, eno, name, None)
                        return _unpickle(cls, whole, eno)
                finally:
                    if not is_path:
                        f.seek(whole.tell())
                    unmap(whole)
            unmap(whole)  # joblib memory-maps its arrays from the file itself
            with accepting(analysis):
                if is_path:
                    return _unpickle(cls, fobj, eno, name, validated)
                return _unpickle(cls, fobj, eno)
        # Compressed: decompress once, by pickleguard's readers within the scan's allowance
        # for the compressed size (joblib's BinaryGzipFile doubles its unused data without
        # end on a second gzip member), scan what the unpickler will read, load from memory.
        raw: Any = None
        if _real_file(f):
            try:
                whole = map_fd(f.fileno())
                raw = memoryview(whole)[start:] if start else whole
            except (OSError, ValueError):
                raw = None
        if raw is None:
            here = f.tell()
            f.seek(start)
            raw = f.read()
            f.seek(here)
        plain = decompress(guard, raw, None, source)
        del raw
        analysis = guard.check(guard.analyze(plain, source=source, path=name if is_path else None))
        with accepting(analysis):
            return _unpickle(cls, io.BytesIO(plain), eno, name if is_path else "", None)


def guarded_load(guard: Any, filename: Any, mmap_mode: Any = None,
                 ensure_native_byte_order: Any = "auto", cls: Optional[type] = None) -> Any:
    """``joblib.load``'s logic, with the scan in front and ``cls`` as the unpickler
    (joblib's ``NumpyUnpickler`` by default, restricted at the class when patched)."""
    import joblib.numpy_pickle as npk
    if cls is None:
        cls = npk.NumpyUnpickler
    eno = ensure_native_byte_order
    if eno == "auto":
        eno = mmap_mode is None
    if eno and mmap_mode is not None:
        raise ValueError("Native byte ordering can only be enforced if 'mmap_mode' parameter "
                         f"is set to None, but got 'mmap_mode={mmap_mode}' instead.")
    if isinstance(filename, os.PathLike):
        filename = os.fspath(filename)
    if hasattr(filename, "read"):
        name = getattr(filename, "name", "")
        return _scan_and_unpickle(guard, cls, filename, name if isinstance(name, str) else "",
                                  mmap_mode, eno, False)
    with open(filename, "rb") as f:
        return _scan_and_unpickle(guard, cls, f, filename, mmap_mode, eno, True)


def load(filename: Any, mmap_mode: Any = None, ensure_native_byte_order: Any = "auto", *,
         mode: str = "ml", guard: Any = None) -> Any:
    """``joblib.load`` through a guard, without patching anything."""
    g = guard if guard is not None else guard_for(mode)
    return guarded_load(g, filename, mmap_mode, ensure_native_byte_order,
                        cls=unpickler_class(g))


def make_patched(group: Any, orig: Callable[..., Any]) -> Callable[..., Any]:
    def load(filename: Any, mmap_mode: Any = None, ensure_native_byte_order: Any = "auto") -> Any:
        guard = group.guard
        if guard is None:
            return orig(filename, mmap_mode, ensure_native_byte_order)
        return guarded_load(guard, filename, mmap_mode, ensure_native_byte_order)

    load.__doc__ = orig.__doc__
    load.__name__ = load.__qualname__ = "load"
    load.__module__ = orig.__module__
    load._pg_original = orig  # type: ignore[attr-defined]
    return load


def _apply(g: Group) -> None:
    """``install()``'s patches of joblib: ``joblib.load``, and ``find_class`` of its unpickler
    classes (legacy wrappers' side files through the guard)."""
    import joblib
    import joblib.numpy_pickle as npk

    orig = npk.load
    patched = make_patched(g, orig)
    g.set(npk, "load", patched)
    if getattr(joblib, "load", None) is orig:
        g.set(joblib, "load", patched)
    guard_of = g.guard_of()
    g.set(npk.NumpyUnpickler, "find_class", py_find_class(npk.NumpyUnpickler, guard_of))
    compat = sys.modules.get("joblib.numpy_pickle_compat")
    wrapper = getattr(compat, "NDArrayWrapper", None)
    if isinstance(wrapper, type):
        # A legacy wrapper's side file is loaded with numpy.load(allow_pickle=True): through
        # the guard instead (docs/containers.md, "Side files").
        g.set(wrapper, "read", guarded_read(wrapper.__dict__["read"], guard_of))
    if compat is not None:
        for name in ("NumpyUnpickler", "ZipNumpyUnpickler"):
            cls = getattr(compat, name, None)
            if isinstance(cls, type) and cls is not npk.NumpyUnpickler:
                g.set(cls, "find_class", py_find_class(cls, guard_of))


GROUP = Group("joblib", "joblib", _apply)
