"""``install()`` / ``uninstall()``: put the guard in front of every way a process loads
pickles, and take it away again exactly (the original objects, by identity).

Patches come in groups, one per library, each defined by its integration module: ``pickle``,
``shelve`` and ``multiprocessing`` (``integrations.stdlib``: ``pickle.load``/``loads``/
``Unpickler``, ``_pickle.*``, ``pickle._Unpickler``'s own ``find_class``/``load`` (what
joblib's, pandas' and other subclasses inherit), ``pickle._load``/``_loads``), ``torch``,
``joblib``, ``numpy``, ``pandas`` and ``dill``. A library that is not imported yet is patched
when it is (``_patching``), so ``install()`` can run first thing without importing torch.
"""

from __future__ import annotations

from typing import Any, Dict

from ._guard import PickleGuard
from ._patching import Group, activate, deactivate, finish_deactivation, lock
from .integrations import dill, joblib, numpy, pandas, pytorch, stdlib

__all__ = ["install", "uninstall", "is_installed", "installed_guard"]

#: Every group, in the order ``install()`` activates them.
GROUPS: Dict[str, Group] = {g.name: g for g in (
    stdlib.PICKLE, pytorch.GROUP, joblib.GROUP, numpy.GROUP, pandas.GROUP, dill.GROUP,
    stdlib.SHELVE, stdlib.MULTIPROCESSING)}


def install(mode: str = "ml", guard: Any = None, **options: Any) -> Any:
    """Protect every way this process loads pickles: ``pickle.load``/``loads``/``Unpickler``
    (and ``_pickle``'s, and the pure-Python ``pickle._Unpickler``/``_load``/``_loads``),
    ``torch.load``, ``joblib.load``, ``numpy.load(allow_pickle=True)``,
    ``pandas.read_pickle`` and ``dill.load``/``loads``. Each load is scanned, then runs
    through the restricted unpickler. Idempotent (a second call only changes the guard) and
    thread-safe. Returns the guard in use. ``options`` go to ``PickleGuard``."""
    if guard is None:
        guard = PickleGuard(mode, **options)
    elif options or mode != "ml":
        raise TypeError("pass either a guard or a mode and options, not both")
    with lock:
        for g in GROUPS.values():
            activate(g, guard)
    return guard


def uninstall() -> None:
    """Undo ``install()`` (and the integrations' ``patch()``): every patched attribute gets
    its original object back. Safe to call when nothing is installed."""
    with lock:
        for g in GROUPS.values():
            deactivate(g, repair=False)
        finish_deactivation(list(GROUPS.values()))


def is_installed() -> bool:
    return any(g.guard is not None for g in GROUPS.values())


def installed_guard(group: str = "pickle") -> Any:
    """The guard a group currently uses (None when not installed)."""
    return GROUPS[group].guard
