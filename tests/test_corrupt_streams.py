"""Damaged compressed streams: Python's decompressors hand a streaming loader every byte they
decode before they notice the damage (a wrong checksum is noticed only after all the data), and
an unpickler runs what it gets. Whatever a stream's damage, the scan reads at least the bytes
Python's decoder hands out, or does not call the file safe. Only decompression happens here:
nothing is unpickled.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import pickle
import random
import zlib

import pytest

from pickleguard import _native

# A pickle that stays benign however it is cut: plain data, long enough that the damage falls
# inside it or after it.
PAYLOAD = pickle.dumps([list(range(300))] * 20 + ["x" * 20000, b"y" * 7000], protocol=4)

ENCODE = {
    "gzip": lambda p: gzip.compress(p, mtime=0),
    "bz2": bz2.compress,
    "xz": lambda p: lzma.compress(p, format=lzma.FORMAT_XZ),
    "lzma": lambda p: lzma.compress(p, format=lzma.FORMAT_ALONE),
    "zlib": zlib.compress,
}


def streamed(codec: str, data: bytes) -> bytes:
    """What the codec's Python decoder hands out before it fails, fed 64 bytes at a time."""
    got = bytearray()
    if codec == "gzip":
        f = gzip.GzipFile(fileobj=__import__("io").BytesIO(data))
        try:
            while chunk := f.read(64):
                got += chunk
        except (OSError, EOFError, zlib.error):
            pass
        return bytes(got)
    d = {"bz2": bz2.BZ2Decompressor, "xz": lzma.LZMADecompressor,
         "lzma": lzma.LZMADecompressor, "zlib": zlib.decompressobj}[codec]()
    try:
        for i in range(0, len(data), 64):
            got += d.decompress(data[i:i + 64])
    except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError):
        pass
    return bytes(got)


def damaged(codec: str, n: int):
    z = ENCODE[codec](PAYLOAD)
    rnd = random.Random(codec)
    for _ in range(n):
        b = bytearray(z)
        b[rnd.randrange(14, len(b))] ^= 1 << rnd.randrange(8)
        yield bytes(b)
    # The checksum (or the last bytes) alone.
    for back in (1, 4, 8, 12):
        b = bytearray(z)
        b[-back] ^= 0x55
        yield bytes(b)


@pytest.mark.parametrize("codec", sorted(ENCODE))
def test_the_scan_reads_what_python_streams_or_refuses(codec):
    policy = _native.Policy("ml")
    missed = []
    for data in damaged(codec, 120):
        py = streamed(codec, data)
        if not py:
            continue
        seen = [s["data"] for s in _native.analysed_streams(data, policy) if s["data"]]
        if any(s.startswith(py) for s in seen):
            continue
        if not _native.scan_bytes(data, policy)["is_safe"]:
            continue
        missed.append((len(py), [len(s) for s in seen]))
    assert not missed, missed[:5]


@pytest.mark.parametrize("codec", ["gzip", "zlib"])
def test_a_wrong_checksum_hides_nothing(codec):
    """The deflate decoders give the scan every byte before a wrong checksum, and the file is
    not safe."""
    policy = _native.Policy("ml")
    z = bytearray(ENCODE[codec](PAYLOAD))
    z[{"gzip": -8, "zlib": -1}[codec]] ^= 0x55
    seen = [s["data"] for s in _native.analysed_streams(bytes(z), policy) if s["data"]]
    assert any(s.startswith(PAYLOAD) for s in seen), [len(s) for s in seen]
    assert not _native.scan_bytes(bytes(z), policy)["is_safe"]
