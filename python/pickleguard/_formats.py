"""``safe_load``'s dispatcher: recognise what a file is by its content (never its name), scan
it whole, then load it the way its own library would, through the restricted unpickler.

raw pickle -> the restricted ``pickle.Unpickler`` (joblib dumps with arrays: joblib's
``NumpyUnpickler``, restricted); PyTorch zip / legacy -> ``torch.load(weights_only=False,
pickle_module=<restricted>)``; ``.npy`` -> header, then the object pickle restricted;
``.npz`` -> a dict of its arrays; gzip / bz2 / xz / lzma / zlib / lz4 -> decompressed, then
the same again.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import pickle
import zipfile
import zlib
from typing import Any, Callable, Dict, List, Optional, Union

from . import _native
from ._accepted import accepted_globals, accepting
from ._analysis import NotAPickleError
from ._bounded import read_all
from ._guard import GATE_MIN_BYTES, Gate, gate_allowed
from ._io import (MemoryReader, _real_file, describe, is_buffer, is_pathlike, map_fd,
                  map_path, span_of_buffer)

# torch's legacy format starts with the pickled magic number 0x1950a86a20f9469cfc6c.
_TORCH_LEGACY = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
_DECOMPRESSED_HERE = frozenset({"gzip", "bz2", "xz", "lzma", "zlib", "zstd", "lz4"})


def _codec(head: bytes, kind: Optional[str] = None) -> Optional[str]:
    """The codec the core's scan takes ``head`` for (``_native.container_kind``), among those
    a load decompresses here. A zlib header must also start with 0x78 (joblib's, and every
    default window): the core reads the rarer zlib headers both ways, but a protocol 0
    pickle such as ``(S'...`` is also a valid zlib header, and ``x`` is no pickle opcode."""
    kind = kind or _native.container_kind(head)
    if kind == "zlib" and head[:1] != b"\x78":
        return None
    return kind if kind in _DECOMPRESSED_HERE else None


def sniff(head: bytes) -> str:
    """How a load opens data that starts with ``head``: the core's test, so that what is
    loaded is what the scan read."""
    if head.startswith(_TORCH_LEGACY):
        return "torch_legacy"
    kind = _native.container_kind(head)
    if kind in ("zip", "npy"):
        return kind
    return "compressed" if _codec(head, kind) else "pickle"


def _decompress(guard: Any, data: Any, limit: Optional[int], source: str) -> bytes:
    """The decompressed bytes, within the scan's allowance for this many compressed bytes
    (and ``limit`` when given): more is a ``PickleSecurityError`` (RESOURCE_LIMIT)."""
    codec = _codec(bytes(memoryview(data)[:16]))
    n = memoryview(data).nbytes
    raw = io.BytesIO(data) if isinstance(data, bytes) else io.BytesIO(bytes(data))
    f: Any
    if codec == "gzip":
        f = _ZlibReader(raw.getvalue(), 31)
    elif codec == "bz2":
        f = bz2.BZ2File(raw)
    elif codec in ("xz", "lzma"):
        f = lzma.LZMAFile(raw)  # liblzma's format guess, as pandas and joblib open them
    elif codec == "lz4":
        import lz4.frame  # type: ignore[import-not-found]
        f = lz4.frame.LZ4FrameFile(raw)
    elif codec == "zstd":
        import zstandard  # type: ignore[import-not-found]
        f = zstandard.ZstdDecompressor().stream_reader(raw)
    else:
        f = _ZlibReader(raw.getvalue())
    with f:
        return read_all(guard, f, n, source, limit)


class _ZlibReader:
    """zlib (``wbits=15``, one stream) or gzip (``wbits=31``, members one after another, zero
    padding between them skipped as ``gzip`` does) read in pieces, the input fed 64 KiB at a
    time: ``GzipFile`` took 8-12 s for 600 MB, and ``unconsumed_tail`` of the whole input
    is copied on every call."""

    def __init__(self, data: bytes, wbits: int = 15) -> None:
        self._wbits = wbits
        self._d = zlib.decompressobj(wbits)
        self._data = memoryview(data)
        self._pos = 0
        self._tail: Union[bytes, memoryview] = b""

    def read(self, n: int) -> bytes:
        out = []
        got = 0
        while got < n:
            if self._d.eof:
                if self._wbits != 31 or not self._next_member():
                    break
                continue
            if not self._tail:
                if self._pos >= len(self._data):
                    break
                self._tail = self._data[self._pos:self._pos + (64 << 10)]
                self._pos += len(self._tail)
            piece = self._d.decompress(self._tail, n - got)
            self._tail = self._d.unconsumed_tail
            out.append(piece)
            got += len(piece)
        return b"".join(out)

    def _next_member(self) -> bool:
        # Back to just after the finished member: its unused data is the rest of the last
        # piece it was given (at the end, ``unconsumed_tail`` may repeat those bytes).
        self._pos -= len(self._d.unused_data)
        while self._pos < len(self._data) and self._data[self._pos] == 0:
            self._pos += 1
        if bytes(self._data[self._pos:self._pos + 2]) != b"\x1f\x8b":
            return False
        self._d = zlib.decompressobj(self._wbits)
        self._tail = b""
        return True

    def __enter__(self) -> "_ZlibReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def is_tar(data: Any) -> bool:
    """A tar archive (pandas' ``.tar`` pickles; a ``.tar.gz`` once decompressed): its first
    block is a header whose checksum holds, as ``tarfile`` and the core's tar reader check."""
    import tarfile
    h = bytes(memoryview(data)[:512])
    if len(h) < 512 or not any(h):
        return False
    try:
        want = tarfile.nti(h[148:156])  # type: ignore[attr-defined]
    except (tarfile.InvalidHeaderError, ValueError):  # type: ignore[attr-defined]
        return False
    return want in tarfile.calc_chksums(h)  # type: ignore[attr-defined]


def _mentions(data: Any, needle: bytes) -> bool:
    find = getattr(data, "find", None)
    if find is None:
        data = bytes(data)
        find = data.find
    # A joblib dump names its array wrapper at its first array, nearly always in its first
    # kilobytes: looked for there first, so the search does not touch every page of a map
    # (2-3 ms of page faults on an 11 MB forest) when it is found.
    n = len(data)
    if n > _MENTION_HEAD and find(needle, 0, _MENTION_HEAD) >= 0:
        return True
    return find(needle) >= 0


_MENTION_HEAD = 1 << 16


def _is_joblib(analysis: Any) -> bool:
    return analysis.format == "joblib" or any(
        str(g.get("module", "")).startswith("joblib.numpy_pickle") for g in analysis.globals)


def _zip_names(opener: Callable[[], Any]) -> list:
    try:
        with zipfile.ZipFile(opener()) as z:
            return z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return []


def load_any(guard: Any, source: Any, kwargs: Dict[str, Any]) -> Any:
    if is_pathlike(source):
        path = os.fspath(source)
        return _load_data(guard, map_path(path), kwargs, path, lambda: open(path, "rb"), path)
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
    """The first 16 bytes at ``pos``, left unread: a decompressing file's ``peek`` (its
    buffer) when it has them, so no backward seek makes it decompress its start again."""
    peek = getattr(source, "peek", None)
    if peek is not None and not _real_file(source):
        try:
            ahead = peek(16)
        except (OSError, ValueError, TypeError, AttributeError):
            ahead = b""
        if isinstance(ahead, (bytes, bytearray, memoryview)) and len(ahead) >= 16:
            return bytes(ahead[:16])
    head = source.read(16)
    source.seek(pos)
    return head


def _compressed_size(f: Any) -> Optional[int]:
    """The size of what a decompressing file (gzip, bz2, lzma, lz4) reads from, for the
    scan's allowance; None when the size cannot be told (the allowance is then its floor,
    128 MiB by default: more is refused, as the scan refuses what it cannot read to the end)."""
    import gzip
    inner: Any = f.fileobj if isinstance(f, gzip.GzipFile) else getattr(f, "_fp", None)
    if inner is None:
        return None
    try:
        return os.fstat(inner.fileno()).st_size
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass
    buf = getattr(inner, "getbuffer", None)
    if buf is not None:
        return memoryview(buf()).nbytes
    return None


def is_decompressing(f: Any) -> bool:
    """A file object that decompresses what it reads (the standard library's, lz4's)."""
    import gzip
    if isinstance(f, (gzip.GzipFile, bz2.BZ2File, lzma.LZMAFile)):
        return True
    return type(f).__module__.startswith(("lz4.", "zstandard"))


def read_stream(guard: Any, f: Any, source: str) -> Any:
    """The rest of a (seekable, not memory-mappable) file object, read once. A decompressing
    one is read within the scan's allowance for its compressed size (a bomb is a
    ``PickleSecurityError`` before it fills memory); any other is read whole, as before."""
    if is_decompressing(f):
        return read_all(guard, f, _compressed_size(f), source)
    data = f.read()
    if isinstance(data, str):
        raise TypeError("a bytes-like object is required, not 'str' (open the file in "
                        "binary mode)")
    return data


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
               opener: Callable[[], Any], path: Optional[str], depth: int = 0) -> Any:
    head = bytes(memoryview(data)[:16])
    kind = sniff(head)
    if kind == "compressed":
        # Decompressed once, here; the plain bytes are scanned (and loaded) below.
        if depth >= 2:
            raise pickle.UnpicklingError(f"{source}: compressed more than twice")
        limit = kwargs.pop("max_decompressed_size", None)
        try:
            plain = _decompress(guard, data, limit, source)
        except (EOFError, lzma.LZMAError):
            if _codec(head) != "lzma":
                raise
            plain = b""
        if plain or _codec(head) != "lzma":
            return _load_data(guard, plain, kwargs, source, lambda: io.BytesIO(plain), None,
                              depth + 1)
        # Nothing came out of what only looked like a `.lzma` header (zeros do; `.lzma` has no
        # magic bytes): the bytes are judged and read as they are, as the core's scan reads
        # them.
        kind = "pickle"
    if kind == "pickle" and memoryview(data).nbytes >= GATE_MIN_BYTES and not _mentions(
            data, b"joblib.numpy_pickle") and not is_tar(data) and gate_allowed(
                guard.Unpickler):
        # A large plain pickle: the whole-file scan runs while the unpickler builds plain
        # data; nothing can run before its verdict (see Gate).
        gate = Gate(guard, lambda: guard.scan(data, source=source), source)
        pk = {k: v for k, v in kwargs.items() if k in _PICKLE_KW}
        up = guard.Unpickler(MemoryReader(data), _pg_prescanned=True, _pg_name=source,
                             _pg_gate=gate, **pk)
        return gate.finish(up.load)
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
    if kind == "pickle":
        # (An empty source keeps pickle's own EOFError, which readers loop on.)
        if analysis.format == "not_pickle" and memoryview(data).nbytes:
            raise NotAPickleError.of(source, analysis, data)
        if _is_joblib(analysis):
            with accepting(analysis):
                return _load_joblib(guard, opener, path, kwargs)
        pk = {k: v for k, v in kwargs.items() if k in _PICKLE_KW}
        reader = MemoryReader(data)
        return guard.Unpickler(reader, _pg_prescanned=True, _pg_name=source,
                               _pg_accepted=accepted_globals(analysis), **pk).load()
    if kind == "torch_legacy":
        return _load_torch(guard, opener, path, kwargs)
    if kind == "npy":
        return _load_npy(guard, data, kwargs)
    if kind == "zip":
        if analysis.format in ("pytorch_zip", "torchscript"):
            return _load_torch(guard, opener, path, kwargs)
        if analysis.format == "numpy_npz":
            return _load_npz(guard, opener, kwargs)
        names = _zip_names(opener)
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return _load_torch(guard, opener, path, kwargs)
        if names and all(n.endswith(".npy") for n in names):
            return _load_npz(guard, opener, kwargs)
        raise pickle.UnpicklingError(
            f"{source}: a zip archive that is neither a PyTorch checkpoint nor a NumPy .npz")
    raise AssertionError(kind)  # pragma: no cover


