"""The guard's stream reader (python/pickleguard/_io.py) under install(): it ends on every
stream, including a STOP inside a FRAME read from a stream without seek (gzip, a pipe,
pandas' reader), which looped forever, and leaves each stream where a loader would.

Each case runs in a child process with a timeout, so a hang fails the test instead of the
suite; the streams hold only plain data (ints), never a payload."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap

import pytest


def frame(body: bytes) -> bytes:
    return b"\x95" + struct.pack("<Q", len(body)) + body


# Three pickles: 1 and 2 share a frame (STOP inside it), 3 follows the frame. A loader that
# reads the frame whole goes on at 3 (pickle._Unpickler, the C unpickler without peek); one
# that sees the frame through peek goes on at 2.
STOP_IN_FRAME = b"\x80\x04" + frame(b"K\x01.K\x02.") + b"K\x03."
# The same, with a frame too big for any peek buffer (128 KiB of bytes data first).
BIG = b"\x80\x04" + frame(b"B" + struct.pack("<I", 1 << 17) + bytes(1 << 17) + b"0K\x01.K\x02.") + b"K\x03."

CHILD = textwrap.dedent(r"""
    import gzip, io, json, os, pickle, sys, threading
    kind, path, guarded = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    data = open(path, "rb").read()
    if guarded:
        import pickleguard
        pickleguard.install()
    def source():
        if kind == "gzip":
            gz = path + ".gz"
            with gzip.open(gz, "wb") as f:
                f.write(data)
            return gzip.open(gz, "rb")
        if kind in ("pipe", "rawpipe"):
            r, w = os.pipe()
            def feed():
                with os.fdopen(w, "wb") as f:
                    f.write(data)
            threading.Thread(target=feed, daemon=True).start()
            return os.fdopen(r, "rb", buffering=0 if kind == "rawpipe" else -1)
        if kind == "bytesio":
            return io.BytesIO(data)
        return open(path, "rb")
    out = []
    if kind == "pandas":
        import pandas
        gz = path + ".gz"
        with gzip.open(gz, "wb") as f:
            f.write(data)
        out.append(pandas.read_pickle(gz))
    else:
        f = source()
        while True:
            try:
                out.append(pickle.load(f))
            except EOFError:
                break
            except pickle.UnpicklingError as e:
                # A raw pipe returns short reads: plain CPython fails on a frame there too.
                out.append("error: %s" % e)
                break
    print(json.dumps(out))
""")


def loads(tmp_path, kind: str, data: bytes, guarded: bool) -> list:
    p = tmp_path / f"{kind}-{int(guarded)}.pkl"
    p.write_bytes(data)
    proc = subprocess.run([sys.executable, "-c", CHILD, kind, str(p), "1" if guarded else "0"],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return json.loads(proc.stdout)


@pytest.mark.parametrize("data", [STOP_IN_FRAME, BIG], ids=["small-frame", "big-frame"])
@pytest.mark.parametrize("kind", ["gzip", "pipe", "rawpipe", "bytesio", "file"])
def test_stop_inside_a_frame_ends_and_reads_as_a_loader_does(tmp_path, kind, data):
    plain = loads(tmp_path, kind, data, guarded=False)
    guarded = loads(tmp_path, kind, data, guarded=True)
    if kind == "rawpipe" and data is BIG:
        # read(n) on a raw pipe returns what is there: the C unpickler's frame read comes up
        # short. The guard ends too, and loads at least the bytes it has.
        assert plain == ["error: pickle data was truncated"], plain
        return
    # Every pickle is read once: the guard may resume after the STOP (as the C unpickler
    # with peek) or at the frame's end (as without peek, and as pickle._Unpickler).
    assert guarded[0] == plain[0] == 1
    assert guarded in ([1, 2, 3], [1, 3]), guarded
    assert plain in ([1, 2, 3], [1, 3]), plain


def test_pandas_read_pickle_of_a_gzip_stream_with_stop_in_a_frame(tmp_path):
    assert loads(tmp_path, "pandas", STOP_IN_FRAME, guarded=True) == [1]
    assert loads(tmp_path, "pandas", BIG, guarded=True) == [1]


@pytest.mark.parametrize("kind", ["gzip", "pipe", "rawpipe", "bytesio", "file"])
def test_every_stream_of_many_small_pickles_ends(tmp_path, kind):
    """Pickles of every protocol back to back, some framed: each one read exactly."""
    import pickle

    values = [{"a": i, "b": [i] * 3} for i in range(40)]
    data = b"".join(pickle.dumps(v, protocol=i % 6) for i, v in enumerate(values))
    got = loads(tmp_path, kind, data, guarded=True)
    assert got == json.loads(json.dumps(values))
