"""The real libraries: benign artifacts made here load through safe_load, install() and the
patched loaders and equal what the native loader returns; harmless attack samples raise
PickleSecurityError through every loader and their marker never appears."""

from __future__ import annotations

import gzip
import io
import os
import pickle

import pytest

import pickleguard
from pickleguard import PickleSecurityError, safe_load
from pickleguard.integrations import joblib as pg_joblib
from pickleguard.integrations import pytorch as pg_torch
from test_python_support import (OpenPayload, SystemPayload, assert_no_marker,  # noqa: F401
                                 in_tmp, system_payload)

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
joblib = pytest.importorskip("joblib")


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))


def _same_state(a, b):
    assert list(a) == list(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y), X


# ------------------------------------------------------------------ PyTorch

def test_torch_state_dict_and_whole_module(in_tmp, installed):
    net = _net()
    torch.save(net.state_dict(), "sd.pt")
    torch.save(net, "whole.pt")
    native_sd = pg_torch.original_load()("sd.pt", weights_only=True)
    native_whole = pg_torch.original_load()("whole.pt", weights_only=False)
    _same_state(safe_load("sd.pt"), native_sd)
    _same_state(safe_load("whole.pt").state_dict(), native_whole.state_dict())
    _same_state(torch.load("sd.pt"), native_sd)  # weights_only default: pre-scanned
    _same_state(torch.load("sd.pt", weights_only=False), native_sd)
    _same_state(torch.load("whole.pt", weights_only=False).state_dict(),
                native_whole.state_dict())
    with open("whole.pt", "rb") as f:
        _same_state(torch.load(f, weights_only=False).state_dict(), native_whole.state_dict())
    buf = io.BytesIO(open("sd.pt", "rb").read())
    _same_state(torch.load(buf, weights_only=False), native_sd)
    # the legacy (non-zip) format: several pickles and raw storages in one stream
    torch.save(net.state_dict(), "legacy.pt", _use_new_zipfile_serialization=False)
    _same_state(torch.load("legacy.pt", weights_only=False), native_sd)
    _same_state(safe_load("legacy.pt"), native_sd)


@pytest.mark.parametrize("payload", [SystemPayload, OpenPayload])
def test_torch_attacks(in_tmp, installed, payload):
    name = f"torch-{payload.__name__}"
    torch.save({"weights": torch.zeros(2), "evil": payload(name)}, "evil.pt")
    torch.save({"evil": payload(name)}, "evil_legacy.pt", _use_new_zipfile_serialization=False)
    for f in ("evil.pt", "evil_legacy.pt"):
        for call in (lambda: torch.load(f, weights_only=False),
                     lambda: torch.load(open(f, "rb"), weights_only=False),
                     lambda: torch.load(f),  # weights_only=True: pre-scan or torch refuses
                     lambda: safe_load(f),
                     lambda: pg_torch.load(f, weights_only=False)):
            with pytest.raises(pickle.UnpicklingError):
                call()
        with pytest.raises(PickleSecurityError):
            torch.load(f, weights_only=False)
        assert_no_marker(name)


def test_torch_data_pkl_is_scanned_once_from_the_bytes_torch_reads(in_tmp, installed):
    """Under install(), torch.load(weights_only=False) pre-scans the archive without its
    data.pkl, which the restricted unpickler scans as torch reads it: an attack in data.pkl
    is still refused before it runs, and the error names the file."""
    from pickleguard import _native
    net = _net()
    torch.save(net, "whole.pt")
    policy = _native.Policy("ml")
    data = open("whole.pt", "rb").read()
    full = _native.scan_bytes(data, policy)
    pre = _native.scan_bytes(data, policy, torch_load=True)
    assert full["format"] == pre["format"] == "pytorch_zip"
    names = {(g["module"], g["name"]) for g in full["globals"]}
    assert ("torch._utils", "_rebuild_tensor_v2") in names and pre["globals"] == []
    _same_state(torch.load("whole.pt", weights_only=False).state_dict(), net.state_dict())

    torch.save({"weights": torch.zeros(2), "evil": SystemPayload("once")}, "evil.pt")
    assert _native.scan_bytes(open("evil.pt", "rb").read(), policy, torch_load=True)["is_safe"]
    for call in (lambda: torch.load("evil.pt", weights_only=False), lambda: safe_load("evil.pt")):
        with pytest.raises(PickleSecurityError) as e:
            call()
        assert "evil.pt: data.pkl" in str(e.value), str(e.value)
    # torch's own weights_only loader reads data.pkl with no scan of ours: it gets the full
    # pre-scan (an archive torch would accept is refused by the pre-scan's verdict).
    with pytest.raises(PickleSecurityError) as e:
        torch.load("evil.pt", weights_only=True)
    assert "data.pkl" in str(e.value)
    assert_no_marker("once")


