"""Loader-differential harness (issue 16): the scanner analyses exactly the bytes each real
loader unpickles.

Every file here is loaded by its real loader (torch.load: new zip format, legacy format,
mmap=True, legacy tar; numpy.load: .npy, .npz through zipfile; pandas.read_pickle: zip, tar,
gzip, bz2, xz, zstd, multi-member gzip; joblib.load: plain, every compression, legacy side
files) in a subprocess (tests/loader_probe.py) whose unpicklers record the bytes they consume
and refuse any global that is not plain model data, so no payload runs. The scanner's
`_native.analysed_streams` lists the streams it analysed; every recorded read must lie, at its
recorded position, inside one of them. Corpora: benign files made here with the real
libraries, the attack corpus's container samples, and structure-aware mutants of benign
containers (end records, locators, directory offsets, names, npy header keys).
"""
from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import pickle
import random
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = ROOT / "tests" / "loader_probe.py"
CORPUS_DIR = ROOT / "tests" / "corpus"

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")
pd = pytest.importorskip("pandas")
joblib = pytest.importorskip("joblib")

from pickleguard import _native  # noqa: E402


def probe(requests: list[dict], cwd: Path) -> list[dict]:
    env = dict(os.environ, PROBE_CWD=str(cwd))
    p = subprocess.run([sys.executable, str(PROBE)], input=json.dumps(requests),
                       capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout)


def analysed(path: Path, side: list[Path] = ()) -> list[bytes]:
    policy = _native.Policy("ml")
    out = []
    for f in [path, *side]:
        data = f.read_bytes()
        out += [s["data"] for s in _native.analysed_streams(data, policy) if s["data"] is not None]
    return out


def uncovered(sessions: list, streams: list[bytes]) -> list[str]:
    """Sessions whose recorded reads are not, at their recorded positions, inside one
    analysed stream."""
    bad = []
    for s in sessions:
        chunks = [(p, bytes.fromhex(h)) for p, h in s]
        if any(p is None for p, _ in chunks):
            at, fixed = 0, []
            for _, d in chunks:
                fixed.append((at, d))
                at += len(d)
            chunks = fixed
        base, first = chunks[0][0], chunks[0][1]
        ok = False
        for st in streams:
            i = st.find(first)
            while i >= 0 and not ok:
                ok = all(st[i + p - base:i + p - base + len(d)] == d for p, d in chunks)
                i = st.find(first, i + 1)
            if ok:
                break
        if not ok:
            total = sum(len(d) for _, d in chunks)
            bad.append(f"{total} bytes from position {base}: {first[:40]!r}")
    return bad


def check(cases: list[tuple[str, Path, dict, list[Path]]], cwd: Path) -> list[dict]:
    """Probe every case; assert coverage; return the results in case order."""
    results = probe([{"loader": l, "path": str(p), "kwargs": kw} for l, p, kw, _ in cases], cwd)
    problems = []
    for (loader, path, kw, side), res in zip(cases, results):
        bad = uncovered(res["sessions"], analysed(path, side))
        if bad:
            problems.append(f"{path.name} under {loader}{kw or ''}: {bad} ({res['error']})")
    assert not problems, "\n".join(problems)
    return results


# ---------------------------------------------------------------------------------------------
# Benign files made by the real libraries
# ---------------------------------------------------------------------------------------------

def _gzip_members(data: bytes) -> bytes:
    cut = len(data) // 2
    return (gzip.compress(data[:cut], mtime=0) + gzip.compress(data[cut:], mtime=0))


