"""pandas: ``pandas.read_pickle``.

The handle pandas opens (decompressing by extension or ``compression=``) is read one pickle at
a time: scanned, then loaded through the restricted unpickler; pandas' fallback for old
pickles (``pandas.compat.pickle_compat.Unpickler``, a ``pickle._Unpickler`` subclass) is
restricted at the class.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

from .._accepted import accepting
from .._analysis import PickleSecurityError
from .._guard import guard_for
from .._io import describe, next_pickle
from .._patching import Group
from .._unpickler import py_find_class
from ._common import patch_group, unpatch_group

__all__ = ["patch", "unpatch", "read_pickle"]


def patch(mode: str = "ml", guard: Any = None, **options: Any) -> Any:
    """Protect ``pandas.read_pickle``. Returns the guard."""
    return patch_group(GROUP, mode, guard, **options)


def unpatch() -> None:
    unpatch_group(GROUP)


_EXCS = (AttributeError, ImportError, ModuleNotFoundError, TypeError, ValueError)


def guarded_read_pickle(guard: Any, filepath_or_buffer: Any, compression: Any = "infer",
                        storage_options: Any = None) -> Any:
    from pandas.compat import pickle_compat
    from pandas.io.common import get_handle

    with get_handle(filepath_or_buffer, "rb", compression=compression, is_text=False,
                    storage_options=storage_options) as handles:
        h = handles.handle
        # The pickle is read from pandas' (decompressing) handle once; both tries below load
        # those bytes from memory, so the fallback neither decompresses nor reads again.
        span = next_pickle(h)
        try:
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("ignore", Warning)
                return guard._load_span(span, describe(h), {})
        except PickleSecurityError:
            raise
        except _EXCS:
            # pandas' compatibility unpickler reads a standard stream with its own opcode
            # handlers: the same bytes, scanned, loaded with the class restricted.
            analysis = guard._check_span(span, describe(filepath_or_buffer))
            with accepting(analysis):
                return _compat_class(guard, pickle_compat.Unpickler)(
                    span.reader(as_bytes=True)).load()


def _compat_class(guard: Any, base: type) -> type:
    def find_class(self: Any, module: str, name: str) -> Any:
        guard._check_global(module, name, "<pandas pickle_compat>")
        return base.find_class(self, module, name)  # type: ignore[attr-defined]

    return type("RestrictedCompatUnpickler", (base,), {"find_class": find_class})


def read_pickle(filepath_or_buffer: Any, compression: Any = "infer",
                storage_options: Any = None, *, mode: str = "ml", guard: Any = None) -> Any:
    """``pandas.read_pickle`` through a guard, without patching anything."""
    g = guard if guard is not None else guard_for(mode)
    return guarded_read_pickle(g, filepath_or_buffer, compression, storage_options)


def make_patched(group: Any, orig: Callable[..., Any]) -> Callable[..., Any]:
    def read_pickle(filepath_or_buffer: Any, compression: Any = "infer",
                    storage_options: Any = None) -> Any:
        guard = group.guard
        if guard is None:
            return orig(filepath_or_buffer, compression, storage_options)
        return guarded_read_pickle(guard, filepath_or_buffer, compression, storage_options)

    read_pickle.__doc__ = orig.__doc__
    read_pickle.__module__ = orig.__module__
    read_pickle._pg_original = orig  # type: ignore[attr-defined]
    return read_pickle


def _apply(g: Group) -> None:
    """``install()``'s patches of pandas: ``read_pickle``, and ``find_class`` of its
    compatibility unpickler."""
    import pandas
    import pandas.io.pickle as pio
    from pandas.compat import pickle_compat

    orig = pio.read_pickle
    patched = make_patched(g, orig)
    g.set(pio, "read_pickle", patched)
    if getattr(pandas, "read_pickle", None) is orig:
        g.set(pandas, "read_pickle", patched)
    cls = pickle_compat.Unpickler
    g.set(cls, "find_class", py_find_class(cls, g.guard_of()))


GROUP = Group("pandas", "pandas", _apply)