def test_entry_points_by_module_path_direct_classes_and_memory_maps(in_tmp, installed):
    """The ways in that docs/security.md listed without an attack test: the same functions
    under their module paths, dill's Unpickler class used directly, and the memory-mapped
    loads of torch and numpy."""
    import torch.serialization as ser
    import pandas.io.pickle as pio
    from test_python_support import system_payload
    torch.save({"weights": torch.zeros(2), "evil": SystemPayload("gap")}, "evil.pt")
    np.save("evil.npy", np.array([SystemPayload("gap"), 1], dtype=object), allow_pickle=True)
    data = system_payload("gap")
    with open("evil.pkl", "wb") as f:
        f.write(data)
    calls = {
        "torch.serialization.load": lambda: ser.load("evil.pt", weights_only=False),
        "torch.load(mmap=True)": lambda: torch.load("evil.pt", weights_only=False, mmap=True),
        "pandas.io.pickle.read_pickle": lambda: pio.read_pickle("evil.pkl"),
        "numpy.load(.npy, mmap_mode)": lambda: np.load("evil.npy", mmap_mode="r",
                                                       allow_pickle=True),
        "numpy.load(pickle, mmap_mode)": lambda: np.load("evil.pkl", mmap_mode="r",
                                                         allow_pickle=True),
    }
    dill = pytest.importorskip("dill")
    import dill._dill as dd
    calls["dill.Unpickler"] = lambda: dill.Unpickler(io.BytesIO(data)).load()
    calls["dill._dill.load"] = lambda: dd.load(io.BytesIO(data))
    for name, call in calls.items():
        with pytest.raises(PickleSecurityError):
            call()
        assert_no_marker("gap")


def test_torchscript_archives_scan_safe_and_load(in_tmp, installed):
    """A real TorchScript archive (torch.jit.save): its records are read by torch.jit's C++
    unpickler, whose `__torch__.*` classes come from the archive's own TorchScript code:
    safe in ml mode, and it loads through safe_load and the patched torch.load."""
    import warnings
    net = torch.jit.script(_net())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.save is deprecated in favour of export
        torch.jit.save(net, "ts.pt")
    a = pickleguard.scan_file("ts.pt")
    assert a.format == "torchscript" and a.is_safe, a
    x = torch.ones(1, 8)
    for loaded in (safe_load("ts.pt"), torch.load("ts.pt", weights_only=False)):
        assert torch.equal(loaded(x), net(x))
    # strict mode still refuses every import, TorchScript or not.
    assert not pickleguard.PickleGuard("strict").scan_file("ts.pt").is_safe


def test_torch_integration_patch_unpatch(in_tmp):
    torch.save({"evil": SystemPayload("tpatch")}, "evil.pt")
    orig = torch.load
    pg_torch.patch()
    try:
        assert torch.load is not orig
        with pytest.raises(PickleSecurityError):
            torch.load("evil.pt", weights_only=False)
    finally:
        pg_torch.unpatch()
    assert torch.load is orig
    assert_no_marker("tpatch")


# ------------------------------------------------------------------ joblib / scikit-learn

