"""The README's first command: examples/make_examples.py writes a folder whose scan flags the
one attack and nothing else, and the attack is never run by the scan."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import validate_report

ROOT = Path(__file__).resolve().parent.parent


def test_readme_example_folder(pg_bin, tmp_path):
    demo = tmp_path / "demo"
    subprocess.run([sys.executable, str(ROOT / "examples" / "make_examples.py"), str(demo)],
                   check=True, capture_output=True, timeout=300)
    proc = subprocess.run([str(pg_bin), "scan", str(demo), "--format", "json"],
                          capture_output=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    files = {Path(f["path"]).name: f for f in validate_report(json.loads(proc.stdout))["files"]}
    assert {"model.pkl", "history.pkl", "config.json", "payload.pkl"} <= set(files)
    unsafe = sorted(n for n, f in files.items() if not f["is_safe"])
    assert unsafe == ["payload.pkl"], unsafe
    assert files["config.json"]["format"] == "not_pickle"
    assert {f["type"] for f in files["payload.pkl"]["findings"]} >= {"DANGEROUS_IMPORT", "REDUCE_CALL"}
    assert not list(tmp_path.rglob("pickleguard-marker-*"))
