#!/usr/bin/env python3
"""Scanning a model hub of 100,000 files (docs/benchmarks.md, "Hub scale").

    python benches/hub_scale.py [--bin target/release/pickleguard] [--data target/bench-hub]
                                [--jobs 2] [--workers 1,2,4] [--no-cold] [--no-dask] [--no-cli]

Generates once (tests/hub_tree.py, deterministic, every file distinct) under --data/tree:
  small/   97,000 files: raw pickles (protocols 2-5, 0.1-0.7 KB), joblib dumps, .npy arrays
  models/  3,000 torch.save zips: 2,700 x 16 KB, 250 x 256 KB, 40 x 2 MB, 8 x 16 MB, 2 x 64 MB

and times `pickleguard scan --jobs N --format json -o /dev/null` on the tree: first scan
without a cache, first scan filling a verdict cache, cached re-scan; each with a cold page
cache (`sync; echo 3 > /proc/sys/vm/drop_caches`, needs root) and a warm one. Bytes read from
the disk come from getrusage(RUSAGE_CHILDREN).ru_inblock; CPU time from the same call. Then
`pickleguard.distributed.scan` on a LocalCluster of 1, 2 and 4 worker processes (one thread
each; warm page cache, no verdict cache).

Nothing generated here is ever loaded.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import hub_tree  # noqa: E402

MODELS = [(2700, 16 << 10), (250, 256 << 10), (40, 2 << 20), (8, 16 << 20), (2, 64 << 20)]


def generate(tree: Path) -> None:
    done = tree.parent / "tree.done"
    if done.exists():
        return
    shutil.rmtree(tree, ignore_errors=True)
    t = time.perf_counter()
    hub_tree.make_tree(tree / "small", raw=92_000, joblib_n=2_000, npy_n=3_000, per_dir=1000)
    hub_tree.make_tree(tree / "models", raw=0, torch_sizes=MODELS, per_dir=500, seed=1)
    done.write_text("ok")
    print(f"generated in {time.perf_counter() - t:.0f} s", file=sys.stderr)


def tree_stats(d: Path) -> tuple[int, int]:
    n = size = 0
    for dirpath, _, files in os.walk(d):
        for f in files:
            n += 1
            size += os.stat(os.path.join(dirpath, f)).st_size
    return n, size


def drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(cmd: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode not in (0, 1):
        raise SystemExit(f"{cmd}: exit {p.returncode}: {p.stderr.decode()[-2000:]}")
    return {"wall": wall,
            "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "read": (after.ru_inblock - before.ru_inblock) * 512}


def line(name: str, r: dict, n: int, size: int) -> str:
    return (f"| {name} | {r['wall']:.2f} s | {n / r['wall']:,.0f} | "
            f"{size / r['wall'] / 1e6:,.1f} MB/s | {r['cpu']:.2f} s | {r['read'] / 1e6:,.1f} MB |")


def cli_runs(bin_: str, tree: Path, jobs: int, cold: bool) -> None:
    n, size = tree_stats(tree)
    print(f"\ntree: {n:,} files, {size / 1e6:,.1f} MB; --jobs {jobs}\n")
    print("| run | wall | files/s | bytes/s | CPU (user+sys) | read from disk |")
    print("|---|---:|---:|---:|---:|---:|")
    base = [bin_, "scan", "--no-config", "--jobs", str(jobs), "-f", "json", "-o", os.devnull]
    caches = ["cold", "warm"] if cold else ["warm"]
    with tempfile.TemporaryDirectory(dir=tree.parent) as tmp:
        for state in caches:
            cache = Path(tmp) / f"cache-{state}"
            runs = [("first scan, no cache", base + [str(tree)]),
                    ("first scan, filling --cache", base + ["--cache", str(cache), str(tree)]),
                    ("cached re-scan", base + ["--cache", str(cache), str(tree)])]
            if state == "warm":
                timed(base + [str(tree)])  # brings the tree into the page cache
            for name, cmd in runs:
                if state == "cold" and not drop_caches():
                    print("(cannot drop caches: not root)")
                    return
                r = timed(cmd)
                print(line(f"{name} ({state} page cache)", r, n, size), flush=True)
        # The floor of any scan that looks at every file: walking and stat-ing the tree.
        r = timed(["find", str(tree), "-type", "f", "-printf", "%s %T@\\n"])
        print(line("`find -printf '%s %T@'` (walk + stat only, warm)", r, n, size), flush=True)
        models = tree / "models"
        mn, msize = tree_stats(models)
        print(f"\nmodels/ alone: {mn:,} torch zips, {msize / 1e6:,.1f} MB, of which "
              f"{pickle_bytes(models) / 1e6:,.2f} MB are pickle members\n")
        print("| run | wall | files/s | bytes/s | CPU (user+sys) | read from disk |")
        print("|---|---:|---:|---:|---:|---:|")
        for state in caches:
            if state == "cold":
                drop_caches()
            r = timed(base + [str(models)])
            print(line(f"first scan, no cache ({state} page cache)", r, mn, msize), flush=True)
        cache = tree.parent / "models-cache"
        shutil.rmtree(cache, ignore_errors=True)
        timed(base + ["--cache", str(cache), str(models)])
        for state in caches:
            if state == "cold":
                drop_caches()
            r = timed(base + ["--cache", str(cache), str(models)])
            print(line(f"cached re-scan ({state} page cache)", r, mn, msize), flush=True)
        shutil.rmtree(cache, ignore_errors=True)


def pickle_bytes(d: Path) -> int:
    """Bytes of the pickle members of the zips under `d` (what a scan has to read)."""
    import zipfile
    total = 0
    for dirpath, _, files in os.walk(d):
        for f in files:
            with zipfile.ZipFile(os.path.join(dirpath, f)) as z:
                total += sum(i.file_size for i in z.infolist() if i.filename.endswith(".pkl"))
    return total


def dask_runs(tree: Path, workers: list[int], bin_: str) -> None:
    from dask.distributed import Client, LocalCluster

    from pickleguard import distributed
    n, size = tree_stats(tree)
    ref = json.loads(subprocess.run([bin_, "scan", "--no-config", "-f", "json", str(tree)],
                                    stdout=subprocess.PIPE).stdout)
    print(f"\nLocalCluster, worker processes x 1 thread, warm page cache, {n:,} files\n")
    print("| workers | wall | files/s | bytes/s | batches | equal to the CLI's report |")
    print("|---:|---:|---:|---:|---:|---|")
    for w in workers:
        with LocalCluster(n_workers=w, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None) as lc, Client(lc) as c:
            t = time.perf_counter()
            doc = distributed.scan(tree, c, no_config=True)
            wall = time.perf_counter() - t
            p = distributed.plan(["pickleguard", "scan", "--no-config", str(tree)])
            nb = len(distributed.make_batches(p["targets"]))
        print(f"| {w} | {wall:.2f} s | {n / wall:,.0f} | {size / wall / 1e6:,.1f} MB/s | {nb} | "
              f"{doc == ref} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "target/release/pickleguard"))
    ap.add_argument("--data", default=str(ROOT / "target/bench-hub"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--no-cold", action="store_true")
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--no-cli", action="store_true")
    a = ap.parse_args()
    tree = Path(a.data) / "tree"
    tree.parent.mkdir(parents=True, exist_ok=True)
    generate(tree)
    # Files younger than the cache's racy window are judged but not stored.
    time.sleep(1.2)
    if not a.no_cli:
        cli_runs(a.bin, tree, a.jobs, not a.no_cold)
    if not a.no_dask:
        dask_runs(tree, [int(x) for x in a.workers.split(",")], a.bin)


if __name__ == "__main__":
    main()
