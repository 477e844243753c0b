#!/usr/bin/env python3
"""What pickleguard costs a Python program that loads pickles.

Side by side, in one run, on the same files (made here, in a temp dir):

* an opcode-dense pickle of ~9 MB: ``pickle.load`` vs ``pickleguard.safe_load`` (and
  ``pickle.load`` under ``install()``);
* a PyTorch checkpoint of >= 10 MB (a whole ``nn.Module``, ~76 MB, ``weights_only=False``):
  ``torch.load`` vs ``torch.load`` under ``install()`` vs ``safe_load``;
* a joblib dump of a fitted scikit-learn model of >= 10 MB: ``joblib.load`` vs
  ``joblib.load`` under ``install()`` vs ``safe_load`` (uncompressed and zlib-compressed).

Each variant runs ``--rounds`` times interleaved with the others (so drifting machine load
hits all alike); the table shows the median and the minimum, and the overhead against the
native loader computed on both (on a machine shared with other jobs the minimum is the
better estimate of the cost itself), and the median CPU time of the process (all threads:
the work added, whether or not it overlaps the load).
Usage: python benches/python_overhead.py [--rounds N] [--json FILE]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import platform
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Tuple

import pickleguard


def dense_pickle(path: str, target: int = 9 * 1024 * 1024) -> None:
    """Many small objects: ints, floats, short strings, tuples, dicts (protocol 4)."""
    rows = []
    i = 0
    while True:
        rows.extend({"id": i + k, "v": (i + k) * 0.5, "tag": f"t{(i + k) % 97}",
                     "pair": (i + k, -(i + k))} for k in range(5000))
        i += 5000
        if len(pickle.dumps(rows, protocol=4)) >= target:
            break
    with open(path, "wb") as f:
        pickle.dump(rows, f, protocol=4)


def torch_model(path: str) -> None:
    """A whole module (weights_only=False territory): a 6-layer Transformer encoder, ~76 MB,
    a few hundred tensors."""
    import torch
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model=512, nhead=8, dim_feedforward=2048,
                                             batch_first=True)
    net = torch.nn.TransformerEncoder(layer, num_layers=6, enable_nested_tensor=False)
    torch.save(net, path)


def sklearn_model(path: str, compress: Any) -> None:
    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6000, 20))
    y = (X[:, 0] + rng.normal(size=6000) * 0.5 > 0).astype(int)
    model = RandomForestClassifier(n_estimators=120, random_state=0).fit(X, y)
    joblib.dump(model, path, compress=compress)


def bench(variants: Dict[str, Callable[[], Any]], rounds: int
          ) -> Tuple[Dict[str, List[float]], Dict[str, List[float]]]:
    """Wall-clock and CPU (this process, all threads) seconds per round and variant."""
    times: Dict[str, List[float]] = {k: [] for k in variants}
    cpu: Dict[str, List[float]] = {k: [] for k in variants}
    for fn in variants.values():  # warm up (imports, page cache)
        fn()
    for _ in range(rounds):
        for name, fn in variants.items():
            gc.collect()
            c0 = time.process_time()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return times, cpu


def main() -> int:
    # The files (about 100 MB) live only as long as the run.
    with tempfile.TemporaryDirectory(prefix="pg-bench-") as tmp:
        return run(tmp)


def run(tmp: str) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--json", help="write the raw numbers here")
    args = ap.parse_args()

    results: List[Tuple[str, str, float, float, float]] = []
    raw: Dict[str, Any] = {}
    dense = os.path.join(tmp, "dense.pkl")
    dense_pickle(dense)
    files = {"dense pickle": dense}

    native_pickle_load = pickle.load

    def load_pickle(p: str, load: Callable[[Any], Any] = native_pickle_load) -> Any:
        with open(p, "rb") as f:
            return load(f)

    def hooked_pickle(p: str) -> Any:
        with open(p, "rb") as f:
            return pickle.load(f)  # looked up now: the patched one while installed

    groups: List[Tuple[str, str, Dict[str, Callable[[], Any]]]] = [
        ("dense pickle", dense, {
            "pickle.load": lambda: load_pickle(dense),
            "pickle.load under install()": lambda: hooked_pickle(dense),
            "safe_load(path)": lambda: pickleguard.safe_load(dense),
        }),
    ]
    try:
        import torch
        tpath = os.path.join(tmp, "model.pt")
        torch_model(tpath)
        native_torch = torch.load
        groups.append(("torch checkpoint", tpath, {
            "torch.load(weights_only=False)":
                lambda: native_torch(tpath, weights_only=False),
            "torch.load under install()": lambda: torch.load(tpath, weights_only=False),
            "safe_load(path)": lambda: pickleguard.safe_load(tpath),
        }))
    except ImportError:
        print("torch not installed: skipped", file=sys.stderr)
    try:
        import joblib
        native_joblib = joblib.load
        for label, compress in (("joblib model", 0), ("joblib model, zlib 3", 3)):
            jpath = os.path.join(tmp, f"model-{compress}.joblib")
            sklearn_model(jpath, compress)
            groups.append((label, jpath, {
                "joblib.load": lambda p=jpath: native_joblib(p),
                "joblib.load under install()": lambda p=jpath: joblib.load(p),
                "safe_load(path)": lambda p=jpath: pickleguard.safe_load(p),
            }))
    except ImportError:
        print("joblib / scikit-learn not installed: skipped", file=sys.stderr)

    # The scan alone, for scale.
    for label, path, variants in groups:
        variants["scan_file (scan only)"] = lambda p=path: pickleguard.scan_file(p)

    # Installed once for the whole run: the "native" variants call the functions captured
    # before install(), the "under install()" ones look them up at call time.
    pickleguard.install()
    for label, path, variants in groups:
        size = os.path.getsize(path)
        times, cpu = bench(variants, args.rounds)
        base_name = next(iter(variants))
        base_med = statistics.median(times[base_name])
        base_min = min(times[base_name])
        base_cpu = statistics.median(cpu[base_name])
        raw[label] = {"bytes": size, "seconds": times, "cpu_seconds": cpu}
        for name, ts in times.items():
            med, mn = statistics.median(ts), min(ts)
            c = statistics.median(cpu[name])
            results.append((f"{label} ({size / 1e6:.1f} MB)", name, med, mn,
                            (med / base_med - 1) * 100, (mn / base_min - 1) * 100,
                            c, (c / base_cpu - 1) * 100))

    pickleguard.uninstall()
    print(f"python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} CPU(s), pickleguard {pickleguard.__version__}, "
          f"{args.rounds} rounds")
    w = max(len(r[0]) for r in results)
    print(f"{'file':<{w}}  {'loader':<30} {'median ms':>10} {'min ms':>9} "
          f"{'overhead (median / min)':>24} {'CPU ms':>8} {'CPU overhead':>13}")
    last = None
    for f, name, med, mn, over_med, over_min, c, over_cpu in results:
        first = f != last
        over = "" if first else f"{over_med:+.1f}% / {over_min:+.1f}%"
        cover = "" if first else f"{over_cpu:+.1f}%"
        print(f"{f if first else '':<{w}}  {name:<30} {med * 1e3:>10.1f} {mn * 1e3:>9.1f} "
              f"{over:>24} {c * 1e3:>8.1f} {cover:>13}")
        last = f
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(raw, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
