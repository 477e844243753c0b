"""The process's own IPC pickles: multiprocessing, concurrent.futures and torch workers.

``multiprocessing`` moves every task, result, queue item, manager call and the spawn
bootstrap between the processes of one program as pickles. Nothing outside the program can
write them: pipes are inherited by the program's own processes, and sockets are
authenticated with the program's ``authkey``. Their trust is the trust of the program's own
code, which legitimately pickles its own functions (``Pool.map(my_func, ...)``) and the
reduction helpers the stdlib and torch register (``mapstar``, ``rebuild_storage_fd``, ...).
So these paths get their own judgement (docs/security.md, "Inter-process pickles"):

* a global is accepted unless the ml profile's catalogue of dangerous callables puts it in
  a category that runs commands, code or other pickles or imports by name
  (``REFUSED_CATEGORIES``: ``os.system``, ``eval``, ``subprocess.*``, loaders,
  importers, ...), judged by the name as written and by the name of the object it resolves
  to (an alias of ``posix.system`` under another module is still ``posix.system``);
* the sender judges every pickle it writes the same way, so a refusal is an exception in
  the process that sent it (``Pool.map`` raises it, a ``Future`` carries it) instead of a
  worker dying on a task it cannot read and the parent waiting forever.

Only these call sites get it: ``ForkingPickler.loads``/``dumps`` (what ``Connection``,
``Queue``, ``SimpleQueue``, pools, ``concurrent.futures`` and managers use), the spawn and
forkserver bootstrap (``multiprocessing.spawn._main``) and torch's ``ConnectionWrapper``.
``pickle.loads`` called anywhere else keeps the installed guard's full judgement.
"""

from __future__ import annotations

import _pickle
import sys
import threading
import types
from typing import Any, Optional

from . import _native
from ._analysis import Finding, PickleAnalysis, PickleSecurityError
from ._io import MemoryReader
from ._unpickler import compat_names

__all__ = ["IpcJudge", "judge", "loads", "load", "check_dumped", "is_ipc_caller", "substitute"]

#: Catalogue categories refused on the IPC paths: what runs code, commands or other pickles
#: or imports modules by name. The machinery of IPC itself (process, memory: workers, shared
#: memory, file descriptors) and the reflection helpers Python pickles ordinary objects with
#: (bound methods are ``getattr(obj, name)``, ``functools.partial``) are how a program talks
#: to its own workers; ``getattr`` is replaced by a checked one (``checked_getattr``).
REFUSED_CATEGORIES = frozenset({"command execution", "code execution", "deserialization",
                                "import", "debugger/profiler runner"})


class IpcJudge:
    """The IPC decision for one global (see the module docstring)."""

    def __init__(self) -> None:
        # Only the shipped catalogue: no register_safe_class entry, no allowed() scope. The
        # same rule in every process (a spawned worker has neither) is what lets the sender
        # refuse exactly what a worker would refuse, so no worker dies on a task.
        self.policy = _native.Policy("ml")

    def _danger(self, module: str, name: str) -> Optional[str]:
        """The refusal reason when ``module.name`` is refused on an IPC path."""
        names = [(module, name)]
        mapped = compat_names(module, name)
        if mapped is not None:
            names.append(mapped)
        for m, n in names:
            v = self.policy.judge(m, n)
            if v.refused and v.danger is not None and v.category in REFUSED_CATEGORIES:
                return (v.finding or ("", "", f"imports {m}.{n}"))[2]
        return None

    def check(self, module: str, name: str, obj: Any = None, source: str = "<ipc>") -> None:
        why = self._danger(module, name)
        if why is None and obj is not None:
            why = self.check_object(obj, f"{module}.{name}")
        if why is not None:
            raise refusal(module, name, why, source)

    def check_object(self, obj: Any, label: str) -> Optional[str]:
        """Why ``obj`` (what a global or an attribute lookup produced) is refused, or None:
        a module object (IPC pickles never hold one; it is the step to any function of
        it), or an object whose own name the IPC judgement refuses."""
        if isinstance(obj, types.ModuleType):
            return f"{label} is the module {obj.__name__}"
        target = getattr(obj, "__func__", obj)
        real_mod = getattr(target, "__module__", None)
        real_name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
        if not (isinstance(real_mod, str) and isinstance(real_name, str)):
            return None
        why = self._danger(real_mod, real_name)
        return None if why is None else f"{label} is {real_mod}.{real_name}: {why}"

    def check_pickle(self, data: Any, source: str) -> None:
        """Judge every global a pickle names (the sender's side: before it is sent)."""
        report = _native.analyze_pickle(data, self.policy)
        for g in report["globals"]:
            module, name = g["module"], g["name"]
            if substitute(module, name) is None:
                self.check(module, name, _resolve(module, name), source)


