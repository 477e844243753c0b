"""Shared by the integrations: patch/unpatch of one group, pre-scans of files."""

from __future__ import annotations

import io
import os
from typing import Any, Optional

from .._codecs import read_stream
from .._guard import PickleGuard
from .._io import _real_file, describe, is_pathlike, map_fd, map_path
from .._patching import Group, activate, deactivate


def patch_group(group: Group, mode: str = "ml", guard: Any = None, **options: Any) -> Any:
    """An integration's ``patch()``: its group activated with ``guard`` (a new one when
    None). Returns the guard."""
    if guard is None:
        guard = PickleGuard(mode, **options)
    activate(group, guard)
    return guard


def unpatch_group(group: Group) -> None:
    deactivate(group)


def prescan(guard: Any, f: Any, torch_load: bool = False,
            npz_load: bool = False) -> Optional[Any]:
    """Scan a whole file (every container) before a library loads it: a path (mapped) or a
    seekable file object (read from its position). A non-seekable stream is left alone (the
    restricted unpickler still checks what it loads). ``torch_load``, ``npz_load``: see
    ``PickleGuard.check_file``.

    A file object that cannot be mapped (a ``GzipFile``, any other stream) is read once and
    its bytes are returned: the caller hands the loader exactly these bytes (``io.BytesIO``),
    so what is loaded is what was scanned and a decompressing file is decompressed once. The
    file is then left after what was read. Otherwise None, and the file's position is
    unchanged."""
    if is_pathlike(f):
        p = os.fspath(f)
        guard.check_file(map_path(p), p, torch_load, npz_load=npz_load)
        return None
    if isinstance(f, io.BytesIO):
        pos = f.tell()
        guard.check_file(memoryview(f.getvalue())[pos:], describe(f), torch_load, npz_load=npz_load)
        return None
    try:
        if not f.seekable():
            return None
        pos = f.tell()
    except (AttributeError, OSError, ValueError):
        return None
    if _real_file(f):
        try:
            whole = map_fd(f.fileno())
        except (OSError, ValueError):
            whole = None
        if whole is not None:
            guard.check_file(memoryview(whole)[pos:] if pos else whole, describe(f), torch_load, npz_load=npz_load)
            return None
    try:
        data = read_stream(guard, f, describe(f))
    except TypeError:
        f.seek(pos)  # a text file: the loader gives its own error
        return None
    guard.check_file(data, describe(f), torch_load, npz_load=npz_load)
    return data
