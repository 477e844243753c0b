"""Which globals a load may import: exactly those the passing static scan of the bytes being
loaded saw (``PickleAnalysis.globals``). The static scan judges each global with its use and
arguments (``getattr(<enum class>, 'MEMBER')``, ``functools.partial`` around an allowed
function), which a ``find_class(module, name)`` question cannot; carrying its accepted set to
``find_class`` makes the loader take the scan's decision instead of a second, name-only one.
A global the scan never saw is refused: that is the run-time wall against a parser
differential. Where no scan of the stream precedes the load (an unpickler the guard does not
feed), ``find_class`` falls back to judging the name alone, which is stricter.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, FrozenSet, Iterator, Optional, Tuple

__all__ = ["accepted_globals", "accepting", "current"]

Accepted = FrozenSet[Tuple[str, str]]

_CURRENT: "contextvars.ContextVar[Optional[Accepted]]" = contextvars.ContextVar(
    "pickleguard_accepted", default=None)


def accepted_globals(analysis: Any) -> Optional[Accepted]:
    """The (module, name) pairs, as spelled in the pickle, of a passing analysis; None when
    it did not pass (audit mode loads anyway, judged name by name)."""
    if analysis is None or not analysis.is_safe or not analysis.complete:
        return None
    return frozenset((g["module"], g["name"]) for g in analysis.globals)


@contextlib.contextmanager
def accepting(analysis: Any) -> Iterator[None]:
    """While loading what ``analysis`` scanned with an unpickler the guard cannot hand the
    set to directly (joblib's, pandas' compat one), its ``find_class`` asks this."""
    token = _CURRENT.set(accepted_globals(analysis))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current() -> Optional[Accepted]:
    return _CURRENT.get()
