"""The Python API: analyze_pickle, scan_file, safe_load(s), PickleGuard, PickleSecurityError,
register_safe_class, audit mode, the types, the stubs, the console script, fork and threads."""

from __future__ import annotations

import collections
import io
import json
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import validate_report

import pickleguard
from pickleguard import (Finding, PickleAnalysis, PickleGuard, PickleSecurityError,
                         analyze_pickle, register_safe_class, safe_load, safe_loads, scan_file)
from test_python_support import (NonSeekable, SystemPayload, assert_no_marker, in_tmp,  # noqa: F401
                                 open_payload, protocol0_payload, system_payload)

BENIGN = {"ints": [1, 2, 3], "text": "hello", "nested": {"t": (1.5, None, True)},
          "bytes": b"\x00\x01", "set": {1, 2}, "od": collections.OrderedDict(a=1)}


class UserModel:
    def __init__(self, x=1):
        self.x = x

    def __eq__(self, other):
        return isinstance(other, UserModel) and other.x == self.x


class AuditOnly(UserModel):
    """Never registered: an unknown import in the ml profile."""


@register_safe_class
class Registered:
    def __init__(self, v=0):
        self.v = v


# ------------------------------------------------------------------ analysis and reprs

def test_analysis_repr_reads_like_the_issue():
    a = analyze_pickle(system_payload("repr", protocol=2))
    assert isinstance(a, PickleAnalysis)
    assert a.is_safe is False and a.risk_level == "CRITICAL"
    r = repr(a)
    assert r.startswith("PickleAnalysis(is_safe=False, risk_level='CRITICAL', findings=[Finding(")
    assert "Finding(type='DANGEROUS_IMPORT'" in r and "module='posix', name='system'" in r
    call = next(f for f in a.findings if f.type == "REDUCE_CALL")
    assert call.callable == "posix.system"
    assert call.args == ["touch pickleguard-marker-repr"]
    assert call.raw_args == ["'touch pickleguard-marker-repr'"]
    assert "args=['touch pickleguard-marker-repr']" in repr(call)
    d = a.to_dict()
    json.dumps(d)
    assert d["findings"][0]["type"] == "DANGEROUS_IMPORT"
    assert all(isinstance(f, Finding) for f in a.findings)
    assert a.findings[0] == Finding._from_dict(a.findings[0].to_dict())


def test_benign_data_is_safe_and_complete():
    for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
        a = analyze_pickle(pickle.dumps(BENIGN, protocol=proto))
        assert a.is_safe and a.risk_level == "SAFE" and a.complete, (proto, a)
        assert a.findings == []


def test_analyze_takes_any_buffer_without_copying_semantics():
    data = system_payload("buf")
    for obj in (data, bytearray(data), memoryview(data), memoryview(b"xx" + data)[2:]):
        assert analyze_pickle(obj).risk_level == "CRITICAL"
    with pytest.raises(TypeError):
        analyze_pickle("not bytes")  # type: ignore[arg-type]


def test_not_a_pickle_is_safe():
    for data in (b'{"a": 1}', b"", b"\xff\xfe garbage", b"# README\n"):
        a = analyze_pickle(data)
        assert a.is_safe, (data, a)


def test_scan_file_maps_files(tmp_path):
    p = tmp_path / "x.pkl"
    p.write_bytes(system_payload("scan"))
    a = scan_file(p)
    assert not a.is_safe and a.source == str(p)
    e = tmp_path / "empty.pkl"
    e.write_bytes(b"")
    assert scan_file(e).is_safe
    assert scan_file(str(p)) == a


def test_scan_file_advises_its_map_by_how_the_scan_reads(tmp_path):
    """Zips (torch.save), numeric .npy: read page by page; pickles: read ahead. The advice
    leaves the map scannable and closable (no buffer left exported)."""
    import mmap

    from pickleguard import _native
    from pickleguard._io import advise_for_scan, map_path
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    files = {"model.pt": True, "weights.npy": True, "objects.npy": False, "data.pkl": False}
    torch.save({"w": torch.zeros(64, 64)}, tmp_path / "model.pt")
    np.save(tmp_path / "weights.npy", np.zeros((256, 256)))
    np.save(tmp_path / "objects.npy", np.array([Fraction(1, 3), "x"], dtype=object),
            allow_pickle=True)
    (tmp_path / "data.pkl").write_bytes(pickle.dumps([BENIGN] * 200) * 50)
    for name, sparse in files.items():
        data = (tmp_path / name).read_bytes()
        assert _native.reads_sparsely(data) is sparse, name
        assert _native.reads_sparsely(data[:4096]) is sparse, name
        m = map_path(tmp_path / name)
        assert isinstance(m, mmap.mmap)
        advise_for_scan(m)
        assert bytes(m[:16]) == data[:16]
        m.close()  # BufferError if the advice left a view open
        assert scan_file(tmp_path / name).is_safe, name
    assert _native.reads_sparsely(b"") is False


