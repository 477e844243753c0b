"""What data is, as a load opens it, and decompressing it within the scan's allowance.

``sniff`` asks the core (``_native``) what a scan takes the first bytes for; the codecs a load
decompresses here are read by ``decompress`` (once, bounded by the policy's allowance for the
compressed size: a bomb is a ``PickleSecurityError`` before it fills memory).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import zlib
from typing import Any, Optional, Union

from . import _native
from ._bounded import read_all

__all__ = ["HEAD_BYTES", "sniff", "codec", "decompress", "read_stream", "is_decompressing"]

#: How many first bytes ``sniff`` needs (the core finds a legacy torch file's magic number in
#: its first 48).
HEAD_BYTES = 64

_DECOMPRESSED_HERE = frozenset({"gzip", "bz2", "xz", "lzma", "zlib", "zstd", "lz4"})


def codec(head: bytes, kind: Optional[str] = None) -> Optional[str]:
    """The codec the core's scan takes ``head`` for (``_native.container_kind``), among those
    a load decompresses here. A zlib header must also start with 0x78 (joblib's, and every
    default window): the core reads the rarer zlib headers both ways, but a protocol 0
    pickle such as ``(S'...`` is also a valid zlib header, and ``x`` is no pickle opcode."""
    kind = kind or _native.container_kind(head)
    if kind == "zlib" and head[:1] != b"\x78":
        return None
    return kind if kind in _DECOMPRESSED_HERE else None


def sniff(head: bytes) -> str:
    """How a load opens data that starts with ``head`` (at least ``HEAD_BYTES``; a tar
    header is told from 512): ``zip``, ``npy``, ``tar``, ``compressed``, ``torch_legacy`` or
    ``pickle`` (anything else, including archives the core cannot open: their scan refuses
    them). The core's tests, so that what is loaded is what the scan read."""
    kind = _native.container_kind(head)
    if kind in ("zip", "npy", "tar"):
        return kind
    if codec(head, kind):
        return "compressed"
    return "torch_legacy" if _native.is_torch_legacy(head) else "pickle"


def decompress(guard: Any, data: Any, limit: Optional[int], source: str) -> bytes:
    """The decompressed bytes, within the scan's allowance for this many compressed bytes
    (and ``limit`` when given): more is a ``PickleSecurityError`` (RESOURCE_LIMIT)."""
    kind = codec(bytes(memoryview(data)[:16]))
    n = memoryview(data).nbytes
    raw = io.BytesIO(data) if isinstance(data, bytes) else io.BytesIO(bytes(data))
    f: Any
    if kind == "gzip":
        f = _ZlibReader(raw.getvalue(), 31)
    elif kind == "bz2":
        f = bz2.BZ2File(raw)
    elif kind in ("xz", "lzma"):
        f = lzma.LZMAFile(raw)  # liblzma's format guess, as pandas and joblib open them
    elif kind == "lz4":
        import lz4.frame  # type: ignore[import-not-found]
        f = lz4.frame.LZ4FrameFile(raw)
    elif kind == "zstd":
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


def _compressed_size(f: Any) -> Optional[int]:
    """The size of what a decompressing file (gzip, bz2, lzma, lz4) reads from, for the
    scan's allowance; None when the size cannot be told (the allowance is then its floor,
    128 MiB by default: more is refused, as the scan refuses what it cannot read to the end)."""
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
