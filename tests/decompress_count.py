"""Count decompression during a load: every decompressor the standard library, joblib, pandas,
zipfile, lz4 and zstandard create is wrapped so that the bytes it produces are added up, the
bytes the Rust core's decoders produce are read from its counter (family ``core``), and every
buffer handed to the Rust core is recorded. Used by tests/test_decompress_once.py and
benches/python_overhead.py: the real decompressors do the work, the wrapper only counts.
"""

from __future__ import annotations

import bz2
import contextlib
import lzma
import zlib
from typing import Any, Dict, Iterator, List


class Counts:
    def __init__(self) -> None:
        #: bytes produced, by decompressor family
        self.out: Dict[str, int] = {}
        #: decompressor objects (and one-shot calls) created, by family
        self.made: Dict[str, int] = {}
        #: (function, kind of the buffer's content) of each call into the core
        self.core: List[tuple] = []

    def add(self, family: str, n: int) -> None:
        self.out[family] = self.out.get(family, 0) + n

    def total(self) -> int:
        return sum(self.out.values())

    def core_given_compressed(self) -> List[tuple]:
        return [c for c in self.core if c[1] in ("compressed", "zip")]


class _Counting:
    """A decompressor object whose output is counted; everything else is the real one's."""

    def __init__(self, real: Any, counts: Counts, family: str) -> None:
        self._real = real
        self._counts = counts
        self._family = family

    def decompress(self, *a: Any, **k: Any) -> Any:
        out = self._real.decompress(*a, **k)
        self._counts.add(self._family, len(out))
        return out

    def flush(self, *a: Any, **k: Any) -> Any:
        out = self._real.flush(*a, **k)
        self._counts.add(self._family, len(out))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _CountingReader:
    """zstandard's stream reader: reads counted."""

    def __init__(self, real: Any, counts: Counts) -> None:
        self._real = real
        self._counts = counts

    def read(self, *a: Any) -> Any:
        out = self._real.read(*a)
        self._counts.add("zstd", len(out))
        return out

    def readinto(self, b: Any) -> int:
        n = self._real.readinto(b)
        self._counts.add("zstd", n)
        return n

    def __enter__(self) -> "_CountingReader":
        self._real.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._real.__exit__(*exc)

    def __iter__(self) -> Any:
        return iter(self._real)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _factory(real: Any, counts: Counts, family: str) -> Any:
    def make(*a: Any, **k: Any) -> Any:
        counts.made[family] = counts.made.get(family, 0) + 1
        return _Counting(real(*a, **k), counts, family)
    return make


@contextlib.contextmanager
def counting() -> Iterator[Counts]:
    """Count every decompression in this process while the block runs."""
    from pickleguard import _native
    from pickleguard._codecs import sniff
    counts = Counts()
    saved: List[tuple] = []

    def put(owner: Any, attr: str, value: Any) -> None:
        saved.append((owner, attr, getattr(owner, attr)))
        setattr(owner, attr, value)

    put(zlib, "decompressobj", _factory(zlib.decompressobj, counts, "zlib"))
    real_decompress = zlib.decompress

    def one_shot(data: Any, *a: Any, **k: Any) -> bytes:
        counts.made["zlib"] = counts.made.get("zlib", 0) + 1
        out = real_decompress(data, *a, **k)
        counts.add("zlib", len(out))
        return out

    put(zlib, "decompress", one_shot)
    put(bz2, "BZ2Decompressor", _factory(bz2.BZ2Decompressor, counts, "bz2"))
    put(lzma, "LZMADecompressor", _factory(lzma.LZMADecompressor, counts, "lzma"))
    try:
        import lz4.frame as lz4f
        put(lz4f, "LZ4FrameDecompressor", _factory(lz4f.LZ4FrameDecompressor, counts, "lz4"))
    except ImportError:
        pass
    try:
        import zstandard
        real_z = zstandard.ZstdDecompressor

        class CountingZstd:
            def __init__(self, *a: Any, **k: Any) -> None:
                counts.made["zstd"] = counts.made.get("zstd", 0) + 1
                self._real = real_z(*a, **k)

            def stream_reader(self, *a: Any, **k: Any) -> Any:
                return _CountingReader(self._real.stream_reader(*a, **k), counts)

            def decompressobj(self, *a: Any, **k: Any) -> Any:
                return _Counting(self._real.decompressobj(*a, **k), counts, "zstd")

            def decompress(self, data: Any, *a: Any, **k: Any) -> Any:
                out = self._real.decompress(data, *a, **k)
                counts.add("zstd", len(out))
                return out

            def __getattr__(self, name: str) -> Any:
                return getattr(self._real, name)

        put(zstandard, "ZstdDecompressor", CountingZstd)
    except ImportError:
        pass

    def recording(name: str, real: Any) -> Any:
        def call(data: Any, *a: Any, **k: Any) -> Any:
            counts.core.append((name, sniff(bytes(memoryview(data)[:16]))))
            return real(data, *a, **k)
        return call

    for name in ("scan_bytes", "analyze_pickle"):
        put(_native, name, recording(name, getattr(_native, name)))
    # The core's own decoders (zip members, compressed streams it is handed) count their
    # output in the process; what they produced while the block ran is family "core".
    core_before = _native.decompressed_bytes()
    try:
        yield counts
    finally:
        core = _native.decompressed_bytes() - core_before
        if core:
            counts.add("core", core)
        for owner, attr, value in reversed(saved):
            setattr(owner, attr, value)
