"""pickleguard: stop malicious pickle payloads before they run.

A Rust core analyses what loading a pickle would import and call, without running it; a
restricted unpickler enforces the same policy while loading. ``install()`` puts both in front
of ``pickle``, ``torch.load``, ``joblib.load``, ``numpy.load``, ``pandas.read_pickle`` and
``dill``. See docs/python.md.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Union

from . import _native
from ._analysis import Finding, NotAPickleError, PickleAnalysis, PickleSecurityError
from ._audit import DEFAULT_LOG_FILE
from ._guard import MODES, PickleGuard, guard_for, register_safe_class, unregister_safe_class
from ._install import install, installed_guard, is_installed, uninstall
from ._scope import allowed
from ._unpickler import RestrictedUnpickler
from .remote import scan_url

__version__: str = _native.__version__

__all__ = [
    "analyze_pickle", "scan_file", "scan_bytes", "safe_load", "safe_loads", "PickleGuard",
    "PickleSecurityError", "NotAPickleError", "PickleAnalysis", "Finding",
    "RestrictedUnpickler", "register_safe_class", "unregister_safe_class", "allowed", "install",
    "uninstall", "is_installed", "installed_guard",
    "MODES", "DEFAULT_LOG_FILE", "__version__", "scan_url",
]


def analyze_pickle(data: Any, *, mode: str = "ml", **options: Any) -> PickleAnalysis:
    """Analyse raw pickle bytes (any bytes-like object; not copied) without running them.
    ``options`` are those of ``PickleGuard`` (``allowed_modules``, ``fail_on``, ...)."""
    return guard_for(mode, **options).analyze(data)


def scan_bytes(data: Any, *, mode: str = "ml", **options: Any) -> PickleAnalysis:
    """Analyse a whole file's bytes, whatever the container (torch, joblib, numpy, zip,
    compressed)."""
    return guard_for(mode, **options).scan(data)


def scan_file(path: Union[str, "os.PathLike[str]"], *, mode: str = "ml",
              cache: Optional[Union[str, "os.PathLike[str]"]] = None,
              **options: Any) -> PickleAnalysis:
    """Scan a file, memory-mapped, whatever the container. Never loads anything.
    ``cache``: a verdict cache directory (the command line's ``--cache``; docs/python.md)."""
    return guard_for(mode, **options).scan_file(path, cache=cache)


def safe_load(source: Any, *, mode: str = "ml", guard: Optional[PickleGuard] = None,
              **kwargs: Any) -> Any:
    """Scan, then load with the restricted unpickler; raise ``PickleSecurityError``
    (carrying ``.analysis``) on a violation.

    ``source``: a path, a binary file object (read from its position) or bytes. PyTorch
    checkpoints, joblib dumps, ``.npy``/``.npz`` and compressed pickles are recognised by
    content. Keyword arguments of ``PickleGuard`` (``allowed_modules``, ``blocked_modules``,
    ``fail_on``, ``policy_file``, ``log_file``) configure the policy; others go to the
    loader (``encoding=``, ``map_location=``, ...).
    """
    g, rest = _split_options(mode, guard, kwargs)
    return g.load(source, **rest)


def safe_loads(data: Any, *, mode: str = "ml", guard: Optional[PickleGuard] = None,
               **kwargs: Any) -> Any:
    """``safe_load`` for bytes-like data (``pickle.loads``'s counterpart)."""
    g, rest = _split_options(mode, guard, kwargs)
    return g.loads(data, **rest)


_GUARD_OPTIONS = ("allowed_modules", "blocked_modules", "fail_on", "policy_file", "log_file")


def _split_options(mode: str, guard: Optional[PickleGuard], kwargs: Any) -> Any:
    opts = {k: kwargs.pop(k) for k in list(kwargs) if k in _GUARD_OPTIONS}
    if guard is not None:
        if opts:
            raise TypeError("pass either guard= or policy options, not both")
        return guard, kwargs
    return guard_for(mode, **opts), kwargs
