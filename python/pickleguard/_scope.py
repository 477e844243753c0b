"""Allows that last for a block of code: ``with pickleguard.allowed(...)``.

The entries live in a ``ContextVar``, so a scope covers the thread (or asyncio task) that
entered it and nothing else: another thread loading at the same time keeps its own policy.
Every ``PickleGuard`` asks ``scoped()`` when it judges, and judges with its own policy plus
these entries (the static scan and the restricted unpickler alike).
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator, Tuple

from ._entries import split_entry

Entry = Tuple[str, str]

_SCOPED: "contextvars.ContextVar[Tuple[Entry, ...]]" = contextvars.ContextVar(
    "pickleguard_allowed", default=())


def scoped() -> Tuple[Entry, ...]:
    """The entries allowed by the ``allowed()`` blocks this code runs in."""
    return _SCOPED.get()


@contextlib.contextmanager
def allowed(*entries: Any) -> Iterator[Tuple[Entry, ...]]:
    """Allow globals for the duration of a ``with`` block, in this thread or task only.

    Entries take the forms of ``register_safe_class``: a class or function, ``'module:Name'``,
    ``('module', 'Name')``, ``'module'`` (every plain name of it). Blocks nest; leaving one
    restores exactly what was allowed before it.
    """
    add = tuple(split_entry(e) for e in entries)
    token = _SCOPED.set(_SCOPED.get() + tuple(e for e in add if e not in _SCOPED.get()))
    try:
        yield add
    finally:
        _SCOPED.reset(token)
