"""Shared fixtures: the pickleguard binary and a JSON scan helper.

Tests drive the real `pickleguard` binary built by cargo (the README's test command builds it
first). Set PICKLEGUARD_BIN to test another build.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REPORT_SCHEMA = ROOT / "docs" / "report.schema.json"


@functools.lru_cache(maxsize=1)
def _report_validator():
    import jsonschema

    schema = json.loads(REPORT_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate_report(doc: dict) -> dict:
    """Check a `scan --format json` document against docs/report.schema.json."""
    errors = sorted(_report_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "report does not match docs/report.schema.json:\n" + "\n".join(
        f"  at {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:10])
    return doc


def validate_jsonl(text) -> dict:
    """Check `scan --format jsonl` output against the schema: each file line is a report's file
    entry (plus `"type": "file"`), the last line its summary (`"type": "summary"`). Returns the
    report these lines make."""
    lines = [json.loads(x) for x in (text.decode() if isinstance(text, bytes) else text)
             .splitlines() if x.strip()]
    assert lines and lines[-1].get("type") == "summary", lines[-1:]
    assert all(x.get("type") == "file" for x in lines[:-1]), lines
    doc = {k: v for k, v in lines[-1].items() if k != "type"}
    doc["files"] = [{k: v for k, v in x.items() if k != "type"} for x in lines[:-1]]
    return validate_report(doc)


def validate_json_output(args, proc) -> None:
    """Validate the stdout of a `pickleguard scan ... --format json` or `jsonl` run (any exit
    code that produced a report)."""
    args = [str(a) for a in args]
    if not args or args[0] != "scan" or not proc.stdout:
        return
    fmt = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--format", "-f")]
    fmt += [a.split("=", 1)[1] for a in args if a.startswith("--format=")]
    out = [a for i, a in enumerate(args[:-1]) if a in ("--output", "-o") and args[i + 1] != "-"]
    if fmt and fmt[-1] == "json" and not out:
        validate_report(json.loads(proc.stdout))
    elif fmt and fmt[-1] == "jsonl" and not out:
        validate_jsonl(proc.stdout)


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
    doc = validate_report(json.loads(proc.stdout))
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


@pytest.fixture
def installed():
    """pickleguard.install() for the test, uninstalled after it."""
    import pickleguard

    g = pickleguard.install()
    try:
        yield g
    finally:
        pickleguard.uninstall()
