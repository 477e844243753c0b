#!/usr/bin/env python3
"""Generate the side-by-side benchmark files with the real libraries (run by run.py in the
test venv, ~/.cache/pickleguard/venv, which has numpy, torch, scikit-learn and joblib).

    python benches/compare/make_files.py DIR

Deterministic; each file is written once (to a temporary name, then renamed), so a rerun
only makes what is missing. Prints one JSON line per file: name, kind, path, bytes.

  dense9.pkl        ~9 MB raw pickle (protocol 4): a list of small dicts, the shape of
                    benches/make_data.py's dense.pkl (opcode-dense: ~1 opcode per 2 bytes)
  dense90.pkl       ~90 MB, the same shape, 10x the rows
  blobs.pkl         ~105 MB raw pickle (protocol 5): 20 float32 numpy arrays (blob-heavy),
                    the shape of benches/make_data.py's blobs.pkl
  checkpoint.pt     ~126 MB torch.save (zip) of a training checkpoint: the state dict of a
                    10-layer nn.TransformerEncoder (d_model 512), epoch, config
  forest.joblib     joblib.dump of a fitted scikit-learn RandomForestClassifier (~30 MB)
  forest.joblib.z   the same model with compress=3 (zlib)
  small/            10,000 small pickles in 100 folders (benches/cli_tree.py's gen_small)

Nothing here loads an untrusted file: everything is made from scratch.
"""
from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # benches/: reuse cli_tree.gen_small

DENSE_ROWS = 153_000  # 58.8 bytes a row at protocol 4 -> 9.0 MB


def dense(n: int) -> list:
    # benches/make_data.py's dense() rows (that module runs on import, so it is copied)
    return [
        {"id": i, "name": f"item-{i}", "score": i * 0.5, "ok": i % 2 == 0, "tags": ["a", "b", i % 7], "blob": b"xy", "none": None}
        for i in range(n)
    ]


def write_atomic(path: Path, make) -> None:
    tmp = path.with_name(path.name + ".tmp")
    make(tmp)
    os.replace(tmp, path)


def gen_dense(path: Path, rows: int) -> None:
    write_atomic(path, lambda t: t.write_bytes(pickle.dumps(dense(rows), protocol=4)))


def gen_blobs(path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    arrays = {f"w{i}": rng.standard_normal(1_310_720).astype("float32") for i in range(20)}
    write_atomic(path, lambda t: t.write_bytes(pickle.dumps(arrays, protocol=5)))


def gen_checkpoint(path: Path) -> None:
    import torch

    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model=512, nhead=8, dim_feedforward=2048, batch_first=True)
    model = torch.nn.TransformerEncoder(layer, num_layers=10, enable_nested_tensor=False)
    ckpt = {
        "model": model.state_dict(),
        "epoch": 10,
        "step": 123_456,
        "config": {"d_model": 512, "nhead": 8, "dim_feedforward": 2048, "num_layers": 10, "lr": 3e-4},
    }
    write_atomic(path, lambda t: torch.save(ckpt, t))


_forest = None


def forest():
    global _forest
    if _forest is None:
        import numpy as np
        from sklearn.ensemble import RandomForestClassifier

        rng = np.random.default_rng(0)
        X = rng.normal(size=(20_000, 20))
        y = (X[:, 0] + rng.normal(size=20_000) * 0.5 > 0).astype(int)
        _forest = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=2).fit(X, y)
    return _forest


def gen_joblib(path: Path, compress: int) -> None:
    import joblib

    model = forest()
    # joblib picks the compressor from the file name: write under the final suffix
    tmp = path.with_name("tmp-" + path.name)
    joblib.dump(model, tmp, compress=compress)
    os.replace(tmp, path)


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path.home() / ".cache/pickleguard/bench-data")
    out.mkdir(parents=True, exist_ok=True)
    plan = [
        ("dense9.pkl", "raw", lambda p: gen_dense(p, DENSE_ROWS)),
        ("dense90.pkl", "raw", lambda p: gen_dense(p, DENSE_ROWS * 10)),
        ("blobs.pkl", "raw", gen_blobs),
        ("checkpoint.pt", "torch", gen_checkpoint),
        ("forest.joblib", "joblib", lambda p: gen_joblib(p, 0)),
        ("forest.joblib.z", "joblib", lambda p: gen_joblib(p, 3)),
    ]
    for name, kind, make in plan:
        p = out / name
        if not p.exists():
            print(f"generating {p}", file=sys.stderr, flush=True)
            make(p)
        print(json.dumps({"name": name, "kind": kind, "path": str(p), "bytes": p.stat().st_size}), flush=True)
    small = out / "small"
    from cli_tree import done, gen_small  # noqa: E402  (10,000 files, deterministic)

    if not done(small).exists():
        print(f"generating {small}", file=sys.stderr, flush=True)
    gen_small(small)
    files = [os.path.join(r, f) for r, _, fs in os.walk(small) for f in fs]
    print(json.dumps({"name": "small/", "kind": "dir", "path": str(small), "bytes": sum(os.path.getsize(f) for f in files),
                      "files": len(files)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
