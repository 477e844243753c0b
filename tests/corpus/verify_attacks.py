#!/usr/bin/env python3
"""Prove that every attack sample is an attack: load it with its real loader and watch the
payload fire.

    python tests/corpus/verify_attacks.py DIR [--only ID ...]

For every entry of DIR/manifest.json with `fires: true`, the sample is loaded in a throw-away
subprocess (`sys.executable -c ...`) whose working directory is a fresh temporary directory,
with a 60 s timeout; the payload must create `pickleguard-marker-<id>` in that directory.
Prints a table and exits 1 listing every sample that did not fire.

This subprocess is the ONLY place where an attack sample is ever unpickled without a guard.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MARKER_PREFIX = "pickleguard-marker-"
TIMEOUT = 60
# Payloads that start a child process and return (Popen, spawn, asyncio) leave the marker a
# moment after the loader exits: poll this long before calling it a miss.
SETTLE_SECONDS = 5.0

# How each loader is called. `P` is the absolute path of the sample.
LOADER_CODE = {
    "pickle.loads": "import pickle\npickle.loads(open(P, 'rb').read())",
    "pickle._loads": "import pickle\npickle._loads(open(P, 'rb').read())",
    "pickle.load_stream": (
        "import pickle\n"
        "with open(P, 'rb') as f:\n"
        "    while True:\n"
        "        try:\n"
        "            pickle.load(f)\n"
        "        except EOFError:\n"
        "            break\n"
    ),
    "torch.load": "import torch\ntorch.load(P, weights_only=False)",
    "joblib.load": "import joblib\njoblib.load(P)",
    "numpy.load": (
        "import numpy\n"
        "r = numpy.load(P, allow_pickle=True)\n"
        "if hasattr(r, 'files'):\n"       # NpzFile is lazy: touch every member
        "    [r[k] for k in r.files]\n"
    ),
    "pandas.read_pickle": "import pandas\npandas.read_pickle(P)",
    "dill.loads": "import dill\ndill.loads(open(P, 'rb').read())",
}

# Loader modes for deferred calls (`<loader>+use`): the payload does not run while loading but
# the first time the loaded object is used, so the verifier loads, then uses every estimator
# it finds in the result (fit, transform, inverse_transform on a small float matrix). Only
# what the sample stores runs: the verifier passes no function of its own.
USE_CODE = """
def _use(o, seen):
    import numpy
    if id(o) in seen:
        return
    seen.add(id(o))
    if hasattr(o, 'transform') and hasattr(o, 'fit'):
        X = numpy.arange(6.0).reshape(3, 2)
        for step in ('fit', 'transform', 'inverse_transform'):
            try:
                getattr(o, step)(X)
            except Exception:
                pass
        return
    if isinstance(o, dict):
        items = list(o.values())
    elif isinstance(o, (list, tuple)):
        items = list(o)
    elif getattr(o, 'dtype', None) == object:
        items = list(numpy.asarray(o).ravel())
    elif hasattr(o, 'files'):
        items = [o[k] for k in o.files]
    else:
        items = []
    for v in items:
        _use(v, seen)
"""
USE_LOADERS = {
    "pickle.loads": "import pickle\nr = pickle.loads(open(P, 'rb').read())",
    "torch.load": "import torch\nr = torch.load(P, weights_only=False)",
    "joblib.load": "import joblib\nr = joblib.load(P)",
    "numpy.load": "import numpy\nr = numpy.load(P, allow_pickle=True)",
    "pandas.read_pickle": "import pandas\nr = pandas.read_pickle(P)",
}
for _name, _code in USE_LOADERS.items():
    LOADER_CODE[_name + "+use"] = USE_CODE + _code + "\n_use(r, set())\n"


def base_loader(loader: str) -> str:
    """The real loader of a loader mode (`joblib.load+use` -> `joblib.load`)."""
    return loader.split("+", 1)[0]


@dataclass
class Result:
    id: str
    loader: str
    fired: bool
    seconds: float
    detail: str  # exit status / exception summary / extra files


def _clean_env() -> dict:
    env = dict(os.environ)
    # Never let a gadget reach a real browser or display.
    for k in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        env.pop(k, None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("MPLBACKEND", "Agg")
    return env


def fire(corpus: Path, entry: dict, python: str | None = None) -> Result:
    """Load one sample in a subprocess with its real loader; report whether it fired."""
    sid = entry["id"]
    loader = entry["loader"]
    if loader not in LOADER_CODE:
        return Result(sid, loader, False, 0.0, "no loader %r" % loader)
    path = (corpus / entry["file"]).resolve()
    code = "P = %r\n%s\n" % (str(path), LOADER_CODE[loader])
    with tempfile.TemporaryDirectory(prefix="pg-fire-") as tmp:
        marker = Path(tmp) / (MARKER_PREFIX + sid)
        t0 = time.monotonic()
        try:
            proc = subprocess.run(
                [python or sys.executable, "-c", code],
                cwd=tmp,
                env=_clean_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=TIMEOUT,
            )
            status = "exit %d" % proc.returncode
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            if proc.returncode != 0 and err:
                status += ": " + err[-1][:120]
        except subprocess.TimeoutExpired:
            status = "timeout after %ds" % TIMEOUT
        deadline = time.monotonic() + SETTLE_SECONDS
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        fired = marker.exists()
        took = time.monotonic() - t0
        extra = sorted(p.name for p in Path(tmp).iterdir() if p.name != marker.name)
        if extra:
            status += "; extra files: " + ", ".join(extra[:5])
    return Result(sid, loader, fired, took, status)


def load_manifest(corpus: Path) -> list[dict]:
    return json.loads((corpus / "manifest.json").read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="verify that every attack sample fires")
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--only", nargs="*", help="only these sample ids")
    ap.add_argument("--python", help="interpreter for the loaders (default: this one)")
    args = ap.parse_args(argv)

    entries = load_manifest(args.corpus)
    if args.only:
        entries = [e for e in entries if e["id"] in set(args.only)]
    results = []
    print("%-34s %-20s %-6s %6s  %s" % ("sample", "loader", "fired", "secs", "detail"))
    for e in entries:
        if not e["fires"]:
            print("%-34s %-20s %-6s %6s  %s" % (e["id"], e["loader"], "-", "", "not expected to fire: " + e.get("note", "")[:80]))
            continue
        r = fire(args.corpus, e, args.python)
        results.append(r)
        print("%-34s %-20s %-6s %6.1f  %s" % (r.id, r.loader, "yes" if r.fired else "NO", r.seconds, r.detail[:100]))
    missed = [r for r in results if not r.fired]
    print()
    print("%d of %d samples fired" % (len(results) - len(missed), len(results)))
    if missed:
        print("did not fire: " + ", ".join(r.id for r in missed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