@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("lzma", 3), ("bz2", 3)])
def test_joblib_pipeline(in_tmp, installed, compress):
    pipe, X = _pipeline()
    joblib.dump(pipe, "m.joblib", compress=compress)
    expect = pipe.predict_proba(X)
    for loaded in (joblib.load("m.joblib"), safe_load("m.joblib"), pg_joblib.load("m.joblib"),
                   joblib.load(open("m.joblib", "rb"))):
        np.testing.assert_array_equal(loaded.predict_proba(X), expect)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads /proc/self/maps")
def test_joblib_loads_an_uncompressed_dump_from_the_scans_map(in_tmp, installed, monkeypatch):
    """joblib's unpickler reads an uncompressed dump from the map the scan read (the same
    bytes; no second read of the file), and the map is gone once the load returns."""
    import mmap

    from joblib.numpy_pickle import NumpyUnpickler
    joblib.dump({"a": np.arange(200_000)}, "m.joblib")
    path = os.path.abspath("m.joblib")
    handles = []
    init = NumpyUnpickler.__init__

    def recording(self, filename, file_handle, *args, **kwargs):
        handles.append(type(file_handle))
        init(self, filename, file_handle, *args, **kwargs)

    monkeypatch.setattr(NumpyUnpickler, "__init__", recording)
    with open("m.joblib", "rb") as f:
        for loaded in (joblib.load("m.joblib"), joblib.load(f), safe_load("m.joblib"),
                       pg_joblib.load("m.joblib")):
            np.testing.assert_array_equal(loaded["a"], np.arange(200_000))
    assert handles == [mmap.mmap] * 4
    with open("/proc/self/maps") as maps:
        assert not any(line.rstrip("\n").endswith(" " + path) for line in maps)
    # With mmap_mode, joblib maps the arrays from the file itself, as it does natively.
    handles.clear()
    loaded = joblib.load("m.joblib", mmap_mode="r")
    assert isinstance(loaded["a"], np.memmap) and handles and handles[0] is not mmap.mmap
    np.testing.assert_array_equal(loaded["a"], np.arange(200_000))
    del loaded


def _file_kinds(path: str) -> dict:
    import tempfile

    def spooled():
        f = tempfile.SpooledTemporaryFile(max_size=1 << 30)
        with open(path, "rb") as src:
            f.write(src.read())
        f.seek(0)
        return f
    return {"file": lambda: open(path, "rb"),
            "bytesio": lambda: io.BytesIO(open(path, "rb").read()),
            "spooled": spooled}


@pytest.mark.parametrize("kind", ["file", "bytesio", "spooled"])
def test_safe_load_of_a_file_object_of_a_joblib_dump(in_tmp, kind):
    """``safe_load(file)`` of an uncompressed joblib dump loads it as ``joblib.load(file)``
    does (its arrays' bytes are not opcodes), from the file's position, leaves the file where
    joblib leaves it, and still refuses a payload in a dump."""
    obj = {"a": np.arange(5000), "objs": np.array([{"k": 1}, "s", None], dtype=object),
           "s": "text"}
    # joblib.load itself reads a file without `peek` (a BytesIO) from its start: the dump
    # starts after a header only in a real file.
    start = 7 if kind == "file" else 0
    with open("d.joblib", "wb") as f:
        f.write(b"header!"[:start])
        joblib.dump(obj, f)
        joblib.dump([1, 2], f)
    opener = _file_kinds("d.joblib")[kind]
    with opener() as f:
        f.seek(start)
        joblib.load(f)
        native_end = f.tell()
    with opener() as f:
        f.seek(start)
        loaded = safe_load(f)
        assert f.tell() == native_end
        assert safe_load(f) == [1, 2]
    np.testing.assert_array_equal(loaded["a"], obj["a"])
    assert list(loaded["objs"]) == list(obj["objs"]) and loaded["s"] == "text"
    joblib.dump({"arr": np.arange(10), "evil": SystemPayload("joblib-fileobj")}, "e.joblib")
    with _file_kinds("e.joblib")[kind]() as f:
        with pytest.raises(PickleSecurityError):
            safe_load(f)
    assert_no_marker("joblib-fileobj")


