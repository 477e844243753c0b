"""``safe_load``'s dispatcher: recognise what a file is by its content (never its name), scan
it whole, then load it the way its own library would, through the restricted unpickler.

raw pickle -> the restricted ``pickle.Unpickler`` (joblib dumps with arrays: joblib's
``NumpyUnpickler``, restricted: ``_joblibfile``); PyTorch zip / legacy -> ``torch.load`` with
the restricted ``pickle_module`` (``_torchfile``); ``.npy`` / ``.npz`` -> ``_npyfile``; gzip /
bz2 / xz / lzma / zlib / lz4 / zstd -> decompressed (``_codecs``), then the same again; an
archive of one pickle (pandas' ``.pkl.zip`` / ``.tar``) -> its member, the same again.
"""

from __future__ import annotations

import io
import mmap
import os
import pickle
import tarfile
import zipfile
from typing import Any, Callable, Dict, Optional

from ._accepted import accepted_globals, accepting
from ._analysis import NotAPickleError
from ._bounded import DamagedStreamError
from ._codecs import HEAD_BYTES, decompress, is_decompressing, read_stream, sniff
from ._gate import GATE_MIN_BYTES, Diverted, Gate, gate_allowed
from ._io import (MemoryReader, _real_file, describe, is_buffer, is_pathlike, map_fd,
                  map_path, unmap)
from ._joblibfile import is_joblib, load_dump
from ._npyfile import load_npy, load_npz
from ._torchfile import load_checkpoint

__all__ = ["load_any"]


def _zip_names(opener: Callable[[], Any]) -> list:
    try:
        with zipfile.ZipFile(opener()) as z:
            return z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return []


def load_any(guard: Any, source: Any, kwargs: Dict[str, Any]) -> Any:
    if is_pathlike(source):
        path = os.fspath(source)
        mapped = map_path(path)
        return _load_data(guard, mapped, kwargs, path, lambda: open(path, "rb"), path,
                          release=lambda: unmap(mapped))
    if is_buffer(source):
        return _load_data(guard, source, kwargs, describe(source),
                          lambda: io.BytesIO(source if isinstance(source, bytes)
                                             else bytes(source)), None)
    if hasattr(source, "read"):
        # A file: look at its first bytes when it can be rewound; a plain pickle is loaded
        # with pickle.load semantics (one pickle, the file left just after it).
        head = b""
        pos = None
        try:
            if source.seekable():
                pos = source.tell()
                head = _head(source, pos)
        except (OSError, ValueError, AttributeError):
            pos = None
        if isinstance(head, str):
            raise TypeError("a bytes-like object is required, not 'str' (open the file in "
                            "binary mode)")
        if pos is None or sniff(head) == "pickle":
            if pos is not None:
                loaded = _load_joblib_file(guard, source, pos, kwargs)
                if loaded is not _NOT_JOBLIB:
                    return loaded
            return guard._load_pickle(source, {k: v for k, v in kwargs.items()
                                               if k in _PICKLE_KW})
        data: Any = None
        if _real_file(source):
            try:
                whole = map_fd(source.fileno())
                data = memoryview(whole)[pos:] if pos else whole
            except (OSError, ValueError):
                data = None
        if data is None:
            # Read once (a decompressing file within the scan's allowance): the loader below
            # reads these bytes from memory, never the stream again (a GzipFile would
            # decompress again, from the start on every backward seek torch's zip reader makes).
            data = read_stream(guard, source, describe(source))

            def opener() -> Any:
                return io.BytesIO(data)
        else:
            start = pos

            def opener() -> Any:
                source.seek(start)
                return _NoClose(source)

        name = getattr(source, "name", None)
        return _load_data(guard, data, kwargs, describe(source), opener,
                          name if isinstance(name, str) and pos == 0 else None)
    raise TypeError(f"expected a path, a bytes-like object or a binary file, got "
                    f"{type(source).__name__}")


_PICKLE_KW = ("fix_imports", "encoding", "errors", "buffers")


def _head(source: Any, pos: int) -> Any:
    """The first ``HEAD_BYTES`` at ``pos``, left unread: a decompressing file's ``peek`` (its
    buffer) when it has them, so no backward seek makes it decompress its start again."""
    peek = getattr(source, "peek", None)
    if peek is not None and not _real_file(source):
        try:
            ahead = peek(HEAD_BYTES)
        except (OSError, ValueError, TypeError, AttributeError):
            ahead = b""
        if isinstance(ahead, (bytes, bytearray, memoryview)) and len(ahead) >= HEAD_BYTES:
            return bytes(ahead[:HEAD_BYTES])
    head = source.read(HEAD_BYTES)
    source.seek(pos)
    return head


