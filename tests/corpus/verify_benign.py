#!/usr/bin/env python3
"""Load every file of a benign corpus with its own loader and report the failures.

    python tests/corpus/verify_benign.py DIR [--hashes]

DIR is the output of gen_benign.py. Each manifest entry is loaded in this process (the files
are benign and were made by us) with the loader the manifest names:

    pickle.load          pickle.load(f); the whole file must be consumed
    torch.load           torch.load(path, weights_only=False)
    joblib.load          joblib.load(path)
    numpy.load           numpy.load(path, allow_pickle=True), every member of an .npz read
    pandas.read_pickle   pandas.read_pickle(path, compression=<manifest compression>)

--hashes also checks that every file still has the sha256 of its manifest entry.
Exit status 0 when every file loads, 1 otherwise.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import sys
import time
import traceback
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_benign import install_sample_module  # noqa: E402

warnings.filterwarnings("ignore")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PANDAS_COMPRESSION = {"none": None, "gzip": "gzip", "bz2": "bz2", "xz": "xz", "zip": "zip",
                      "zstd": "zstd", "tar": "tar"}


def load_entry(root: Path, entry: dict):
    path = root / entry["file"]
    loader = entry["loader"]
    if loader == "pickle.load":
        with open(path, "rb") as f:
            obj = pickle.load(f)
            rest = f.read()
        if rest:
            raise ValueError(f"{len(rest)} bytes after the pickle")
        return obj
    if loader == "torch.load":
        import torch

        return torch.load(path, weights_only=False)
    if loader == "joblib.load":
        import joblib

        return joblib.load(path)
    if loader == "numpy.load":
        import numpy as np

        res = np.load(path, allow_pickle=True)
        if hasattr(res, "files"):
            with res:
                return {k: res[k] for k in res.files}
        return res
    if loader == "pandas.read_pickle":
        import pandas as pd

        return pd.read_pickle(path, compression=PANDAS_COMPRESSION[entry.get("compression", "none")])
    raise ValueError(f"unknown loader {loader!r}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--hashes", action="store_true", help="also check every sha256 against the manifest")
    args = ap.parse_args(argv)
    manifest = json.loads((args.dir / "manifest.json").read_text())
    install_sample_module()
    failures = []
    t0 = time.time()
    for entry in manifest:
        try:
            load_entry(args.dir, entry)
        except Exception as exc:  # noqa: BLE001
            failures.append((entry["file"], f"{type(exc).__name__}: {exc}"))
            if os.environ.get("VERIFY_TRACEBACK"):
                traceback.print_exc()
            continue
        if args.hashes:
            digest = hashlib.sha256((args.dir / entry["file"]).read_bytes()).hexdigest()
            if digest != entry["sha256"]:
                failures.append((entry["file"], "sha256 differs from the manifest"))
    for name, why in failures:
        print(f"FAIL {name}: {why[:300]}")
    print(f"{len(manifest) - len(failures)}/{len(manifest)} files load with their loader "
          f"({time.time() - t0:.1f}s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
