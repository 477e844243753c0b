"""Layer 4, the restricted unpickler, on its own: it asks the Rust policy (one source of
truth with the scan), refuses persistent ids and forbidden globals, and stops a payload the
static scan was made to miss (a parser differential)."""

from __future__ import annotations

import collections
import copyreg
import io
import pickle

import pytest

import pickleguard
from pickleguard import PickleGuard, PickleSecurityError, RestrictedUnpickler, _native
from test_python_support import (assert_no_marker, in_tmp, open_payload,  # noqa: F401
                                 protocol0_payload, system_payload)


def test_find_class_asks_the_rust_policy():
    g = PickleGuard("ml")
    u = g.unpickler(io.BytesIO(b"."))
    assert u.find_class("collections", "OrderedDict") is collections.OrderedDict
    for mod, name in [("posix", "system"), ("os", "system"), ("builtins", "eval"),
                      ("__builtin__", "exec"), ("subprocess", "Popen"),
                      ("not_a_module_pg", "thing")]:
        with pytest.raises(PickleSecurityError) as ei:
            u.find_class(mod, name)
        assert ei.value.analysis.stage == "load"
        assert g.policy.judge(mod, name).refused
    # Same object the scan uses: a change shows in both at once.
    g.allow("not_a_module_pg", "thing")
    assert g.policy.judge("not_a_module_pg", "thing").refused is False


def test_fix_imports_names_are_judged_as_loaded():
    g = PickleGuard("ml", fail_on="CRITICAL")
    # 'commands' is what fix_imports maps to subprocess: judged as subprocess.
    with pytest.raises(PickleSecurityError):
        g.unpickler(io.BytesIO(b".")).find_class("commands", "getoutput")


def test_differential_the_run_time_wall_alone_stops_the_payload(in_tmp, monkeypatch):
    """The static scan is told to see nothing (as if a parser differential hid the payload
    from it); the restricted unpickler still refuses the forbidden global."""
    clean = {"format": "raw_pickle", "is_safe": True, "risk_level": "SAFE", "complete": True,
             "stopped_by": None, "mode": "ml", "findings": [], "globals": []}
    monkeypatch.setattr(_native, "analyze_pickle", lambda data, policy: dict(clean))
    monkeypatch.setattr(_native, "scan_bytes", lambda data, policy: dict(clean))
    for name, data in [("d1", system_payload("d1")), ("d2", open_payload("d2", 2)),
                       ("d3", protocol0_payload("d3"))]:
        assert pickleguard.analyze_pickle(data).is_safe  # the blinded scan
        with pytest.raises(PickleSecurityError) as ei:
            pickleguard.safe_loads(data)
        assert ei.value.analysis.stage == "load"
        with pytest.raises(PickleSecurityError):
            RestrictedUnpickler(io.BytesIO(data), guard=PickleGuard("ml")).load()
        assert_no_marker(name)


def test_restricted_unpickler_scans_first_by_itself(in_tmp):
    with pytest.raises(PickleSecurityError) as ei:
        RestrictedUnpickler(io.BytesIO(system_payload("u1")), guard=PickleGuard("ml")).load()
    assert ei.value.analysis.stage == "scan"
    assert_no_marker("u1")
    u = PickleGuard("ml").Unpickler(io.BytesIO(pickle.dumps([1, 2]) + pickle.dumps("b")))
    assert u.load() == [1, 2] and u.load() == "b"
    assert isinstance(u, RestrictedUnpickler)


def test_unbound_restricted_unpickler_loads_like_pickle_when_nothing_is_installed():
    assert not pickleguard.is_installed()
    assert RestrictedUnpickler(io.BytesIO(pickle.dumps(collections.Counter("aab")))).load() \
        == collections.Counter("aab")


class _PersPickler(pickle.Pickler):
    def persistent_id(self, obj):
        return "ref:" + obj[1:] if isinstance(obj, str) and obj.startswith("@") else None


def _with_pids() -> bytes:
    b = io.BytesIO()
    _PersPickler(b, protocol=2).dump(["@a", "plain"])
    return b.getvalue()


def test_persistent_ids_are_refused_unless_supplied():
    data = _with_pids()
    g = PickleGuard("ml")
    # Refused as CPython refuses them (no persistent_load: nothing can run), not as a policy
    # violation: the scan accepts persistent ids in `ml` mode, and scan and load agree.
    with pytest.raises(pickle.UnpicklingError, match="no persistent_load") as err:
        g.unpickler(io.BytesIO(data)).load()
    assert not isinstance(err.value, PickleSecurityError)

    class WithPL(g.Unpickler):  # type: ignore[misc, name-defined]
        def persistent_load(self, pid):
            return ("loaded", pid)

    assert WithPL(io.BytesIO(data)).load() == [("loaded", "ref:a"), "plain"]
    u = g.unpickler(io.BytesIO(data))
    u.persistent_load = lambda pid: pid.upper()  # as torch does
    assert u.load() == ["REF:A", "plain"]


def test_extension_codes_are_judged_by_the_policy(in_tmp):
    copyreg.add_extension("posix", "system", 0x7FFF_FF01)
    try:
        data = b"\x80\x02\x84\x01\xff\xff\x7f(Vtouch pickleguard-marker-ext\ntR."
        a = pickleguard.analyze_pickle(data)
        assert not a.is_safe and any(f.type == "EXTENSION_CODE" for f in a.findings)
        with pytest.raises(PickleSecurityError):
            pickleguard.safe_loads(data)
        with pytest.raises(PickleSecurityError):
            PickleGuard("ml").Unpickler(io.BytesIO(data), _pg_prescanned=True).load()
        assert_no_marker("ext")
    finally:
        copyreg.remove_extension("posix", "system", 0x7FFF_FF01)


