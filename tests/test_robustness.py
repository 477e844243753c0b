"""Limits and resources: inputs built to exhaust memory or time end quickly, with a finding.

Every test spawns the real CLI (`pickleguard scan --format json`) and measures the scan's
wall time, CPU time and peak RSS. The RSS is read with `os.wait4` from a small launcher
process rather than `getrusage(RUSAGE_CHILDREN)` in this process: Linux keeps a process's
peak RSS across `execve`, so a child forked from a big pytest process would report pytest's
size, not the scanner's.

Two kinds of checks:

* resource cases (a 4 GB string claim, a memo index of 2^32, zips claiming huge sizes, a
  10 GB gzip bomb, 10^6-deep nesting): each finishes within a hang guard (10 s), under 1 GiB of
  RSS, and says what it found (`RESOURCE_LIMIT` / `MALFORMED`, not safe where a loader could
  go on);
* time cases: adversarial inputs of at most 1 MB, each written to make one part of the
  analysis repeat work (crates/pickleguard/tests/regressions.rs has the Rust twins). The bar
  is 1 s of CPU per input in a release build; the wall-clock guard is 2 s scaled by the
  machine's load. A debug build is ~10x slower and gets 10x the bounds.

The release binary is used when it is at least as new as the debug one (or set
PICKLEGUARD_BIN); build it with `cargo build --release -p pickleguard-cli`.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import pytest
from conftest import validate_report

ROOT = Path(__file__).resolve().parent.parent
MB = 1 << 20
GIB = 1 << 30

# Runs the scanner as its own child and reports its rusage (see the module docstring).
_LAUNCHER = r"""
import json, os, subprocess, sys, time
out, args = sys.argv[1], sys.argv[2:]
t = time.monotonic()
with open(out, "wb") as f:
    p = subprocess.Popen(args, stdout=f, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "wall": time.monotonic() - t,
                  "cpu": ru.ru_utime + ru.ru_stime, "rss_kb": ru.ru_maxrss,
                  "stderr": err.decode(errors="replace")[-2000:]}))
"""


@pytest.fixture(scope="module")
def fast_bin(pg_bin) -> tuple[Path, bool]:
    """(binary, is_release): the newest of the release and debug builds."""
    if os.environ.get("PICKLEGUARD_BIN"):
        b = Path(os.environ["PICKLEGUARD_BIN"])
        return b, "debug" not in b.parts
    rel = ROOT / "target" / "release" / "pickleguard"
    dbg = ROOT / "target" / "debug" / "pickleguard"
    if rel.exists() and (not dbg.exists() or rel.stat().st_mtime >= dbg.stat().st_mtime):
        return rel, True
    return Path(pg_bin), "release" in Path(pg_bin).parts


def _slow(release: bool) -> float:
    return 1.0 if release else 10.0


def _load_factor() -> float:
    try:
        return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    except OSError:
        return 1.0


def measure(binary: Path, path: Path, *extra: str, timeout: float = 120) -> dict:
    """Scan `path`; return the report plus wall/cpu seconds, peak RSS bytes and exit code."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, out, str(binary), "scan", str(path),
             "--format", "json", *extra],
            stdout=subprocess.PIPE, start_new_session=True,
        )
        try:
            stdout, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"scan of {path.name} still running after {timeout} s (hang)")
        m = json.loads(stdout)
        assert m["rc"] in (0, 1), (path.name, m)
        doc = validate_report(json.loads(Path(out).read_bytes()))
    finally:
        os.unlink(out)
    report = doc["files"][0]
    assert m["rc"] == (0 if report["is_safe"] else 1), (m, report["is_safe"])
    return {"report": report, "wall": m["wall"], "cpu": m["cpu"], "rss": m["rss_kb"] * 1024}


def kinds(report: dict) -> set[str]:
    return {f["type"] for f in report["findings"]}


def check_resources(m: dict, release: bool, what: str, wall: float = 10.0, rss: int = GIB):
    assert m["wall"] < wall * _slow(release) * _load_factor(), (what, m["wall"])
    assert m["rss"] < rss, (what, m["rss"] / MB)