# ------------------------------------------------------------------ safe_load / safe_loads

def test_safe_load_paths_files_bytes(in_tmp):
    data = pickle.dumps(BENIGN)
    p = in_tmp / "ok.pkl"
    p.write_bytes(data)
    assert safe_load(p) == BENIGN
    assert safe_load(str(p)) == BENIGN
    with open(p, "rb") as f:
        assert safe_load(f) == BENIGN
    assert safe_load(io.BytesIO(data)) == BENIGN
    assert safe_loads(data) == BENIGN
    assert safe_loads(memoryview(data)) == BENIGN
    assert safe_loads(bytearray(data)) == BENIGN


@pytest.mark.parametrize("make", [system_payload, open_payload,
                                  lambda n: protocol0_payload(n)])
def test_safe_load_refuses_every_input_kind(in_tmp, make):
    name = getattr(make, "__name__", "p0")
    data = make(name)
    p = in_tmp / "evil.pkl"
    p.write_bytes(data)
    for call in (lambda: safe_load(p), lambda: safe_load(str(p)),
                 lambda: safe_load(open(p, "rb")), lambda: safe_load(io.BytesIO(data)),
                 lambda: safe_loads(data), lambda: safe_load(NonSeekable(data)),
                 lambda: PickleGuard("ml").load(p), lambda: PickleGuard().loads(data)):
        with pytest.raises(PickleSecurityError) as ei:
            call()
        assert isinstance(ei.value, pickle.UnpicklingError)
        assert not ei.value.analysis.is_safe
        assert ei.value.findings
        assert_no_marker(name)


def test_file_positions_and_several_pickles(in_tmp):
    a, b = pickle.dumps([1, 2], protocol=2), pickle.dumps({"x": "y"}, protocol=5)
    p = in_tmp / "two.pkl"
    p.write_bytes(b"HEADER" + a + b)
    with open(p, "rb") as f:
        f.seek(6)
        assert safe_load(f) == [1, 2]
        assert f.tell() == 6 + len(a)
        assert safe_load(f) == {"x": "y"}
        assert f.tell() == 6 + len(a) + len(b)
        with pytest.raises(EOFError):
            safe_load(f)
    bio = io.BytesIO(b"xx" + a + b + b"tail")
    bio.seek(2)
    assert safe_load(bio) == [1, 2] and bio.tell() == 2 + len(a)
    assert safe_load(bio) == {"x": "y"} and bio.read() == b"tail"


def test_non_seekable_stream_is_read_once_and_no_further(in_tmp):
    a = pickle.dumps(list(range(100)), protocol=2)
    b = pickle.dumps("second", protocol=0)
    c = pickle.dumps({"big": b"x" * 200_000}, protocol=5)
    s = NonSeekable(a + b + c + b"rest")
    assert safe_load(s) == list(range(100))
    assert safe_load(s) == "second"
    assert safe_load(s) == {"big": b"x" * 200_000}
    assert s.remaining() == b"rest"


def test_a_payload_after_a_benign_pickle_in_a_file_is_refused_when_reached(in_tmp):
    data = pickle.dumps(1) + system_payload("second")
    p = in_tmp / "f.pkl"
    p.write_bytes(data)
    # The whole file is judged: a path load refuses it.
    with pytest.raises(PickleSecurityError):
        safe_load(p)
    # pickle.load semantics on a stream: the first load reads only the first pickle.
    s = io.BytesIO(data)
    assert safe_load(s) == 1
    with pytest.raises(PickleSecurityError):
        safe_load(s)
    assert_no_marker("second")


# ------------------------------------------------------------------ modes and policy

def test_strict_is_the_class_default_and_helpers_default_to_ml():
    assert PickleGuard().mode == "strict"
    od = pickle.dumps(collections.OrderedDict(a=1))
    assert analyze_pickle(od).is_safe  # ml
    assert not PickleGuard().analyze(od).is_safe  # strict: no global at all
    assert PickleGuard().loads(pickle.dumps([1, "a", {"b": 2.0}])) == [1, "a", {"b": 2.0}]
    with pytest.raises(PickleSecurityError):
        PickleGuard().loads(od)
    with pytest.raises(ValueError):
        PickleGuard("nonsense")
    with pytest.raises(ValueError):
        PickleGuard("strict", allowed_modules=["numpy"])


