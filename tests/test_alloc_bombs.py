"""Allocation bombs (tests/corpus/gen_alloc_bombs.py): allowed names only, a constructor asked
to allocate out of proportion to the file. Every entry point refuses each one before it runs;
the same shapes at real sizes stay safe.

Guarded loads run in a subprocess whose address space is capped a little above what it has
mapped after its imports, so a bomb the guard let through would end in MemoryError there, not
take the test machine's memory. Proving each bomb really allocates (an unguarded
``pickle.loads`` in a throw-away capped subprocess, the only place one is loaded unguarded) is
``test_every_bomb_fires``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "corpus"))
import gen_alloc_bombs  # noqa: E402

from conftest import run_scan  # noqa: E402

# Runs in a fresh interpreter: imports first, then the cap, then each sample.
CAPPED = r"""
import json, pickle, resource, sys
import numpy, pickleguard
from pickleguard import PickleSecurityError
def vm_bytes():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
cap = vm_bytes() + (128 << 20)
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
how, paths = sys.argv[1], sys.argv[2:]
out = {}
for p in paths:
    data = open(p, "rb").read()
    try:
        if how == "unguarded":
            pickle.loads(data)
        elif how == "safe_loads":
            pickleguard.safe_loads(data)
        elif how == "safe_load":
            pickleguard.safe_load(p)
        elif how == "install":
            g = pickleguard.install()
            try:
                pickle.loads(data)
            finally:
                pickleguard.uninstall()
        r = "loaded"
    except PickleSecurityError as e:
        r = "refused: " + str(e)[:4000]
    except MemoryError:
        r = "MemoryError"
    except Exception as e:
        r = type(e).__name__ + ": " + str(e)[:200]
    out[p] = r
print(json.dumps(out))
"""


def run_capped(how: str, paths, timeout=600) -> dict:
    proc = subprocess.run([sys.executable, "-c", CAPPED, how, *map(str, paths)],
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    d = tmp_path_factory.mktemp("alloc")
    gen_alloc_bombs.main(["gen", str(d)])
    bombs = sorted(d.glob("bomb_*.pkl"))
    oks = sorted(d.glob("ok_*.pkl"))
    assert len(bombs) >= 40 and len(oks) >= 10
    return d, bombs, oks


def test_every_bomb_fires(samples):
    """Each bomb really allocates when loaded without a guard (the cap turns that into
    MemoryError), and each near miss loads."""
    _, bombs, oks = samples
    res = run_capped("unguarded", bombs + oks)
    fired = {p: r for p, r in res.items() if Path(p).name.startswith("bomb_")}
    assert all(r == "MemoryError" for r in fired.values()), {
        Path(p).name: r for p, r in fired.items() if r != "MemoryError"}
    assert all(res[str(p)] == "loaded" for p in oks), {
        p.name: res[str(p)] for p in oks}


def test_scan_refuses_every_bomb_and_passes_near_misses(samples, pg_bin):
    _, bombs, oks = samples
    for p in bombs:
        rep = run_scan(pg_bin, p)
        assert not rep["is_safe"], p.name
        descs = [f["description"] for f in rep["findings"] if f["type"] == "REDUCE_CALL"]
        assert any("out of proportion to the file" in d for d in descs), (p.name, descs)
    for p in oks:
        rep = run_scan(pg_bin, p)
        assert rep["is_safe"], (p.name, rep["findings"])


def test_scan_file_agrees(samples):
    import pickleguard
    _, bombs, oks = samples
    assert not any(pickleguard.scan_file(p).is_safe for p in bombs)
    assert all(pickleguard.scan_file(p).is_safe for p in oks)


@pytest.mark.parametrize("how", ["safe_loads", "safe_load", "install"])
def test_guarded_loads_refuse_before_allocating(samples, how):
    _, bombs, oks = samples
    res = run_capped(how, bombs + oks)
    for p in bombs:
        r = res[str(p)]
        assert r.startswith("refused: ") and "out of proportion" in r, (p.name, r)
    for p in oks:
        assert res[str(p)] == "loaded", (p.name, res[str(p)])


@pytest.fixture(scope="module")
def memo_samples(samples):
    d, _, _ = samples
    bombs = sorted(d.glob("memo_*.pkl"))
    oks = sorted(d.glob("memook_*.pkl"))
    assert len(bombs) >= 7 and len(oks) >= 3
    return bombs, oks


def test_every_memo_bomb_fires(memo_samples):
    """Unguarded, each memo bomb makes the C unpickler ask for its table (MemoryError under
    the cap), even those whose stream breaks right after the PUT; the near misses load."""
    bombs, oks = memo_samples
    res = run_capped("unguarded", bombs + oks)
    assert all(res[str(p)] == "MemoryError" for p in bombs), {
        p.name: res[str(p)] for p in bombs}
    assert all(res[str(p)] == "loaded" for p in oks), {p.name: res[str(p)] for p in oks}


def test_memo_bombs_are_refused_by_every_entry_point(memo_samples, pg_bin):
    import pickleguard

    bombs, oks = memo_samples
    for p in bombs:
        rep = run_scan(pg_bin, p)
        assert not rep["is_safe"] and rep["format"] == "raw_pickle", (p.name, rep)
        assert any(f["type"] == "MALFORMED" and f["severity"] == "HIGH"
                   and "memo index" in f["description"] for f in rep["findings"]), (p.name, rep)
        assert not pickleguard.scan_file(p).is_safe, p.name
    for p in oks:
        assert run_scan(pg_bin, p)["is_safe"], p.name
        assert pickleguard.scan_file(p).is_safe, p.name
    for how in ("safe_loads", "safe_load", "install"):
        res = run_capped(how, bombs + oks)
        for p in bombs:
            r = res[str(p)]
            assert r.startswith("refused: ") and "memo index" in r, (how, p.name, r)
        for p in oks:
            assert res[str(p)] == "loaded", (how, p.name, res[str(p)])


def test_keyword_arguments_are_judged(tmp_path, pg_bin):
    """NEWOBJ_EX keywords flow into the constructor: a callable with argument rules refuses
    keywords its rules do not describe, and keyword values must fit the `data` schema."""
    a = gen_alloc_bombs.Asm(4)
    # collections.deque has rules (literal data only): deque(iterable=<list>) by keyword.
    a.glob("collections", "deque").empty_tuple().mark().str("iterable").mark()
    a.body += b"l"  # LIST from the mark: an empty literal list
    a.dict().newobj_ex()
    p = tmp_path / "deque_kw.pkl"
    p.write_bytes(a.done())
    rep = run_scan(pg_bin, p)
    assert not rep["is_safe"]
    assert any("keyword arguments" in f["description"] for f in rep["findings"]), rep
    # A keyword holding a global the policy does not allow as data.
    b = gen_alloc_bombs.Asm(4)
    b.glob("builtins", "object").empty_tuple().mark().str("f").glob("posix", "system").dict()
    b.newobj_ex()
    q = tmp_path / "object_kw.pkl"
    q.write_bytes(b.done())
    rep = run_scan(pg_bin, q)
    assert not rep["is_safe"]