# --- resource cases --------------------------------------------------------------------------

PAYLOAD = b"cos\nsystem\n(S'touch /tmp/pickleguard-robustness-marker'\ntR."


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_claimed_4gb_string(tmp_path, fast_bin):
    binary, release = fast_bin
    # Alone: the read fails before anything could run (not a pickle, nothing allocated).
    for name, op in [("binunicode8", b"\x8d" + struct.pack("<Q", 4 << 30)),
                     ("binbytes8", b"\x8e" + struct.pack("<Q", (1 << 63) - 1)),
                     ("binunicode", b"X" + struct.pack("<I", 0xFFFFFFFF)),
                     ("binstring", b"T" + struct.pack("<i", 0x7FFFFFFF))]:
        m = measure(binary, _write(tmp_path, name, b"\x80\x04" + op + b"abc"))
        check_resources(m, release, name, rss=64 * MB)
        assert m["report"]["format"] == "not_pickle" and m["report"]["is_safe"], m["report"]
        # After an import: the import ran, the break is MALFORMED, not safe.
        m = measure(binary, _write(tmp_path, name + "_after", b"\x80\x04cos\nsystem\n" + op + b"abc"))
        check_resources(m, release, name, rss=64 * MB)
        r = m["report"]
        assert {"DANGEROUS_IMPORT", "MALFORMED"} <= kinds(r) and not r["is_safe"], r
        assert not r["complete"]
    # A FRAME claiming 2^62 bytes does not hide what follows it.
    m = measure(binary, _write(tmp_path, "frame", b"\x80\x04\x95" + struct.pack("<Q", 1 << 62) + PAYLOAD))
    check_resources(m, release, "frame", rss=64 * MB)
    assert "DANGEROUS_IMPORT" in kinds(m["report"]) and not m["report"]["is_safe"]


def test_memo_of_a_billion_entries(tmp_path, fast_bin):
    """LONG_BINPUT indices up to 2^32 - 1 (CPython's C unpickler would size its memo table to
    twice the index), a memo index striding 4096 past the dense table each time, and a memo
    count over the limit."""
    binary, release = fast_bin
    body = b"\x80\x04N" + b"r\xff\xff\xff\xff" + b"r\xff\xff\xff\x7f" + b"0" + PAYLOAD
    m = measure(binary, _write(tmp_path, "huge_index", body))
    check_resources(m, release, "huge index", rss=64 * MB)
    assert "DANGEROUS_IMPORT" in kinds(m["report"])
    # 200k distinct indices spread over 2^32: a sparse memo of 200k entries here, a memo bomb
    # for the C unpickler (refused, read to the end).
    step = (1 << 32) // 200_000
    body = b"\x80\x04N" + b"".join(b"r" + struct.pack("<I", i * step) for i in range(200_000)) + b"."
    m = measure(binary, _write(tmp_path, "spread", body))
    check_resources(m, release, "spread indices", wall=2, rss=256 * MB)
    assert not m["report"]["is_safe"] and m["report"]["complete"]
    assert "MALFORMED" in kinds(m["report"])
    # Indices 4096 past the dense table each time (4 GB before the fix, from 330 KB).
    body = b"\x80\x04N" + b"".join(b"r" + struct.pack("<I", i * 4096) for i in range(1, 65536)) + b"."
    m = measure(binary, _write(tmp_path, "stride", body))
    check_resources(m, release, "striding indices", wall=2, rss=256 * MB)
    # More entries than the policy's max_memo: RESOURCE_LIMIT, not safe (the loader goes on).
    pol = _write(tmp_path, "limits.toml", b"[limits]\nmax_memo = 100000\n")
    m = measure(binary, _write(tmp_path, "count", b"\x80\x04N" + b"\x94" * 200_000 + b"."),
                "--policy", str(pol))
    check_resources(m, release, "memo count")
    r = m["report"]
    assert "RESOURCE_LIMIT" in kinds(r) and not r["is_safe"] and not r["complete"], r


