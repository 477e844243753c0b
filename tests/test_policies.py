"""The shipped policy data is generated from its sources and stays in sync with them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _check(script: str) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / script), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ml_corpus_profile_matches_benign_globals():
    _check("gen_profile.py")


def test_aliases_match_cpython_compat_pickle():
    _check("gen_aliases.py")


def test_policy_show_round_trips(pg_bin, tmp_path):
    shown = subprocess.run([str(pg_bin), "policy", "show", "ml", "--no-config"], capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert 'module = "torch._utils"' in shown.stdout
    pol = tmp_path / "ml.toml"
    pol.write_text(shown.stdout)
    sample = tmp_path / "od.pkl"
    import collections
    import pickle
    sample.write_bytes(pickle.dumps(collections.OrderedDict(a=1), protocol=2))
    proc = subprocess.run([str(pg_bin), "scan", str(sample), "--mode", "allowlist", "--policy", str(pol),
                           "--no-config"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