@pytest.fixture(scope="module")
def benign(tmp_path_factory) -> tuple[Path, list]:
    d = tmp_path_factory.mktemp("benign")
    cases: list = []
    obj = {"w": torch.arange(6, dtype=torch.float32), "b": torch.ones(2), "meta": {"n": 3}}
    torch.save(obj, d / "new.pt")
    torch.save(obj, d / "legacy.pt", _use_new_zipfile_serialization=False)
    cases += [("torch.load", d / "new.pt", {}, []),
              ("torch.load", d / "new.pt", {"mmap": True}, []),
              ("torch.load", d / "legacy.pt", {}, [])]
    arr = np.empty(3, dtype=object)
    arr[:] = ["a", ("t", 1), {"k": 2.0}]
    np.save(d / "obj.npy", arr, allow_pickle=True)
    np.savez(d / "arrs.npz", nums=np.arange(5.0), objs=arr)
    cases += [("numpy.load", d / "obj.npy", {}, []), ("numpy.load", d / "arrs.npz", {}, [])]
    df = pd.DataFrame({"a": [1, 2, 3], "s": ["x", "y", "z"]})
    for ext, comp in ((".pkl", None), (".pkl.gz", "gzip"), (".pkl.bz2", "bz2"),
                      (".pkl.xz", "xz"), (".pkl.zst", "zstd"), (".pkl.zip", "zip"),
                      (".pkl.tar", "tar")):
        p = d / ("frame" + ext)
        df.to_pickle(p, compression=comp)
        cases.append(("pandas.read_pickle", p, {}, []))
    raw = pickle.dumps(df, protocol=5)
    (d / "multi.pkl.gz").write_bytes(_gzip_members(raw))
    cases.append(("pandas.read_pickle", d / "multi.pkl.gz", {}, []))
    jobj = {"coef": np.arange(16.0), "objs": arr, "name": "model"}
    for comp in (0, "zlib", "gzip", "bz2", "xz", "lzma", "lz4"):
        p = d / f"model-{comp}.joblib"
        joblib.dump(jobj, p, compress=comp)
        cases.append(("joblib.load", p, {}, []))
    # joblib < 0.10: the pickle names a side file that joblib hands to numpy.load.
    np.save(d / "legacy.pkl_01.npy", arr, allow_pickle=True)
    state = {"filename": "legacy.pkl_01.npy", "subclass": np.ndarray, "allow_mmap": True}
    (d / "legacy.pkl").write_bytes(b"\x80\x02cjoblib.numpy_pickle\nNDArrayWrapper\n)\x81"
                                   + pickle.dumps(state, protocol=2)[2:-1] + b"b.")
    cases.append(("joblib.load", d / "legacy.pkl", {}, [d / "legacy.pkl_01.npy"]))
    return d, cases


def test_benign_files_every_loader(benign):
    d, cases = benign
    results = check(cases, d)
    # The instrumentation saw real unpickling in every case (nothing refused, nothing failed).
    for (loader, path, kw, _), res in zip(cases, results):
        assert res["sessions"], (path.name, kw, res)
        assert res["error"] is None, (path.name, kw, res)
    # joblib's legacy format unpickled its side file too: two sessions.
    legacy = [r for (_, p, _, _), r in zip(cases, results) if p.name == "legacy.pkl"]
    assert len(legacy[0]["sessions"]) == 2, legacy


# ---------------------------------------------------------------------------------------------
# The attack corpus's containers
# ---------------------------------------------------------------------------------------------

LOADERS = ("torch.load", "numpy.load", "pandas.read_pickle", "joblib.load")


