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

from ._common import patch_group, prescan, unpatch_group

__all__ = ["patch", "unpatch", "load"]


def patch(mode: str = "ml", guard: Any = None, **options: Any) -> Any:
    """Protect ``numpy.load``. Returns the guard."""
    return patch_group("numpy", mode, guard, **options)


def unpatch() -> None:
    unpatch_group("numpy")


def _npz_class() -> type:
    from numpy.lib._npyio_impl import NpzFile

    class GuardedNpzFile(NpzFile):  # type: ignore[misc,valid-type]
        """``NpzFile`` whose object arrays load through a guard."""

        _pg_guard: Any = None
        _pg_kwargs: Any = None

        def __getitem__(self, key: str) -> Any:
            guard = self._pg_guard
            if guard is None:
                return super().__getitem__(key)
            from numpy.lib import format as fmt

            from .._formats import _load_npy, _read_npy_header
            try:
                member = self._files[key]  # type: ignore[attr-defined]
            except KeyError:
                raise KeyError(f"{key} is not a file in the archive") from None
            # One pass over the member, as numpy's own __getitem__: its header says whether
            # numpy reads it (numbers) or the guard does (objects); the seeks back stay in
            # zipfile's buffer, so nothing is inflated twice.
            with self.zip.open(member) as f:  # type: ignore[union-attr]
                magic = f.read(len(fmt.MAGIC_PREFIX))
                f.seek(0)
                if magic != fmt.MAGIC_PREFIX:
                    return f.read()
                _shape, _fortran, dtype = _read_npy_header(f)  # type: ignore[arg-type]
                f.seek(0)
                if not dtype.hasobject:
                    # numpy's NpzFile keeps its max_header_size (default 10000) since 1.24.
                    limit = getattr(self, "max_header_size", 10000)
                    kw: Any = self.pickle_kwargs
                    return fmt.read_array(f, allow_pickle=False, pickle_kwargs=kw,
                                          max_header_size=limit)
                blob = f.read()
            # The archive's pre-load scan checked this member's header (npz_load) and left
            # its pickle to this load: scanned from exactly what zipfile inflated.
            return _load_npy(guard, blob, self._pg_kwargs or {})

    return GuardedNpzFile


_NPZ: Any = None


def npz_file(guard: Any, fid: Any, own_fid: bool, pickle_kwargs: Any, **kw: Any) -> Any:
    global _NPZ
    if _NPZ is None:
        _NPZ = _npz_class()
    z = _NPZ(fid, own_fid=own_fid, allow_pickle=False, pickle_kwargs=pickle_kwargs, **kw)
    z._pg_guard = guard
    z._pg_kwargs = pickle_kwargs
    return z


def guarded_load(guard: Any, orig: Callable[..., Any], file: Any, mmap_mode: Any = None,
                 allow_pickle: bool = False, fix_imports: bool = True,
                 encoding: str = "ASCII", **kw: Any) -> Any:
    if not allow_pickle:
        return orig(file, mmap_mode, allow_pickle, fix_imports, encoding, **kw)
    if encoding not in ("ASCII", "latin1", "bytes"):
        raise ValueError("encoding must be 'ASCII', 'latin1', or 'bytes'")
    from numpy.lib import format as fmt

    from .._formats import _load_npy
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
                return _load_npy(guard, data, pickle_kwargs)
            finally:
                # numpy leaves the file after the array; so do we.
                if read is None:
                    fid.seek(pos + len(data))
        from .._analysis import PickleSecurityError
        try:
            return guard._load_pickle(src, pickle_kwargs)
        except PickleSecurityError:
            raise
        except Exception as e:
            raise pickle.UnpicklingError(f"Failed to interpret file {file!r} as a pickle") from e
        finally:
            if read is not None and not _decompressing(fid):
                # pickle.load leaves a file after the pickle: a plain stream is put there
                # (a decompressing one stays after what the pre-scan read: seeking back
                # would decompress it again).
                fid.seek(start + src.tell())
    finally:
        if own:
            fid.close()


def _decompressing(f: Any) -> bool:
    from .._formats import is_decompressing
    return is_decompressing(f)


def load(file: Any, *args: Any, mode: str = "ml", guard: Any = None, **kwargs: Any) -> Any:
    """``numpy.load`` through a guard, without patching anything."""
    import numpy as np

    from .._guard import guard_for
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
