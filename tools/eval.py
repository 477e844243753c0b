"""Detection quality over the project's corpora: true-positive rate on the attack corpus,
false-positive rate on the benign corpus, and every miss and false alarm by name.

    python tools/eval.py                 # generate both corpora into a temporary directory
    python tools/eval.py --attacks DIR --benign DIR   # use corpora generated before
    make eval                            # the same as the first line

Scans in `ml` mode with the `pickleguard` binary (PICKLEGUARD_BIN, else target/release or
target/debug). Exit status 1 when anything is missed or falsely flagged.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def find_bin() -> str:
    env = os.environ.get("PICKLEGUARD_BIN")
    if env:
        return env
    built = [p for p in (ROOT / "target" / prof / "pickleguard" for prof in ("release", "debug")) if p.exists()]
    if built:
        return str(max(built, key=lambda p: p.stat().st_mtime))  # the freshest build
    subprocess.run(["cargo", "build", "-q", "-p", "pickleguard-cli"], cwd=ROOT, check=True)
    return str(ROOT / "target" / "debug" / "pickleguard")


def generate(kind: str, out: Path) -> Path:
    script = ROOT / "tests" / "corpus" / f"gen_{kind}.py"
    subprocess.run([sys.executable, str(script), "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return out


def scan_dir(binary: str, directory: Path, mode: str = "ml") -> dict[str, dict]:
    """Per-file reports of one parallel directory scan, keyed by path relative to it."""
    proc = subprocess.run([binary, "scan", str(directory), "--format", "json", "--mode", mode,
                           "--quiet", "--no-config"], capture_output=True, timeout=1800)
    if proc.returncode not in (0, 1):
        raise RuntimeError(proc.stderr.decode(errors="replace"))
    doc = json.loads(proc.stdout)
    out = {}
    for f in doc["files"]:
        out[str(Path(f["path"]).resolve().relative_to(directory.resolve()))] = f
    return out


def evaluate(binary: str, attacks: Path, benign: Path) -> dict:
    amani = json.loads((attacks / "manifest.json").read_text())
    bmani = [e for e in json.loads((benign / "manifest.json").read_text()) if not e.get("custom")]
    areps = scan_dir(binary, attacks)
    breps = scan_dir(binary, benign)
    misses, wrong_type, false_alarms = [], [], []
    for e in amani:
        r = areps[e["file"]]
        types = {f["type"] for f in r["findings"]}
        if r["is_safe"]:
            misses.append(e["file"])
        elif not types & set(e["expect_types"]):
            wrong_type.append((e["file"], sorted(types), e["expect_types"]))
    for e in bmani:
        r = breps[e["file"]]
        if not r["is_safe"]:
            worst = [f"{f['severity']} {f['type']}: {f['description'][:100]}" for f in r["findings"]
                     if f["severity"] not in ("SAFE", "LOW")][:3]
            false_alarms.append((e["file"], worst))
    return {
        "attacks": len(amani), "benign": len(bmani),
        "tpr": 1 - len(misses) / max(1, len(amani)),
        "fpr": len(false_alarms) / max(1, len(bmani)),
        "misses": misses, "wrong_type": wrong_type, "false_alarms": false_alarms,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attacks", type=Path)
    ap.add_argument("--benign", type=Path)
    args = ap.parse_args()
    binary = find_bin()
    with tempfile.TemporaryDirectory() as tmp:
        attacks = args.attacks or generate("attacks", Path(tmp) / "attacks")
        benign = args.benign or generate("benign", Path(tmp) / "benign")
        res = evaluate(binary, attacks, benign)
    print(f"attack samples : {res['attacks']}")
    print(f"benign files   : {res['benign']}")
    print(f"true-positive rate : {res['tpr']:.2%}")
    print(f"false-positive rate: {res['fpr']:.2%}")
    for f in res["misses"]:
        print(f"MISS        {f}")
    for f, got, want in res["wrong_type"]:
        print(f"WRONG TYPE  {f}: got {got}, expected one of {want}")
    for f, why in res["false_alarms"]:
        print(f"FALSE ALARM {f}: {'; '.join(why)}")
    return 1 if res["misses"] or res["wrong_type"] or res["false_alarms"] else 0


if __name__ == "__main__":
    sys.exit(main())
