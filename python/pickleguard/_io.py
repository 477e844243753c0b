"""Reading exactly what a loader would read, once.

* Paths and regular files are memory-mapped (``mmap``, read-only) and handed to Rust as
  buffers: no copy, and the scan and the load see the same bytes.
* ``bytes``, ``memoryview``, ``bytearray`` and ``io.BytesIO`` are used in place.
* Any other stream is read once, no further than CPython's unpickler would read it for one
  ``pickle.load`` (the end of the pickle is found by ``_native.pickle_extent`` while
  reading), so a non-seekable stream is never read twice and its next pickle stays in it.
"""

from __future__ import annotations

import io
import mmap
import os
import stat
from typing import Any, Callable, Optional, Tuple

from . import _native

_FILE_TYPES = (io.FileIO, io.BufferedReader, io.BufferedRandom)
_PEEK = 1 << 16
_MAX_READ = 1 << 24


def is_pathlike(obj: Any) -> bool:
    return isinstance(obj, (str, os.PathLike))


def is_buffer(obj: Any) -> bool:
    return isinstance(obj, (bytes, bytearray, memoryview, mmap.mmap))


def describe(obj: Any) -> str:
    """A short name for where data came from (for messages and logs)."""
    if is_pathlike(obj):
        return os.fspath(obj)  # type: ignore[return-value]
    name = getattr(obj, "name", None)
    if isinstance(name, str):
        return name
    if is_buffer(obj):
        n = memoryview(obj).nbytes
        return f"<{n} bytes>" if isinstance(obj, bytes) else f"<{type(obj).__name__} of {n} bytes>"
    return f"<{type(obj).__name__}>"