def _single_member(opener: Callable[[], Any], is_zip: bool) -> Optional[bytes]:
    """The bytes of the only file in a zip or tar archive, or None when it holds more."""
    import tarfile
    import zipfile
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


def _load_joblib(guard: Any, opener: Callable[[], Any], path: Optional[str],
                 kwargs: Dict[str, Any]) -> Any:
    cls = guard._joblib_unpickler_class()
    with opener() as f:
        up = cls(path or "", f, kwargs.get("ensure_native_byte_order", True), mmap_mode=None)
        return up.load()


def _load_torch(guard: Any, opener: Callable[[], Any], path: Optional[str],
                kwargs: Dict[str, Any]) -> Any:
    from .integrations.pytorch import original_load
    tk = {k: v for k, v in kwargs.items() if k not in ("weights_only", "pickle_module")}
    pm = guard.pickle_module_for(None, label=f"{path}: data.pkl") if path else guard.pickle_module
    if path is not None and tk.get("mmap"):
        return original_load()(path, pickle_module=pm, weights_only=False, **tk)
    with opener() as f:
        return original_load()(f, pickle_module=pm, weights_only=False, **tk)


def _read_npy_header(reader: MemoryReader) -> Any:
    import numpy as np
    fmt = np.lib.format
    version = fmt.read_magic(reader)
    read_header = getattr(fmt, "_read_array_header", None)
    if read_header is not None:
        return read_header(reader, version, max_header_size=2 ** 64)
    if version == (1, 0):
        return fmt.read_array_header_1_0(reader)
    return fmt.read_array_header_2_0(reader)


