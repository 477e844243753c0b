"""A generated model-hub tree for the cache / distributed tests and benches/hub_scale.py: raw
pickles, PyTorch zips of several sizes, joblib dumps and .npy files, every file distinct, with
planted payloads that would only create a marker file (they are never loaded here).
"""
from __future__ import annotations

import io
import os
import pickle
import random
from pathlib import Path
from typing import Dict, List, Sequence, Tuple


class SystemCall:
    """Pickles as ``posix.system(cmd)``: the payload planted in attack files."""

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (self.cmd,))


def _raw(i: int, rng: random.Random) -> bytes:
    obj = {"id": i, "name": f"layer{i}", "shape": [rng.randint(1, 64) for _ in range(3)],
           "lr": rng.random(), "tags": ("a", "b", str(i)), "blob": rng.randbytes(rng.randint(0, 600))}
    return pickle.dumps(obj, protocol=2 + i % 4)


def _torch(i: int, size: int, payload: str = "") -> bytes:
    import torch
    n = max(size // 4, 1)
    g = torch.Generator().manual_seed(i)
    state = {"weight": torch.rand(n, generator=g), "step": i}
    if payload:
        state["hook"] = SystemCall(payload)
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _joblib(i: int, path: Path, payload: str = "") -> None:
    import joblib
    import numpy as np
    obj = {"coef": np.arange(16 + i % 32, dtype=np.float64) * i, "meta": {"i": i}}
    if payload:
        obj["hook"] = SystemCall(payload)
    joblib.dump(obj, path)


def _npy(i: int, path: Path, payload: str = "") -> None:
    import numpy as np
    if payload:
        arr = np.empty(2, dtype=object)
        arr[0] = i
        arr[1] = SystemCall(payload)
        np.save(path, arr, allow_pickle=True)
    else:
        np.save(path, np.arange(8 + i % 100, dtype=np.int32) + i)


def make_tree(root: Path, *, raw: int, torch_sizes: Sequence[Tuple[int, int]] = (),
              joblib_n: int = 0, npy_n: int = 0, marker_dir: Path | None = None,
              per_dir: int = 500, seed: int = 0) -> Dict[str, List[str]]:
    """Write the tree under ``root``. ``torch_sizes``: (count, approximate bytes) pairs.
    With ``marker_dir``, one payload of each kind is planted (raw pickle, torch zip, joblib,
    npy). Returns ``{"attacks": [...], "benign": [...]}`` as paths relative to ``root``."""
    rng = random.Random(seed)
    attacks: List[str] = []
    benign: List[str] = []
    count = 0

    def place(name: str) -> Path:
        nonlocal count
        d = root / f"shard{count // per_dir:04d}"
        count += 1
        d.mkdir(parents=True, exist_ok=True)
        return d / name

    def marker(kind: str) -> str:
        assert marker_dir is not None
        return f"touch {marker_dir / ('pickleguard-marker-' + kind)}"

    for i in range(raw):
        p = place(f"r{i:06d}.pkl")
        p.write_bytes(_raw(i, rng))
        benign.append(str(p.relative_to(root)))
    j = 0
    for n, size in torch_sizes:
        for _ in range(n):
            p = place(f"model{j:05d}.pt")
            p.write_bytes(_torch(j, size))
            benign.append(str(p.relative_to(root)))
            j += 1
    for i in range(joblib_n):
        p = place(f"est{i:05d}.joblib")
        _joblib(i, p)
        benign.append(str(p.relative_to(root)))
    for i in range(npy_n):
        p = place(f"arr{i:05d}.npy")
        _npy(i, p)
        benign.append(str(p.relative_to(root)))
    if marker_dir is not None:
        p = place("evil_raw.pkl")
        p.write_bytes(pickle.dumps({"x": SystemCall(marker("raw"))}, protocol=2))
        attacks.append(str(p.relative_to(root)))
        p = place("evil_model.pt")
        p.write_bytes(_torch(10_000, 1 << 16, marker("torch")))
        attacks.append(str(p.relative_to(root)))
        p = place("evil_est.joblib")
        _joblib(10_000, p, marker("joblib"))
        attacks.append(str(p.relative_to(root)))
        p = place("evil_arr.npy")
        _npy(10_000, p, marker("npy"))
        attacks.append(str(p.relative_to(root)))
    return {"attacks": attacks, "benign": benign}