def test_allowlist_mode_and_wildcards():
    g = PickleGuard("allowlist", allowed_modules=[("fractions", "Fraction")])
    assert g.loads(pickle.dumps(Fraction(1, 3))) == Fraction(1, 3)
    with pytest.raises(PickleSecurityError):
        g.loads(pickle.dumps(collections.OrderedDict(a=1)))
    g2 = PickleGuard("allowlist", allowed_modules=["collections"])
    assert g2.loads(pickle.dumps(collections.OrderedDict(a=1))) == {"a": 1}
    # A wildcard never reaches a dangerous name.
    g3 = PickleGuard("allowlist", allowed_modules=[("os", "*"), "posix", "builtins:*"])
    assert not g3.is_allowed("posix", "system")
    with pytest.raises(PickleSecurityError):
        g3.loads(system_payload("wild"))
    # Submodule wildcards.
    g4 = PickleGuard("allowlist", allowed_modules=["test_python_api:UserModel"])
    assert g4.loads(pickle.dumps(UserModel(3))) == UserModel(3)
    g5 = PickleGuard("allowlist", allowed_modules=["email.*"])
    assert g5.is_allowed("email.message", "Message")
    assert not g5.is_allowed("collections", "OrderedDict")


def test_blocked_modules_beat_allows():
    g = PickleGuard("ml", blocked_modules=["collections"])
    assert not g.is_allowed("collections", "OrderedDict")
    a = g.analyze(pickle.dumps(collections.OrderedDict(a=1)))
    assert not a.is_safe and a.findings[0].type == "DANGEROUS_IMPORT"
    g2 = PickleGuard("allowlist", allowed_modules=["test_python_api"],
                     blocked_modules=[("test_python_api", "UserModel")])
    with pytest.raises(PickleSecurityError):
        g2.loads(pickle.dumps(UserModel()))


def test_register_safe_class_extends_every_guard():
    assert analyze_pickle(pickle.dumps(Registered(2))).is_safe
    assert safe_loads(pickle.dumps(Registered(2))).v == 2
    g = PickleGuard("ml")
    assert g.is_allowed(Registered.__module__, "Registered")
    assert not g.is_allowed(UserModel.__module__, "UserModel")
    register_safe_class("test_python_api", "UserModel")
    assert g.is_allowed(UserModel.__module__, "UserModel")
    assert PickleGuard("ml").loads(pickle.dumps(UserModel(5))) == UserModel(5)
    assert not PickleGuard("strict").is_allowed(UserModel.__module__, "UserModel")


def test_fail_on_and_policy_files(tmp_path):
    od = pickle.dumps(collections.OrderedDict(a=1))
    assert not PickleGuard("allowlist").analyze(od).is_safe
    # Raising the threshold accepts what lies below it, in the scan and at run time alike.
    assert PickleGuard("allowlist", fail_on="CRITICAL").analyze(od).is_safe
    assert PickleGuard("allowlist", fail_on="CRITICAL").loads(od) == {"a": 1}
    assert not PickleGuard("allowlist", fail_on="CRITICAL").analyze(system_payload("t")).is_safe
    pf = tmp_path / "pickleguard.toml"
    pf.write_text('version = 1\n[[allow]]\nmodule = "collections"\nnew = ["OrderedDict"]\n'
                  'call = ["OrderedDict"]\n')
    assert PickleGuard("allowlist", policy_file=pf).loads(od) == {"a": 1}
    pp = tmp_path / "pyproject.toml"
    pp.write_text('[project]\nname = "x"\n[tool.pickleguard]\n[[tool.pickleguard.allow]]\n'
                  'module = "collections"\ncall = ["OrderedDict"]\n')
    assert PickleGuard("allowlist", policy_file=pp).loads(od) == {"a": 1}
    pp.write_text('[project]\nname = "x"\n')
    with pytest.raises(ValueError):
        PickleGuard("allowlist", policy_file=pp)
    # A misspelt key or another format version is refused with its name, never ignored.
    for text, says in (('[[alow]]\nmodule = "collections"\n', "alow"),
                       ('[[allow]]\nmodule = "collections"\nnews = ["OrderedDict"]\n', "news"),
                       ("version = 3\n", "version 3")):
        pf.write_text(text)
        with pytest.raises(ValueError, match=says):
            PickleGuard("allowlist", policy_file=pf)
    pp.write_text('[tool.pickleguard]\nversion = 7\n')
    with pytest.raises(ValueError, match="version 7"):
        PickleGuard("allowlist", policy_file=pp)


def test_security_error_carries_the_analysis():
    with pytest.raises(PickleSecurityError) as ei:
        safe_loads(system_payload("err"))
    e = ei.value
    assert e.analysis.risk_level == "CRITICAL" and e.analysis.stage == "scan"
    assert "posix.system" in str(e)
    again = pickle.loads(pickle.dumps(e))
    assert isinstance(again, PickleSecurityError) and again.analysis == e.analysis