class _NoClose(io.RawIOBase):
    """Lend a caller's file to a loader that closes what it is given."""

    def __init__(self, f: Any) -> None:
        self._f = f

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._f.read(len(b))
        memoryview(b).cast("B")[:len(data)] = data
        return len(data)

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n)

    def seek(self, off: int, whence: int = 0) -> int:
        return self._f.seek(off, whence)

    def tell(self) -> int:
        return self._f.tell()

    def close(self) -> None:
        pass


def _load_data(guard: Any, data: Any, kwargs: Dict[str, Any], source: str,
               opener: Callable[[], Any], path: Optional[str], depth: int = 0,
               release: Optional[Callable[[], None]] = None) -> Any:
    """``release``: frees ``data`` (unmaps our own map of the file) once nothing reads it: a
    loader that reads the file itself (``opener``) comes next, or joblib's unpickler has
    read the map."""
    kind = sniff(data)
    if kind == "compressed":
        # Decompressed once, here; the plain bytes are scanned (and loaded) below.
        if depth >= 2:
            raise pickle.UnpicklingError(f"{source}: compressed more than twice")
        limit = kwargs.pop("max_decompressed_size", None)
        try:
            plain = decompress(guard, data, limit, source)
        except DamagedStreamError as damaged:
            # The whole file is here: its verdict is the scan's (the core reads a damaged
            # stream as far as Python's decoder does, and never calls it safe). Zeros pass
            # liblzma's `.lzma` header test and decode to nothing: the scan calls them no
            # pickle, and so does this load.
            analysis = guard.check_file(data, source, path=path)
            if analysis.format == "not_pickle":
                raise NotAPickleError.of(source, analysis, data) from None
            raise damaged
        return _load_data(guard, plain, kwargs, source, lambda: io.BytesIO(plain), None,
                          depth + 1)
    if kind == "pickle" and memoryview(data).nbytes >= GATE_MIN_BYTES and not _joblib_head(
            data) and gate_allowed(guard.Unpickler):
        try:
            return _load_gated(guard, data, kwargs, source, path)
        except Diverted as d:
            # A joblib dump: its scan is the one the gate made of these bytes; joblib's
            # unpickler reads them (nothing but plain data was built before its first global).
            return _load_joblib(guard, data, d.analysis, opener, path, kwargs, release)
    # A zip's pickles that the load below scans as it reads them (torch's data.pkl, an .npz's
    # deflated object arrays, the one deflated member of a pandas .pkl.zip) are left to that
    # scan: analysed once, and inflated once, by zipfile.
    zipped = kind == "zip"
    analysis = guard.check_file(data, source, torch_load=zipped, path=path, npz_load=zipped,
                                member_load=zipped)
    if analysis.format in ("pandas_zip", "pandas_tar", "tar", "zip"):
        # An archive of one pickle (pandas' to_pickle with compression 'zip' or 'tar'): the
        # archive was scanned whole above; its one member is loaded as a file of its own.
        member = _single_member(opener, kind == "zip")
        if member is not None:
            return _load_data(guard, member, kwargs, source, lambda: io.BytesIO(member), None,
                              depth + 1)
    if kind in ("pickle", "tar"):
        # (An empty source keeps pickle's own EOFError, which readers loop on.)
        if analysis.format == "not_pickle" and memoryview(data).nbytes:
            raise NotAPickleError.of(source, analysis, data)
        if is_joblib(analysis):
            return _load_joblib(guard, data, analysis, opener, path, kwargs, release)
        pk = {k: v for k, v in kwargs.items() if k in _PICKLE_KW}
        reader = MemoryReader(data)
        return guard.Unpickler(reader, _pg_prescanned=True, _pg_name=source,
                               _pg_accepted=accepted_globals(analysis), **pk).load()
    if kind == "torch_legacy":
        return load_checkpoint(guard, opener, path, kwargs)
    if kind == "npy":
        return load_npy(guard, data, kwargs)
    if kind == "zip":
        if analysis.format in ("pytorch_zip", "torchscript"):
            return load_checkpoint(guard, opener, path, kwargs)
        if analysis.format == "numpy_npz":
            return load_npz(guard, opener, kwargs)
        names = _zip_names(opener)
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return load_checkpoint(guard, opener, path, kwargs)
        if names and all(n.endswith(".npy") for n in names):
            return load_npz(guard, opener, kwargs)
        raise pickle.UnpicklingError(
            f"{source}: a zip archive that is neither a PyTorch checkpoint nor a NumPy .npz")
    raise AssertionError(kind)  # pragma: no cover


_NOT_JOBLIB = object()


