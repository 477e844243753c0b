"""What an analysis returns (`PickleAnalysis`, `Finding`) and the error a refused load raises."""

from __future__ import annotations

import ast
import json
import pickle
from typing import Any, Dict, Iterable, List, Optional

from . import _native

__all__ = ["FINDING_TYPES", "Finding", "PickleAnalysis", "PickleSecurityError", "SEVERITIES"]

#: Every finding type a report can carry (docs/report-schema.md), as the core lists them.
FINDING_TYPES = _native.FINDING_TYPES

#: Severities, lowest first.
SEVERITIES = ("SAFE", "LOW", "MEDIUM", "HIGH", "CRITICAL")

_FIELDS = ("type", "severity", "description", "position", "module", "name", "callable",
           "args", "member")


_NOT_LITERAL = object()


def literal_or(text: str, default: Any = _NOT_LITERAL) -> Any:
    """``ast.literal_eval(text)``, or ``default`` when it fails, whatever the failure.

    CPython 3.11 and 3.12 keep the AST converter's recursion depth in state shared by every
    thread (gh-106905): under threads ``literal_eval`` can raise a spurious ``SystemError``
    ("AST constructor recursion depth mismatch") on valid input. That failure is retried
    once; any other exception means "not a literal" and never reaches the caller, so a
    verdict or a refusal is never replaced by an interpreter error."""
    for attempt in range(2):
        try:
            return ast.literal_eval(text)
        except SystemError:
            if attempt:
                break
        except Exception:
            break
    return text if default is _NOT_LITERAL else default


def _literal(text: str) -> Any:
    """A rendered argument back as a Python value when it is a literal (`'whoami'` ->
    `'whoami'`); otherwise the rendering itself (`<computed>`, a shortened literal)."""
    return literal_or(text)


class Finding:
    """One thing loading would do that the policy does not accept (schema:
    docs/report-schema.md).

    ``args`` holds the literal arguments as Python values where they are literals;
    ``raw_args`` the renderings the scanner produced (each at most 120 characters).
    """

    __slots__ = ("type", "severity", "description", "position", "module", "name", "callable",
                 "args", "raw_args", "member")

    def __init__(self, type: str, severity: str, description: str, position: int = 0,
                 module: Optional[str] = None, name: Optional[str] = None,
                 callable: Optional[str] = None, args: Optional[List[Any]] = None,
                 member: Optional[str] = None, raw_args: Optional[List[str]] = None) -> None:
        if type not in FINDING_TYPES:
            raise ValueError(f"unknown finding type {type!r} (known: {', '.join(FINDING_TYPES)})")
        self.type = type
        self.severity = severity
        self.description = description
        self.position = position
        self.module = module
        self.name = name
        self.callable = callable
        self.raw_args = raw_args
        self.args = args if args is not None else (
            [_literal(a) for a in raw_args] if raw_args is not None else None)
        self.member = member

    @classmethod
    def _from_dict(cls, d: Dict[str, Any]) -> "Finding":
        return cls(d["type"], d["severity"], d["description"], d.get("position", 0),
                   d.get("module"), d.get("name"), d.get("callable"), None, d.get("member"),
                   raw_args=d.get("args"))

    def to_dict(self) -> Dict[str, Any]:
        """The finding as in the JSON report (``args`` are the renderings)."""
        d = {k: getattr(self, k) for k in _FIELDS}
        d["args"] = self.raw_args if self.raw_args is not None else (
            None if self.args is None else [repr(a) for a in self.args])
        return d

    def __repr__(self) -> str:
        parts = [f"type={self.type!r}", f"severity={self.severity!r}"]
        for k in ("module", "name", "callable", "args"):
            v = getattr(self, k)
            if v is not None:
                parts.append(f"{k}={v!r}")
        parts.append(f"description={self.description!r}")
        parts.append(f"position={self.position}")
        if self.member is not None:
            parts.append(f"member={self.member!r}")
        return f"Finding({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Finding):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