def test_subclass_overrides_still_go_through_the_policy():
    g = PickleGuard("ml")

    class Mapping(g.Unpickler):  # type: ignore[misc, name-defined]
        def find_class(self, module, name):
            if module == "renamed":
                module = "posix"
            return super().find_class(module, name)

    data = b"crenamed\nsystem\n(Vecho\ntR."
    with pytest.raises(PickleSecurityError):
        Mapping(io.BytesIO(data), _pg_prescanned=True).load()


def test_pure_python_unpickler_of_a_guard():
    g = PickleGuard("ml")
    assert g._load_pickle(pickle.dumps({"a": (1, 2)}), {}, pure=True) == {"a": (1, 2)}
    with pytest.raises(PickleSecurityError):
        g._load_pickle(system_payload("pure"), {}, pure=True)


def test_pickle_extent_matches_what_cpython_consumes():
    for obj in [1, "x" * 70000, list(range(1000)), {"a": b"\x00" * 100000}, (None, True)]:
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            data = pickle.dumps(obj, protocol=proto)
            f = io.BytesIO(data + b"TRAILING")
            pickle.load(f)
            assert _native.pickle_extent(data + b"TRAILING") == (f.tell(), 0), (obj, proto)
    pos, need = _native.pickle_extent(b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00K")
    assert need > 0 and pos == 2
    assert _native.pickle_extent(b"cos\nsys")[1] == -1
    assert _native.pickle_extent(b"\xff")[1] == -2


def test_large_pickles_scanned_while_loading_still_refuse_before_anything_runs(in_tmp):
    """Pickles over GATE_MIN_BYTES are scanned concurrently with building plain data; the
    first global (and the result) waits for the verdict."""
    from pickleguard._gate import GATE_MIN_BYTES
    from test_python_support import NonSeekable, SystemPayload
    filler = list(range(GATE_MIN_BYTES // 4))
    for where, obj in (("end", [filler, SystemPayload("gate-end")]),
                       ("start", [SystemPayload("gate-start"), filler])):
        data = pickle.dumps(obj, protocol=4)
        assert len(data) > GATE_MIN_BYTES
        (in_tmp / "big.pkl").write_bytes(data)
        for call in (lambda: pickleguard.safe_load(in_tmp / "big.pkl"),
                     lambda: pickleguard.safe_loads(data),
                     lambda: pickleguard.safe_load(NonSeekable(data)),
                     lambda: PickleGuard("ml").load(io.BytesIO(data))):
            with pytest.raises(PickleSecurityError) as ei:
                call()
            assert ei.value.analysis.stage == "scan"
        assert_no_marker(f"gate-{where}")
    # Plain data loads, and a refused scan of plain data is still a refusal.
    big = pickle.dumps({"x": filler, "s": "t" * 100}, protocol=4)
    assert pickleguard.safe_loads(big) == {"x": filler, "s": "t" * 100}
    with pytest.raises(PickleSecurityError):
        PickleGuard("strict").loads(pickle.dumps([filler, collections.OrderedDict()]))


def test_an_mmap_is_a_file_to_load_and_data_to_loads(in_tmp, installed):
    """``pickle.load(mm)`` and ``Unpickler(mm)`` read an ``mmap`` as a file, from its position,
    and leave it after the pickle, as CPython does (a loader's file handle: joblib's
    unpickler on the scan's map hands it to an object array's nested unpickler);
    ``pickle.loads(mm)`` reads it as data, from its start. Under ``install()`` as natively."""
    import mmap

    first, second = {"a": [1, 2, 3]}, ("second", 2.5, None)
    with open("two.pkl", "wb") as f:
        pickle.dump(first, f, protocol=2)
        pickle.dump(second, f, protocol=5)
    with open("two.pkl", "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        with open("two.pkl", "rb") as f:
            pickle.load(f)
            after_first = f.tell()
        for load in (pickle.load, pickle._load,
                     lambda m: pickle.Unpickler(m).load(),
                     lambda m: pickle._Unpickler(m).load()):
            mm.seek(0)
            assert load(mm) == first and mm.tell() == after_first
            assert load(mm) == second and mm.tell() == len(mm)
            with pytest.raises(EOFError):
                load(mm)
        mm.seek(after_first)
        # loads: one verdict for the whole buffer, from its start, whatever the position
        assert pickle.loads(mm) == first and mm.tell() == after_first
        assert pickle._loads(mm) == first
    finally:
        mm.close()  # nothing holds a view of it after the loads (no reference cycle)


def test_an_mmap_read_as_a_file_is_scanned_from_its_position(in_tmp, installed):
    """The pickle at an ``mmap``'s position is the one judged: a payload there is refused
    (and does not run), a benign pickle before it still loads."""
    import mmap

    with open("mixed.pkl", "wb") as f:
        pickle.dump([1, 2], f, protocol=4)
        f.write(system_payload("mmap_file"))
    with open("mixed.pkl", "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        assert pickle.load(mm) == [1, 2]
        with pytest.raises(PickleSecurityError):
            pickle.load(mm)
        assert_no_marker("mmap_file")
    finally:
        mm.close()
