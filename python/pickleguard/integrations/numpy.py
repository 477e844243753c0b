"""NumPy: ``numpy.load(..., allow_pickle=True)``.

With ``allow_pickle=True`` the file is scanned first; an object array's pickle (``.npy``, or a
member of an ``.npz``, loaded when accessed) and a plain pickle file are loaded through the
restricted unpickler. ``allow_pickle=False`` loads are left alone: they cannot unpickle.
"""

from __future__ import annotations

import inspect
import io
import os
import pickle
from typing import Any, Callable

from .._analysis import PickleSecurityError
from .._codecs import is_decompressing
from .._guard import guard_for
from .._npyfile import load_npy, npz_file
from .._patching import Group
from ._common import patch_group, prescan, unpatch_group

__all__ = ["patch", "unpatch", "load"]


def patch(mode: str = "ml", guard: Any = None, **options: Any) -> Any:
    """Protect ``numpy.load``. Returns the guard."""
    return patch_group(GROUP, mode, guard, **options)


def unpatch() -> None:
    unpatch_group(GROUP)


def guarded_load(guard: Any, orig: Callable[..., Any], file: Any, mmap_mode: Any = None,
                 allow_pickle: bool = False, fix_imports: bool = True,
                 encoding: str = "ASCII", **kw: Any) -> Any:
    if not allow_pickle:
        return orig(file, mmap_mode, allow_pickle, fix_imports, encoding, **kw)
    if encoding not in ("ASCII", "latin1", "bytes"):
        raise ValueError("encoding must be 'ASCII', 'latin1', or 'bytes'")
    from numpy.lib import format as fmt

    pickle_kwargs = {"encoding": encoding, "fix_imports": fix_imports}
    own = not hasattr(file, "read")
    fid = open(os.fspath(file), "rb") if own else file
    try:
        start = fid.tell() if not own and fid.seekable() else 0
        read = prescan(guard, fid, npz_load=True)
        # A stream the pre-scan read (a GzipFile): numpy's steps below read the scanned
        # bytes from memory instead of decompressing the stream again.
        src = io.BytesIO(read) if read is not None else fid
        magic = src.read(len(fmt.MAGIC_PREFIX))
        if not magic:
            raise EOFError("No data left in file")
        src.seek(-len(magic), 1)
        if magic.startswith((b"PK\x03\x04", b"PK\x05\x06")):
            z = npz_file(guard, src, own, pickle_kwargs, **kw)
            own = False  # the NpzFile owns it now
            return z
        if magic == fmt.MAGIC_PREFIX:
            if mmap_mode and read is None:
                return orig(file, mmap_mode, allow_pickle, fix_imports, encoding, **kw)
            pos = src.tell()
            data = src.read()
            try:
                return load_npy(guard, data, pickle_kwargs)
            finally:
                # numpy leaves the file after the array; so do we.
                if read is None:
                    fid.seek(pos + len(data))
        try:
            return guard._load_pickle(src, pickle_kwargs)
        except PickleSecurityError:
            raise
        except Exception as e:
            raise pickle.UnpicklingError(f"Failed to interpret file {file!r} as a pickle") from e
        finally:
            if read is not None and not is_decompressing(fid):
                # pickle.load leaves a file after the pickle: a plain stream is put there
                # (a decompressing one stays after what the pre-scan read: seeking back
                # would decompress it again).
                fid.seek(start + src.tell())
    finally:
        if own:
            fid.close()


def load(file: Any, *args: Any, mode: str = "ml", guard: Any = None, **kwargs: Any) -> Any:
    """``numpy.load`` through a guard, without patching anything."""
    import numpy as np

    g = guard if guard is not None else guard_for(mode)
    orig = getattr(np.load, "_pg_original", np.load)
    return _call(g, orig, file, *args, **kwargs)


def _call(guard: Any, orig: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    sig = inspect.signature(orig)
    ba = sig.bind(*args, **kwargs)
    a = dict(ba.arguments)
    file = a.pop("file")
    mmap_mode = a.pop("mmap_mode", None)
    allow_pickle = a.pop("allow_pickle", False)
    fix_imports = a.pop("fix_imports", True)
    encoding = a.pop("encoding", "ASCII")
    return guarded_load(guard, orig, file, mmap_mode, allow_pickle, fix_imports, encoding, **a)


def make_patched(group: Any, orig: Callable[..., Any]) -> Callable[..., Any]:
    def load(*args: Any, **kwargs: Any) -> Any:
        guard = group.guard
        if guard is None:
            return orig(*args, **kwargs)
        return _call(guard, orig, *args, **kwargs)

    load.__doc__ = orig.__doc__
    load.__name__ = load.__qualname__ = "load"
    load.__module__ = orig.__module__
    load.__signature__ = inspect.signature(orig)  # type: ignore[attr-defined]
    load._pg_original = orig  # type: ignore[attr-defined]
    return load


def _apply(g: Group) -> None:
    """``install()``'s patch of numpy: ``numpy.load``."""
    import numpy

    g.set(numpy, "load", make_patched(g, numpy.load))


GROUP = Group("numpy", "numpy", _apply)
