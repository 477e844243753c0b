"""Record what a `pickleguard` binary prints for a set of files, to show a refactor changed
nothing: `scan --format json`, `scan --format sarif` (one run per directory) and `explain`
(one run per file), each with its exit code.

    python tools/snapshot_outputs.py record BINARY OUT DIR...
    python tools/snapshot_outputs.py compare OUT_BEFORE OUT_AFTER

`compare` lists every output that differs (exit status 1 if any does).
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def _run(args: list[str]) -> dict:
    p = subprocess.run(args, capture_output=True, timeout=600)
    return {"rc": p.returncode, "stdout": p.stdout.decode("utf-8", "surrogateescape")}


def record(binary: str, out: Path, dirs: list[Path]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(str(f) for d in dirs for f in d.rglob("*") if f.is_file())
    scans = {}
    for d in dirs:
        for fmt in ("json", "sarif"):
            scans[f"{fmt}:{d}"] = _run([binary, "scan", str(d), "--format", fmt, "--quiet",
                                        "--no-config", "--jobs", "2"])
    (out / "scan.json").write_text(json.dumps(scans, sort_keys=True))

    def explain(f: str) -> tuple[str, dict]:
        return f, _run([binary, "explain", f, "--color", "never", "--no-config"])

    with ThreadPoolExecutor(2) as pool:
        explains = dict(pool.map(explain, files))
    (out / "explain.json").write_text(json.dumps(explains, sort_keys=True))
    print(f"{len(files)} files, {len(scans)} scans")


def compare(a: Path, b: Path) -> int:
    bad = 0
    for name in ("scan.json", "explain.json"):
        x, y = json.loads((a / name).read_text()), json.loads((b / name).read_text())
        for key in sorted(set(x) | set(y)):
            if x.get(key) != y.get(key):
                bad += 1
                print(f"DIFF {name} {key}")
        digest = hashlib.sha256((a / name).read_bytes()).hexdigest()[:12]
        print(f"{name}: {len(x)} outputs compared (before {digest})")
    return 1 if bad else 0


def main() -> int:
    if sys.argv[1] == "record":
        record(sys.argv[2], Path(sys.argv[3]), [Path(d) for d in sys.argv[4:]])
        return 0
    return compare(Path(sys.argv[2]), Path(sys.argv[3]))


if __name__ == "__main__":
    sys.exit(main())
