"""Library integrations: ``pytorch``, ``joblib``, ``numpy``, ``pandas``, ``dill``.

Each has ``patch(mode='ml', guard=None)`` / ``unpatch()``; ``pickleguard.install()`` applies
them all (and protects ``pickle`` itself). A library imported after ``patch()`` is patched
when it is imported.
"""

from importlib import import_module
from typing import Any

__all__ = ["pytorch", "joblib", "numpy", "pandas", "dill"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return import_module(f"{__name__}.{name}")
    raise AttributeError(name)
