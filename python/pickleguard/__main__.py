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
    return _native.run_cli(args)


if __name__ == "__main__":
    sys.exit(main())
