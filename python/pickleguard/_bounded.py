"""Decompression before a load, within the scan's own bound.

A loader that decompresses a whole file before scanning it (``safe_load`` of a gzip / xz /
zlib file, the patched ``joblib.load`` of a compressed dump) reads at most the bytes the core
would decompress for the same file (``Policy.decompression_allowance``: the larger of 128 MiB
and ``max_ratio`` x the compressed size, at most ``max_decompressed``). More than that is
refused with a ``PickleSecurityError`` whose analysis carries one ``RESOURCE_LIMIT``
finding, the verdict the scan gives the same file, instead of growing until memory runs out.
"""

from __future__ import annotations

from typing import Any, List, Optional

from . import _native
from ._analysis import Finding, PickleAnalysis, PickleSecurityError

# Read in pieces: one read(limit + 1) would ask the decompressor for a buffer of that size.
_CHUNK = 1 << 20


def allowance(guard: Any, compressed_len: Optional[int]) -> "tuple[int, str]":
    """The bytes ``compressed_len`` compressed bytes may decompress to (unknown length: the
    floor the ratio allows for any input)."""
    return tuple(guard.policy.decompression_allowance(max(0, compressed_len or 0)))  # type: ignore[return-value]


def limit_error(guard: Any, source: str, what: str, limit: int) -> PickleSecurityError:
    desc = (f"analysis stopped at the {what} limit: decompressing gives more than {limit} "
            f"bytes; the rest of the file was not checked")
    a = PickleAnalysis(False, "HIGH", [Finding("RESOURCE_LIMIT", "HIGH", desc)],
                       format="compressed", complete=False,
                       stopped_by=_native.stopped_by_limit(what),
                       mode=guard.mode, source=source)
    return PickleSecurityError(f"{source}: refused: {desc}", a)


def read_all(guard: Any, f: Any, compressed_len: Optional[int], source: str,
             user_limit: Optional[int] = None) -> bytes:
    """Everything ``f`` (a decompressing file object) yields, within the allowance for
    ``compressed_len`` bytes and ``user_limit`` when given."""
    limit, what = allowance(guard, compressed_len)
    if user_limit is not None and user_limit < limit:
        limit, what = user_limit, "max_decompressed_size"
    parts: List[bytes] = []
    total = 0
    while True:
        try:
            piece = f.read(min(_CHUNK, limit + 1 - total))
        except PickleSecurityError:
            raise
        except Exception as e:  # each codec's reader has its own error (zlib, lzma, zstd, lz4)
            raise damaged_error(guard, source, b"".join(parts), e) from e
        if not piece:
            break
        parts.append(piece)
        total += len(piece)
        if total > limit:
            raise limit_error(guard, source, what, limit)
    return b"".join(parts)


class DamagedStreamError(PickleSecurityError):
    """The refusal of a compressed stream the decoder failed on. A loader holding the whole
    compressed file replaces it with the core's verdict on that file (the scan's judgement);
    a loader reading a stream has only this one."""


def damaged_error(guard: Any, source: str, head: bytes, err: BaseException) -> PickleSecurityError:
    """The refusal of a damaged stream: what decoded before the damage, judged as the scan
    judges it (a streaming loader runs it before the decoder notices), and the damage itself,
    which the scan never calls safe (docs/security.md)."""
    a = guard.analyze(head, source=source)
    desc = (f"the compressed data is corrupt or truncated after {len(head)} decompressed bytes "
            f"({err}): a streaming loader runs what the decoder hands it before it notices, so "
            "the file is not judged safe")
    findings = list(a.findings) + [Finding("MALFORMED", "MEDIUM", desc)]
    worst = a.risk_level if not a.is_safe else "MEDIUM"
    b = PickleAnalysis(False, worst, findings, format="compressed", complete=False,
                       stopped_by="malformed: damaged compressed data", globals=a.globals,
                       mode=guard.mode, source=source)
    shown = next((x for x in findings if x.severity == worst), findings[-1])
    return DamagedStreamError(f"{source}: refused: {shown.description}", b)
