"""Generate the benchmark inputs into target/bench-data (deterministic).

dense.pkl   ~9 MB: 200,000 dicts of mixed small values (opcode-dense)
dense90.pkl ~90 MB: the same shape, 2,000,000 dicts
blobs.pkl   ~100 MB: numpy arrays (blob-heavy)
"""
import os
import pickle
import sys
from pathlib import Path

args = [a for a in sys.argv[1:] if not a.startswith("--")]
out = Path(args[0] if args else "target/bench-data")
out.mkdir(parents=True, exist_ok=True)


def dense(n):
    return [
        {"id": i, "name": f"item-{i}", "score": i * 0.5, "ok": i % 2 == 0, "tags": ["a", "b", i % 7], "blob": b"xy", "none": None}
        for i in range(n)
    ]


if not (out / "dense.pkl").exists():
    (out / "dense.pkl").write_bytes(pickle.dumps(dense(200_000), protocol=4))
if "--big" in sys.argv and not (out / "dense90.pkl").exists():
    (out / "dense90.pkl").write_bytes(pickle.dumps(dense(2_000_000), protocol=4))
if not (out / "blobs.pkl").exists():
    try:
        import numpy as np
        rng = np.random.default_rng(0)
        arrays = {f"w{i}": rng.standard_normal(1_310_720).astype("float32") for i in range(20)}
        (out / "blobs.pkl").write_bytes(pickle.dumps(arrays, protocol=5))
    except ImportError:
        print("numpy missing: blobs.pkl not generated", file=sys.stderr)
for f in sorted(out.iterdir()):
    print(f"{f.name}: {f.stat().st_size / 1e6:.1f} MB")
