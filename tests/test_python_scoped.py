"""Allows with an end: ``pickleguard.allowed(...)`` blocks (per thread and task),
``unregister_safe_class``, and torch's own allowlist (``add_safe_globals`` / ``safe_globals``)
honoured by a guarded ``torch.load``."""
from __future__ import annotations

import io
import pickle
import sys
import threading
import types

import pytest

import pickleguard
from pickleguard import PickleSecurityError

MOD = "pg_scoped_sample"


class _Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return type(other) is type(self) and vars(other) == vars(self)


@pytest.fixture(scope="module")
def point_cls():
    mod = types.ModuleType(MOD)
    cls = type("Point", (_Point,), {"__module__": MOD, "__qualname__": "Point"})
    mod.Point = cls
    sys.modules[MOD] = mod
    yield cls
    sys.modules.pop(MOD, None)


def test_allowed_block_lets_a_class_load_and_ends_with_the_block(point_cls):
    data = pickle.dumps(point_cls(1, 2), protocol=4)
    with pytest.raises(PickleSecurityError):
        pickleguard.safe_loads(data)
    with pickleguard.allowed(f"{MOD}:Point"):
        assert pickleguard.safe_loads(data) == point_cls(1, 2)
        assert pickleguard.analyze_pickle(data).is_safe
        with pickleguard.allowed((MOD, "Other")):  # nesting keeps the outer entries
            assert pickleguard.safe_loads(data) == point_cls(1, 2)
        assert pickleguard.safe_loads(data) == point_cls(1, 2)
    with pytest.raises(PickleSecurityError):
        pickleguard.safe_loads(data)
    assert not pickleguard.analyze_pickle(data).is_safe


def test_allowed_block_never_allows_a_dangerous_call(point_cls):
    evil = b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
    with pickleguard.allowed(f"{MOD}:Point"):
        assert not pickleguard.analyze_pickle(evil).is_safe
        with pytest.raises(PickleSecurityError):
            pickleguard.safe_loads(evil)


def test_allowed_block_is_local_to_its_thread(point_cls):
    data = pickle.dumps(point_cls(3, 4), protocol=2)
    inside, outcome = threading.Event(), {}
    done = threading.Event()

    def other():
        inside.wait(10)
        try:
            pickleguard.safe_loads(data)
            outcome["other"] = "loaded"
        except PickleSecurityError:
            outcome["other"] = "refused"
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with pickleguard.allowed(point_cls):
        inside.set()
        done.wait(30)
        assert pickleguard.safe_loads(data) == point_cls(3, 4)
    t.join(30)
    assert outcome["other"] == "refused"


def test_large_pickle_scanned_in_the_gate_thread_sees_the_block(point_cls):
    # Pickles of 1 MiB and more are scanned in a second thread while loading starts.
    big = [point_cls(i, f"{i:08d}" * 8) for i in range(20000)]
    data = pickle.dumps(big, protocol=4)
    assert len(data) >= 1 << 20
    with pickleguard.allowed(point_cls):
        assert pickleguard.safe_loads(data) == big
    with pytest.raises(PickleSecurityError):
        pickleguard.safe_loads(data)


def test_unregister_safe_class_undoes_register(point_cls):
    data = pickle.dumps(point_cls(5, 6), protocol=3)
    guard = pickleguard.PickleGuard("ml")
    pickleguard.register_safe_class(point_cls)
    try:
        assert guard.loads(data) == point_cls(5, 6)
        assert pickleguard.safe_loads(data) == point_cls(5, 6)
    finally:
        assert pickleguard.unregister_safe_class(point_cls) is True
    assert pickleguard.unregister_safe_class(point_cls) is False
    with pytest.raises(PickleSecurityError):
        guard.loads(data)
    with pytest.raises(PickleSecurityError):
        pickleguard.safe_loads(data)
    # What the guard was given itself stays after an unregister.
    own = pickleguard.PickleGuard("ml", allowed_modules=[f"{MOD}:Point"])
    pickleguard.register_safe_class(point_cls)
    pickleguard.unregister_safe_class(point_cls)
    assert own.loads(data) == point_cls(5, 6)


def test_torch_add_safe_globals_is_honoured_under_install(point_cls, tmp_path):
    torch = pytest.importorskip("torch")
    ser = torch.serialization
    if not hasattr(ser, "add_safe_globals"):
        pytest.skip("this torch has no add_safe_globals")
    path = tmp_path / "ckpt.pt"
    torch.save({"w": torch.zeros(2), "meta": point_cls(7, 8)}, path)
    pickleguard.install()
    try:
        with pytest.raises(PickleSecurityError):
            torch.load(path, weights_only=False)
        with ser.safe_globals([point_cls]):
            obj = torch.load(path, weights_only=False)
            assert obj["meta"] == point_cls(7, 8)
            obj = torch.load(path, weights_only=True)  # torch's own loader, same allowlist
            assert obj["meta"] == point_cls(7, 8)
        with pytest.raises(PickleSecurityError):
            torch.load(path, weights_only=False)
        ser.add_safe_globals([point_cls])
        try:
            assert torch.load(io.BytesIO(path.read_bytes()), weights_only=False)["meta"] == point_cls(7, 8)
        finally:
            ser.clear_safe_globals()
        with pytest.raises(PickleSecurityError):
            torch.load(path, weights_only=False)
    finally:
        pickleguard.uninstall()