def _npy_header(reader: MemoryReader) -> Any:
    """numpy's own header parse (``ast.literal_eval``), with every failure a ``ValueError``:
    a spurious ``SystemError`` of the AST converter under threads (see
    ``_analysis.literal_or``) is retried once, anything else is a bad header."""
    start = reader.pos
    for attempt in range(2):
        reader.pos = start
        try:
            return _read_npy_header(reader)
        except SystemError as e:
            if attempt:
                raise ValueError(f"the .npy header could not be parsed: {e}") from e
        except ValueError:
            raise
        except Exception as e:
            raise ValueError(f"the .npy header could not be parsed: {e!r}") from e
    raise AssertionError("unreachable")


def _load_npy(guard: Any, data: Any, kwargs: Dict[str, Any]) -> Any:
    import numpy as np
    reader = MemoryReader(data, as_bytes=True)
    try:
        shape, fortran, dtype = _npy_header(reader)
    except ValueError as e:
        # Not a header numpy can read: nothing after it is judged, so nothing is loaded.
        raise guard._refuse("malformed .npy header", str(e), "<npy>", "HIGH",
                            "MALFORMED") from e
    if not dtype.hasobject:
        return np.load(io.BytesIO(bytes(memoryview(data))), allow_pickle=False)
    pk = {"encoding": kwargs.get("encoding", "ASCII"),
          "fix_imports": kwargs.get("fix_imports", True)}
    # The object array's pickle follows the header: scanned (with the whole file above) and
    # loaded by the restricted unpickler, as numpy's read_array does with pickle.load.
    return guard._load_span(span_of_buffer(data, reader.pos), "<npy object array>", pk)


def _load_npz(guard: Any, opener: Callable[[], Any], kwargs: Dict[str, Any]) -> Any:
    from .integrations.numpy import npz_file
    pk = {"encoding": kwargs.get("encoding", "ASCII"),
          "fix_imports": kwargs.get("fix_imports", True)}
    with opener() as f:
        # The guarded NpzFile numpy.load under install() returns: object arrays scanned and
        # loaded from what zipfile inflates, once.
        with npz_file(guard, f, False, pk) as npz:
            return {key: npz[key] for key in npz.files}
