"""Decompression bombs, one per shape a decoder can be made to over-allocate or over-produce.

Every bomb is made without compressing its whole output: a small compressed unit is repeated
(concatenated streams, members or frames), or LZMA2 / zstd chunks are laid out by hand, so a
bomb of many GiB takes milliseconds to build. ``BOMBS`` maps a name to ``(builder, what it
expands to)``; ``build(name, gib)`` makes one that expands to about ``gib`` GiB.

    python tests/corpus/gen_bombs.py OUTDIR [GIB]   # writes every bomb to OUTDIR
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import sys
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Callable, Dict, Tuple

MIB = 1 << 20
GIB = 1 << 30

# A protocol-4 pickle of a huge bytes object: the decompressed stream *is* a pickle, so no
# "not a pickle in its first bytes" shortcut applies and the whole output must be bounded.
def _pickle_head(n: int) -> bytes:
    return b"\x80\x04\x95" + struct.pack("<Q", n + 10) + b"\x8e" + struct.pack("<Q", n)


def _crc(b: bytes) -> bytes:
    return struct.pack("<I", zlib.crc32(b))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


@lru_cache(maxsize=None)
def _lzma2_zero_chunk() -> Tuple[bytes, int]:
    """One LZMA2 compressed chunk that decodes to 2,000,000 zeros after zeros (no dictionary
    reset), and its output size."""
    raw = lzma.compress(bytes(2_000_000), format=lzma.FORMAT_RAW,
                        filters=[{"id": lzma.FILTER_LZMA2, "preset": 0}])
    ctrl = raw[0]
    assert ctrl & 0x80, "expected a compressed chunk"
    usize = ((ctrl & 0x1F) << 16 | raw[1] << 8 | raw[2]) + 1
    psize = (raw[3] << 8 | raw[4]) + 1
    assert raw[6 + psize] == 0x00 and usize == 2_000_000, "expected one chunk"
    # 0xE0: dictionary reset + new properties; 0xC0: state reset + new properties, dictionary
    # kept. Decoding the same bytes again after zeros gives zeros again.
    body = raw[1:6 + psize]
    return bytes([0xC0 | ctrl & 0x1F]) + body, usize


def xz_single(total: int, dict_prop: int = 40) -> bytes:
    """One xz stream, one block, LZMA2 with the dictionary size property ``dict_prop``
    (40 = 4 GiB - 1, the largest; the header is all a decoder has to size its window)."""
    chunk, usize = _lzma2_zero_chunk()
    n = max(1, total // usize)
    first = bytes([0xE0 | chunk[0] & 0x1F]) + chunk[1:]
    data = first + chunk * (n - 1) + b"\x00"
    header = b"\xfd7zXZ\x00" + b"\x00\x00" + _crc(b"\x00\x00")
    # Block header: size, flags (1 filter, no sizes), LZMA2 filter (0x21, 1 property byte).
    bh = bytearray([0, 0x00, 0x21, 0x01, dict_prop])
    while (len(bh) + 4) % 4:
        bh.append(0)
    bh[0] = (len(bh) + 4) // 4 - 1
    block = bytes(bh) + _crc(bytes(bh)) + data
    unpadded = len(block)
    block += b"\x00" * (-len(block) % 4)
    index = b"\x00" + _varint(1) + _varint(unpadded) + _varint(n * usize)
    index += b"\x00" * (-len(index) % 4)
    index += _crc(index)
    back = struct.pack("<I", len(index) // 4 - 1) + b"\x00\x00"
    footer = _crc(back) + back + b"YZ"
    return header + block + index + footer


@lru_cache(maxsize=None)
def _unit(kind: str) -> bytes:
    """A stream of 16 MiB of zeros in one format, to be repeated."""
    z = bytes(16 * MIB)
    if kind == "gzip":
        return gzip.compress(z, 9, mtime=0)
    if kind == "bz2":
        return bz2.compress(z, 9)
    if kind == "xz":
        return lzma.compress(z, preset=0)
    if kind == "lzma":
        return lzma.compress(z, format=lzma.FORMAT_ALONE, preset=0)
    if kind == "zlib":
        return zlib.compress(z, 9)
    raise ValueError(kind)


def repeated(kind: str, total: int) -> bytes:
    """Concatenated streams / members: every loader reads them all."""
    return _unit(kind) * max(1, total // (16 * MIB))


def lzma_alone_huge_dict(total: int) -> bytes:
    """.lzma "alone" streams whose headers declare a 2 GiB dictionary and an unknown size."""
    u = bytearray(_unit("lzma"))
    u[1:5] = struct.pack("<I", 1 << 31)  # 2 GiB: a size liblzma accepts (2^n)
    return bytes(u) * max(1, total // (16 * MIB))


def lzma_alone_declared(total: int) -> bytes:
    """One .lzma stream that declares 2**62 bytes of output and holds 16 MiB."""
    u = bytearray(_unit("lzma"))
    u[5:13] = struct.pack("<Q", 1 << 62)
    return bytes(u)


def _zstd_rle_blocks(total: int) -> bytes:
    # RLE blocks of 128 KiB of zeros: 4 bytes each.
    n = max(1, total // (128 << 10))
    blk = lambda last: struct.pack("<I", last | (1 << 1) | ((128 << 10) << 3))[:3] + b"\x00"
    return blk(0) * (n - 1) + blk(1)


def zstd_giant_window(total: int) -> bytes:
    """A zstd frame whose window descriptor declares ~3.75 TiB (exponent 31, mantissa 7)."""
    return b"\x28\xb5\x2f\xfd" + bytes([0x00, 0xFF]) + _zstd_rle_blocks(total)


def zstd_declared_content(total: int) -> bytes:
    """A single-segment zstd frame (window = content size) declaring 2**62 bytes."""
    return (b"\x28\xb5\x2f\xfd" + bytes([0xE0]) + struct.pack("<Q", 1 << 62)
            + _zstd_rle_blocks(total))


def zstd_frames(total: int) -> bytes:
    """Many honest 8 MiB-window zstd frames (total output bounded by the budget only)."""
    frame = b"\x28\xb5\x2f\xfd" + bytes([0x00, (13 << 3)]) + _zstd_rle_blocks(64 * MIB)
    return frame * max(1, total // (64 * MIB))


def lz4_declared(total: int) -> bytes:
    """lz4 frames that declare a content size of 2**62 and hold 4 MiB blocks of zeros."""
    import lz4.frame  # type: ignore[import-not-found]
    one = lz4.frame.compress(bytes(64 * MIB), block_size=lz4.frame.BLOCKSIZE_MAX4MB,
                             content_checksum=False, store_size=True)
    # Declared size: bytes 6..14 (after magic, FLG, BD); the header checksum follows. The
    # patched frame is kept honest otherwise, so decoders that check the size stop at its end.
    flg = one[4]
    assert flg & 0x08, "content size stored"
    desc = bytearray(one[4:14])
    desc[2:10] = struct.pack("<Q", 1 << 62)
    import lz4.frame as lf  # noqa: F811
    hc = _xxh32(bytes(desc)) >> 8 & 0xFF
    frame = one[:4] + bytes(desc) + bytes([hc]) + one[15:]
    del lf
    return frame * max(1, total // (64 * MIB))


def _xxh32(data: bytes, seed: int = 0) -> int:
    p1, p2, p3, p4, p5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
    m = 0xFFFFFFFF
    rotl = lambda x, r: ((x << r) | (x >> (32 - r))) & m
    n = len(data)
    i = 0
    if n >= 16:
        v = [(seed + p1 + p2) & m, (seed + p2) & m, seed & m, (seed - p1) & m]
        while i + 16 <= n:
            for k in range(4):
                lane = struct.unpack_from("<I", data, i + 4 * k)[0]
                v[k] = (rotl((v[k] + lane * p2) & m, 13) * p1) & m
            i += 16
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & m
    else:
        h = (seed + p5) & m
    h = (h + n) & m
    while i + 4 <= n:
        h = (rotl((h + struct.unpack_from("<I", data, i)[0] * p3) & m, 17) * p4) & m
        i += 4
    while i < n:
        h = (rotl((h + data[i] * p5) & m, 11) * p1) & m
        i += 1
    h ^= h >> 15
    h = (h * p2) & m
    h ^= h >> 13
    h = (h * p3) & m
    h ^= h >> 16
    return h


def pickle_in_zlib(total: int) -> bytes:
    """joblib's compress='zlib' shape: a zlib stream of a pickle whose bytes object is huge.
    After a full flush deflate refers to nothing before it, so one flushed piece of zeros is
    repeated; the final checksum covers a single piece (the stream is refused long before)."""
    c = zlib.compressobj(9)
    head = c.compress(_pickle_head(total)) + c.flush(zlib.Z_FULL_FLUSH)
    piece = c.compress(bytes(16 * MIB)) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.compress(b".") + c.flush()
    return head + piece * max(1, total // (16 * MIB)) + tail


def gzip_pickle_members(total: int) -> bytes:
    """gzip members: a pickle header, then members of zeros (one stream to a reader)."""
    return gzip.compress(_pickle_head(total), mtime=0) + repeated("gzip", total)


def nested_gzip_xz(total: int) -> bytes:
    """A gzip around an xz bomb that starts with a pickle."""
    return gzip.compress(head_stream("xz", total) + xz_single(total), 9, mtime=0)


def head_stream(kind: str, total: int) -> bytes:
    """A small stream of ``kind`` holding a pickle's start (a bytes object of ``total``
    bytes), to put in front of a bomb: what follows is then read as that pickle's data, so no
    "not a pickle" shortcut stops the decompression early."""
    h = _pickle_head(total)
    if kind == "gzip":
        return gzip.compress(h, mtime=0)
    if kind == "bz2":
        return bz2.compress(h)
    if kind == "xz":
        return lzma.compress(h)
    if kind == "lzma":
        return lzma.compress(h, format=lzma.FORMAT_ALONE)
    if kind == "zstd":
        raw_block = struct.pack("<I", 1 | (0 << 1) | (len(h) << 3))[:3] + h
        return b"\x28\xb5\x2f\xfd" + bytes([0x00, (13 << 3)]) + raw_block
    if kind == "lz4":
        import lz4.frame  # type: ignore[import-not-found]
        return lz4.frame.compress(h)
    raise ValueError(kind)


def headed(kind: str, body: Callable[[int], bytes]) -> Callable[[int], bytes]:
    return lambda total: head_stream(kind, total) + body(total)


BOMBS: Dict[str, Tuple[Callable[[int], bytes], str]] = {
    "xz_single_huge_dict": (xz_single, "one xz stream, 4 GiB dictionary"),
    "xz_pickle_huge_dict": (headed("xz", xz_single), "pickle head, then the xz stream above"),
    "xz_multi_stream": (headed("xz", lambda t: repeated("xz", t)), "concatenated xz streams"),
    "lzma_alone_huge_dict": (headed("lzma", lzma_alone_huge_dict),
                             ".lzma streams, 2 GiB dictionary"),
    "lzma_alone_declared": (lzma_alone_declared, ".lzma stream declaring 2**62 bytes"),
    "bz2_multi_stream": (headed("bz2", lambda t: repeated("bz2", t)),
                         "concatenated bz2 streams"),
    "gzip_multi_member": (gzip_pickle_members, "gzip members after a pickle header"),
    "zlib_pickle": (pickle_in_zlib, "zlib stream of a huge pickle (joblib compress='zlib')"),
    "zstd_giant_window": (zstd_giant_window, "zstd frame declaring a 3.75 TiB window"),
    "zstd_declared_content": (zstd_declared_content, "zstd single segment, 2**62 content"),
    "zstd_frames": (headed("zstd", zstd_frames), "concatenated zstd frames"),
    "lz4_declared": (headed("lz4", lz4_declared), "lz4 frames declaring 2**62 content"),
    "gzip_of_xz": (nested_gzip_xz, "gzip around an xz bomb"),
}


def build(name: str, gib: float = 1.0) -> bytes:
    return BOMBS[name][0](int(gib * GIB))


def main() -> None:
    out = Path(sys.argv[1])
    gib = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    out.mkdir(parents=True, exist_ok=True)
    for name in BOMBS:
        data = build(name, gib)
        (out / f"{name}.bin").write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
