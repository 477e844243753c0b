"""install() / uninstall(): every entry point of pickle is protected; everything is restored
exactly; idempotent and thread-safe; libraries imported later are patched on import."""

from __future__ import annotations

import _pickle
import io
import json
import pickle
import subprocess
import sys
import threading
import textwrap

import pytest

import pickleguard
from pickleguard import PickleSecurityError
from test_python_support import (NonSeekable, SystemPayload, assert_no_marker,  # noqa: F401
                                 in_tmp, open_payload, protocol0_payload, system_payload)

BENIGN = {"a": [1, 2.5, "x"], "b": (None, True), "c": b"bytes"}


def _snapshot():
    import joblib.numpy_pickle as npk
    import numpy
    import pandas
    import pandas.io.pickle as pio
    import torch
    import torch.serialization as ser
    from pandas.compat import pickle_compat
    objs = {
        "pickle.load": pickle.load, "pickle.loads": pickle.loads,
        "pickle.Unpickler": pickle.Unpickler, "_pickle.Unpickler": _pickle.Unpickler,
        "_pickle.load": _pickle.load, "_pickle.loads": _pickle.loads,
        "pickle._load": pickle._load, "pickle._loads": pickle._loads,
        "pickle._Unpickler": pickle._Unpickler,
        "_Unpickler.find_class": vars(pickle._Unpickler).get("find_class"),
        "_Unpickler.load": vars(pickle._Unpickler).get("load"),
        "torch.load": torch.load, "ser.load": ser.load,
        "joblib.load": __import__("joblib").load, "npk.load": npk.load,
        "NumpyUnpickler.find_class": vars(npk.NumpyUnpickler).get("find_class", "absent"),
        "numpy.load": numpy.load, "pandas.read_pickle": pandas.read_pickle,
        "pio.read_pickle": pio.read_pickle,
        "compat.find_class": vars(pickle_compat.Unpickler).get("find_class"),
    }
    try:
        import dill
        import dill._dill as dd
        objs.update({"dill.load": dill.load, "dill.loads": dill.loads, "dd.load": dd.load,
                     "dill.Unpickler.find_class": vars(dd.Unpickler).get("find_class")})
    except ImportError:  # pragma: no cover
        pass
    return objs


@pytest.fixture
def installed():
    before = _snapshot()
    guard = pickleguard.install()
    try:
        yield guard
    finally:
        pickleguard.uninstall()
    after = _snapshot()
    changed = [k for k in before if before[k] is not after[k]]
    assert not changed, changed


def test_uninstall_restores_every_original_by_identity():
    before = _snapshot()
    pickleguard.install()
    during = _snapshot()
    patched = [k for k in before if before[k] is not during[k] and k != "pickle._Unpickler"]
    assert len(patched) >= 18, patched
    assert during["pickle._Unpickler"] is before["pickle._Unpickler"]  # patched in place
    pickleguard.install()  # idempotent
    pickleguard.install(mode="strict")  # only the guard changes
    assert pickleguard.installed_guard().mode == "strict"
    assert _snapshot()["pickle.Unpickler"] is during["pickle.Unpickler"]
    pickleguard.uninstall()
    pickleguard.uninstall()  # idempotent
    after = _snapshot()
    assert all(before[k] is after[k] for k in before), [k for k in before
                                                          if before[k] is not after[k]]
    assert not pickleguard.is_installed()


def _entry_points(data: bytes):
    return {
        "pickle.loads": lambda: pickle.loads(data),
        "pickle.load": lambda: pickle.load(io.BytesIO(data)),
        "pickle.load(non-seekable)": lambda: pickle.load(NonSeekable(data)),
        "pickle.Unpickler": lambda: pickle.Unpickler(io.BytesIO(data)).load(),
        "_pickle.Unpickler": lambda: _pickle.Unpickler(io.BytesIO(data)).load(),
        "_pickle.loads": lambda: _pickle.loads(data),
        "_pickle.load": lambda: _pickle.load(io.BytesIO(data)),
        "pickle._loads": lambda: pickle._loads(data),
        "pickle._load": lambda: pickle._load(io.BytesIO(data)),
        "pickle._Unpickler": lambda: pickle._Unpickler(io.BytesIO(data)).load(),
        "subclass": lambda: type("Sub", (pickle.Unpickler,), {})(io.BytesIO(data)).load(),
        "old subclass of _Unpickler": lambda: _OldPySub(io.BytesIO(data)).load(),
    }


class _OldPySub(pickle._Unpickler):  # defined before install(), like joblib's and pandas'
    dispatch = dict(pickle._Unpickler.dispatch)


@pytest.mark.parametrize("kind", ["system", "open", "proto0"])
def test_every_pickle_entry_point_refuses(installed, in_tmp, kind):
    make = {"system": lambda n: system_payload(n, 2), "open": open_payload,
            "proto0": protocol0_payload}[kind]
    for name, call in _entry_points(make(kind)).items():
        with pytest.raises(PickleSecurityError):
            call()
        assert_no_marker(kind)