def test_joblib_load_of_a_bytesio_judges_the_bytes_joblib_reads(in_tmp, installed):
    """joblib.load rewinds a file object without ``peek`` (a BytesIO) to its start: under
    ``install()`` the dump at its start is the one scanned, and loaded, as natively, not the
    one at the BytesIO's position."""
    import collections
    first = io.BytesIO()
    joblib.dump({"first": collections.OrderedDict(a=np.arange(3))}, first)
    second = io.BytesIO()
    joblib.dump({"second": np.arange(4)}, second)
    buf = first.getvalue() + second.getvalue()
    native = joblib.load._pg_original
    src = io.BytesIO(buf)
    src.seek(len(first.getvalue()))
    expect = native(src)
    src.seek(len(first.getvalue()))
    got = joblib.load(src)  # an OrderedDict the scan of the second dump never saw
    assert list(got) == list(expect) == ["first"]
    np.testing.assert_array_equal(got["first"]["a"], np.arange(3))
    evil = io.BytesIO()
    joblib.dump({"evil": SystemPayload("joblib-rewound")}, evil)
    src = io.BytesIO(evil.getvalue() + second.getvalue())
    src.seek(len(evil.getvalue()))
    with pytest.raises(PickleSecurityError):
        joblib.load(src)
    assert_no_marker("joblib-rewound")


def test_joblib_file_object_is_left_where_joblib_leaves_it(in_tmp, installed):
    """Loaded from the scan's map, a file object of two dumps is still read one dump per
    ``joblib.load``, from its own position, and left where the native load leaves it."""
    first = {"a": np.arange(1000), "s": "first"}
    second = [np.ones((3, 4)), "second"]
    with open("two.joblib", "wb") as f:
        f.write(b"some header bytes")
        joblib.dump(first, f)
        joblib.dump(second, f)
    native = joblib.load._pg_original
    with open("two.joblib", "rb") as f:
        f.seek(17)
        native(f)
        after_first = f.tell()
        native(f)
        after_second = f.tell()
    with open("two.joblib", "rb") as f:
        f.seek(17)
        a = joblib.load(f)
        assert f.tell() == after_first
        b = joblib.load(f)
        assert f.tell() == after_second
    np.testing.assert_array_equal(a["a"], first["a"])
    assert a["s"] == "first" and b[1] == "second"
    np.testing.assert_array_equal(b[0], second[0])


@pytest.mark.parametrize("compress", [0, 3])
def test_joblib_attacks(in_tmp, compress):
    name = f"joblib{compress}"
    joblib.dump({"arr": np.arange(10), "evil": SystemPayload(name)}, "e.joblib",
                compress=compress)
    with pytest.raises(PickleSecurityError):
        safe_load("e.joblib")
    with pytest.raises(PickleSecurityError):
        pg_joblib.load("e.joblib")
    pg_joblib.patch()
    try:
        with pytest.raises(PickleSecurityError):
            joblib.load("e.joblib")
        # the class itself is restricted: joblib's internal path, no pre-scan
        from joblib.numpy_pickle import _unpickle
        with open("e.joblib", "rb") as f:
            if compress == 0:
                with pytest.raises(PickleSecurityError):
                    _unpickle(f, True)
    finally:
        pg_joblib.unpatch()
    assert_no_marker(name)


def test_joblib_object_arrays_nested_pickles(in_tmp, installed):
    arr = np.array([{"k": 1}, "text", 3.5], dtype=object)
    joblib.dump(arr, "o.joblib")
    assert list(joblib.load("o.joblib")) == list(arr)
    joblib.dump(np.array([SystemPayload("jobj"), 1], dtype=object), "eo.joblib")
    with pytest.raises(PickleSecurityError):
        joblib.load("eo.joblib")
    assert_no_marker("jobj")


# ------------------------------------------------------------------ numpy

