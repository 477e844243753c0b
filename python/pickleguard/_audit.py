"""Audit mode: every finding goes to the ``pickleguard`` logger, which also writes to a file
(``pickleguard.log`` in the working directory by default)."""

from __future__ import annotations

import logging
import os
import threading
from typing import Dict, Optional

from . import _native
from ._analysis import PickleAnalysis

logger = logging.getLogger("pickleguard")

#: Where audit mode writes when no ``log_file`` is given.
DEFAULT_LOG_FILE = "pickleguard.log"

_lock = threading.Lock()
_handlers: Dict[str, logging.Handler] = {}


def _file_handler(path: Optional[str]) -> None:
    """Attach (once per file) a handler writing the ``pickleguard`` logger to ``path``."""
    if not path:
        return
    key = os.path.abspath(os.fspath(path))
    with _lock:
        if key in _handlers:
            return
        h = logging.FileHandler(key, encoding="utf-8", delay=True)
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        _handlers[key] = h
        logger.addHandler(h)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)


def log_analysis(analysis: PickleAnalysis, source: str, log_file: Optional[str],
                 blocked: bool = False) -> None:
    """Log each finding of an analysis (audit mode), then one summary line."""
    _file_handler(log_file)
    verb = "refused" if blocked else "allowed (audit mode)"
    # One line per record, nothing a terminal would act on: source, member and description
    # come from the file.
    safe = _native.terminal_safe
    source = safe(source)
    for f in analysis.findings:
        where = f" in {safe(f.member)}" if f.member else ""
        logger.warning("%s: [%s] %s at byte %d%s: %s", source, f.severity, f.type, f.position,
                       where, safe(f.description))
    if analysis.findings:
        logger.warning("%s: %s, %s: %d finding(s), risk %s", source, analysis.stage, verb,
                       len(analysis.findings), analysis.risk_level)
