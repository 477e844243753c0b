"""picklescan's public test files (../shared/peer-fixtures): each must get the verdict the
manifest gives. Scan only: several of these run real commands when loaded."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "peer-fixtures" / "picklescan"


def _manifest():
    path = FIXTURES / "manifest.json"
    if not path.exists():
        return []
    return json.loads(path.read_text())


MANIFEST = _manifest()


def test_fixtures_are_present():
    assert MANIFEST, f"peer fixtures missing at {FIXTURES}"


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_peer_fixture_verdict(scan, entry, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = scan(FIXTURES / entry["file"], "ml")
    got = "safe" if report["is_safe"] else "not safe"
    assert got == entry["expect"], (entry["why"], report["format"], report["findings"])
    if entry["expect"] == "not safe":
        assert report["findings"], "an unsafe verdict must name its findings"
    assert list(tmp_path.iterdir()) == [], "scanning must never run anything"
