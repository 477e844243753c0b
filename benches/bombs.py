"""Peak memory and time of every decompression bomb (tests/corpus/gen_bombs.py) through the
command line, ``scan_file`` and ``safe_load``, with the default limits.

    python benches/bombs.py [--gib 8] [--bin target/release/pickleguard] [--only NAME ...]

Each run is its own process; peak RSS is that process's ``ru_maxrss``. Figures go to
docs/benchmarks.md ("Decompression bombs").
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "corpus"))
import gen_bombs  # noqa: E402

PY_SCAN = """
import resource, sys, time, pickleguard
t = time.perf_counter()
a = pickleguard.scan_file(sys.argv[1])
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      a.stopped_by or ("safe" if a.is_safe else "unsafe"), sep="|")
"""

PY_LOAD = """
import resource, sys, time, pickleguard
t = time.perf_counter()
try:
    pickleguard.safe_load(sys.argv[1])
    v = "loaded"
except pickleguard.PickleSecurityError as e:
    v = e.analysis.stopped_by
except Exception as e:
    v = type(e).__name__
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, v, sep="|")
"""


def run_cli(binary, path):
    # /usr/bin/time gives the child's own peak (RUSAGE_CHILDREN keeps the largest so far).
    p = subprocess.run(["/usr/bin/time", "-f", "%e %M", str(binary), "scan", str(path),
                        "--format", "json", "--no-config"], capture_output=True, timeout=600)
    secs, kb = p.stderr.decode().strip().splitlines()[-1].split()
    try:
        rep = json.loads(p.stdout)["files"][0]
        verdict = rep["stopped_by"] or ("safe" if rep["is_safe"] else "unsafe")
    except (ValueError, KeyError, IndexError):
        verdict = f"exit {p.returncode}"
    return float(secs), int(kb), verdict


def run_py(code, path):
    p = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                       timeout=600)
    if p.returncode:
        return 0.0, 0, f"exit {p.returncode}: {p.stderr.decode()[-120:]}"
    secs, kb, verdict = p.stdout.decode().strip().split("|")
    return float(secs), int(kb), verdict


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=8.0)
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "pickleguard"))
    ap.add_argument("--only", nargs="*")
    a = ap.parse_args()
    names = a.only or sorted(gen_bombs.BOMBS)
    print(f"| bomb | file | CLI s | CLI MB | scan_file s | scan_file MB | safe_load s "
          f"| safe_load MB | verdict |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as d:
        for name in names:
            path = Path(d) / f"{name}.bin"
            path.write_bytes(gen_bombs.build(name, a.gib))
            size = path.stat().st_size
            cs, ck, cv = run_cli(a.bin, path)
            ss, sk, sv = run_py(PY_SCAN, path)
            ls, lk, lv = run_py(PY_LOAD, path)
            print(f"| {name} | {size / 1e6:.1f} MB | {cs:.2f} | {ck / 1024:.0f} | {ss:.2f} "
                  f"| {sk / 1024:.0f} | {ls:.2f} | {lk / 1024:.0f} | {cv}; scan_file: {sv}; "
                  f"safe_load: {lv} |",
                  flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