def test_numpy_object_arrays(in_tmp, installed):
    arr = np.array([{"a": 1}, [1, 2], "x", None], dtype=object)
    np.save("o.npy", arr, allow_pickle=True)
    np.savez("z.npz", plain=np.arange(4), obj=arr)
    for loaded in (np.load("o.npy", allow_pickle=True), safe_load("o.npy")):
        assert list(loaded) == list(arr)
    z = np.load("z.npz", allow_pickle=True)
    assert list(z["obj"]) == list(arr) and list(z["plain"]) == [0, 1, 2, 3]
    zs = safe_load("z.npz")
    assert list(zs["obj"]) == list(arr)
    with open("p.pkl", "wb") as f:
        pickle.dump({"plain": "pickle"}, f)
    assert np.load("p.pkl", allow_pickle=True) == {"plain": "pickle"}


def test_numpy_attacks(in_tmp, installed):
    np.save("e.npy", np.array([SystemPayload("npy"), 1], dtype=object), allow_pickle=True)
    np.savez("e.npz", ok=np.arange(3), bad=np.array([OpenPayload("npz")], dtype=object))
    with open("e.pkl", "wb") as f:
        pickle.dump(SystemPayload("nppkl"), f)
    for call in (lambda: np.load("e.npy", allow_pickle=True), lambda: safe_load("e.npy"),
                 lambda: np.load("e.npz", allow_pickle=True),  # the whole file is judged
                 lambda: safe_load("e.npz")["bad"],
                 lambda: np.load("e.pkl", allow_pickle=True),
                 lambda: np.load(open("e.npy", "rb"), allow_pickle=True)):
        with pytest.raises(PickleSecurityError):
            call()
    assert list(np.load("e.npz", allow_pickle=False)["ok"]) == [0, 1, 2]  # no pickle: untouched
    for n in ("npy", "npz", "nppkl"):
        assert_no_marker(n)


# ------------------------------------------------------------------ pandas

def test_pandas_dataframe(in_tmp, installed):
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"], "c": [0.5, 1.5, None],
                       "t": pd.date_range("2024-01-01", periods=3)})
    df.to_pickle("df.pkl")
    df.to_pickle("df.pkl.gz")
    for loaded in (pd.read_pickle("df.pkl"), pd.read_pickle("df.pkl.gz"), safe_load("df.pkl"),
                   safe_load("df.pkl.gz")):
        pd.testing.assert_frame_equal(loaded, df)


def test_pandas_attacks(in_tmp, installed):
    pd.to_pickle(SystemPayload("pd"), "e.pkl")
    with gzip.open("e.pkl.gz", "wb") as f:
        pickle.dump(OpenPayload("pdgz"), f)
    for call in (lambda: pd.read_pickle("e.pkl"), lambda: pd.read_pickle("e.pkl.gz"),
                 lambda: safe_load("e.pkl.gz")):
        with pytest.raises(PickleSecurityError):
            call()
    assert_no_marker("pd")
    assert_no_marker("pdgz")


# ------------------------------------------------------------------ gradient boosting, dill

def test_xgboost_and_lightgbm(in_tmp, installed):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 5))
    y = (X[:, 0] > 0).astype(int)
    models = []
    try:
        import xgboost
        models.append(xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y))
    except ImportError:  # pragma: no cover
        pass
    try:
        import lightgbm
        models.append(lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y))
    except ImportError:  # pragma: no cover
        pass
    if not models:
        pytest.skip("neither xgboost nor lightgbm")
    for i, m in enumerate(models):
        joblib.dump(m, f"m{i}.joblib")
        with open(f"m{i}.pkl", "wb") as f:
            pickle.dump(m, f)
        expect = m.predict_proba(X)
        for loaded in (joblib.load(f"m{i}.joblib"), safe_load(f"m{i}.joblib"),
                       safe_load(f"m{i}.pkl"), pickle.load(open(f"m{i}.pkl", "rb"))):
            np.testing.assert_allclose(loaded.predict_proba(X), expect)


def test_dill(in_tmp, installed):
    dill = pytest.importorskip("dill")
    assert dill.loads(dill.dumps({"a": [1, 2]})) == {"a": [1, 2]}
    with pytest.raises(PickleSecurityError):
        dill.loads(dill.dumps(SystemPayload("dill")))
    with pytest.raises(PickleSecurityError):  # a function rebuilt from code is code execution
        dill.loads(dill.dumps(lambda: os.system("touch pickleguard-marker-dill2")))
    with open("d.pkl", "wb") as f:
        dill.dump(OpenPayload("dill3"), f)
    with pytest.raises(PickleSecurityError):
        dill.load(open("d.pkl", "rb"))
    for n in ("dill", "dill2", "dill3"):
        assert_no_marker(n)


