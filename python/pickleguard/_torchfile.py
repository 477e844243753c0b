"""A PyTorch checkpoint (zip or legacy format) read through a guard: ``torch.load`` as torch
defines it, unpickling with the guard's restricted ``pickle_module`` (torch keeps its own
``persistent_load`` for the tensors)."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

__all__ = ["original_load", "load_checkpoint"]


def original_load() -> Callable[..., Any]:
    """``torch.load`` as torch defines it, whether patched or not."""
    import torch.serialization as ser
    f = ser.load
    return getattr(f, "_pg_original", f)


def load_checkpoint(guard: Any, opener: Callable[[], Any], path: Optional[str],
                    kwargs: Dict[str, Any]) -> Any:
    """``safe_load`` of a checkpoint the guard scanned (its ``data.pkl`` is scanned as the
    restricted unpickler reads it)."""
    tk = {k: v for k, v in kwargs.items() if k not in ("weights_only", "pickle_module")}
    pm = guard.pickle_module_for(None, label=f"{path}: data.pkl") if path else guard.pickle_module
    if path is not None and tk.get("mmap"):
        return original_load()(path, pickle_module=pm, weights_only=False, **tk)
    with opener() as f:
        return original_load()(f, pickle_module=pm, weights_only=False, **tk)