@pytest.fixture(scope="module")
def attacks(tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("attacks")
    subprocess.run([sys.executable, str(CORPUS_DIR / "gen_attacks.py"), "--out", str(out)],
                   check=True, capture_output=True)
    entries = [e for e in json.loads((out / "manifest.json").read_text())
               if e["loader"] in LOADERS and e["fires"]]
    return out, entries


def test_attack_containers_every_loader(attacks, tmp_path):
    out, entries = attacks
    assert len(entries) >= 20, [e["id"] for e in entries]
    cases = []
    for e in entries:
        side = sorted(p for p in out.glob(e["id"] + "_*") if p.name != e["file"])
        cases.append((e["loader"], out / e["file"], {}, side))
    work = tmp_path / "cwd"
    work.mkdir()
    results = check(cases, work)
    # No payload ran: every sample was stopped at find_class.
    assert not list(work.iterdir())
    refused = [e["id"] for e, r in zip(entries, results) if r["refused"]]
    assert len(refused) >= len(entries) // 2, refused


# ---------------------------------------------------------------------------------------------
# Structure-aware mutants
# ---------------------------------------------------------------------------------------------

def _u32(b: bytearray, at: int, v: int) -> None:
    b[at:at + 4] = struct.pack("<I", v & 0xFFFFFFFF)


def mutate_zip(data: bytes, rng: random.Random) -> bytes:
    """One structural change to a zip: end record fields, zip64 locator / record, a central
    entry's offset, sizes or name, a local name, or a duplicated directory."""
    b = bytearray(data)
    e = b.rfind(b"PK\x05\x06")
    cds = [i for i in range(len(b)) if b[i:i + 4] == b"PK\x01\x02"]
    lfs = [i for i in range(len(b)) if b[i:i + 4] == b"PK\x03\x04"]
    kind = rng.randrange(8)
    if kind == 0 and e >= 0:
        _u32(b, e + 16, struct.unpack_from("<I", b, e + 16)[0] + rng.choice((-46, 30, 64, 1)))
    elif kind == 1 and e >= 0:
        b[e + 10:e + 12] = struct.pack("<H", rng.randrange(0, 8))
    elif kind == 2 and cds:
        c = rng.choice(cds)
        _u32(b, c + 42, struct.unpack_from("<I", b, c + 42)[0] + rng.choice((-64, 64, 30)))
    elif kind == 3 and cds:
        c = rng.choice(cds)
        n = struct.unpack_from("<H", b, c + 28)[0]
        if n:
            b[c + 46 + rng.randrange(n)] = ord(rng.choice("aZ./_"))
    elif kind == 4 and lfs:
        c = rng.choice(lfs)
        n = struct.unpack_from("<H", b, c + 26)[0]
        if n:
            b[c + 30 + rng.randrange(n)] = ord(rng.choice("aZ./_"))
    elif kind == 5 and cds:
        c = rng.choice(cds)
        _u32(b, c + 20, struct.unpack_from("<I", b, c + 20)[0] + rng.choice((-1, 1, 8)))
    elif kind == 6:
        loc = b.rfind(b"PK\x06\x07")
        if loc >= 0:
            at = struct.unpack_from("<Q", b, loc + 8)[0]
            b[loc + 8:loc + 16] = struct.pack("<Q", max(0, at + rng.choice((-56, 56, 4))))
    elif kind == 7 and cds and e >= 0:
        # A second copy of the directory, with its end record pointing at the copy.
        start = cds[0]
        copy = bytes(b[start:e])
        new_at = len(b)
        tail = bytes(b[e:])
        b += copy
        eo = bytearray(tail)
        _u32(eo, 16, new_at)
        b += eo
    return bytes(b)


def mutate_npy(data: bytes, rng: random.Random) -> bytes:
    hlen = struct.unpack_from("<H", data, 8)[0]
    header = data[10:10 + hlen].decode("latin1").rstrip()
    body = header[1:-1].rstrip().rstrip(",")
    extra = rng.choice(["'descr': '<f8'", "'descr': '|O'", "'shape': (1,)",
                        "'fortran_order': False", "'descr': '<i4'"])
    h = "{" + (extra + ", " + body if rng.random() < 0.5 else body + ", " + extra) + ", }"
    h += " " * ((-(10 + len(h) + 1)) % 64) + "\n"
    return data[:8] + struct.pack("<H", len(h)) + h.encode("latin1") + data[10 + hlen:]


def test_structure_aware_mutants(benign, tmp_path):
    d, _ = benign
    rng = random.Random(16)
    cases = []
    sources = [("torch.load", d / "new.pt", mutate_zip), ("numpy.load", d / "arrs.npz", mutate_zip),
               ("pandas.read_pickle", d / "frame.pkl.zip", mutate_zip),
               ("numpy.load", d / "obj.npy", mutate_npy)]
    for loader, src, mutate in sources:
        data = src.read_bytes()
        for i in range(12):
            m = data
            for _ in range(rng.randrange(1, 3)):
                m = mutate(m, rng)
            p = tmp_path / f"mutant-{i}-{src.name}"
            p.write_bytes(m)
            cases.append((loader, p, {}, []))
    work = tmp_path / "cwd"
    work.mkdir()
    results = check(cases, work)
    # Enough mutants still load for the check to mean something.
    loaded = [c[1].name for c, r in zip(cases, results) if r["sessions"]]
    assert len(loaded) >= len(cases) // 3, [r["error"] for r in results]


def test_the_check_fails_when_the_scanner_reads_other_bytes(benign):
    """The coverage check is not vacuous: the reads of one file are not covered by the
    streams of another, nor by a stream cut short."""
    d, _ = benign
    res = probe([{"loader": "torch.load", "path": str(d / "new.pt"), "kwargs": {}}], d)[0]
    assert res["sessions"] and not uncovered(res["sessions"], analysed(d / "new.pt"))
    assert uncovered(res["sessions"], analysed(d / "legacy.pt"))
    cut = [s[: len(s) // 2] for s in analysed(d / "new.pt")]
    assert uncovered(res["sessions"], cut)
