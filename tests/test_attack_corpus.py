"""The harmless attack corpus (tests/corpus/gen_attacks.py): every sample is a real attack
(its payload fires under its real loader), generation is deterministic, and pickleguard flags
every sample without ever running it.

Samples whose library is missing are skipped with the module's name as the reason.
"""
from __future__ import annotations

import importlib.util
import json
import os
import pickle
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
SCHEMA_TYPES = {
    "DANGEROUS_IMPORT", "UNKNOWN_IMPORT", "REDUCE_CALL", "DYNAMIC_CALL", "ATTRIBUTE_INJECTION",
    "EXTENSION_CODE", "NESTED_PICKLE", "CODE_STRING", "OBFUSCATION", "MALFORMED",
    "TRAILING_DATA", "UNSCANNABLE", "RESOURCE_LIMIT", "STRUCTURAL_TAMPER", "DISALLOWED",
}
MARKER_GLOB = "pickleguard-marker-*"


def _load(name: str):
    spec = importlib.util.spec_from_file_location("pg_corpus_" + name, CORPUS_DIR / (name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses need the module registered
    spec.loader.exec_module(mod)
    return mod


gen = _load("gen_attacks")
verify = _load("verify_attacks")
SAMPLES = {s.id: s for s in gen.SAMPLES}
IDS = list(SAMPLES)


def _generate(out: Path, hash_seed: str) -> None:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    proc = subprocess.run(
        [sys.executable, str(CORPUS_DIR / "gen_attacks.py"), "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env, cwd=out.parent,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="session")
def attack_corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("attacks") / "corpus"
    _generate(out, "1")
    return out


@pytest.fixture(scope="session")
def manifest(attack_corpus) -> dict:
    return {e["id"]: e for e in json.loads((attack_corpus / "manifest.json").read_text())}


def _entry(manifest: dict, sid: str) -> dict:
    """Skip (with the reason) when a library the sample needs is missing; otherwise the
    sample must have been generated."""
    for mod in SAMPLES[sid].requires:
        pytest.importorskip(mod, reason="sample %s needs %s" % (sid, mod))
    assert sid in manifest, "%s was not generated although its modules are installed" % sid
    return manifest[sid]


# --- the corpus itself -----------------------------------------------------------------------

def test_manifest_is_well_formed(attack_corpus, manifest):
    assert len(SAMPLES) >= 60
    classes = set()
    for sid, e in manifest.items():
        assert set(e) >= {"file", "id", "technique", "class", "container", "loader",
                          "expect_types", "fires", "source", "requires"}, sid
        assert (attack_corpus / e["file"]).is_file(), sid
        assert e["class"] in gen.CLASSES, sid
        assert e["expect_types"] and set(e["expect_types"]) <= SCHEMA_TYPES, sid
        assert e["source"], sid
        if e["fires"]:
            assert e["loader"] in verify.LOADER_CODE, sid
        else:
            assert e.get("note"), "%s: say why it does not fire" % sid
        classes.add(e["class"])
    missing = set(gen.CLASSES) - classes
    # A class can only be missing when all of its samples were skipped for a missing library.
    for cls in missing:
        needs = {m for s in gen.SAMPLES if s.cls == cls for m in s.requires}
        assert needs, "no sample generated for class %s" % cls


def test_generation_is_deterministic(attack_corpus, tmp_path):
    again = tmp_path / "corpus"
    _generate(again, "2")  # another process, another hash seed
    first = sorted(p.name for p in attack_corpus.iterdir())
    second = sorted(p.name for p in again.iterdir())
    assert first == second
    differ = [n for n in first if (attack_corpus / n).read_bytes() != (again / n).read_bytes()]
    assert not differ, "generation is not deterministic for: %s" % differ


@pytest.mark.parametrize("sid", IDS)
def test_sample_fires(attack_corpus, manifest, sid):
    entry = _entry(manifest, sid)
    if not entry["fires"]:
        pytest.skip("by design: " + entry["note"])
    result = verify.fire(attack_corpus, entry)
    assert result.fired, "%s did not fire under %s: %s" % (sid, entry["loader"], result.detail)


# --- pickleguard against the corpus ----------------------------------------------------------

def _scan_without_running(scan, attack_corpus, entry, mode, tmp_path, monkeypatch):
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)  # the scanner inherits this working directory
    report = scan(attack_corpus / entry["file"], mode)
    created = sorted(p.name for p in workdir.glob(MARKER_GLOB))
    created += sorted(p.name for p in attack_corpus.glob(MARKER_GLOB))
    assert not created, "scanning executed the payload: %s" % created
    return report


@pytest.mark.parametrize("sid", IDS)
def test_scan_ml_flags_sample(scan, attack_corpus, manifest, sid, tmp_path, monkeypatch):
    entry = _entry(manifest, sid)
    report = _scan_without_running(scan, attack_corpus, entry, "ml", tmp_path, monkeypatch)
    types = sorted({f["type"] for f in report["findings"]})
    assert report["is_safe"] is False, (sid, report["risk_level"], types)
    assert set(types) & set(entry["expect_types"]), (
        "%s: expected one of %s, got %s" % (sid, entry["expect_types"], types))


@pytest.mark.parametrize("sid", IDS)
def test_scan_strict_flags_sample(scan, attack_corpus, manifest, sid, tmp_path, monkeypatch):
    entry = _entry(manifest, sid)
    report = _scan_without_running(scan, attack_corpus, entry, "strict", tmp_path, monkeypatch)
    assert report["is_safe"] is False, (sid, report["risk_level"], [f["type"] for f in report["findings"]])


# --- the four entry points (issue 14): scan, scan_file, safe_load, install() + loader --------
#
# safe_load and install() + the real loader run in a subprocess whose working directory is a
# fresh temporary directory (the payload's marker is a relative path). A refused load raises
# PickleSecurityError before anything runs; a deferred-call sample (`<loader>+use`) is also
# used after a load that was not refused, so a payload that waits for first use shows too.

ENTRY_WORKER = r'''
import json, os, sys, pickle, tempfile, warnings
warnings.simplefilter("ignore")
import pickleguard
exec(USE_CODE)

def outcome(fn):
    try:
        r = fn()
    except pickleguard.PickleSecurityError:
        return "refused", None
    except BaseException as e:
        return "error: %s: %s" % (type(e).__name__, str(e)[:200]), None
    return "loaded", r

def markers():
    return sorted(p for p in os.listdir(".") if p.startswith("pickleguard-marker-"))

def one(P, LOADER, USE):
    out = {}
    res, obj = outcome(lambda: pickleguard.safe_load(P))
    if USE and res == "loaded":
        _use(obj, set())
    out["safe_load"] = res
    if LOADER != "none":
        pickleguard.install()
        ns = {"P": P}
        code = USE_LOADERS.get(LOADER, LOADER_CODE.get(LOADER))
        res, _ = outcome(lambda: exec(code, ns))
        if USE and res == "loaded":
            _use(ns.get("r"), set())
        pickleguard.uninstall()
        out["install"] = res
    out["markers"] = markers()
    return out

jobs = json.loads(sys.stdin.read())
home = os.getcwd()
for i, (P, LOADER, USE) in enumerate(jobs):
    # Each file in a directory of its own (the first one is the caller's cwd).
    if i:
        d = os.path.join(home, "job%d" % i)
        os.mkdir(d)
        os.chdir(d)
    print("PG-RESULT " + json.dumps(one(P, LOADER, USE)), flush=True)
'''


def _worker_code() -> str:
    return ("USE_CODE = %r\nUSE_LOADERS = %r\nLOADER_CODE = %r\n" % (
        verify.USE_CODE, verify.USE_LOADERS, verify.LOADER_CODE)) + ENTRY_WORKER


def run_entry_points_batch(jobs: list, cwd: Path, timeout: int = 1800) -> list:
    """safe_load and install() + loader on each (path, loader) in one subprocess, each file
    in a fresh directory. Only for files that run nothing when loaded unguarded (benign
    ones): an attack sample gets a process of its own (`run_entry_points`)."""
    cwd.mkdir(parents=True, exist_ok=True)
    args = [[str(Path(p).resolve()), ld.split("+", 1)[0], ld.endswith("+use")] for p, ld in jobs]
    proc = subprocess.run(
        # The job list goes through stdin: thousands of paths overflow the argument list.
        [sys.executable, "-c", _worker_code()], input=json.dumps(args),
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=verify._clean_env())
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PG-RESULT ")]
    assert len(lines) == len(jobs), "worker died after %d of %d files (exit %d): %s" % (
        len(lines), len(jobs), proc.returncode, proc.stderr[-2000:])
    return [json.loads(ln[len("PG-RESULT "):]) for ln in lines]


def run_entry_points(path: Path, loader: str, tmp_path: Path, timeout: int = 300) -> dict:
    """safe_load and install() + loader on one file, in a subprocess with cwd = a temp dir."""
    cwd = tmp_path / "cwd"
    out = run_entry_points_batch([(path, loader)], cwd, timeout)[0]
    # Payloads that spawn a process may leave the marker a moment later.
    deadline = verify.time.monotonic() + verify.SETTLE_SECONDS
    while not list(cwd.glob(MARKER_GLOB)) and verify.time.monotonic() < deadline:
        verify.time.sleep(0.1)
    out["markers"] = sorted(p.name for p in cwd.glob(MARKER_GLOB))
    return out


@pytest.mark.parametrize("sid", IDS)
def test_four_entry_points_refuse_sample(scan, attack_corpus, manifest, sid, tmp_path, monkeypatch):
    import pickleguard

    entry = _entry(manifest, sid)
    path = attack_corpus / entry["file"]
    report = _scan_without_running(scan, attack_corpus, entry, "ml", tmp_path, monkeypatch)
    assert report["is_safe"] is False, ("pickleguard scan", sid, report["risk_level"])
    assert pickleguard.scan_file(path).is_safe is False, ("scan_file", sid)
    assert not list(Path.cwd().glob(MARKER_GLOB)), "scan_file ran the payload"
    got = run_entry_points(path, entry["loader"], tmp_path)
    assert got["markers"] == [], ("the payload ran", sid, got)
    assert got["safe_load"] == "refused", ("safe_load", sid, got)
    if entry["loader"] != "none":
        assert got["install"] == "refused", ("install() + " + entry["loader"], sid, got)


# --- parity: one decision for every file (issue 14 class 7) ----------------------------------

def _peer_dir() -> Path:
    root = Path(__file__).resolve().parent.parent
    # Beside the checkout (/work/main -> /work/shared) or beside its worktree directory.
    for base in (root.parent, root.parent.parent):
        d = base / "shared" / "peer-fixtures" / "picklescan"
        if d.is_dir():
            return d
    return root.parent / "shared" / "peer-fixtures" / "picklescan"


PEER_FIXTURES = _peer_dir()
BENIGN_LOADERS = {"pickle.load": "pickle.loads"}


def _parity(scan, path: Path, loader: str, tmp_path: Path) -> tuple:
    """(CLI verdict, scan_file verdict, safe_load outcome, install() + loader outcome)."""
    import pickleguard

    cli = scan(path, "ml")["is_safe"]
    api = pickleguard.scan_file(path).is_safe
    got = run_entry_points(path, loader, tmp_path)
    return cli, api, got


def _agree(name: str, cli: bool, api: bool, got: dict, loader: str) -> None:
    assert cli == api, (name, "CLI and scan_file disagree", cli, api)
    want = "refused" if not cli else None
    for key in ("safe_load",) + (("install",) if loader != "none" else ()):
        if want == "refused":
            # Refused, or the loader itself cannot read it (pickle.loads of a zip): either way
            # nothing was built from it.
            assert got[key] != "loaded", (name, key, "the scan refuses, the loader loads it", got)
        else:
            assert got[key] != "refused", (name, key, "the scan accepts, the loader refuses", got)


# Parity over the attack corpus is test_four_entry_points_refuse_sample: every sample must be
# refused by all four entry points, which is one verdict for each (and costs one subprocess
# per sample, not two).


def _peer_manifest() -> list:
    p = PEER_FIXTURES / "manifest.json"
    return json.loads(p.read_text()) if p.exists() else [{"file": "<missing>"}]


@pytest.mark.parametrize("entry", _peer_manifest(), ids=lambda e: e["file"])
def test_parity_peer_fixtures(scan, entry, tmp_path):
    assert entry["file"] != "<missing>", "peer fixtures missing at %s" % PEER_FIXTURES
    cli, api, got = _parity(scan, PEER_FIXTURES / entry["file"], "pickle.loads", tmp_path)
    _agree(entry["file"], cli, api, got, "pickle.loads")


def test_parity_benign_corpus(scan, benign, tmp_path):
    """Every benign file (tests/corpus/gen_benign.py; the `custom` class sample included: it
    is refused, and must be refused alike): one verdict from all four entry points."""
    import pickleguard

    entries = json.loads((benign / "manifest.json").read_text())
    jobs = [(benign / e["file"], BENIGN_LOADERS.get(e["loader"], e["loader"])) for e in entries]
    results = run_entry_points_batch(jobs, tmp_path / "cwd")
    bad = []
    for e, (path, loader), got in zip(entries, jobs, results):
        cli = scan(path, "ml")["is_safe"]
        api = pickleguard.scan_file(path).is_safe
        try:
            _agree(e["file"], cli, api, got, loader)
        except AssertionError as err:
            bad.append(str(err)[:300])
    assert not bad, "%d benign files get different verdicts: %s" % (len(bad), bad[:10])


def _mutants(data: bytes, seed: int, n: int) -> list:
    import random

    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        b = bytearray(data)
        for _ in range(rnd.randint(1, 3)):
            i = rnd.randrange(len(b))
            b[i] = rnd.randrange(256)
        out.append(bytes(b))
    return out


def test_parity_byte_mutants(scan, attack_corpus, manifest, tmp_path):
    """Byte mutants of raw samples (every tenth attack sample): the four entry points still
    agree, whatever the mutation made of the stream."""
    raw = sorted(e["id"] for e in manifest.values() if e["container"] == "raw")[::10]
    bad = []
    for sid in raw:
        data = (attack_corpus / manifest[sid]["file"]).read_bytes()
        for j, m in enumerate(_mutants(data, zlib.crc32(sid.encode()) ^ 14, 2)):
            path = tmp_path / ("%s.mut%d.pkl" % (sid, j))
            path.write_bytes(m)
            cli, api, got = _parity(scan, path, "pickle.loads", tmp_path / ("%s_%d" % (sid, j)))
            try:
                _agree(path.name, cli, api, got, "pickle.loads")
            except AssertionError as err:
                bad.append(str(err)[:300])
    assert not bad, bad[:10]


@pytest.mark.parametrize("module", ["su\x00process", "0syncio", "os path", ""])
def test_parity_global_of_a_module_no_import_finds(scan, module, tmp_path):
    """A GLOBAL whose module is not an importable name breaks the stream there, before any
    import: the scan calls it not a pickle, safe_load loads nothing, and the guard under
    install() stops the load at the same opcode as a broken stream, not as a refusal."""
    import pickleguard

    data = b"\x80\x02c" + module.encode() + b"\nsystem\n(X\x05\x00\x00\x00touchtR."
    path = tmp_path / "bad_module.pkl"
    path.write_bytes(data)
    rep = scan(path, "ml")
    assert rep["is_safe"] and rep["format"] == "not_pickle", rep
    with pytest.raises(pickleguard.NotAPickleError):
        pickleguard.safe_load(path)
    pickleguard.install()
    try:
        with pytest.raises(pickle.UnpicklingError) as err:
            pickle.loads(data)
        assert not isinstance(err.value, pickleguard.PickleSecurityError)
        # An empty module line breaks the C unpickler's GLOBAL before find_class.
        assert "not an importable name" in str(err.value) or not module
    finally:
        pickleguard.uninstall()


BENIGN_PARITY = {
    "str_split": "str.split",
    "dict_get": "dict.get",
    "int_from_bytes": "int.from_bytes",
    "regex_flag": "re.IGNORECASE",
    "utc": "datetime.timezone.utc",
    "offset_tz": "datetime.timezone(datetime.timedelta(hours=5, minutes=30), 'IST')",
    "address_family": "socket.AF_INET",
    "http_status": "http.HTTPStatus.NOT_FOUND",
    "bound_split": "' a b '.split",
}


@pytest.mark.parametrize("proto", [2, 3, 4, 5])
@pytest.mark.parametrize("what", sorted(BENIGN_PARITY))
def test_benign_enum_timezone_methods_load(scan, what, proto, tmp_path):
    """Enum members, timezones and (bound) methods of builtins: what the scan accepts, the
    loaders load, and what they load equals the original."""
    import datetime
    import http
    import re
    import socket

    import pickleguard

    value = eval(BENIGN_PARITY[what], {"datetime": datetime, "re": re, "socket": socket,
                                        "http": http})
    data = pickle.dumps(value, protocol=proto)
    path = tmp_path / ("%s.p%d.pkl" % (what, proto))
    path.write_bytes(data)
    cli = scan(path, "ml")["is_safe"]
    assert pickleguard.scan_file(path).is_safe is cli
    if not cli:
        # A bound method of an instance (`getattr(<str>, 'split')`) may stay refused, but then
        # by every entry point alike.
        with pytest.raises(pickleguard.PickleSecurityError):
            pickleguard.safe_loads(data)
        return
    same = (lambda a, b: a == b) if what != "bound_split" else (lambda a, b: a() == b())
    assert same(pickleguard.safe_loads(data), value)
    assert same(pickleguard.safe_load(path), value)
    pickleguard.install()
    try:
        assert same(pickle.loads(data), value)
        with open(path, "rb") as f:
            assert same(pickle.load(f), value)
        assert same(pickle._loads(data), value)
    finally:
        pickleguard.uninstall()


def test_runtime_wall_refuses_a_global_the_scan_did_not_see(monkeypatch):
    """The loader imports only what the passing scan saw: a global missing from its view (a
    parser differential) is refused even though its name alone would pass."""
    import pickleguard
    from pickleguard import _guard

    data = pickle.dumps(datetime_value(), protocol=2)
    real = _guard.PickleGuard.analyze

    def blind(self, d, source=None, path=None):
        a = real(self, d, source=source, path=path)
        a.globals = [g for g in a.globals if g["name"] != "timedelta"]
        return a

    assert pickleguard.safe_loads(data) == datetime_value()
    monkeypatch.setattr(_guard.PickleGuard, "analyze", blind)
    monkeypatch.setattr(_guard.PickleGuard, "_scan",
                        lambda self, d, s, t=False, path=None, *load_flags: blind(self, d, s, path))
    with pytest.raises(pickleguard.PickleSecurityError, match="did not see"):
        pickleguard.safe_loads(data)
    pickleguard.install()
    try:
        with pytest.raises(pickleguard.PickleSecurityError, match="did not see"):
            pickle.loads(data)
    finally:
        pickleguard.uninstall()


def test_runtime_stricter_name_only_loader_is_in_the_scan(tmp_path, scan):
    """An unpickler no scan of its stream precedes judges globals by name alone and refuses
    `getattr(<str>, 'split')`, which the scan accepts by its arguments: the scan says so with
    an informational RUNTIME_STRICTER finding (severity SAFE, verdict unchanged). A pickle
    whose globals the name alone allows gets no such finding and loads either way."""
    import datetime
    import io

    import pickleguard

    class OwnDispatch(pickle._Unpickler):  # a dispatch table of its own: no scan first
        dispatch = dict(pickle._Unpickler.dispatch)

    for value, noted in (("a b".split, True), (datetime.timedelta(days=2), False)):
        data = pickle.dumps(value, protocol=2)
        path = tmp_path / ("noted.pkl" if noted else "plain.pkl")
        path.write_bytes(data)
        for report in (scan(path, "ml"), pickleguard.scan_file(path).to_dict(),
                       pickleguard.analyze_pickle(data).to_dict()):
            assert report["is_safe"] and report["risk_level"] == "SAFE", report
            notes = [f for f in report["findings"] if f["type"] == "RUNTIME_STRICTER"]
            assert [(f["module"], f["name"], f["severity"]) for f in notes] == (
                [("__builtin__", "getattr", "SAFE")] if noted else []), report
        loaded = pickleguard.safe_loads(data)
        assert (loaded() if noted else loaded) == (value() if noted else value)
        pickleguard.install()
        try:
            if noted:
                with pytest.raises(pickleguard.PickleSecurityError, match="getattr"):
                    OwnDispatch(io.BytesIO(data)).load()
            else:
                assert OwnDispatch(io.BytesIO(data)).load() == value
            assert (pickle.loads(data)() if noted else pickle.loads(data)) == (
                value() if noted else value)
        finally:
            pickleguard.uninstall()


NPY_HEADERS = {
    # header -> whether numpy.load reads it
    "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }": True,
    "{'descr': '|O', 'fortran_order': Fals, 'shape': (1,), }": False,
    "{'descr': '|O', 'fortran_order': False, }": False,
    "{'descr': '|O', 'fortran_order': False, 'shape': (1,), 'extra': 1}": False,
    "{'descr': '|O', 'fortran_order': 0, 'shape': (1,), }": False,
    "{'descr': '|O', 'fortran_order': False, 'shape': [1], }": False,
    "{'descr': __import__('os'), 'fortran_order': False, 'shape': (1,), }": False,
}


@pytest.mark.parametrize("header", sorted(NPY_HEADERS))
def test_runtime_stricter_npy_header_is_in_the_scan(tmp_path, scan, header):
    """safe_load refuses a .npy whose header numpy cannot read (nothing after it is loaded);
    the scan, which calls such a file harmless, says so with a LOW MALFORMED finding, so a CI
    user is told before safe_load refuses it. Headers numpy reads get no such finding."""
    import struct

    import numpy as np
    import pickleguard

    h = header + " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    data = (b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode("latin1")
            + pickle.dumps([None], protocol=2))
    path = tmp_path / "a.npy"
    path.write_bytes(data)
    readable = NPY_HEADERS[header]
    try:
        np.load(path, allow_pickle=False, mmap_mode=None, max_header_size=10**6)
        numpy_reads = True
    except ValueError as e:
        numpy_reads = "allow_pickle" in str(e)   # the header was read; the data is objects
    assert numpy_reads is readable
    for report in (scan(path, "ml"), pickleguard.scan_file(path).to_dict()):
        assert report["is_safe"], report
        malformed = [f for f in report["findings"] if f["type"] == "MALFORMED"]
        assert bool(malformed) is (not readable), report
        assert all(f["severity"] == "LOW" for f in malformed), report
    if readable:
        assert list(pickleguard.safe_load(path)) == [None]  # numpy returns the pickled object
    else:
        with pytest.raises(pickleguard.PickleSecurityError, match="npy header"):
            pickleguard.safe_load(path)


def datetime_value():
    import datetime

    return datetime.timedelta(days=2, seconds=5)