def _load_joblib_file(guard: Any, source: Any, pos: int, kwargs: Dict[str, Any]) -> Any:
    """A seekable file object at a joblib dump, loaded as ``joblib.load(file)`` loads it (its
    arrays' bytes sit between its opcodes, which ``pickle.load`` semantics would read as
    opcodes): the file from ``pos`` is scanned whole, joblib's unpickler (restricted) reads
    those bytes (a regular file's map, a ``BytesIO`` itself, else what was read), and the file
    is left where joblib's reads end. ``_NOT_JOBLIB`` when it is no joblib dump: it is then
    loaded as a pickle, from ``pos``."""
    whole: Any = None
    if _real_file(source):
        try:
            whole = map_fd(source.fileno())
        except (OSError, ValueError):
            whole = None
        if not isinstance(whole, mmap.mmap) or pos >= len(whole):
            return _NOT_JOBLIB
        data: Any = memoryview(whole)[pos:]
    elif isinstance(source, io.BytesIO):
        data = memoryview(source.getvalue())[pos:]
    elif is_decompressing(source):
        # Looking ahead and back would decompress its start twice; such a stream is read as
        # a pickle (a joblib dump in a GzipFile is refused, not loaded).
        return _NOT_JOBLIB
    else:
        ahead = source.read(_JOBLIB_HEAD)
        source.seek(pos)
        if not isinstance(ahead, bytes) or not _joblib_head(ahead):
            return _NOT_JOBLIB
        data = read_stream(guard, source, describe(source))
        source.seek(pos)
    try:
        if not _joblib_head(data):
            return _NOT_JOBLIB
        name = getattr(source, "name", None)
        path = name if isinstance(name, str) and pos == 0 else None
        analysis = guard.check_file(data, describe(source), path=path)
        if not is_joblib(analysis):
            return _NOT_JOBLIB
        with accepting(analysis):
            if whole is not None:
                try:
                    return load_dump(guard, lambda: source, path, kwargs, whole, pos)
                finally:
                    source.seek(whole.tell())
            if isinstance(source, io.BytesIO):
                source.seek(pos)
                return load_dump(guard, lambda: _NoClose(source), path, kwargs)
            plain = io.BytesIO(data)
            try:
                return load_dump(guard, lambda: _NoClose(plain), path, kwargs)
            finally:
                source.seek(pos + plain.tell())
    finally:
        del data
        unmap(whole)


def _load_joblib(guard: Any, data: Any, analysis: Any, opener: Callable[[], Any],
                 path: Optional[str], kwargs: Dict[str, Any],
                 release: Optional[Callable[[], None]]) -> Any:
    """A scanned joblib dump, loaded by joblib's unpickler (restricted): from our map of the
    file when there is one (the bytes the scan read), else from ``opener()``."""
    mapped = data if isinstance(data, mmap.mmap) and release is not None else None
    if mapped is None and release is not None:
        release()
    try:
        with accepting(analysis):
            return load_dump(guard, opener, path, kwargs, mapped)
    finally:
        if mapped is not None and release is not None:
            release()


#: How far ``_joblib_head`` looks.
_JOBLIB_HEAD = 1 << 16


def _joblib_head(data: Any) -> bool:
    """Whether the first 64 KiB name joblib's wrappers, as a joblib dump does at its first
    array (nearly always in its first kilobytes): such a dump is scanned, then loaded by
    joblib's unpickler, without starting a concurrent scan only to divert it. A hint that
    saves time, not a judgement: a dump that names them later is diverted by the verdict
    (``_load_gated``), and a pickle that names them without being one is just not gated."""
    find = getattr(data, "find", None)
    if find is None:
        return b"joblib.numpy_pickle" in bytes(memoryview(data)[:_JOBLIB_HEAD])
    return find(b"joblib.numpy_pickle", 0, _JOBLIB_HEAD) >= 0


def _load_gated(guard: Any, data: Any, kwargs: Dict[str, Any], source: str,
                path: Optional[str]) -> Any:
    """A large plain pickle: the whole-file scan runs while the unpickler builds plain data;
    nothing can run before its verdict (see ``Gate``). Whether it is a joblib dump, whose
    array bytes joblib's unpickler reads from the stream, is the verdict's to say: the load
    is then diverted at its first global, before any array (``Diverted``)."""
    gate = Gate(guard, lambda: guard._scan(data, source, path=path), source, divert=is_joblib)
    pk = {k: v for k, v in kwargs.items() if k in _PICKLE_KW}
    up = guard.Unpickler(MemoryReader(data), _pg_prescanned=True, _pg_name=source,
                         _pg_gate=gate, **pk)
    return gate.finish(up.load)


def _single_member(opener: Callable[[], Any], is_zip: bool) -> Optional[bytes]:
    """The bytes of the only file in a zip or tar archive, or None when it holds more."""
    with opener() as f:
        if is_zip:
            with zipfile.ZipFile(f) as z:
                infos = [i for i in z.infolist() if not i.is_dir()]
                return z.read(infos[0]) if len(infos) == 1 else None
        with tarfile.open(fileobj=f) as t:
            members = [m for m in t.getmembers() if m.isfile()]
            if len(members) != 1:
                return None
            got = t.extractfile(members[0])
            return got.read() if got is not None else None
