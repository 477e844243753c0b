"""dill: ``dill.load`` / ``dill.loads``.

dill's ``Unpickler`` subclasses the C ``pickle.Unpickler`` at import time; its ``find_class``
is patched on the class, and ``load``/``loads`` scan the pickle first. dill's helpers that
rebuild functions and code objects are code execution: the ``ml`` profile flags them.
"""

from __future__ import annotations

from typing import Any, Callable

from .._io import describe, next_pickle
from .._patching import Group
from .._unpickler import py_find_class
from ._common import patch_group, unpatch_group

__all__ = ["patch", "unpatch"]


def patch(mode: str = "ml", guard: Any = None, **options: Any) -> Any:
    """Protect ``dill.load`` / ``dill.loads``. Returns the guard."""
    return patch_group(GROUP, mode, guard, **options)


def unpatch() -> None:
    unpatch_group(GROUP)


def make_patched(group: Any, orig_load: Callable[..., Any], orig_loads: Callable[..., Any],
                 unpickler_cls: type) -> Any:

    def _load(src: Any, ignore: Any, kwds: Any, buffer: bool) -> Any:
        guard = group.guard
        span = next_pickle(src, buffer)
        try:
            guard._check_span(span, describe(src))
        except BaseException:
            span.commit(span.end)
            raise
        reader = span.reader()
        try:
            return unpickler_cls(reader, ignore=ignore, **kwds).load()
        finally:
            span.commit(reader.pos)

    def load(file: Any, ignore: Any = None, **kwds: Any) -> Any:
        if group.guard is None:
            return orig_load(file, ignore, **kwds)
        return _load(file, ignore, kwds, False)

    def loads(str: Any, ignore: Any = None, **kwds: Any) -> Any:  # noqa: A002 (dill's name)
        if group.guard is None:
            return orig_loads(str, ignore, **kwds)
        return _load(str, ignore, kwds, True)

    for f, o in ((load, orig_load), (loads, orig_loads)):
        f.__doc__ = o.__doc__
        f.__module__ = o.__module__
        setattr(f, "_pg_original", o)
    return load, loads


def _apply(g: Group) -> None:
    """``install()``'s patches of dill: ``dill.load``/``loads``, and its ``Unpickler``'s
    ``find_class``."""
    import dill
    import dill._dill as dd

    cls = dd.Unpickler
    load, loads = make_patched(g, dd.load, dd.loads, cls)
    for mod in (dill, dd):
        if getattr(mod, "load", None) is dd.load:
            g.set(mod, "load", load)
        if getattr(mod, "loads", None) is dd.loads:
            g.set(mod, "loads", loads)
    g.set(cls, "find_class", py_find_class(cls, g.guard_of()))


GROUP = Group("dill", "dill", _apply)
