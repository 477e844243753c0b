"""Remote sources: scan a file or a folder behind a URL (``https://``, ``s3://``, ``hf://``,
any fsspec protocol) reading only the bytes the scan needs.

fsspec (``pip install 'pickleguard-scan[remote]'``) does the reading. Each remote file becomes
a sparse local copy of the same size holding the bytes a scan reads, and the ordinary scan
(``scan_file``, or the command line) judges that copy, so a remote file gets the same verdict
as a local one. What is fetched (docs/cli.md, "Remote sources"):

- a zip (PyTorch checkpoints): the end records and the central directory, every local header,
  and every member's data except the tensor storages of a torch archive (named by the core,
  ``_native.storage_members``), which no loader unpickles and no scan reads;
- anything else, or a zip whose layout is at all unusual: the whole file.

The skipped storage bytes read as zeros in the copy; both Python's zipfile and torch's reader
find members through the central directory, which is fetched, so they cannot hide a pickle.
"""

from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from . import _native
from ._guard import guard_for

__all__ = ["is_remote", "scan_url", "fetch", "Fetched"]

#: Bytes read from the start of every file to tell what it is.
HEAD = 64 << 10
#: Bytes read from the end of a zip: the end record with the largest comment, and zip64 records.
TAIL = 0xFFFF + 22 + 20 + 56
#: Bytes of a local header read at once (30 fixed + name + extra; refetched if longer).
LOCAL = 30 + 512

_EOCD = b"PK\x05\x06"
_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"


def is_remote(path: str) -> bool:
    """Whether ``path`` names a remote source (``scheme://...``, not ``file://``)."""
    scheme, sep, _ = str(path).partition("://")
    return (bool(sep) and len(scheme) > 1 and scheme[0].isalpha() and scheme != "file"
            and all(c.isalnum() or c in "+-." for c in scheme))


@dataclass
class Fetched:
    """A remote source fetched into ``local`` (a file, or a folder mirroring a remote one)."""
    url: str
    local: Path
    size: int = 0
    #: Bytes actually read from the remote side.
    read: int = 0
    files: List[str] = field(default_factory=list)

    def remote_name(self) -> str:
        """``LOCAL=URL``: how the command line's judge (``--remote-name``, the one place that
        names remote files) reports the files of ``local`` under ``url``."""
        return f"{self.local}={self.url}"


class _Reader:
    """Ranged reads of one remote file, counted."""

    def __init__(self, fs: Any, path: str, size: int) -> None:
        self.fs, self.path, self.size = fs, path, size
        self.read = 0
        self.cache: Dict[Tuple[int, int], bytes] = {}

    def get(self, start: int, end: int) -> bytes:
        start, end = max(0, start), min(self.size, end)
        if end <= start:
            return b""
        for (a, b), data in self.cache.items():
            if a <= start and end <= b:
                return data[start - a:end - a]
        data = self.fs.cat_file(self.path, start=start, end=end)
        if len(data) != end - start:
            raise OSError(f"{self.path}: asked for bytes {start}..{end}, got {len(data)}")
        self.read += len(data)
        self.cache[(start, end)] = data
        return data


@dataclass
class _Entry:
    name: bytes
    flags: int
    method: int
    csize: int
    usize: int
    local: int