def test_dill_reads_an_mmap_as_dill_does(in_tmp, installed):
    """``dill.load(mm)`` reads an ``mmap`` as a file, from its position; ``dill.loads(mm)`` as
    data, from its start (dill wraps it in a ``BytesIO``)."""
    import mmap
    dill = pytest.importorskip("dill")
    with open("two.pkl", "wb") as f:
        dill.dump({"a": 1}, f)
        middle = f.tell()
        dill.dump(("b", 2), f)
    with open("two.pkl", "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        mm.seek(middle)
        assert dill.loads(mm) == {"a": 1} and mm.tell() == middle
        assert dill.load(mm) == ("b", 2) and mm.tell() == len(mm)
    finally:
        mm.close()


# ------------------------------------------------------------------ literal parses fail closed
#
# CPython 3.11/3.12 keep the AST converter's recursion depth in state every thread shares
# (gh-106905): ast.literal_eval can raise a spurious SystemError under threads. numpy's .npy
# header reader and the findings' argument rendering both use it; neither may turn a refusal
# into an interpreter error, or let a load through.

def _npy_files():
    import numpy as np
    np.save("evil.npy", np.array([SystemPayload("npy-lit"), 1], dtype=object),
            allow_pickle=True)
    np.save("good.npy", np.array([{"a": 1}, 2], dtype=object), allow_pickle=True)


def test_literal_eval_system_errors_fail_closed(in_tmp, monkeypatch):
    import ast
    _npy_files()

    def broken(text):
        raise SystemError("AST constructor recursion depth mismatch (before=2, after=3)")

    monkeypatch.setattr(ast, "literal_eval", broken)
    with pytest.raises(PickleSecurityError) as ei:
        pickleguard.safe_loads(system_payload("lit"))
    args = [f.args for f in ei.value.findings if f.args]
    assert args and all(isinstance(a, str) for lst in args for a in lst)  # raw renderings
    for path in ("evil.npy", "good.npy"):
        with pytest.raises(PickleSecurityError):
            safe_load(path)  # the header cannot be read: nothing after it is trusted
    assert_no_marker("lit")
    assert_no_marker("npy-lit")


def test_one_spurious_system_error_is_retried(in_tmp, monkeypatch):
    import ast
    _npy_files()
    real = ast.literal_eval
    calls = []

    def flaky(text):
        calls.append(text)
        if len(calls) % 2:
            raise SystemError("AST constructor recursion depth mismatch")
        return real(text)

    monkeypatch.setattr(ast, "literal_eval", flaky)
    assert safe_load("good.npy")[0] == {"a": 1}
    with pytest.raises(PickleSecurityError) as ei:
        safe_load("evil.npy")
    with pytest.raises(PickleSecurityError) as ei:
        pickleguard.safe_loads(system_payload("lit2"))
    assert any(isinstance(a, str) and "touch" in a
               for f in ei.value.findings for a in (f.args or ()))
    assert_no_marker("npy-lit")
    assert_no_marker("lit2")


def test_refusals_under_threads_are_only_security_errors(in_tmp):
    import threading
    _npy_files()
    payload = system_payload("threads")
    errors = []

    def work():
        for i in range(40):
            for call in (lambda: safe_load("evil.npy"), lambda: pickleguard.safe_loads(payload)):
                try:
                    call()
                except PickleSecurityError:
                    continue
                except BaseException as e:  # pragma: no cover - what the test is for
                    errors.append(repr(e))
                else:  # pragma: no cover
                    errors.append("not refused")
            assert safe_load("good.npy")[1] == 2

    ts = [threading.Thread(target=work) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]
    assert_no_marker("threads")
    assert_no_marker("npy-lit")
