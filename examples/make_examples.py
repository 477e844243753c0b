#!/usr/bin/env python3
"""Write a small folder to try pickleguard on: ordinary pickles, a config file, and one
harmless attack.

    python3 examples/make_examples.py DIR

- ``DIR/model.pkl``: an ordinary protocol-5 pickle of plain data (what ``pickle.dump`` writes).
- ``DIR/history.pkl``: protocol 2, with ``collections.OrderedDict`` and ``datetime`` objects.
- ``DIR/model.joblib`` / ``DIR/weights.pt``: written only when joblib + numpy / torch are
  installed, by the libraries themselves.
- ``DIR/config.json``: not a pickle; reported as such and safe.
- ``DIR/payload.pkl``: a pickle that would run ``touch pickleguard-marker-example`` through
  ``os.system`` if it were loaded. It is written opcode by opcode and never loaded here: its only
  effect, if someone did load it, is an empty marker file in the current directory.

``pickleguard scan DIR`` then reports every file and exits 1, because ``payload.pkl`` is not safe.
"""
from __future__ import annotations

import collections
import datetime
import json
import pickle
import sys
from pathlib import Path


def payload() -> bytes:
    cmd = b"touch pickleguard-marker-example"
    return (b"\x80\x02cposix\nsystem\nq\x00X" + len(cmd).to_bytes(4, "little") + cmd
            + b"q\x01\x85q\x02Rq\x03.")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    model = {"weights": [[0.25, -1.5], [3.0, 0.125]], "bias": [0.5, -0.5], "labels": ("cat", "dog")}
    (out / "model.pkl").write_bytes(pickle.dumps(model, protocol=5))
    history = collections.OrderedDict(
        (datetime.date(2026, 1, day), {"loss": 1.0 / day}) for day in range(1, 4))
    (out / "history.pkl").write_bytes(pickle.dumps(history, protocol=2))
    (out / "config.json").write_text(json.dumps({"hidden_size": 2, "labels": 2}) + "\n")
    (out / "payload.pkl").write_bytes(payload())
    try:
        import joblib
        import numpy as np
        joblib.dump({"coef": np.arange(6.0).reshape(2, 3)}, out / "model.joblib")
    except ImportError:
        pass
    try:
        import torch
        torch.manual_seed(0)
        torch.save(torch.nn.Linear(3, 2).state_dict(), out / "weights.pt")
    except ImportError:
        pass
    print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
