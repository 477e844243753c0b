"""`.lzma` ("alone") streams: the scan opens every header liblzma's format guess opens.

Python's `lzma.open`, `lzma.LZMAFile` and `lzma.decompress` guess the format by default
(FORMAT_AUTO), which takes any valid `.lzma` header, not only the 0x5d properties joblib
writes: pandas' `compression="xz"` reads all of them. These tests compare the core's test
(`_native.container_kind`, the one the scan, `safe_load` and the middleware use) with liblzma's
own decision on generated headers, and check that what such a stream holds is judged.
Nothing here is unpickled outside the guard.
"""
import lzma
import pickle
import random
import struct

import pytest

from pickleguard import _native, scan_bytes

GRID = [(lc, lp, pb) for pb in range(5) for lp in range(5) for lc in range(9) if lc + lp <= 4]
DICTS = [1 << 12, 3 << 11, 1 << 16, 1 << 20, 3 << 22, 1 << 26]


def _alone(data: bytes, lc: int, lp: int, pb: int, dict_size: int) -> bytes:
    filters = [{"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": dict_size}]
    return lzma.compress(data, format=lzma.FORMAT_ALONE, filters=filters)


def _payload() -> bytes:
    # GLOBAL os.system + REDUCE: judged by the scan, never loaded here.
    return b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R."


def _auto_accepts(header: bytes) -> bool:
    """Whether liblzma's format guess takes `header` as the start of a stream."""
    try:
        lzma.LZMADecompressor(lzma.FORMAT_AUTO).decompress(header)
    except lzma.LZMAError:
        return False
    return True


@pytest.mark.parametrize("lc,lp,pb", GRID)
def test_every_valid_property_byte_is_opened_and_judged(lc, lp, pb):
    dict_size = DICTS[(lc + 3 * lp + 7 * pb) % len(DICTS)]
    benign = _alone(pickle.dumps({"w": [1.0, 2.0], "name": "ok"}, protocol=4), lc, lp, pb, dict_size)
    assert lzma.decompress(benign) and _native.container_kind(benign) in ("lzma", "zlib")
    report = scan_bytes(benign)
    assert report.is_safe and report.format == "lzma_pickle", (lc, lp, pb, report.format)

    bad = _alone(_payload(), lc, lp, pb, dict_size)
    report = scan_bytes(bad)
    assert not report.is_safe and report.format == "lzma_pickle", (lc, lp, pb, report.format)
    assert any(f.name == "system" for f in report.findings), report.findings


def test_sniff_agrees_with_liblzma_on_generated_headers():
    rng = random.Random(1944)
    shapes = [lambda n: 1 << n, lambda n: 3 << n, lambda n: 5 << n, lambda n: (1 << n) + 1]
    sizes = [2**64 - 1, 0, 58, 2**38 - 1, 2**38, 2**63]
    checked = accepted = 0
    for _ in range(4000):
        props = rng.randrange(256)
        d = rng.choice(shapes)(rng.randrange(0, 30)) & 0xFFFFFFFF
        if rng.random() < 0.05:
            d = rng.choice([0, 0xFFFFFFFF, rng.getrandbits(32)])
        header = bytes([props]) + struct.pack("<IQ", d, rng.choice(sizes))
        data = header + bytes(rng.getrandbits(8) for _ in range(19))
        kind = _native.container_kind(data)
        if _auto_accepts(header):
            accepted += 1
            # A header that is also a zlib header is sniffed as zlib; the scan then tries
            # `.lzma` when zlib decodes nothing (compress::second_guess).
            assert kind in ("lzma", "zlib"), (header.hex(), kind)
        else:
            assert kind != "lzma", (header.hex(), kind)
        checked += 1
    assert checked == 4000 and 200 < accepted < 3800, accepted


def test_joblib_prefix_still_wins():
    data = _alone(pickle.dumps([1, 2, 3]), 3, 0, 2, 1 << 23)
    assert data[:2] == b"\x5d\x00" and _native.container_kind(data) == "lzma"


@pytest.mark.parametrize("lc,lp,pb", [(0, 0, 0), (3, 0, 2), (1, 3, 4), (4, 0, 0)])
def test_safe_load_and_install_read_what_pandas_reads(tmp_path, lc, lp, pb):
    """A benign `.pkl.xz` in `.lzma` format with any valid header loads through safe_load and
    through pandas under install(), equal to pandas' own load."""
    import pandas as pd

    import pickleguard

    obj = {"w": [1.5, 2.5], "name": "ok", "n": 3}
    path = tmp_path / "frame.pkl.xz"
    path.write_bytes(_alone(pickle.dumps(obj, protocol=4), lc, lp, pb, 1 << 16))
    assert pd.read_pickle(path) == obj
    assert pickleguard.safe_load(str(path)) == obj
    pickleguard.install()
    try:
        assert pd.read_pickle(path) == obj
    finally:
        pickleguard.uninstall()


def test_zeros_are_no_lzma_stream(tmp_path):
    """Zeros pass liblzma's header test (an empty stream, again and again): the scan and
    safe_load still call a zero-filled file no pickle, and nothing is loaded."""
    import pickleguard

    path = tmp_path / "zeros.pkl"
    path.write_bytes(bytes(5 << 20))
    assert _native.container_kind(path.read_bytes()[:64]) == "lzma"
    report = pickleguard.scan_file(str(path))
    assert report.is_safe and report.format == "not_pickle", report.format
    with pytest.raises(pickleguard.NotAPickleError):
        pickleguard.safe_load(str(path))


def _cuts(stream: bytes):
    """Every cut of a stream after its header, down to a few bytes of data."""
    return range(14, len(stream))


@pytest.mark.parametrize("fmt", [lzma.FORMAT_XZ, lzma.FORMAT_ALONE])
def test_a_cut_stream_is_never_safe_when_liblzma_yields_a_payload(fmt):
    """liblzma hands out what it decodes before a cut, and a streaming loader (pandas'
    read_pickle, LZMAFile) unpickles it; the core's decoder holds back a margin of input. At
    every cut where Python's lzma yields a whole payload pickle, the scan is not safe; at every
    cut at all, a cut stream is not safe."""
    one = _payload()
    for copies in (1, 3, 12):
        stream = lzma.compress(one * copies, format=fmt)
        for cut in _cuts(stream):
            part = stream[:cut]
            dec = lzma.LZMADecompressor(lzma.FORMAT_AUTO)
            try:
                got = dec.decompress(part)
            except lzma.LZMAError:
                got = b""
            a = scan_bytes(part)
            assert not a.is_safe, (fmt, copies, cut, len(got), a.findings)
            if got.startswith(one):
                kinds = {f.type for f in a.findings}
                assert "DANGEROUS_IMPORT" in kinds or "REDUCE_CALL" in kinds or any(
                    "cut off" in f.description for f in a.findings), (fmt, copies, cut, a.findings)
