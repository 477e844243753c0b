"""Shared fixtures: the pickleguard binary and a JSON scan helper.

Tests drive the real `pickleguard` binary built by cargo (the README's test command builds it
first). Set PICKLEGUARD_BIN to test another build.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _find_bin() -> Path:
    env = os.environ.get("PICKLEGUARD_BIN")
    if env:
        return Path(env)
    for profile in ("debug", "release"):
        cand = ROOT / "target" / profile / "pickleguard"
        if cand.exists():
            return cand
    subprocess.run(["cargo", "build", "-q", "-p", "pickleguard-cli"], cwd=ROOT, check=True)
    return ROOT / "target" / "debug" / "pickleguard"


@pytest.fixture(scope="session")
def pg_bin() -> Path:
    return _find_bin()


def run_scan(pg_bin: Path, path, mode: str = "ml", extra=()) -> dict:
    """Scan one path with --format json and return the per-file report."""
    proc = subprocess.run(
        [str(pg_bin), "scan", str(path), "--format", "json", "--mode", mode, *extra],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode in (0, 1), (proc.returncode, proc.stderr.decode(errors="replace"))
    doc = json.loads(proc.stdout)
    assert len(doc["files"]) == 1, doc
    report = doc["files"][0]
    # Exit code and verdict must agree.
    assert proc.returncode == (0 if report["is_safe"] else 1), (proc.returncode, report)
    return report


@pytest.fixture(scope="session")
def scan(pg_bin):
    def _scan(path, mode="ml", extra=()):
        return run_scan(pg_bin, path, mode, extra)

    return _scan


def _load_eval():
    spec = importlib.util.spec_from_file_location("pg_eval", ROOT / "tools" / "eval.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


EVAL = _load_eval()


@pytest.fixture(scope="session")
def benign(tmp_path_factory) -> Path:
    """The benign corpus (tests/corpus/gen_benign.py), generated once per session."""
    return EVAL.generate("benign", tmp_path_factory.mktemp("benign") / "corpus")