class PickleAnalysis:
    """The verdict on a pickle or a file.

    ``is_safe`` is false when a finding reaches the mode's threshold (MEDIUM by default);
    ``risk_level`` is the worst severity found; ``complete`` says whether everything a loader
    could read was analysed (a clean report always means "read to the end, found nothing").
    """

    __slots__ = ("is_safe", "risk_level", "findings", "format", "complete", "stopped_by",
                 "globals", "mode", "source", "stage")

    def __init__(self, is_safe: bool, risk_level: str, findings: Iterable[Finding] = (), *,
                 format: str = "raw_pickle", complete: bool = True,
                 stopped_by: Optional[str] = None,
                 globals: Optional[List[Dict[str, Any]]] = None, mode: str = "ml",
                 source: Optional[str] = None, stage: str = "scan") -> None:
        self.is_safe = is_safe
        self.risk_level = risk_level
        self.findings = list(findings)
        self.format = format
        self.complete = complete
        self.stopped_by = stopped_by
        self.globals = globals if globals is not None else []
        self.mode = mode
        #: The path (or a description of the object) that was analysed.
        self.source = source
        #: ``"scan"``: found by the static analysis; ``"load"``: refused by the restricted
        #: unpickler while loading.
        self.stage = stage

    @classmethod
    def _from_report(cls, r: Dict[str, Any], source: Optional[str] = None) -> "PickleAnalysis":
        return cls(r["is_safe"], r["risk_level"], [Finding._from_dict(f) for f in r["findings"]],
                   format=r["format"], complete=r["complete"], stopped_by=r["stopped_by"],
                   globals=r["globals"], mode=r.get("mode", "ml"), source=source)

    @property
    def is_pickle(self) -> bool:
        """False when the data cannot run anything as a pickle (``format == 'not_pickle'``)."""
        return self.format != "not_pickle"

    def to_dict(self) -> Dict[str, Any]:
        """The report as in ``pickleguard scan --format json`` (one file entry)."""
        return {
            "path": self.source,
            "format": self.format,
            "is_safe": self.is_safe,
            "risk_level": self.risk_level,
            "complete": self.complete,
            "stopped_by": self.stopped_by,
            "findings": [f.to_dict() for f in self.findings],
            "globals": self.globals,
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def summary(self, limit: int = 3) -> str:
        """One line: the verdict and the worst findings."""
        if not self.findings:
            return f"{self.risk_level} ({self.format})"
        order = sorted(self.findings, key=lambda f: -SEVERITIES.index(f.severity)
                       if f.severity in SEVERITIES else 0)
        shown = "; ".join(
            f"{f.type} at byte {f.position}{' in ' + f.member if f.member else ''}: "
            f"{f.description}" for f in order[:limit])
        more = len(self.findings) - limit
        # Member names and descriptions come from the file: one line, nothing a terminal or a
        # log reader would act on.
        return _native.terminal_safe(
            f"{self.risk_level}: {shown}" + (f"; and {more} more" if more > 0 else ""))

    def __repr__(self) -> str:
        return (f"PickleAnalysis(is_safe={self.is_safe!r}, risk_level={self.risk_level!r}, "
                f"findings={self.findings!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PickleAnalysis):
            return NotImplemented
        return self.to_dict() == other.to_dict() and self.mode == other.mode

    __hash__ = None  # type: ignore[assignment]


class PickleSecurityError(pickle.UnpicklingError):
    """Loading was refused: the static scan found something the policy does not accept, or
    the restricted unpickler was asked for a global it refuses. ``analysis`` says what (as
    the file wrote it); the message is terminal-safe (``_native.terminal_safe``), as the
    paths and global names in it come from the file."""

    def __init__(self, message: str, analysis: PickleAnalysis) -> None:
        super().__init__(_native.terminal_safe(message))
        self.analysis = analysis

    @property
    def findings(self) -> List[Finding]:
        return self.analysis.findings

    def __reduce__(self) -> Any:
        return (type(self), (str(self), self.analysis))


class NotAPickleError(pickle.UnpicklingError):
    """The data is not a pickle: it breaks before anything that could import or call, so
    loading it fails and nothing ran (a ``config.json`` handed to ``safe_load``).
    ``analysis`` is the scan that says so (format ``not_pickle``); the message is
    terminal-safe, as ``PickleSecurityError``'s."""

    def __init__(self, message: str, analysis: PickleAnalysis) -> None:
        super().__init__(_native.terminal_safe(message))
        self.analysis = analysis

    @classmethod
    def of(cls, source: str, analysis: PickleAnalysis, data: Any = None) -> "NotAPickleError":
        why = "it breaks before anything could be imported or called"
        if data is not None:
            pos, need = _native.pickle_extent(memoryview(data)[:1 << 16])
            what = "an invalid opcode" if need == -2 else "the data ends"
            why = f"{what} at byte {pos}, before anything could be imported or called"
        return cls(f"pickleguard: {source} is not a pickle ({why}); nothing was loaded",
                   analysis)

    def __reduce__(self) -> Any:
        return (type(self), (str(self), self.analysis))