def test_every_pickle_entry_point_loads_benign_data(installed):
    for proto in (0, 2, 5):
        data = pickle.dumps(BENIGN, protocol=proto)
        for name, call in _entry_points(data).items():
            assert call() == BENIGN, (name, proto)


def test_the_run_time_wall_of_installed_hooks(installed, in_tmp, monkeypatch):
    from pickleguard import _native
    clean = {"format": "raw_pickle", "is_safe": True, "risk_level": "SAFE", "complete": True,
             "stopped_by": None, "mode": "ml", "findings": [], "globals": []}
    monkeypatch.setattr(_native, "analyze_pickle", lambda d, p: dict(clean))
    for name, call in _entry_points(system_payload("wall", 2)).items():
        with pytest.raises(PickleSecurityError) as ei:
            call()
        assert ei.value.analysis.stage == "load", name
    assert_no_marker("wall")


def test_uninstalled_subclass_loads_like_pickle_again():
    pickleguard.install()
    try:
        Later = type("Later", (pickle.Unpickler,), {})  # captures the guarded class
    finally:
        pickleguard.uninstall()
    import collections
    assert Later(io.BytesIO(pickle.dumps(collections.Counter("ab")))).load() == \
        collections.Counter("ab")


def test_install_is_thread_safe():
    errors = []
    before = _snapshot()

    def churn(i):
        try:
            for _ in range(20):
                pickleguard.install()
                pickle.loads(pickle.dumps([i]))
                pickleguard.uninstall()
        except Exception as e:  # pragma: no cover
            errors.append(e)

    ts = [threading.Thread(target=churn, args=(i,)) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    pickleguard.uninstall()
    assert not errors
    after = _snapshot()
    assert all(before[k] is after[k] for k in before)


def test_libraries_imported_after_install_are_patched_on_import(tmp_path):
    code = textwrap.dedent("""
        import sys, pickle, os
        import pickleguard
        assert 'joblib' not in sys.modules and 'pandas' not in sys.modules
        pickleguard.install()
        import joblib, pandas, numpy, torch
        assert getattr(joblib.load, '_pg_original', None) is not None, 'joblib'
        assert getattr(pandas.read_pickle, '_pg_original', None) is not None, 'pandas'
        assert getattr(torch.load, '_pg_original', None) is not None, 'torch'
        assert getattr(numpy.load, '_pg_original', None) is not None, 'numpy'
        # the real loader is back on the module
        assert type(joblib.__loader__).__name__ != '_Loader'
        class P:
            def __reduce__(self): return (os.system, ('touch pickleguard-marker-late',))
        joblib.dump(P(), 'late.joblib')
        try:
            joblib.load('late.joblib')
        except pickleguard.PickleSecurityError:
            pass
        else:
            raise SystemExit('not refused')
        assert not os.path.exists('pickleguard-marker-late')
        pickleguard.uninstall()
        assert not hasattr(joblib.load, '_pg_original')
        print('ok')
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


def test_shelve_reads_restricted_under_install(in_tmp):
    """shelve binds pickle.Unpickler at import: install() replaces its copy too, so a shelf
    file's values are scanned and loaded restricted; uninstall() puts the original back."""
    import shelve
    original = shelve.Unpickler
    with shelve.open("db") as db:
        db["evil"] = SystemPayload("shelve")
        db["ok"] = {"a": [1, 2.5, "x"]}
    pickleguard.install()
    try:
        assert shelve.Unpickler is not original
        with shelve.open("db") as db:
            assert db["ok"] == {"a": [1, 2.5, "x"]}
            with pytest.raises(PickleSecurityError):
                db["evil"]
    finally:
        pickleguard.uninstall()
    assert shelve.Unpickler is original
    assert_no_marker("shelve")


# ------------------------------------------------------------------ uninstall() and copies

PROGRAMS = __import__("pathlib").Path(__file__).resolve().parent / "programs"


def _run_program(name, *args, timeout=600, cwd=None):
    return subprocess.run([sys.executable, str(PROGRAMS / name), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("when", ["before", "during", "after"])
def test_uninstall_leaves_no_patched_object_behind(when, tmp_path):
    """Libraries imported before install(), while installed, or while installed a first
    time: after uninstall() no module (nor a class it defines) holds an object pickleguard
    put in place, and every known copy site (ForkingPickler.loads, loky's and joblib's
    ``from pickle import loads``, cloudpickle's, dill's StockUnpickler, shelve's Unpickler,
    torch.load) is the original by identity."""
    r = _run_program("uninstall_leaks.py", when, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    bad = [k for k, ok in out["identity"].items() if not ok]
    assert not bad, bad
    leaks = out["leaks"]
    if when != "before":
        # A class created while installed as a subclass of the installed pickle.Unpickler
        # keeps that base (CPython cannot rebase a class to one of another layout); the
        # base finds no guard once uninstalled and loads like the original.
        assert leaks == ["dill._dill.Unpickler <base pickleguard.Unpickler>"], leaks
        assert out["dill_loads_like_original"]
    else:
        assert leaks == [], leaks


# ------------------------------------------------------------------ multiprocessing

_MP_CHECKS = "pool,executor,queue,manager,refused-task,refused-result"


@pytest.mark.parametrize("order,method,checks", [
    ("before", "fork", _MP_CHECKS + ",dataloader"),
    ("after", "fork", _MP_CHECKS + ",dataloader"),
    ("before", "spawn", _MP_CHECKS),
    ("after", "spawn", "pool,executor,queue"),
    ("before", "forkserver", _MP_CHECKS),
    ("after", "forkserver", "pool,executor"),
])
def test_multiprocessing_works_under_install(order, method, checks, tmp_path):
    """install() first (as recommended) or after multiprocessing/torch are imported:
    Pool.map, ProcessPoolExecutor, Queue, Pipe, Manager and a torch DataLoader with two
    workers work under every start method; a pool task or result that would run os.system
    is an error in the parent (never a hang, never run); pickle.loads elsewhere is still
    guarded. A fresh interpreter each, so the import order is real."""
    r = _run_program("mp_under_install.py", order, checks, method, cwd=tmp_path)
    done = [line.split()[1] for line in r.stdout.splitlines() if line.startswith("ok ")]
    assert r.returncode == 0 and done == checks.split(","), (done, r.stderr[-4000:])
    assert not list(tmp_path.glob("pickleguard-marker-*"))


def test_torch_dataloader_spawn_workers_under_install(tmp_path):
    r = _run_program("mp_under_install.py", "before", "dataloader", "spawn", cwd=tmp_path)
    assert r.returncode == 0 and "ok dataloader" in r.stdout, r.stderr[-4000:]


def test_ipc_judgement_is_only_on_ipc_paths(installed, in_tmp):
    """The IPC judgement accepts a program's own functions but refuses what runs commands
    or code, by the name written and by the object a name resolves to; plain pickle.loads
    keeps the installed guard's full judgement."""
    import multiprocessing.pool
    from multiprocessing.reduction import ForkingPickler

    from pickleguard import _ipc
    data = ForkingPickler.dumps((multiprocessing.pool.mapstar, ((abs, [-1]),)))
    assert ForkingPickler.loads(data) == (multiprocessing.pool.mapstar, ((abs, [-1]),))
    with pytest.raises(PickleSecurityError):
        pickle.loads(bytes(data))  # not an IPC path: mapstar is refused there
    for payload in (system_payload("ipc", 2), protocol0_payload("ipc0"),
                    pickle.dumps(SystemPayload("ipc4"), protocol=4)):
        with pytest.raises(PickleSecurityError):
            ForkingPickler.loads(payload)
        with pytest.raises(PickleSecurityError):
            _ipc.load(io.BytesIO(payload))
    # getattr (how bound methods travel) cannot reach a module or a dunder.
    getattr_os = b"\x80\x02cbuiltins\ngetattr\ncos\npath\nX\x02\x00\x00\x00osq\x00\x86R."
    with pytest.raises(PickleSecurityError):
        ForkingPickler.loads(getattr_os)
    dunder = (b"\x80\x02cbuiltins\ngetattr\ncbuiltins\nabs\nX\x0b\x00\x00\x00__globals__"
              b"\x86R.")
    with pytest.raises(PickleSecurityError):
        ForkingPickler.loads(dunder)
    bound = ForkingPickler.dumps([1, 2].append)
    assert ForkingPickler.loads(bound).__name__ == "append"
    # The sender refuses what the receiver would.
    with pytest.raises(PickleSecurityError):
        ForkingPickler.dumps(SystemPayload("ipc-send"))
    for name in ("ipc", "ipc0", "ipc4", "ipc-send"):
        assert_no_marker(name)


def test_loads_judges_the_bytes_after_the_first_pickle(installed, tmp_path, monkeypatch):
    """pickle.loads stops at the first STOP; a payload pickle after it is still part of the
    data the scan refuses, so the guarded loads refuses it too (one verdict per buffer)."""
    monkeypatch.chdir(tmp_path)
    first = pickle.dumps({"a": 1}, protocol=2)
    payload = b"\x80\x02cposix\nsystem\nX\x1f\x00\x00\x00touch pickleguard-marker-trailer\x85R."
    with pytest.raises(pickleguard.PickleSecurityError):
        pickle.loads(first + payload)
    assert not list(tmp_path.glob("pickleguard-marker-*"))
    # Harmless trailing bytes, or a second benign pickle, change nothing.
    assert pickle.loads(first + b"\n\n") == {"a": 1}
    assert pickle.loads(first + pickle.dumps([1, 2], protocol=2)) == {"a": 1}
