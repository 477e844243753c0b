#!/usr/bin/env python3
"""Scanning large model containers (docs/benchmarks.md, "Containers").

    python benches/scan_torch_checkpoint.py [--bin target/release/pickleguard]
                                            [--data target/bench-containers] [--size-mb 256]
                                            [--runs 5]

Generates (once, deterministically) under --data, with the libraries of the test venv:

  ckpt.pt            torch.save of a state dict: 8 float32 tensors, --size-mb in total (zip)
  ckpt_big.pt        the same pickle with 4x the tensor bytes (shows that tensors cost nothing)
  ckpt_many.pt       --size-mb spread over 2,000 tensors (a longer data.pkl)
  ckpt.legacy.pt     ckpt.pt in the legacy format (_use_new_zipfile_serialization=False)
  ckpt.data.pkl      ckpt.pt's data.pkl alone, ckpt_many.data.pkl likewise
  arrays.joblib      joblib.dump of --size-mb of float64 arrays, uncompressed and with
  arrays.joblib.z    compress=('zlib', 3) and
  arrays.joblib.lz4  compress=('lz4', 3) (these must be decompressed to be scanned)

and times `pickleguard scan FILE --format json -o /dev/null` on each (median of --runs runs,
peak RSS and bytes read from disk from GNU time), next to the time `cat FILE > /dev/null` takes
to read the whole file. The page cache is warm, or with --cold the file is evicted from it
(posix_fadvise DONTNEED) before every run. A torch checkpoint's scan time matches the scan of its data.pkl alone: the tensor
records are skipped by offset, never read.

Nothing generated here is ever loaded.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def generate(d: Path, size_mb: int) -> list[Path]:
    import numpy as np
    import torch

    d.mkdir(parents=True, exist_ok=True)
    stamp = d / f"done-{size_mb}"
    files = ["ckpt.pt", "ckpt_big.pt", "ckpt_many.pt", "ckpt.legacy.pt", "ckpt.data.pkl",
             "ckpt_many.data.pkl", "arrays.joblib", "arrays.joblib.z", "arrays.joblib.lz4"]
    paths = [d / f for f in files]
    if stamp.exists():
        return paths
    g = torch.Generator().manual_seed(0)
    n = size_mb * (1 << 20) // 4

    def tensors(total: int, count: int) -> dict:
        per = total // count
        return {f"layer{i}.weight": torch.rand(per, generator=g) for i in range(count)}

    sd = tensors(n, 8)
    torch.save(sd, d / "ckpt.pt")
    torch.save(sd, d / "ckpt.legacy.pt", _use_new_zipfile_serialization=False)
    torch.save(tensors(4 * n, 8), d / "ckpt_big.pt")
    torch.save(tensors(n, 2000), d / "ckpt_many.pt")
    for name in ("ckpt", "ckpt_many"):
        with zipfile.ZipFile(d / f"{name}.pt") as z:
            member = next(m for m in z.namelist() if m.endswith("/data.pkl"))
            (d / f"{name}.data.pkl").write_bytes(z.read(member))
    import joblib

    rng = np.random.default_rng(0)
    arrays = {f"a{i}": rng.random(size_mb * (1 << 20) // 8 // 4) for i in range(4)}
    joblib.dump(arrays, d / "arrays.joblib")
    joblib.dump(arrays, d / "arrays.joblib.z", compress=("zlib", 3))
    joblib.dump(arrays, d / "arrays.joblib.lz4", compress=("lz4", 3))
    stamp.write_text("ok")
    return paths


def evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def timed(cmd: list[str], stdout=subprocess.DEVNULL, cold: Path | None = None):
    """Wall time, exit code, peak RSS (KiB) and bytes read from disk of one run (0 for the
    last two without GNU time)."""
    if cold is not None:
        evict(cold)
    gnu_time = Path("/usr/bin/time")
    with tempfile.NamedTemporaryFile("r") as rss:
        wrapped = [str(gnu_time), "-f", "%M %I", "-o", rss.name, *cmd] if gnu_time.exists() else cmd
        t0 = time.perf_counter()
        code = subprocess.run(wrapped, stdout=stdout, stderr=subprocess.DEVNULL).returncode
        dt = time.perf_counter() - t0
        text = rss.read().strip().splitlines()
    fields = text[-1].split() if text else []
    kib, blocks = (int(fields[0]), int(fields[1])) if len(fields) == 2 and all(
        f.isdigit() for f in fields) else (0, 0)
    return dt, code, kib, blocks * 512


def median_of(cmd: list[str], runs: int, cold: Path | None):
    timed(cmd)  # warm the page cache
    res = [timed(cmd, cold=cold) for _ in range(runs)]
    return (statistics.median(r[0] for r in res), res[0][1], max(r[2] for r in res),
            statistics.median(r[3] for r in res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "pickleguard"))
    ap.add_argument("--data", default=str(ROOT / "target" / "bench-containers"))
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cold", action="store_true", help="evict each file from the page cache before each run")
    args = ap.parse_args()
    paths = generate(Path(args.data), args.size_mb)
    print("| file | size | scan | read from disk | peak RSS | `cat` (read all) | format | verdict |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for p in paths:
        cold = p if args.cold else None
        scan = [args.bin, "scan", str(p), "--format", "json", "--output", "/dev/null"]
        t, code, kib, read = median_of(scan, args.runs, cold)
        with open(os.devnull, "wb") as null:
            cat = statistics.median(timed(["cat", str(p)], stdout=null, cold=cold)[0]
                                    for _ in range(args.runs))
        out = subprocess.run([args.bin, "scan", str(p), "--format", "json"], capture_output=True).stdout
        rep = json.loads(out)["files"][0]
        verdict = "safe" if rep["is_safe"] else "not safe"
        print(f"| `{p.name}` | {p.stat().st_size / 1e6:,.1f} MB | {t * 1000:,.1f} ms | "
              f"{read / 1e6:,.1f} MB | {kib / 1024:,.0f} MB | {cat * 1000:,.1f} ms | {rep['format']} | "
              f"{verdict} (exit {code}) |")


if __name__ == "__main__":
    main()
