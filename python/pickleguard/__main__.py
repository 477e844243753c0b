"""``pickleguard`` console script and ``python -m pickleguard``: the Rust command line."""

from __future__ import annotations

import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    from . import _native
    args = list(sys.argv if argv is None else argv)
    if args:
        args[0] = "pickleguard"
    sys.stdout.flush()
    sys.stderr.flush()
    if _wants_dask(args):
        from .distributed import main as scan_on_dask
        return scan_on_dask(args)
    return _native.run_cli(args)


def _wants_dask(args: List[str]) -> bool:
    """`scan ... --dask ADDRESS ...`: the cluster scan lives in Python (pickleguard.distributed);
    the Rust command line alone refuses the flag with exit 2."""
    if len(args) < 2 or args[1] != "scan":
        return False
    for a in args[2:]:
        if a == "--":
            return False
        if a == "--dask" or a.startswith("--dask="):
            return True
    return False


if __name__ == "__main__":
    sys.exit(main())
