#!/usr/bin/env python3
"""Directory scan throughput of the `pickleguard` command line (docs/benchmarks.md, "CLI").

    python benches/cli_tree.py [--bin target/release/pickleguard] [--data target/bench-cli]
                               [--runs 3] [--jobs N] [--compare]

Generates (once, deterministically) under --data:
  small/     10,000 small pickles (dicts, lists, OrderedDicts; ~0.5 KB each) in 100 folders
  models/    4 model-like files of ~256 MB: numpy arrays pickled with protocol 5 (raw pickle)
             and, when torch is importable, torch.save checkpoints (zip)
  dense/     4 opcode-dense pickles of ~12 MB (200,000 small dicts each)
and times `pickleguard scan DIR --format json -o /dev/null` on each (warm page cache; the
median of --runs runs), with the peak RSS of the process. --compare also times picklescan
(`picklescan -p DIR`) when it is installed.

Nothing generated here is ever loaded.
"""
from __future__ import annotations

import argparse
import collections
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def done(d: Path) -> Path:
    """Marker of a finished data set, kept outside the scanned folder."""
    return d.parent / f"{d.name}.done"


def gen_small(d: Path, n: int = 10_000) -> None:
    if done(d).exists():
        return
    shutil.rmtree(d, ignore_errors=True)
    for i in range(n):
        sub = d / f"part{i % 100:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        if i % 3 == 0:
            obj = {"id": i, "name": f"sample-{i}", "values": [i * 0.25 + k for k in range(20)]}
        elif i % 3 == 1:
            obj = [i, f"row-{i}", (1, 2, 3), {"k": b"bytes"}, None, True] * 4
        else:
            obj = collections.OrderedDict((f"key{k}", k * i) for k in range(12))
        (sub / f"f{i:05d}.pkl").write_bytes(pickle.dumps(obj, protocol=2 + i % 3))
    done(d).write_text("ok")


def gen_models(d: Path) -> None:
    if done(d).exists():
        return
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    import numpy as np

    rng = np.random.default_rng(0)
    for i in range(2):
        weights = {f"layer{k}.weight": rng.standard_normal(4_194_304).astype("float32") for k in range(16)}
        (d / f"numpy_{i}.pkl").write_bytes(pickle.dumps(weights, protocol=5))
    try:
        import torch

        g = torch.Generator().manual_seed(0)
        for i in range(2):
            sd = {f"layer{k}.weight": torch.randn(4_194_304, generator=g) for k in range(16)}
            torch.save(sd, d / f"torch_{i}.pt")
    except ImportError:
        print("torch missing: models/ has numpy pickles only", file=sys.stderr)
    done(d).write_text("ok")


def gen_dense(d: Path) -> None:
    if done(d).exists():
        return
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    rows = [
        {"id": i, "name": f"item-{i}", "score": i * 0.5, "ok": i % 2 == 0, "tags": ["a", "b", i % 7], "blob": b"xy", "none": None}
        for i in range(200_000)
    ]
    for i in range(4):
        (d / f"dense_{i}.pkl").write_bytes(pickle.dumps(rows, protocol=4))
    done(d).write_text("ok")


def tree_stats(d: Path) -> tuple[int, int]:
    files = [p for p in d.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def timed(cmd: list[str]) -> tuple[float, int, int]:
    """Wall time, exit code and peak RSS (KiB) of one run. The RSS comes from GNU time when
    it is installed (the rusage of a child forked from this big Python process would count
    the parent's pages from before exec), else it is reported as 0."""
    gnu_time = Path("/usr/bin/time")
    with tempfile.NamedTemporaryFile("r") as rss:
        wrapped = [str(gnu_time), "-f", "%M", "-o", rss.name, *cmd] if gnu_time.exists() else cmd
        t0 = time.perf_counter()
        code = subprocess.call(wrapped, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dt = time.perf_counter() - t0
        text = rss.read().strip().splitlines()
    kib = int(text[-1]) if text and text[-1].isdigit() else 0
    return dt, code, kib


def bench(name: str, cmd: list[str], d: Path, runs: int) -> dict:
    n, size = tree_stats(d)
    timed(cmd)  # warm the page cache
    results = [timed(cmd) for _ in range(runs)]
    wall = statistics.median(r[0] for r in results)
    rss = max(r[2] for r in results)
    row = {
        "what": name,
        "files": n,
        "MB": size / 1e6,
        "seconds": wall,
        "files/s": n / wall,
        "MB/s": size / 1e6 / wall,
        "peak RSS MB": rss / 1024,
        "exit": results[0][1],
    }
    print(
        f"{name:<34} {n:>6} files {size / 1e6:>9.1f} MB  {wall:>8.3f} s  "
        f"{n / wall:>9.0f} files/s  {size / 1e6 / wall:>9.0f} MB/s  peak RSS {rss / 1024:>6.0f} MB  exit {results[0][1]}",
        flush=True,
    )
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "pickleguard"))
    ap.add_argument("--data", default=str(ROOT / "target" / "bench-cli"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=0, help="--jobs for pickleguard (0: all cores)")
    ap.add_argument("--compare", action="store_true", help="also time picklescan if installed")
    a = ap.parse_args()
    data = Path(a.data)
    gen_small(data / "small")
    gen_models(data / "models")
    gen_dense(data / "dense")
    print(f"machine: {os.cpu_count()} cores; {a.bin}")
    jobs = ["--jobs", str(a.jobs)] if a.jobs else []
    for sub in ("small", "models", "dense"):
        d = data / sub
        cmd = [a.bin, "scan", str(d), "--format", "json", "--output", "/dev/null", "--no-config", *jobs]
        bench(f"pickleguard scan {sub}/", cmd, d, a.runs)
        if a.compare:
            ps = shutil.which("picklescan")
            if ps:
                bench(f"picklescan -p {sub}/", [ps, "-p", str(d)], d, a.runs)
            else:
                print("picklescan not installed: skipped", file=sys.stderr)


if __name__ == "__main__":
    main()