def map_fd(fd: int) -> Any:
    """A read-only map of a regular file (``b''`` when it is empty)."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise OSError("not a regular file")
    if st.st_size == 0:
        return b""
    return mmap.mmap(fd, 0, access=mmap.ACCESS_READ)


def advise_for_scan(data: Any) -> None:
    """Tell the kernel how a scan reads a map that nothing loads from next, as the command
    line does: ahead for a stream read from start to end, page by page for a zip, tar, legacy
    PyTorch file or numeric ``.npy``, whose weights the scan skips (docs/cli.md, "Reading
    files")."""
    if isinstance(data, mmap.mmap):
        _native.advise_for_scan(data)


def unmap(data: Any) -> None:
    """Unmap a map made here once nothing reads it any more: right after the scan when a
    loader that reads the file itself comes next (the page tables the scan touched are then
    still in the CPU's caches), else after the load that read it. A map someone still holds a
    view of stays mapped until its last view goes."""
    if isinstance(data, mmap.mmap):
        try:
            data.close()
        except BufferError:
            pass


def map_path(path: Any) -> Any:
    """The bytes of a file, memory-mapped (or read, for special files)."""
    with open(path, "rb") as f:
        try:
            return map_fd(f.fileno())
        except (OSError, ValueError):
            return f.read()


def _real_file(f: Any) -> bool:
    """A plain binary file object whose ``fileno()`` is the data we read (not a GzipFile,
    whose fileno is the compressed file)."""
    if type(f) not in _FILE_TYPES:
        return False
    try:
        return bool(f.seekable()) and bool(f.readable())
    except (OSError, ValueError):
        return False


class MemoryReader:
    """The file the restricted unpickler reads from: a window of a buffer. ``peek`` hands the
    C unpickler the whole rest at once, so it runs from memory as ``pickle.loads`` does.
    ``as_bytes``: return ``bytes`` (the pure-Python unpickler needs them) instead of
    zero-copy ``memoryview`` slices."""

    __slots__ = ("_obj", "_mv", "pos", "_end", "_bytes")

    def __init__(self, obj: Any, start: int = 0, end: Optional[int] = None,
                 as_bytes: bool = False) -> None:
        mv = memoryview(obj)
        if mv.ndim != 1 or mv.itemsize != 1:
            mv = mv.cast("B")
        self._obj = obj if hasattr(obj, "find") else bytes(mv)
        self._mv = memoryview(self._obj)
        self.pos = start
        self._end = len(self._mv) if end is None else end
        self._bytes = as_bytes

    def _out(self, a: int, b: int) -> Any:
        return self._obj[a:b] if self._bytes else self._mv[a:b]

    def read(self, n: Optional[int] = -1) -> Any:
        a = self.pos
        b = self._end if n is None or n < 0 else min(self._end, a + n)
        self.pos = b
        return self._out(a, b)

    def readinto(self, buf: Any) -> int:
        dst = memoryview(buf).cast("B")
        n = min(len(dst), self._end - self.pos)
        dst[:n] = self._mv[self.pos:self.pos + n]
        self.pos += n
        return n

    def readline(self, size: Optional[int] = -1) -> Any:
        a = self.pos
        i = self._obj.find(b"\n", a, self._end)
        b = self._end if i < 0 else i + 1
        if size is not None and size >= 0:
            b = min(b, a + size)
        self.pos = b
        return self._out(a, b)

    def peek(self, n: int = 0) -> Any:
        return self._mv[self.pos:self._end]

    def tell(self) -> int:
        return self.pos

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return True

    def release(self) -> None:
        """Drop our views (an mmap can be closed once nobody else holds one)."""
        self._mv = memoryview(b"")
        self._obj = b""


class Span:
    """The bytes of one pickle and how to move the source past what a load consumed."""

    __slots__ = ("obj", "start", "end", "complete", "_commit")

    def __init__(self, obj: Any, start: int, end: int, complete: bool,
                 commit: Optional[Callable[[int], None]] = None) -> None:
        self.obj = obj
        self.start = start
        self.end = end
        self.complete = complete
        self._commit = commit

    def view(self) -> memoryview:
        mv = memoryview(self.obj)
        if mv.ndim != 1 or mv.itemsize != 1:
            mv = mv.cast("B")
        return mv[self.start:self.end]

    def reader(self, as_bytes: bool = False) -> MemoryReader:
        return MemoryReader(self.obj, self.start, self.end, as_bytes)

    def commit(self, upto: int) -> None:
        """Move the source to ``upto`` (an offset in ``obj``: where the unpickler's reader
        stopped), as if the loader had read it directly: past the whole pickle, which ends
        with the frame its STOP is in (the unpickler reading a file reads frames whole)."""
        if self._commit is not None:
            if self.complete:
                upto = max(upto, self.end)
            self._commit(max(0, upto - self.start))


def extent(obj: Any, start: int = 0) -> Tuple[int, bool]:
    """End of the pickle at ``start`` in a buffer, and whether it is complete (its STOP
    is there). An incomplete one ends where the loader would fail."""
    pos, need = _native.pickle_extent(obj, start)
    if need == 0:
        return pos, True
    if need == -2:
        return pos + 1, False
    return memoryview(obj).nbytes, False


def span_of_buffer(obj: Any, start: int = 0) -> Span:
    end, complete = extent(obj, start)
    return Span(obj, start, end, complete)


def _read_exactly(read: Callable[[int], Any], n: int) -> bytes:
    parts = []
    while n > 0:
        chunk = read(min(n, _MAX_READ))
        if not chunk:
            break
        parts.append(bytes(chunk))
        n -= len(chunk)
    return b"".join(parts)


def _read_stream(f: Any) -> Tuple[bytes, bool]:
    """Read one pickle from a stream as the unpickler without ``peek`` does: up to its STOP,
    or to the end of the FRAME holding the STOP (that unpickler reads a frame with one
    ``read``; the restricted one then loads these bytes from memory, which needs the whole
    frame). ``peek`` only saves reading opcode by opcode.

    Every pass of the loop reads at least one byte or returns, so it ends on any stream."""
    buf = bytearray()
    resume = 0
    peek = getattr(f, "peek", None)
    read = f.read
    readline = getattr(f, "readline", None)
    while True:
        pos, need = _native.pickle_extent(buf, 0, resume)
        if need == 0:
            return bytes(buf), True
        if need == -2:
            return bytes(buf), False
        resume = pos
        if peek is not None and need < _PEEK:
            # Take what the stream has buffered, up to the STOP when that is in it; a STOP
            # inside a frame that goes on past it leaves `need` (the rest of that frame),
            # read below on the next pass.
            try:
                ahead = peek(_PEEK)
            except (OSError, ValueError, NotImplementedError, TypeError, AttributeError):
                ahead, peek = b"", None
            if ahead:
                tail = len(buf) - pos
                trial = bytes(buf[pos:]) + bytes(ahead)
                p2, n2 = _native.pickle_extent(trial, 0)
                if n2 == 0 or n2 == -2:
                    take = (p2 if n2 == 0 else p2 + 1) - tail
                    got = _read_exactly(read, take) if take > 0 else b""
                    buf += got
                    if n2 == -2 or len(got) < take:
                        return bytes(buf), False
                    if not got:
                        peek = None
                    continue
                got = _read_exactly(read, len(ahead))
                if not got:
                    return bytes(buf), False
                buf += got
                continue
        if need == -1:
            if readline is None:
                return bytes(buf), False
            chunk = readline()
        else:
            chunk = _read_exactly(read, need)
        if not chunk:
            return bytes(buf), False
        if isinstance(chunk, str):
            raise TypeError("a bytes-like object is required, not 'str' (open the file in "
                            "binary mode)")
        buf += chunk


def _seek(f: Any, pos: int) -> None:
    f.seek(pos)


def next_pickle(src: Any, buffer: bool = False) -> Span:
    """The next pickle of a source (bytes-like, or a binary file object at its position),
    with a commit that leaves a file where ``pickle.load`` would have left it. An ``mmap`` is
    both: read as a file, at its position, as ``pickle.load`` and ``Unpickler`` read it (a
    loader's file handle: joblib's unpickler reading the scan's map hands it to the nested
    unpickler of an object array), unless ``buffer`` says it is ``loads``' data."""
    if isinstance(src, mmap.mmap) and not buffer:
        pos = src.tell()
        if pos >= len(src):
            return Span(b"", 0, 0, False)
        end, complete = extent(src, pos)
        return Span(src, pos, end, complete, lambda n: _seek(src, pos + n))
    if is_buffer(src):
        return span_of_buffer(src)
    if isinstance(src, io.BytesIO):
        pos = src.tell()
        data = src.getvalue()  # shared with the BytesIO, not copied, while it is unchanged
        end, complete = extent(data, pos) if pos < len(data) else (pos, False)
        return Span(data, pos, end, complete, lambda n: _seek(src, pos + n))
    if _real_file(src):
        if getattr(src, "writable", lambda: False)():
            src.flush()
        pos = src.tell()
        mapped: Any = None
        try:
            mapped = map_fd(src.fileno())
        except (OSError, ValueError):
            pass
        if mapped is not None:
            if pos >= len(mapped):
                return Span(b"", 0, 0, False)
            end, complete = extent(mapped, pos)
            return Span(mapped, pos, end, complete, lambda n: _seek(src, pos + n))
    if not hasattr(src, "read"):
        raise TypeError(f"expected a path, a bytes-like object or a binary file, got "
                        f"{type(src).__name__}")
    data, complete = _read_stream(src)
    return Span(data, 0, len(data), complete)
