"""Helpers shared by the Python package's tests (tests/test_python_*.py): harmless attack
payloads that would leave a marker file in the working directory, and small benign
artifacts. Imported by the other test modules; its own tests check the payloads really
work (so a refusal in the other tests means something)."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

MARKER = "pickleguard-marker-{}"


class SystemPayload:
    """Loading runs ``os.system('touch pickleguard-marker-NAME')``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self):
        return (os.system, (f"touch {MARKER.format(self.name)}",))


class OpenPayload:
    """Loading runs ``open('pickleguard-marker-NAME', 'w')``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self):
        return (builtins.open, (MARKER.format(self.name), "w"))


def system_payload(name: str, protocol: int = 4) -> bytes:
    return pickle.dumps(SystemPayload(name), protocol=protocol)


def open_payload(name: str, protocol: int = 4) -> bytes:
    return pickle.dumps(OpenPayload(name), protocol=protocol)


def protocol0_payload(name: str) -> bytes:
    """Hand-written protocol 0: ``posix.system`` through GLOBAL / REDUCE."""
    return (b"cposix\nsystem\n(V" + f"touch {MARKER.format(name)}".encode() + b"\ntR.")


def marker(name: str) -> Path:
    return Path.cwd() / MARKER.format(name)


def assert_no_marker(name: str) -> None:
    assert not marker(name).exists(), f"payload {name} ran"


class NonSeekable(io.RawIOBase):
    """A stream that can only be read forward (a pipe, a socket file)."""

    def __init__(self, data: bytes) -> None:
        self._b = io.BytesIO(data)
        self.reads = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b) -> int:
        self.reads += 1
        data = self._b.read(len(b))
        b[:len(data)] = data
        return len(data)

    def remaining(self) -> bytes:
        return self._b.read()


def test_payloads_really_run(tmp_path, monkeypatch):
    """The samples are real: unguarded pickle leaves the marker (in a child process)."""
    monkeypatch.chdir(tmp_path)
    for i, data in enumerate([system_payload("s"), open_payload("o"), protocol0_payload("p0")]):
        (tmp_path / f"p{i}.pkl").write_bytes(data)
        subprocess.run([sys.executable, "-c",
                        f"import pickle; pickle.load(open('p{i}.pkl', 'rb'))"],
                       cwd=tmp_path, check=True)
    for name in ("s", "o", "p0"):
        assert marker(name).exists(), name


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path