def _zip(data: bytes, usize: int, csize: int | None = None, zip64: bool = False,
         method: int = 0, name: bytes = b"archive/data.pkl") -> bytes:
    """One member whose headers claim `usize` (and `csize`) bytes."""
    csize = len(data) if csize is None else csize
    crc = zlib.crc32(data)
    if zip64:
        extra = struct.pack("<HHQQ", 1, 16, usize, csize)
        sizes = (0xFFFFFFFF, 0xFFFFFFFF)
    else:
        extra, sizes = b"", (csize, usize)
    lh = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 45, 0, method, 0, 0, crc, *sizes,
                     len(name), len(extra)) + name + extra
    cd = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 45, 45, 0, method, 0, 0, crc, *sizes,
                     len(name), len(extra), 0, 0, 0, 0, 0) + name + extra
    body = lh + data
    return body + cd + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(cd), len(body), 0)


def _deflate_stream(total: int, head: bytes, pattern: bytes) -> bytes:
    """`head` + `total` bytes of `pattern` as raw deflate, made of identical full-flush blocks
    (built in milliseconds, ~1/1000 of the size)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    unit = pattern * (MB // len(pattern))
    first = c.compress(head + unit) + c.flush(zlib.Z_FULL_FLUSH)
    rep = c.compress(unit) + c.flush(zlib.Z_FULL_FLUSH)
    return first + rep * (total // len(unit) - 1) + c.flush()


def _gzip(deflate: bytes, size: int) -> bytes:
    # The CRC is not computed (10 GB of CRC); every reader hits its limit before checking it.
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + deflate + struct.pack("<II", 0, size & 0xFFFFFFFF)


def test_zip_claiming_huge_sizes(tmp_path, fast_bin):
    binary, release = fast_bin
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = comp.compress(PAYLOAD) + comp.flush()
    cases = {
        "stored_4g": _zip(PAYLOAD, 0xFFFFFFFF),
        "stored_4g_csize": _zip(PAYLOAD, 0xFFFFFFFF, 0xFFFFFFF0),
        "zip64_2e62": _zip(PAYLOAD, 1 << 62, zip64=True),
        "zip64_2e62_csize": _zip(PAYLOAD, 1 << 62, 1 << 62, zip64=True),
        "deflated_4g": _zip(deflated, 0xFFFFFFFF, len(deflated), method=8),
    }
    for name, data in cases.items():
        m = measure(binary, _write(tmp_path, name + ".zip", data))
        check_resources(m, release, name, rss=128 * MB)
        r = m["report"]
        # Whatever the headers claim, the payload inside is found.
        assert not r["is_safe"] and "DANGEROUS_IMPORT" in kinds(r), (name, r)
    # A member that claims 5 bytes and inflates to 1 GB (a zip bomb): stops at the budget.
    bomb = _deflate_stream(GIB, b"\x80\x02", b"N0")
    m = measure(binary, _write(tmp_path, "bomb.zip", _zip(bomb, 5, len(bomb), method=8)))
    check_resources(m, release, "zip bomb")
    r = m["report"]
    assert not r["is_safe"] and kinds(r) & {"RESOURCE_LIMIT", "STRUCTURAL_TAMPER", "MALFORMED"}, r


def test_gzip_bomb_of_10gb(tmp_path, fast_bin):
    binary, release = fast_bin
    # 10 GB of zeros (10 MB of gzip): its first bytes already cannot be a pickle.
    for head in (b"", b"\x80\x04"):
        data = _gzip(_deflate_stream(10 * GIB, head, b"\0"), 10 * GIB)
        m = measure(binary, _write(tmp_path, "zeros.gz", data))
        check_resources(m, release, "gzip of zeros", wall=2, rss=128 * MB)
        assert m["report"]["format"].startswith("gzip") and m["report"]["is_safe"], m["report"]
    # 1 GB of opcodes (a pickle prefix the loader would go on running) in ~1 MB: read up to
    # the 128 MiB decompression floor, then RESOURCE_LIMIT.
    data = _gzip(_deflate_stream(GIB, b"\x80\x02", b"N0"), GIB)
    m = measure(binary, _write(tmp_path, "opcodes.gz", data))
    check_resources(m, release, "gzip of opcodes")
    r = m["report"]
    assert "RESOURCE_LIMIT" in kinds(r) and not r["is_safe"] and not r["complete"], r


def test_million_deep_nesting(tmp_path, fast_bin):
    binary, release = fast_bin
    n = 10 ** 6
    cases = {
        # MARK MARK ... then the end of the file: nothing ran, nothing can.
        "marks": (b"(" * n, lambda r: r["format"] == "not_pickle" and r["is_safe"]),
        # ... after an import: the import ran, then the stream breaks.
        "marks_after_import": (b"cos\nsystem\n" + b"(" * n,
                               lambda r: {"DANGEROUS_IMPORT", "MALFORMED"} <= kinds(r)),
        # More MARKs than max_marks (2^20) before the payload: the limit, not safe.
        "marks_over_limit": (b"(" * ((1 << 20) + 1) + PAYLOAD,
                             lambda r: "RESOURCE_LIMIT" in kinds(r) and not r["is_safe"]),
        # 10^6 nested lists (EMPTY_LIST ... APPEND chains): plain data, loads fine in CPython.
        "lists": (b"]" * n + b"a" * (n - 1) + b".", lambda r: r["is_safe"] and r["complete"]),
        # 10^6 nested 1-tuples, then a payload: still found.
        "tuples_then_payload": (b"N" + b"\x85" * n + b"0" + PAYLOAD,
                                lambda r: "DANGEROUS_IMPORT" in kinds(r)),
        # 10^6 nested dicts {'': {'': ...}}.
        "dicts": (_nested_dicts(n), lambda r: r["is_safe"] and r["complete"]),
    }
    for name, (data, ok) in cases.items():
        m = measure(binary, _write(tmp_path, name, data))
        check_resources(m, release, name)
        assert ok(m["report"]), (name, m["report"]["format"], kinds(m["report"]),
                                 m["report"]["stopped_by"])


def _nested_dicts(n: int) -> bytes:
    """{'': {'': ...}} n deep: n times (EMPTY_DICT, key ''), the innermost {}, n SETITEMs."""
    return b"}\x8c\x00" * n + b"}" + b"s" * n + b"."


# --- time cases: adversarial inputs of at most 1 MB ------------------------------------------

def _bu(b: bytes) -> bytes:
    return b"X" + struct.pack("<I", len(b)) + b


def _get(i: int) -> bytes:
    return b"h" + bytes([i]) if i < 256 else b"j" + struct.pack("<I", i)


def _put(i: int) -> bytes:
    return b"q" + bytes([i]) if i < 256 else b"r" + struct.pack("<I", i)


def _fill(head: bytes, unit: bytes, tail: bytes) -> bytes:
    n = (MB - len(head) - len(tail)) // len(unit)
    return head + unit * n + tail


def _distinct_globals() -> bytes:
    out, i = [b"\x80\x02"], 0
    size = 2
    while size < MB - 40:
        g = b"cm%d\nn%d\n0" % (i, i)
        out.append(g)
        size += len(g)
        i += 1
    return b"".join(out) + b"N."


def _dag(levels: int = 40, width: int = 200) -> tuple[bytes, int]:
    b = b")q\x010"
    for lvl in range(2, levels):
        b += b"(" + _get(lvl - 1) * width + b"t" + _put(lvl) + b"0"
    return b, levels - 1


def _join_blowup() -> bytes:
    body = b"\x80\x02cbuiltins\ngetattr\nq\x00h\x00\x8c\x00\x8c\x04join\x86Rq\x01"
    body += _bu(b"x" * 200_000) + b"q\x02"
    prev = 2
    for lvl in range(3, 9):
        body += b"h\x01(" + _get(prev) * 32 + b"l\x85R" + _put(lvl)
        prev = lvl
    return body + b"cbuiltins\nexec\n" + _get(prev) + b"\x85R."


def _zlib_bomb_args() -> bytes:
    bomb = zlib.compress(b"\0" * (64 << 20), 9)
    unit = b"h\x00B" + struct.pack("<I", len(bomb)) + bomb + b"\x85R0"
    return _fill(b"\x80\x02cfoo\nbar\nq\x00", unit, b"N.")


def _dag_target() -> bytes:
    d, top = _dag()
    return b"\x80\x02cfoo\nbar\n" + d + _get(top) + b"\x85RK\x01a."


def _build_state() -> bytes:
    head = b"\x80\x02ccollections\nOrderedDict\nq\x00}q\x01("
    head += b"".join(b"\x8c" + bytes([len(k)]) + k + b")" for k in (b"k%d" % i for i in range(40_000)))
    return _fill(head + b"u", b"h\x00)Rh\x01b0", b"N.")


def _nested_base64() -> bytes:
    inner = PAYLOAD
    for _ in range(12):
        inner = base64.b64encode(inner)
    return b"cfoo\nbar\n(" + _bu(inner) + b"tR."


ADVERSARIAL = {
    # Huge integers (decimal conversion is quadratic; disasm/explain only, scan must not care).
    "long_text_hex": lambda: b"L0x" + b"f" * (MB - 10) + b"L\n.",
    "long4_1mb": lambda: b"\x80\x02\x8b" + struct.pack("<i", MB - 16) + b"\x7f" * (MB - 16) + b".",
    # Many tiny pickles; many tiny pickles each importing something.
    "many_pickles": lambda: b"N." * (MB // 2),
    "many_pickles_globals": lambda: b"cos\nsystem\n." * (MB // 12),
    # Memo chains: one list re-memoised 260k times; a chain of 1-tuples through the memo.
    "memo_chain": lambda: _fill(b"\x80\x02]q\x00", b"h\x00q\x00", b"."),
    "memo_tuple_chain": lambda: b"\x80\x04]\x94" + b"".join(_get(i) + b"\x85\x94" for i in range(130_000)) + b".",
    # A giant dict of duplicate keys (literal, and through the memo).
    "dict_duplicates": lambda: _fill(b"\x80\x02}q\x00(", b"K\x01K\x02", b"u."),
    "dict_duplicates_memo": lambda: _fill(b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01", b"h\x01K\x01", b"u."),
    # Long FRAME chains, honest and lying.
    "frames": lambda: _fill(b"\x80\x04", b"\x95\x02\x00\x00\x00\x00\x00\x00\x00N0", b"N."),
    "frames_lying": lambda: _fill(b"\x80\x04", b"\x95" + struct.pack("<Q", (1 << 63) - 1), b"N."),
    # Nested base64 layers around a payload; a 900 KB base64 argument.
    "base64_layers": _nested_base64,
    "base64_big_argument": lambda: b"cfoo\nbar\n(" + _bu(base64.b64encode(b"\x80\x02" + b"N0" * 330_000)) + b"tR.",
    # 80k distinct globals (the globals summary was quadratic).
    "distinct_globals": _distinct_globals,
    # One memoised 700 KB literal handed to 40k rejected calls / to exec.
    "memoised_literal_calls": lambda: _fill(b"\x80\x02cfoo\nbar\nq\x00" + _bu(base64.b64encode(b"x" * 520_000)) + b"q\x01", b"h\x00h\x01\x85R0", b"N."),
    "memoised_exec": lambda: _fill(b"\x80\x02cbuiltins\nexec\nq\x00" + _bu(b"A" * 700_000) + b"q\x01", b"h\x00h\x01\x85R0", b"N."),
    # 1 KB zlib bombs (64 MB each) as arguments; nested str.join over a 200 KB string.
    "zlib_bomb_arguments": _zlib_bomb_args,
    "nested_join": _join_blowup,
    # A tuple DAG (200 wide, 40 deep) behind a method call's target.
    "dag_method_target": _dag_target,
    # 200k calls of one functools.partial; getattr with a memoised 700 KB name.
    "partial_calls": lambda: _fill(b"\x80\x02cfunctools\npartial\nq\x00cos\nsystem\nq\x01h\x00h\x01\x85Rq\x02", b"h\x02)R0", b"N."),
    "getattr_huge_name": lambda: _fill(b"\x80\x02cbuiltins\ngetattr\nq\x00ccollections\nOrderedDict\nq\x01" + _bu(b"a" * 700_000) + b"q\x02", b"h\x00h\x01h\x02\x86R0", b"N."),
    # STACK_GLOBAL on memoised 400 KB names (8 GB before the fix).
    "stack_global_huge_names": lambda: _fill(b"\x80\x04" + _bu(b"a" * 400_000) + b"\x94" + _bu(b"a" * 400_000) + b"\x94", b"h\x00h\x01\x930", b"N."),
    # One memoised BUILD state of 40k keys applied 60k times.
    "shared_build_state": _build_state,
    # torch's _load_from_bytes on one memoised 600 KB file, 60k times.
    "shared_embedded_file": lambda: _fill(b"\x80\x02ctorch.storage\n_load_from_bytes\nq\x00B" + struct.pack("<I", 600_004) + b"\x80\x02" + b"N0" * 300_000 + b"N." + b"q\x01", b"h\x00h\x01\x85R0", b"N."),
    # A list containing itself, appended to a foreign object 200k times.
    "self_list_method_calls": lambda: _fill(b"\x80\x02cfoo\nbar\n)Rq\x00]q\x01h\x01h\x01a", b"h\x00h\x01a", b"."),
    # 10^6 MARKs, 500k nested lists, 1M nested tuples.
    "marks": lambda: b"(" * MB,
    "nested_lists": lambda: b"]" * 500_000 + b"a" * 499_999 + b".",
    "nested_tuples": lambda: b"N" + b"\x85" * (MB - 10) + b".",
    # 70k globals of one name from distinct modules (explain's name binding was cubic).
    "same_name_globals": lambda: b"\x80\x02" + b"".join(b"cm%d\nname\n0" % i for i in range(70_000)) + b"N.",
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_input_under_a_second(name, tmp_path, fast_bin):
    binary, release = fast_bin
    data = ADVERSARIAL[name]()
    assert len(data) <= MB, len(data)
    m = measure(binary, _write(tmp_path, name, data))
    slow = _slow(release)
    assert m["cpu"] < 1.0 * slow, f"{name}: {m['cpu']:.2f} s of CPU"
    assert m["wall"] < 2.0 * slow * _load_factor(), f"{name}: {m['wall']:.2f} s wall"
    assert m["rss"] < GIB, f"{name}: {m['rss'] / MB:.0f} MiB"
    # Fail closed: an incomplete report is never safe unless nothing could run.
    r = m["report"]
    if not r["complete"] and r["format"] != "not_pickle":
        assert not r["is_safe"], r


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_input_explained_in_linear_time(name, tmp_path, fast_bin):
    """`explain` renders every opcode, binding and call of the same inputs (up to 140 MB of
    text for 1 MB): it must stay linear too (its name binding was cubic and its finding marks
    quadratic: 5,000 same-name globals took 65 s)."""
    binary, release = fast_bin
    path = _write(tmp_path, name, ADVERSARIAL[name]())
    proc = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, os.devnull, str(binary), "explain", str(path)],
        capture_output=True, timeout=300,
    )
    m = json.loads(proc.stdout)
    assert m["rc"] in (0, 1), (name, m)
    assert "panicked" not in m["stderr"], (name, m["stderr"])
    slow = _slow(release)
    assert m["cpu"] < 5.0 * slow, f"{name}: {m['cpu']:.2f} s of CPU"
    assert m["rss_kb"] * 1024 < GIB, f"{name}: {m['rss_kb'] / 1024:.0f} MiB"
