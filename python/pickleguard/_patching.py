"""Patching a library's functions and taking the patches away again exactly (the original
objects, by identity): ``Group``, the patches of one library and the guard they use, applied
now or when the library is imported (a ``sys.meta_path`` hook). Each integration module
(``pickleguard.integrations.*``) defines its group; ``install()`` activates them all.
Every patched function reads its group's guard when called: changing the mode is one
assignment, and after deactivation a class that captured a patched base at import time loads
like the original.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ["Group", "lock", "activate", "deactivate", "finish_deactivation"]

lock = threading.RLock()
_MISSING = object()


class Group:
    """The patches of one library and the guard they use."""

    def __init__(self, name: str, module: str, apply: Callable[["Group"], None]) -> None:
        self.name = name
        self.module = module
        self._apply = apply
        self.guard: Any = None
        self.applied = False
        self.patches: List[Tuple[Any, str, Any]] = []
        #: id(patched object) -> (patched object, original), kept until the copies that
        #: modules imported meanwhile made are repaired (``_repair_copies``).
        self.replaced: Dict[int, Tuple[Any, Any]] = {}

    def set(self, owner: Any, attr: str, value: Any) -> None:
        """Replace ``owner.attr`` (a module or class attribute), remembering the original
        as it was in the owner's own namespace (absent: it is deleted again on restore)."""
        original = vars(owner).get(attr, _MISSING)
        self.patches.append((owner, attr, original))
        setattr(owner, attr, value)
        if original is not _MISSING:
            self.replaced[id(value)] = (value, original)
            # What a library copies at import time is the object it finds, wrapped or not.
            inner = getattr(value, "__func__", None)
            if inner is not None:
                self.replaced[id(inner)] = (inner, getattr(original, "__func__", original))

    def apply(self) -> None:
        if not self.applied:
            try:
                self._apply(self)
            except BaseException:
                self.restore()
                raise
            self.applied = True

    def restore(self) -> None:
        for owner, attr, original in reversed(self.patches):
            if original is _MISSING:
                try:
                    delattr(owner, attr)
                except AttributeError:
                    pass
            else:
                setattr(owner, attr, original)
        self.patches.clear()
        self.applied = False

    def guard_of(self) -> Callable[[], Any]:
        return lambda: self.guard


#: Every group ever activated (one per library; an inactive group has no guard and is not
#: applied, so which ones were activated is all ``_any_active`` needs).
_known: List[Group] = []


# ------------------------------------------------------------------ lazy patching on import

class _Loader(importlib.abc.Loader):
    def __init__(self, loader: Any, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        # Put the real loader back before the module runs: nobody sees this wrapper.
        try:
            module.__spec__.loader = self._loader
            module.__loader__ = self._loader
        except AttributeError:
            pass
        self._loader.exec_module(module)
        _imported(self._name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._loader, attr)


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self._busy = threading.local()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in _pending:
            return None
        busy = getattr(self._busy, "names", None)
        if busy is None:
            busy = self._busy.names = set()
        if fullname in busy:
            return None
        busy.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)
        except (ImportError, ValueError):
            return None
        finally:
            busy.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _Loader(spec.loader, fullname)
        return spec


_pending: Dict[str, List[Group]] = {}
_finder: Optional[_Finder] = None


def _imported(module: str) -> None:
    with lock:
        groups = _pending.pop(module, [])
        for g in groups:
            if g.guard is not None:
                try:
                    g.apply()
                except Exception as e:  # a library we do not understand: say so, keep going
                    import warnings
                    warnings.warn(f"pickleguard: could not protect {g.name}: {e!r}",
                                  RuntimeWarning, stacklevel=2)
        _update_finder()


def _update_finder() -> None:
    global _finder
    if _pending and _finder is None:
        _finder = _Finder()
        sys.meta_path.insert(0, _finder)
    elif not _pending and _finder is not None:
        try:
            sys.meta_path.remove(_finder)
        except ValueError:
            pass
        _finder = None


# ------------------------------------------------------------------ copies made while installed

#: The modules loaded when the first group was activated (None: nothing active).
_baseline: Optional[frozenset] = None


def _original_of(value: Any, replaced: Dict[int, Tuple[Any, Any]]) -> Any:
    hit = replaced.get(id(value))
    if hit is None or hit[0] is not value:
        return _MISSING
    original = hit[1]
    # A patch over a copy of another patch (ForkingPickler.loads taken from the patched
    # pickle.loads, then patched itself) unwinds to the first original.
    for _ in range(8):
        nxt = replaced.get(id(original))
        if nxt is None or nxt[0] is not original:
            break
        original = nxt[1]
    return original


def _repair_copies(groups: List[Group]) -> None:
    """What modules imported while installed copied of a patched object
    (``from pickle import loads``, ``ForkingPickler.loads = pickle.loads``,
    ``from pickle import Unpickler as StockUnpickler``) gets the original back, in the
    module and in the classes it defines. Modules loaded before ``install()`` cannot hold
    such a copy from their import; only the new ones are walked, so this stays cheap."""
    replaced: Dict[int, Tuple[Any, Any]] = {}
    for g in groups:
        replaced.update(g.replaced)
        g.replaced = {}
    if not replaced:
        return
    baseline = _baseline or frozenset()
    for name, mod in list(sys.modules.items()):
        if name in baseline or mod is None or name.startswith("pickleguard"):
            continue
        try:
            items = list(vars(mod).items())
        except TypeError:
            continue
        for attr, value in items:
            original = _original_of(value, replaced)
            if original is not _MISSING:
                setattr(mod, attr, original)
            elif isinstance(value, type) and getattr(value, "__module__", None) == name:
                for cattr, cvalue in list(vars(value).items()):
                    original = _original_of(cvalue, replaced)
                    if original is not _MISSING:
                        try:
                            setattr(value, cattr, original)
                        except (AttributeError, TypeError):
                            pass


def _any_active() -> bool:
    return any(g.guard is not None or g.applied for g in _known)


def activate(group: Group, guard: Any) -> None:
    """Point a group at a guard and patch its library now, or when it is imported."""
    global _baseline
    with lock:
        if _baseline is None or not _any_active():
            _baseline = frozenset(sys.modules)
        if group not in _known:
            _known.append(group)
        group.guard = guard
        if group.applied:
            return
        if group.module in sys.modules:
            group.apply()
        else:
            lst = _pending.setdefault(group.module, [])
            if group not in lst:
                lst.append(group)
            _update_finder()


def deactivate(group: Group, repair: bool = True) -> None:
    with lock:
        group.restore()
        group.guard = None
        lst = _pending.get(group.module)
        if lst and group in lst:
            lst.remove(group)
            if not lst:
                del _pending[group.module]
        _update_finder()
        if repair:
            finish_deactivation([group])


def finish_deactivation(groups: List[Group]) -> None:
    """Repair what modules copied of the groups' patches; forget the baseline when nothing
    is active any more."""
    global _baseline
    _repair_copies(groups)
    if not _any_active():
        _baseline = None
