"""What "default behaviour" means for a method an unpickling operation runs.

docs/policy-format.md: an operation may be granted where what it runs is the default
behaviour, or a custom method that was reviewed. Both tools/gen_profile.py (which grants
operations) and tools/review_behaviour.py (which checks the grants against the methods'
code) decide "default" here, so the two cannot disagree about a class.

A method is default when the class that defines it (the first class of the MRO whose
``__dict__`` holds it) is one of the interpreter's plain data types below, or a builtin
exception class: their C methods allocate, store and convert the values they are given
(``bytearray.append`` stores one byte, ``dict.__setitem__`` inserts, ``BaseException.__init__``
stores ``args``) and never call, import, open or evaluate anything of their own. Every other
defining class is custom: a review note must say what it does.

Left out on purpose although they live in ``builtins``: ``map``, ``filter``, ``enumerate``,
``zip``, ``reversed``, ``memoryview``, ``property``, ``super``, ``staticmethod``, ``classmethod``
(they wrap or call what they are given: each one the profile grants carries its own note).
"""
from __future__ import annotations

import builtins

#: The plain data types of ``builtins`` whose methods are the default behaviour.
DEFAULT_TYPES = frozenset({
    "builtins.object", "builtins.type", "builtins.dict", "builtins.list", "builtins.set",
    "builtins.frozenset", "builtins.tuple", "builtins.int", "builtins.bool", "builtins.float",
    "builtins.complex", "builtins.str", "builtins.bytes", "builtins.bytearray",
    "builtins.slice", "builtins.range",
})

#: Builtin exception classes (``BaseException``'s C methods store ``args`` and attributes).
BUILTIN_EXCEPTIONS = frozenset(
    "builtins." + n for n, v in vars(builtins).items()
    if isinstance(v, type) and issubclass(v, BaseException))


def qualname(cls: type) -> str:
    """``module.qualname`` of a class, the spelling both tools record owners in."""
    return f"{cls.__module__}.{cls.__qualname__}"


def is_default_owner(owner: str) -> bool:
    """Whether a method defined by the class ``owner`` (``module.qualname``) is default."""
    return owner in DEFAULT_TYPES or owner in BUILTIN_EXCEPTIONS


def defining_class(cls: type, method: str) -> type | None:
    """The first class of ``cls``'s MRO that defines ``method``, or None."""
    return next((c for c in cls.__mro__ if method in c.__dict__), None)


def custom_methods(cls: type, methods: tuple[str, ...]) -> dict[str, type]:
    """method -> defining class, for each of ``methods`` that ``cls`` runs and that is not
    default behaviour."""
    out = {}
    for m in methods:
        owner = defining_class(cls, m)
        if owner is not None and not is_default_owner(qualname(owner)):
            out[m] = owner
    return out
