#!/usr/bin/env python3
"""Load every file of a benign corpus three ways and compare what comes back.

    python tests/corpus/compare_guarded.py DIR [--json OUT]

1. ``native``: the file's own loader, as verify_benign.py does;
2. ``safe_load``: ``pickleguard.safe_load(path)`` (the container recognised by content);
3. ``install``: ``pickleguard.install()``, then the file's own loader again.

Each result is reduced to a canonical form (arrays and tensors by dtype, shape and bytes;
containers item by item; other objects by type and attributes) and the three forms must be
equal. Files marked ``custom`` in the manifest (the deliberately unknown class) must be
refused by 2 and 3 instead. Exit status 0 when every file agrees.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from verify_benign import load_entry  # noqa: E402
from gen_benign import install_sample_module  # noqa: E402

MAX_DEPTH = 12


def canon(x, depth=0, seen=None):
    """A comparable form of a loaded object (equal for two loads of the same file)."""
    if seen is None:
        seen = set()
    if depth > MAX_DEPTH:
        return ("...",)
    t = type(x)
    name = f"{t.__module__}.{t.__qualname__}"
    if x is None or isinstance(x, (bool, int, str, bytes)):
        return x
    if isinstance(x, float):
        return ("float", "nan") if math.isnan(x) else x
    if isinstance(x, complex):
        return ("complex", canon(x.real), canon(x.imag))
    if id(x) in seen:
        return ("cycle", name)
    seen = seen | {id(x)}
    mod = t.__module__.split(".")[0]
    if mod == "numpy" and hasattr(x, "dtype") and hasattr(x, "tobytes"):
        if getattr(x.dtype, "hasobject", False):
            return (name, str(x.dtype), getattr(x, "shape", ()),
                    [canon(v, depth + 1, seen) for v in list(getattr(x, "flat", [x]))[:200]])
        return (name, str(x.dtype), getattr(x, "shape", ()), x.tobytes())
    if mod == "torch" and hasattr(x, "is_sparse") and hasattr(x, "dtype"):
        try:
            dense = x.to_dense() if (x.is_sparse or getattr(x, "layout", None) not in (None, __import__("torch").strided)) else x
            if dense.is_quantized:
                dense = dense.dequantize()
            return (name, str(x.dtype), tuple(x.shape), dense.detach().cpu().contiguous().numpy().tobytes()
                    if dense.dtype != __import__("torch").bfloat16 else dense.float().numpy().tobytes())
        except Exception:  # noqa: BLE001 - meta tensors and other layouts: by shape and dtype
            return (name, str(x.dtype), tuple(x.shape))
    if isinstance(x, dict):
        try:
            items = sorted(x.items(), key=lambda kv: repr(kv[0]))
        except Exception:  # noqa: BLE001
            items = list(x.items())
        return (name, [(canon(k, depth + 1, seen), canon(v, depth + 1, seen)) for k, v in items])
    if isinstance(x, (list, tuple)):
        return (name, [canon(v, depth + 1, seen) for v in x])
    if isinstance(x, (set, frozenset)):
        return (name, sorted(repr(canon(v, depth + 1, seen)) for v in x))
    if mod == "pandas":
        try:
            import pandas as pd
            if isinstance(x, (pd.DataFrame, pd.Series, pd.Index)):
                return (name, x.to_json(orient="split", date_format="iso", default_handler=repr)
                        if not isinstance(x, pd.Index) else repr(list(x)), str(getattr(x, "dtypes", x.dtype)))
        except Exception:  # noqa: BLE001
            pass
    # Boosters hold native handles (memory addresses): their models are compared by the text
    # or bytes the library writes for them.
    for dump in ("model_to_string", "save_raw"):
        f = getattr(x, dump, None)
        if callable(f) and mod in ("lightgbm", "xgboost"):
            try:
                out = f()
                return (name, bytes(out) if not isinstance(out, str) else out)
            except Exception:  # noqa: BLE001 - an unfitted model: by its attributes below
                break
    state = getattr(x, "__dict__", None)
    if isinstance(state, dict) and state:
        keep = {k: v for k, v in state.items()
                if not k.startswith("_pg") and "handle" not in k and type(v).__module__ != "ctypes"}
        return (name, canon(keep, depth + 1, seen))
    try:
        return (name, repr(x))
    except Exception:  # noqa: BLE001
        return (name,)


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def differs(a, b) -> bool:
    """Whether two canonical forms differ, memory addresses in reprs aside."""
    return _ADDRESS.sub("0x?", repr(a)) != _ADDRESS.sub("0x?", repr(b))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    import pickleguard
    from pickleguard import PickleSecurityError

    install_sample_module()
    manifest = json.loads((args.dir / "manifest.json").read_text())
    problems = []
    for entry in manifest:
        path = args.dir / entry["file"]
        custom = bool(entry.get("custom"))
        try:
            native = canon(load_entry(args.dir, entry))
        except Exception as exc:  # noqa: BLE001
            problems.append({"file": entry["file"], "how": "native", "error": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        for how in ("safe_load", "install"):
            try:
                if how == "safe_load":
                    got = pickleguard.safe_load(path)
                    if entry["loader"] == "numpy.load" and isinstance(got, dict) is False and hasattr(got, "files"):
                        got = {k: got[k] for k in got.files}
                else:
                    pickleguard.install()
                    try:
                        got = load_entry(args.dir, entry)
                    finally:
                        pickleguard.uninstall()
            except PickleSecurityError as exc:
                if not custom:
                    problems.append({"file": entry["file"], "how": how, "error": str(exc)[:300]})
                continue
            except Exception as exc:  # noqa: BLE001
                problems.append({"file": entry["file"], "how": how, "error": f"{type(exc).__name__}: {exc}"[:300]})
                if os.environ.get("VERIFY_TRACEBACK"):
                    traceback.print_exc()
                continue
            if custom:
                problems.append({"file": entry["file"], "how": how, "error": "the unknown custom class loaded"})
            elif differs(canon(got), native):
                problems.append({"file": entry["file"], "how": how, "error": "differs from the native load"})
    for p in problems:
        print(f"FAIL {p['file']} ({p['how']}): {p['error']}")
    print(f"{len(manifest)} files, {len(problems)} problems")
    if args.json:
        args.json.write_text(json.dumps(problems, indent=1) + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