def refusal(module: str, name: str, why: str, source: str) -> PickleSecurityError:
    f = Finding("DANGEROUS_IMPORT", "CRITICAL", f"{why}: refused on an inter-process pickle",
                module=module, name=name)
    a = PickleAnalysis(False, "CRITICAL", [f], mode="ml", source=source, stage="load")
    return PickleSecurityError(f"pickleguard refused {module}.{name} in an inter-process "
                               f"pickle ({source}): {why}", a)


def checked_getattr(obj: Any, name: str, *default: Any) -> Any:
    """``getattr`` as an IPC pickle may call it (bound methods): no dunder attribute, and
    the result passes the same judgement as a global."""
    if not isinstance(name, str) or (name.startswith("__") and name.endswith("__")):
        raise refusal("builtins", "getattr", f"getattr(..., {name!r})", "<ipc>")
    value = getattr(obj, name, *default)
    why = judge().check_object(value, f"getattr(..., {name!r})")
    if why is not None:
        raise refusal("builtins", "getattr", why, "<ipc>")
    return value


def _resolve(module: str, name: str) -> Any:
    """The object ``module.name`` already names in this process (nothing is imported)."""
    obj: Any = sys.modules.get(module)
    if obj is None:
        return None
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except Exception:
            return None
    return obj


_judge: Optional[IpcJudge] = None
_judge_lock = threading.Lock()


def judge() -> IpcJudge:
    global _judge
    j = _judge
    if j is None:
        with _judge_lock:
            if _judge is None:
                _judge = IpcJudge()
            j = _judge
    return j


class IpcUnpickler(_pickle.Unpickler):
    """The C unpickler, with the IPC judgement in ``find_class``."""

    def find_class(self, module: str, name: str) -> Any:
        sub = substitute(module, name)
        if sub is not None:
            return sub
        j = judge()
        j.check(module, name, None, "<ipc>")  # before anything is imported
        obj = super().find_class(module, name)
        j.check(module, name, obj, "<ipc>")
        return obj


def substitute(module: str, name: str) -> Any:
    """What an IPC pickle gets for the two globals Python's own reductions use to rebuild
    ordinary objects: ``getattr`` (bound methods) checked, and ``pickle.loads`` (a nested
    pickle, as joblib's memmap reducer sends arrays) as an IPC load."""
    if module in ("builtins", "__builtin__") and name == "getattr":
        return checked_getattr
    if module in ("pickle", "_pickle", "cPickle") and name == "loads":
        return loads
    return None


def loads(data: Any, /, *, fix_imports: bool = True, encoding: str = "ASCII",
          errors: str = "strict", buffers: Any = ()) -> Any:
    return IpcUnpickler(MemoryReader(data), fix_imports=fix_imports, encoding=encoding,
                        errors=errors, buffers=buffers).load()


def load(file: Any, *, fix_imports: bool = True, encoding: str = "ASCII",
         errors: str = "strict", buffers: Any = ()) -> Any:
    return IpcUnpickler(file, fix_imports=fix_imports, encoding=encoding, errors=errors,
                        buffers=buffers).load()


def check_dumped(data: Any) -> None:
    judge().check_pickle(data, "<ipc send>")


def is_ipc_caller(code: Any) -> bool:
    """Whether ``code`` (the caller of ``pickle.load``/``loads``) is a bootstrap or queue of
    multiprocessing or torch that reads its own processes' pickles with plain ``pickle``."""
    sp = sys.modules.get("multiprocessing.spawn")
    if sp is not None and code is getattr(getattr(sp, "_main", None), "__code__", None):
        return True
    tq = sys.modules.get("torch.multiprocessing.queue")
    if tq is not None:
        cw = getattr(tq, "ConnectionWrapper", None)
        recv = getattr(cw, "recv", None)
        if code is getattr(recv, "__code__", None):
            return True
    return False