def _central(tail: bytes, tail_at: int, reader: _Reader) -> Optional[List[_Entry]]:
    """The central directory's entries, or None when the layout is unusual (then the whole
    file is fetched)."""
    e = tail.rfind(_EOCD)
    if e < 0 or len(tail) < e + 22:
        return None
    (_, disk, cd_disk, _n_here, n, cd_size, cd_off, clen) = struct.unpack_from(
        "<4sHHHHIIH", tail, e)
    if disk or cd_disk or tail_at + e + 22 + clen != reader.size:
        return None
    eocd_at = tail_at + e
    dir_end = eocd_at
    if e >= 20 and tail[e - 20:e - 16] == _LOCATOR:
        at = e - 20 - 56
        if at < 0 or tail[at:at + 4] != _EOCD64:
            return None
        n, cd_size, cd_off = struct.unpack_from("<QQQ", tail, at + 32)
        dir_end = tail_at + at
    if cd_off + cd_size != dir_end:
        return None  # a prefix before the archive, or records between: fetch it all
    cd = reader.get(cd_off, cd_off + cd_size)
    entries: List[_Entry] = []
    p = 0
    while p < len(cd):
        if cd[p:p + 4] != _CENTRAL or p + 46 > len(cd):
            return None
        (flags, method) = struct.unpack_from("<HH", cd, p + 8)
        (csize, usize) = struct.unpack_from("<II", cd, p + 20)
        (nlen, xlen, clen2) = struct.unpack_from("<HHH", cd, p + 28)
        (local,) = struct.unpack_from("<I", cd, p + 42)
        if 0xFFFFFFFF in (csize, usize, local):
            return None  # zip64 sizes: rare in pickles' archives, fetched whole
        name = cd[p + 46:p + 46 + nlen]
        entries.append(_Entry(name, flags, method, csize, usize, local))
        p += 46 + nlen + xlen + clen2
    if len(entries) != n:
        return None
    return entries


def _zip_ranges(reader: _Reader) -> Optional[List[Tuple[int, int]]]:
    """The byte ranges of a zip a scan reads, or None to read the whole file."""
    tail_at = max(0, reader.size - TAIL)
    tail = reader.get(tail_at, reader.size)
    entries = _central(tail, tail_at, reader)
    if entries is None or any(not all(b < 0x80 for b in e.name) for e in entries):
        return None  # non-ASCII names: let no decoding difference decide what is skipped
    names = [e.name.decode("ascii") for e in entries]
    storage = _native.storage_members(names)
    ranges: List[Tuple[int, int]] = [(tail_at, reader.size)]
    starts = sorted(e.local for e in entries)
    for e, skip in zip(entries, storage):
        head = reader.get(e.local, e.local + LOCAL)
        if head[:4] != _LOCAL or len(head) < 30:
            return None
        (flags, method) = struct.unpack_from("<HH", head, 6)
        (csize, usize, nlen, xlen) = struct.unpack_from("<IIHH", head, 18)
        data = e.local + 30 + nlen + xlen
        ranges.append((e.local, data))
        local_name = reader.get(e.local + 30, e.local + 30 + nlen)
        # Sizes left to a data descriptor (torch writes them so): the central entry's count.
        deferred = flags & 8 and csize == 0 and usize == 0
        same = (local_name == e.name and method == e.method and e.flags & 1 == 0
                and (deferred or (csize == e.csize and usize == e.usize)))
        if skip and same:
            ranges.append((data + e.csize, min(data + e.csize + 24, reader.size)))
            continue
        # Not a storage: its data. Where the two views differ, all either view could read.
        nxt = next((s for s in starts if s > e.local), tail_at)
        end = data + e.csize if same else max(data + e.csize, data + csize, nxt)
        ranges.append((data, min(end + 24, reader.size)))
    return ranges


def _fetch_file(fs: Any, path: str, local: Path,
                max_size: Optional[int] = None) -> Tuple[int, int]:
    """Fetch what a scan of ``path`` reads into a sparse file ``local``; (size, bytes read).
    A file over ``max_size`` (``--max-size``) is left empty at its size: the scan reports it
    not scanned from its size alone, so none of it is fetched."""
    size = int(fs.size(path))
    if max_size is not None and size > max_size:
        local.parent.mkdir(parents=True, exist_ok=True)
        with open(local, "wb") as out:
            out.truncate(size)
        return size, 0
    reader = _Reader(fs, path, size)
    head = reader.get(0, HEAD)
    ranges: Optional[List[Tuple[int, int]]] = None
    if head[:4] == _LOCAL and size > HEAD:
        ranges = _zip_ranges(reader)
    if ranges is None:
        ranges = [(0, size)]
    ranges.append((0, len(head)))
    local.parent.mkdir(parents=True, exist_ok=True)
    with open(local, "wb") as out:
        out.truncate(size)  # holes read as zeros: nothing a scan reads is left in one
        for a, b in _merge(ranges):
            out.seek(a)
            out.write(reader.get(a, b))
    return size, reader.read


