"""The harmless attack corpus (tests/corpus/gen_attacks.py): every sample is a real attack
(its payload fires under its real loader), generation is deterministic, and pickleguard flags
every sample without ever running it.

Samples whose library is missing are skipped with the module's name as the reason.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
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
