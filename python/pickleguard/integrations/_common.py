"""Shared by the integrations: patch/unpatch of one group, pre-scans of files."""

from __future__ import annotations

import io
import os
from typing import Any, Optional

from .._io import _real_file, describe, is_pathlike, map_fd, map_path


def patch_group(name: str, mode: str = "ml", guard: Any = None, **options: Any) -> Any:
    from .._guard import PickleGuard
    from .._install import activate
    from ._patches import GROUPS
    if guard is None:
        guard = PickleGuard(mode, **options)
    activate(GROUPS[name], guard)
    return guard


def unpatch_group(name: str) -> None:
    from .._install import deactivate
    from ._patches import GROUPS
    deactivate(GROUPS[name])


def prescan(guard: Any, f: Any, torch_load: bool = False) -> None:
    """Scan a whole file (every container) before a library loads it: a path (mapped) or a
    seekable file object (read from its position, which is restored). A non-seekable stream
    is left alone (the restricted unpickler still checks what it loads). ``torch_load``: see
    ``PickleGuard.check_file``."""
    if is_pathlike(f):
        p = os.fspath(f)
        guard.check_file(map_path(p), p, torch_load)
        return
    if isinstance(f, io.BytesIO):
        pos = f.tell()
        guard.check_file(memoryview(f.getvalue())[pos:], describe(f), torch_load)
        return
    try:
        if not f.seekable():
            return
        pos = f.tell()
    except (AttributeError, OSError, ValueError):
        return
    data: Optional[Any] = None
    if _real_file(f):
        try:
            whole = map_fd(f.fileno())
            data = memoryview(whole)[pos:] if pos else whole
        except (OSError, ValueError):
            data = None
    if data is None:
        data = f.read()
        f.seek(pos)
        if isinstance(data, str):
            return
    guard.check_file(data, describe(f), torch_load)
