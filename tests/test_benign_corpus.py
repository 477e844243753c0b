"""The benign corpus (tests/corpus/gen_benign.py): what numpy, torch, scikit-learn, scipy,
pandas, joblib, xgboost, lightgbm, transformers, statsmodels, networkx, sympy, dill,
cloudpickle and the standard library write in normal use. Every file loads with its own
loader, regenerates byte for byte, and is safe in `ml` mode; the one custom class is flagged
as unknown, not as dangerous. Detection quality over both corpora is `tools/eval.py`."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"


from conftest import EVAL


@pytest.fixture(scope="session")
def manifest(benign) -> list[dict]:
    return json.loads((benign / "manifest.json").read_text())


@pytest.fixture(scope="session")
def reports(benign, pg_bin) -> dict[str, dict]:
    return EVAL.scan_dir(str(pg_bin), benign)


def test_corpus_covers_the_libraries(manifest):
    libs = {e["library"] for e in manifest}
    for lib in ("numpy", "torch", "sklearn", "scipy", "pandas", "xgboost", "lightgbm",
                "transformers", "statsmodels", "networkx", "sympy", "stdlib"):
        assert lib in libs, lib
    containers = {e["container"] for e in manifest}
    for c in ("raw", "pytorch_zip", "pytorch_legacy", "joblib", "joblib_zlib", "joblib_lz4",
              "numpy_npy", "numpy_npz", "pandas_gzip", "pandas_zip"):
        assert c in containers, c
    assert len(manifest) > 1000


def test_every_file_loads_with_its_own_loader(benign):
    proc = subprocess.run([sys.executable, str(CORPUS / "verify_benign.py"), str(benign)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_regeneration_is_deterministic(manifest, tmp_path):
    again = EVAL.generate("benign", tmp_path / "again")
    changed = []
    for e in manifest:
        if e.get("deterministic", True) is False:
            continue
        digest = hashlib.sha256((again / e["file"]).read_bytes()).hexdigest()
        if digest != e["sha256"]:
            changed.append(e["file"])
    assert not changed, changed[:20]


def test_no_false_positive_in_ml_mode(manifest, reports):
    alarms = []
    for e in manifest:
        if e.get("custom"):
            continue
        r = reports[e["file"]]
        if not r["is_safe"]:
            alarms.append((e["file"], [(f["type"], f["description"][:120]) for f in r["findings"]][:3]))
    assert not alarms, alarms[:20]


def test_benign_files_are_read_to_the_end(manifest, reports):
    partial = [(e["file"], reports[e["file"]]["stopped_by"]) for e in manifest
               if e.get("has_pickle", True) and not reports[e["file"]]["complete"]]
    assert not partial, partial[:20]


def test_custom_class_is_unknown_not_dangerous(manifest, reports):
    custom = [e for e in manifest if e.get("custom")]
    assert custom
    for e in custom:
        r = reports[e["file"]]
        types = {f["type"] for f in r["findings"]}
        assert not r["is_safe"], e["file"]
        assert "UNKNOWN_IMPORT" in types, (e["file"], types)
        assert "DANGEROUS_IMPORT" not in types, (e["file"], types)
