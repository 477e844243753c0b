#!/usr/bin/env python3
"""Where the cost of a guarded ``joblib.load`` goes, on the model of python_overhead.py (a
fitted 120-tree ``RandomForestClassifier``, 10.9 MB, 482 arrays with the pickle between them).

Interleaved round by round, each after ``gc.collect()`` as in python_overhead.py:

* ``joblib.load`` (native), under ``install()``, and ``safe_load``;
* the restricted joblib unpickler without the scan (what the guard's loading costs), reading
  the file and reading a fresh map of it (what the guarded loads do: ``mmap.read`` instead of
  the file's ``read`` calls);
* the scan alone: on the file's bytes already in memory, and on a fresh memory map of the file
  (what the joblib integration does), so the difference is the cost of touching the map.

With ``--compress zlib`` (or gzip, bz2, xz, lzma, lz4) the dump is compressed, and the
breakdown is the guarded path's parts instead: pickleguard's bounded decompression alone, the
scan of the decompressed stream, and joblib's restricted unpickler on that stream in memory
(the three together are the guarded load: the stream is decompressed once).

Usage: python benches/joblib_overhead.py [--rounds N] [--compress KIND]
(results: docs/benchmarks.md, "Python")
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List

import pickleguard
from pickleguard._guard import guard_for
from pickleguard._joblibfile import unpickler_class
from pickleguard._io import map_fd
from pickleguard.integrations import joblib as pg_joblib


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--compress", help="joblib compression (zlib, gzip, bz2, xz, lzma, lz4)")
    args = ap.parse_args()
    import joblib
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from python_overhead import sklearn_model

    with tempfile.TemporaryDirectory(prefix="pg-bench-") as tmp:
        path = os.path.join(tmp, "model.joblib")
        sklearn_model(path, (args.compress, 3) if args.compress else 0)
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            data = f.read()
        guard = guard_for("ml")
        native = joblib.load

        def scan_map() -> Any:
            with open(path, "rb") as f:
                m = map_fd(f.fileno())
                try:
                    return guard.analyze(m)
                finally:
                    m.close()

        def unpickle_only() -> Any:
            with open(path, "rb") as f:
                return pg_joblib._unpickle(unpickler_class(guard), f, True, path)

        def unpickle_map() -> Any:
            with open(path, "rb") as f:
                m = map_fd(f.fileno())
            try:
                return pg_joblib._unpickle(unpickler_class(guard), m, True, path)
            finally:
                m.close()

        variants: Dict[str, Callable[[], Any]] = {
            "joblib.load": lambda: native(path),
            "joblib.load under install()": lambda: joblib.load(path),
            "safe_load(path)": lambda: pickleguard.safe_load(path),
            "restricted unpickler, no scan": unpickle_only,
            "the same on a fresh map": unpickle_map,
            "scan, bytes in memory": lambda: guard.analyze(data),
            "scan, fresh map": scan_map,
        }
        if args.compress:
            import io

            from pickleguard._codecs import decompress
            plain = decompress(guard, data, None, path)

            def unpickle_plain() -> Any:
                return pg_joblib._unpickle(unpickler_class(guard), io.BytesIO(plain),
                                           True, "")

            variants = {
                "joblib.load": lambda: native(path),
                "joblib.load under install()": lambda: joblib.load(path),
                "safe_load(path)": lambda: pickleguard.safe_load(path),
                "decompress once (bounded reader)": lambda: decompress(guard, data, None, path),
                "scan of the decompressed stream": lambda: guard.analyze(plain),
                "restricted unpickler on it, no scan": unpickle_plain,
            }
        pickleguard.install()
        try:
            for fn in variants.values():
                fn()
            times: Dict[str, List[float]] = {k: [] for k in variants}
            for _ in range(args.rounds):
                for name, fn in variants.items():
                    gc.collect()
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
        finally:
            pickleguard.uninstall()

    base = times["joblib.load"]
    bmed, bmin = statistics.median(base), min(base)
    print(f"{size / 1e6:.1f} MB joblib forest ({args.compress or 'uncompressed'}), "
          f"{args.rounds} rounds, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'variant':<32} {'median ms':>10} {'min ms':>8}  {'added: median / min':>24}")
    for name, ts in times.items():
        med, mn = statistics.median(ts), min(ts)
        added = ""
        if name != "joblib.load" and med > bmed / 2:
            added = (f"{(med - bmed) * 1e3:+.2f} / {(mn - bmin) * 1e3:+.2f} ms "
                     f"({(med / bmed - 1) * 100:+.1f} % / {(mn / bmin - 1) * 100:+.1f} %)")
        print(f"{name:<32} {med * 1e3:>10.2f} {mn * 1e3:>8.2f}  {added:>24}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
