"""The forms an allowed or blocked global is written in (``register_safe_class``,
``PickleGuard(allowed_modules=...)``, ``pickleguard.allowed(...)``, torch's safe globals)."""

from __future__ import annotations

from typing import Any, Tuple


def split_entry(entry: Any, default_name: str = "*") -> Tuple[str, str]:
    """``'numpy'`` -> (numpy, *); ``'pkg.mod:Name'`` / ``('pkg.mod', 'Name')`` -> exact;
    ``'torch.nn.modules.*'`` -> every module under the prefix; a class or function -> itself."""
    if isinstance(entry, tuple) and len(entry) == 2:
        return str(entry[0]), str(entry[1])
    if isinstance(entry, str):
        if ":" in entry:
            m, n = entry.rsplit(":", 1)
            return m.strip(), n.strip()
        return entry.strip(), default_name
    mod = getattr(entry, "__module__", None)
    qual = getattr(entry, "__qualname__", None)
    if isinstance(mod, str) and isinstance(qual, str):
        return mod, qual
    raise TypeError(f"expected 'module', 'module:name', (module, name) or a class, got {entry!r}")
