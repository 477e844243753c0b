"""PyTorch: ``torch.load``.

``patch()`` makes ``torch.load`` scan the file or buffer first (zip and legacy formats, every
pickle in it); with ``weights_only=False`` (or a torch that defaults to it) it then loads
through the restricted unpickler (torch's ``pickle_module`` hook: torch keeps its own
``persistent_load`` for tensors), with ``weights_only=True`` torch's own loader does the
loading after the scan.
"""

from __future__ import annotations

import io
import os
from typing import Any, Callable, Tuple

from .._entries import split_entry
from .._guard import guard_for
from .._io import describe
from .._patching import Group
from .._scope import allowed
from .._torchfile import original_load
from ._common import patch_group, prescan, unpatch_group

__all__ = ["patch", "unpatch", "load", "original_load"]

_TRUE = ("1", "y", "yes", "true")


def patch(mode: str = "ml", guard: Any = None, **options: Any) -> Any:
    """Protect ``torch.load`` (and ``torch.serialization.load``). Returns the guard."""
    return patch_group(GROUP, mode, guard, **options)


def unpatch() -> None:
    unpatch_group(GROUP)


def _weights_only(weights_only: Any, pickle_module: Any) -> bool:
    """What ``torch.load`` would decide (its default and its environment overrides)."""
    import torch.serialization as ser
    not_set = weights_only is None
    if not_set:
        default = getattr(ser, "_default_to_weights_only", None)
        wo = bool(default(pickle_module)) if default is not None else False
    else:
        wo = bool(weights_only)
    if os.getenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "0").lower() in _TRUE:
        wo = True
    elif os.getenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "0").lower() in _TRUE and not_set:
        wo = False
    return wo


def torch_allowed() -> Tuple[Tuple[str, str], ...]:
    """The globals the user allowed torch's own loader (``torch.serialization.add_safe_globals``
    and the ``safe_globals`` block in force): pickleguard allows them for that load too."""
    import torch.serialization as ser
    get = getattr(ser, "get_safe_globals", None)
    if get is None:
        return ()
    now = list(get())
    if _ALLOWED_CACHE and len(now) == len(_ALLOWED_CACHE[0]) and all(
            a is b for a, b in zip(now, _ALLOWED_CACHE[0])):
        return _ALLOWED_CACHE[1]
    out = []
    for g in now:
        if isinstance(g, tuple) and len(g) == 2 and isinstance(g[1], str):
            module, _, name = g[1].rpartition(".")  # (obj, "module.name"): the name as pickled
            if module:
                out.append((module, name))
            continue
        try:
            out.append(split_entry(g))
        except TypeError:
            continue
    _ALLOWED_CACHE[:] = [now, tuple(out)]
    return _ALLOWED_CACHE[1]


#: [the last get_safe_globals() entries (held, so compared by identity), what they allow]:
#: every guarded torch.load asks, and the list rarely changes.
_ALLOWED_CACHE: list = []


def guarded_load(guard: Any, orig: Callable[..., Any], f: Any, map_location: Any = None,
                 pickle_module: Any = None, *, weights_only: Any = None, mmap: Any = None,
                 **pickle_load_args: Any) -> Any:
    with allowed(*torch_allowed()):
        return _guarded_load(guard, orig, f, map_location, pickle_module, weights_only=weights_only,
                             mmap=mmap, **pickle_load_args)


def _guarded_load(guard: Any, orig: Callable[..., Any], f: Any, map_location: Any = None,
                  pickle_module: Any = None, *, weights_only: Any = None, mmap: Any = None,
                  **pickle_load_args: Any) -> Any:
    wo = _weights_only(weights_only, pickle_module)
    # Loaded restricted, the data.pkl torch unpickles is scanned as it is read: the pre-scan
    # leaves it out (scanned once). torch's own weights_only loader gets the whole pre-scan.
    label = f"{describe(f)}: data.pkl"
    read = prescan(guard, f, torch_load=not wo)
    if read is not None:
        # A stream the pre-scan read into memory (a GzipFile of a checkpoint): torch reads
        # the scanned bytes, and nothing is decompressed again.
        f = io.BytesIO(read)
    if wo:
        return orig(f, map_location, pickle_module, weights_only=True, mmap=mmap,
                    **pickle_load_args)
    pm = guard.pickle_module_for(pickle_module, label=label)
    return orig(f, map_location, pm, weights_only=False, mmap=mmap, **pickle_load_args)


def load(f: Any, map_location: Any = None, pickle_module: Any = None, *, mode: str = "ml",
         guard: Any = None, **kwargs: Any) -> Any:
    """``torch.load`` through a guard, without patching anything."""
    g = guard if guard is not None else guard_for(mode)
    return guarded_load(g, original_load(), f, map_location, pickle_module, **kwargs)


def make_patched(group: Any, orig: Callable[..., Any]) -> Callable[..., Any]:
    def load(f: Any, map_location: Any = None, pickle_module: Any = None, *,
             weights_only: Any = None, mmap: Any = None, **pickle_load_args: Any) -> Any:
        guard = group.guard
        if guard is None:
            return orig(f, map_location, pickle_module, weights_only=weights_only, mmap=mmap,
                        **pickle_load_args)
        return guarded_load(guard, orig, f, map_location, pickle_module,
                            weights_only=weights_only, mmap=mmap, **pickle_load_args)

    load.__doc__ = orig.__doc__
    load.__name__ = "load"
    load.__qualname__ = "load"
    load.__module__ = orig.__module__
    load._pg_original = orig  # type: ignore[attr-defined]
    return load


def _apply(g: Group) -> None:
    """``install()``'s patches of torch: ``torch.load`` and ``torch.serialization.load``."""
    import torch
    import torch.serialization as ser

    orig = ser.load
    patched = make_patched(g, orig)
    g.set(ser, "load", patched)
    if getattr(torch, "load", None) is orig:
        g.set(torch, "load", patched)


GROUP = Group("torch", "torch", _apply)