def test_audit_mode_logs_and_loads(in_tmp, caplog):
    data = pickle.dumps(AuditOnly(7))
    caplog.set_level(logging.WARNING, logger="pickleguard")
    g = PickleGuard("audit")
    assert g.loads(data) == AuditOnly(7)
    log = (in_tmp / "pickleguard.log").read_text()
    assert "UNKNOWN_IMPORT" in log and "AuditOnly" in log
    assert any("AuditOnly" in r.getMessage() for r in caplog.records)
    # Configurable file, and the run-time wall logs too instead of refusing.
    own = in_tmp / "audit.log"
    g2 = PickleGuard("audit", log_file=own)
    assert g2.Unpickler(io.BytesIO(data), _pg_prescanned=True).load() == AuditOnly(7)
    text = own.read_text()
    # It let the load through: the log must not say it refused it.
    assert "let through by audit mode" in text and "refused" not in text, text
    assert safe_load(io.BytesIO(data), mode="audit", log_file=None) == AuditOnly(7)


# ------------------------------------------------------------------ stubs, CLI, fork, threads

def test_native_stubs_match_the_module():
    pytest.importorskip("mypy")
    proc = subprocess.run([sys.executable, "-m", "mypy.stubtest", "pickleguard._native"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pkg = Path(pickleguard.__file__).parent
    assert (pkg / "py.typed").exists() and (pkg / "_native.pyi").exists()


def test_the_package_type_checks(tmp_path):
    pytest.importorskip("mypy")
    proc = subprocess.run([sys.executable, "-m", "mypy", "-p", "pickleguard",
                           "--ignore-missing-imports", "--cache-dir", str(tmp_path / "cache")],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_console_script_runs_the_rust_cli(tmp_path):
    evil, ok = tmp_path / "evil.pkl", tmp_path / "ok.pkl"
    evil.write_bytes(system_payload("cli"))
    ok.write_bytes(pickle.dumps(BENIGN))
    exe = Path(sys.executable).parent / "pickleguard"
    cmds = [[sys.executable, "-m", "pickleguard"]]
    if exe.exists():
        cmds.append([str(exe)])
    for cmd in cmds:
        r = subprocess.run(cmd + ["scan", str(evil), "--format", "json"], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 1, r.stderr
        assert validate_report(json.loads(r.stdout))["files"][0]["risk_level"] == "CRITICAL"
        r = subprocess.run(cmd + ["scan", str(ok)], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert subprocess.run(cmd + ["--no-such-flag"], capture_output=True,
                              timeout=120).returncode == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_child_scans_and_loads():
    evil, ok = system_payload("fork"), pickle.dumps(BENIGN)
    analyze_pickle(ok)  # the parent has used the module already
    pid = os.fork()
    if pid == 0:  # child: no thread survives fork; the module must still work
        code = 1
        try:
            good = (not analyze_pickle(evil).is_safe and safe_loads(ok) == BENIGN)
            try:
                safe_loads(evil)
            except PickleSecurityError:
                code = 0 if good else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _dense_pickle(n: int) -> bytes:
    return pickle.dumps([(i, float(i), str(i)) for i in range(n)], protocol=2)


def test_the_gil_is_released_while_rust_works():
    data = _dense_pickle(600_000)
    t0 = time.perf_counter()
    analyze_pickle(data)
    once = time.perf_counter() - t0
    reps = max(1, int(0.3 / max(once, 1e-3)))
    done = threading.Event()

    def work():
        for _ in range(reps):
            analyze_pickle(data)
        done.set()

    t = threading.Thread(target=work)
    ticks = 0
    t.start()
    while not done.is_set():
        ticks += 1
    t.join()
    # Holding the GIL for the whole scan would leave this loop a handful of turns.
    assert ticks > 10_000, (ticks, once, reps)


def test_concurrent_use_from_threads():
    g = PickleGuard("ml")
    evil, ok = system_payload("threads"), pickle.dumps(BENIGN)
    errors = []

    def work(i):
        try:
            for _ in range(50):
                assert g.loads(ok) == BENIGN
                assert not g.analyze(evil).is_safe
                if i % 2:
                    g.allow(f"thread_mod_{i}", "*")
        except Exception as e:  # pragma: no cover
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert g.is_allowed("thread_mod_1", "X")


def test_finding_types_come_from_the_core_and_match_the_schema():
    from conftest import REPORT_SCHEMA
    from pickleguard import _analysis, _native
    enum = json.loads(REPORT_SCHEMA.read_text())["$defs"]["finding"]["properties"]["type"]["enum"]
    assert list(_analysis.FINDING_TYPES) == enum
    assert _analysis.FINDING_TYPES is _native.FINDING_TYPES
    # No fallback: a type the core does not know is refused where a finding is made.
    with pytest.raises(ValueError, match="unknown finding type 'RUNTIME_STRICT'"):
        Finding("RUNTIME_STRICT", "SAFE", "a typo")
    assert Finding("RUNTIME_STRICTER", "SAFE", "known").type == "RUNTIME_STRICTER"