def _merge(ranges: List[Tuple[int, int]]) -> Iterator[Tuple[int, int]]:
    cur: Optional[List[int]] = None
    for a, b in sorted(ranges):
        if cur is not None and a <= cur[1]:
            cur[1] = max(cur[1], b)
            continue
        if cur is not None:
            yield cur[0], cur[1]
        cur = [a, b]
    if cur is not None:
        yield cur[0], cur[1]


def _filesystem(url: str) -> Tuple[Any, str]:
    try:
        import fsspec
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("scanning a URL needs fsspec: pip install 'pickleguard-scan[remote]'"
                          ) from e
    return fsspec.core.url_to_fs(url)


def fetch(url: str, into: "os.PathLike[str] | str", max_size: Optional[int] = None) -> Fetched:
    """Fetch what a scan of ``url`` (a file, or a folder such as ``hf://org/model``) reads
    into the folder ``into``; files over ``max_size`` bytes are not fetched."""
    fs, path = _filesystem(url)
    root = Path(into) / "remote"
    out = Fetched(url, root)
    # info, not isdir: fsspec's HTTP isdir downloads the body to look for links.
    if fs.info(path).get("type") == "directory":
        for f in sorted(fs.find(path)):
            rel = f[len(path.rstrip("/")):].lstrip("/")
            size, read = _fetch_file(fs, f, root / rel, max_size)
            out.size += size
            out.read += read
            out.files.append(rel)
    else:
        name = Path(path).name or "file"
        out.local = root / name
        out.size, out.read = _fetch_file(fs, path, out.local, max_size)
        out.files.append(name)
    return out


def scan_url(url: str, *, mode: str = "ml", **options: Any) -> Any:
    """Scan a remote file (``https://``, ``s3://``, ``hf://``, ...), reading only the bytes
    the scan needs. Returns the ``PickleAnalysis`` of that file; for a folder, a dict from
    each file's path in it to its analysis."""
    cache = options.pop("cache", None)
    with tempfile.TemporaryDirectory(prefix="pickleguard-remote-") as tmp:
        got = fetch(url, tmp)

        def scan_file(p: Path) -> Any:
            return guard_for(mode, **options).scan_file(p, cache=cache)

        if got.local.is_dir():
            return {rel: _named(scan_file(got.local / rel), f"{url.rstrip('/')}/{rel}")
                    for rel in got.files}
        return _named(scan_file(got.local), url)


def _named(a: Any, source: str) -> Any:
    a.source = source
    return a


def main(argv: List[str]) -> int:
    """``pickleguard scan URL...``: the native command hands remote arguments here
    (``python -m pickleguard.remote scan ARGS``); each is fetched, then the native scan runs
    on the copies with ``--remote-name`` so reports show the URLs."""
    args = list(argv)
    # What is left is local: the native scan must not hand a URL back here.
    os.environ["PICKLEGUARD_REMOTE_FETCHED"] = "1"
    try:
        max_size, _ = _native.scan_bounds(["pickleguard", *args])
    except ValueError:  # a usage error: the command line reports it (exit 2)
        return _native.run_cli(["pickleguard", *args])
    with tempfile.TemporaryDirectory(prefix="pickleguard-remote-") as tmp:
        extra: List[str] = []
        for i, a in enumerate(args):
            if i == 0 or not is_remote(a):
                continue
            try:
                got = fetch(a, Path(tmp) / str(i), max_size)
            except Exception as e:  # noqa: BLE001 - reported as the CLI reports I/O errors
                import sys
                print(_native.terminal_safe(f"pickleguard: error: {a}: {e}"), file=sys.stderr)
                return 2
            args[i] = str(got.local)
            extra += ["--remote-name", got.remote_name()]
        return _native.run_cli(["pickleguard", *args, *extra])


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv[1:]))
