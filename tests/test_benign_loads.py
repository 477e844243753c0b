"""Every file of the benign corpus loads through ``safe_load`` and through ``install()`` + its
own loader, equal to what the native loader returns (tests/corpus/compare_guarded.py, in a
fresh interpreter so that install() meets the libraries as a program would)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"


def test_benign_corpus_loads_guarded_equal_to_native(benign, tmp_path):
    out = tmp_path / "problems.json"
    proc = subprocess.run([sys.executable, str(CORPUS / "compare_guarded.py"), str(benign), "--json", str(out)],
                          capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    problems = json.loads(out.read_text()) if out.exists() else None
    assert problems == [], (problems or [])[:20] if problems is not None else proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stdout[-2000:]
