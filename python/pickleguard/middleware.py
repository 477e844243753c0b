"""Web middleware: refuse request bodies that carry a dangerous pickle before the app sees
them.

``PickleGuardMiddleware`` (WSGI) and ``PickleGuardASGIMiddleware`` (ASGI) judge the bytes an
application can read, whatever the declared content type (docs/security.md, "Request
bodies"):

* the raw body, always: a body with a pickle type (``application/python-pickle``,
  ``application/x-python-pickle``, ``application/pickle``, ``application/x-pickle``) is
  scanned whole; any other body, typed or not (``text/plain``, ``application/json``, none),
  is sniffed by content: it is scanned when it starts with a pickle protocol header or a
  header the core's scan would open (zip, tar, ``.npy``, gzip, bz2, xz, ``.lzma``, zstd, lz4,
  zlib, 7z, ...: ``_native.container_kind``, the scan's own test), or when its first
  64 KiB read as a pickle that gets to an import or a call before it breaks (protocol 0 and
  1 streams have no header; a PNG or a JPEG breaks at once and streams through untouched,
  whatever its size);
* every part of a ``multipart/*`` body, as each framework would split it: werkzeug and
  python-multipart (starlette) split at a boundary line after a CRLF, LF or CR line break,
  Django at the boundary anywhere in the body; header blocks end at a CRLF, LF or CR blank
  line. Every part each reading gives, under every ``boundary`` parameter of the header, is
  judged like a raw body (a ``Content-Transfer-Encoding: base64`` part also decoded, as
  Django does);
* every name and value of an ``application/x-www-form-urlencoded`` body, percent-decoded.

An unsafe body gets ``400`` with an ``application/problem+json`` body naming the findings; a
body over ``max_body_size`` that has to be read whole gets ``413`` without being read into
memory (a declared length is refused before reading; a body of unknown length is read up to
the limit only); a multipart body with more than ``max_parts`` boundaries gets ``400``. A safe
body reaches the app byte for byte (a replayed ``wsgi.input`` / ``receive``). Audit mode logs
and lets everything through.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import pickletools
import re
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple
from urllib.parse import unquote_to_bytes

from . import _native
from ._analysis import Finding, PickleAnalysis
from ._codecs import HEAD_BYTES, sniff
from ._guard import PickleGuard, guard_for

__all__ = ["PickleGuardMiddleware", "PickleGuardASGIMiddleware", "PICKLE_CONTENT_TYPES"]

PICKLE_CONTENT_TYPES = frozenset({
    "application/python-pickle", "application/x-python-pickle", "application/pickle",
    "application/x-pickle",
})
_OCTET = "application/octet-stream"
_OPCODES = frozenset(op.code.encode("latin-1")[0] for op in pickletools.opcodes)
_HEAD = 64 * 1024
DEFAULT_MAX_BODY = 100 * 1024 * 1024
_PLAIN = _native.Policy("strict")  # any import or call counts: only the shape matters here


def judged(guard: PickleGuard, data: Any, source: str) -> PickleAnalysis:
    """A body's verdict: the core's container scan, as for a file. A body that starts like
    a zip, ``.npy`` or compressed stream but that the scan reads as no container (a truncated
    or damaged bz2/xz/lzma stream, a zip without its directory) is refused: an application
    that opens it by its magic bytes may still unpickle what it manages to decompress."""
    a = guard.scan(data, source=source)
    kind = sniff(bytes(memoryview(data)[:HEAD_BYTES]))
    if kind in ("zip", "npy", "compressed") and a.is_safe and a.format in (
            "raw_pickle", "not_pickle", "joblib"):
        f = Finding("UNSCANNABLE", "HIGH",
                    f"{kind} container could not be opened: the scan reads it as {a.format}")
        return PickleAnalysis(False, "HIGH", [f], format="unscannable", complete=False,
                              stopped_by="unscannable", mode=guard.mode, source=source)
    return a


def looks_serialized(head: bytes) -> bool:
    """Could a loader run something from data that starts with ``head`` (up to 64 KiB)?

    True for a pickle protocol header or a container / compression signature. Otherwise
    the Rust analyser reads ``head`` as a pickle: if it breaks at an invalid opcode inside
    ``head`` before any opcode that imports or calls, no loader can run anything from this
    data, whatever follows."""
    if not head:
        return False
    if _native.container_kind(head) is not None:
        return True
    if head[0] == 0x80 and len(head) > 1 and head[1] <= 5:
        return True
    if head[0] not in _OPCODES:
        return False
    if _native.analyze_pickle(head, _PLAIN)["format"] != "not_pickle":
        return True
    _, need = _native.pickle_extent(head)
    return need != -2


def _parse_type(value: str) -> Tuple[str, Dict[str, str]]:
    main, _, rest = value.partition(";")
    params = {}
    for p in rest.split(";"):
        k, eq, v = p.strip().partition("=")
        if eq:
            params[k.strip().lower()] = v.strip().strip('"')
    return main.strip().lower(), params


_BOUNDARY_PARAM = re.compile(r'boundary\s*=\s*("((?:[^"\\]|\\.)*)"|[^;,\s]+)', re.I)


def _boundaries(content_type: str) -> List[bytes]:
    """Every boundary a parser could take from the header: each ``boundary=`` parameter,
    quoted or not, with and without its escapes undone."""
    out: List[bytes] = []
    for m in _BOUNDARY_PARAM.finditer(content_type):
        raw = m.group(2) if m.group(2) is not None else m.group(1)
        for cand in (raw, re.sub(r"\\(.)", r"\1", raw), raw.strip('"')):
            b = cand.encode("latin-1", "replace")
            if b and b not in out:
                out.append(b)
    return out


class TooManyParts(ValueError):
    pass


_BLANK_LINES = (b"\r\n\r\n", b"\n\n", b"\r\r", b"\n\r\n")


def _strip_break(body: bytes, end: int, start: int) -> int:
    """``end`` moved before the one line break (CRLF, LF or CR) that precedes a delimiter."""
    if end - 2 >= start and body[end - 2:end] == b"\r\n":
        return end - 2
    if end - 1 >= start and body[end - 1:end] in (b"\n", b"\r"):
        return end - 1
    return end


def multipart_views(body: bytes, boundary: bytes,
                    max_parts: int) -> Iterator[Tuple[Dict[str, str], bytes]]:
    """The (headers, content) of every part of a multipart body under each way the common
    frameworks split it: at a delimiter that starts a line (werkzeug, python-multipart),
    and at any delimiter (Django); a part's headers end at its first blank line of any
    line-break style. Overlapping readings are all given: what one framework hands the app,
    some reading here judged."""
    delim = b"--" + boundary
    hits: List[int] = []
    i = body.find(delim)
    while i >= 0:
        hits.append(i)
        if len(hits) > max_parts:
            raise TooManyParts(f"more than {max_parts} multipart boundaries")
        i = body.find(delim, i + 1)
    at_line_start = [h for h in hits if h == 0 or body[h - 1:h] in (b"\n", b"\r")]
    seen = set()
    for starts in (at_line_start, hits):
        for k, h in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else len(body)
            seg_start = h + len(delim)
            nl = body.find(b"\n", seg_start, end)
            cr = body.find(b"\r", seg_start, end)
            line_ends = [x for x in (nl, cr) if x >= 0]
            if not line_ends:
                continue
            head_start = min(line_ends) + 1
            if body[head_start - 1:head_start + 1] == b"\r\n":
                head_start += 1
            content_end = _strip_break(body, end, head_start) if k + 1 < len(starts) else end
            for blank in _BLANK_LINES:
                b = body.find(blank, head_start - 2 if head_start >= 2 else 0, content_end)
                if b < 0:
                    continue
                c0 = b + len(blank)
                if (c0, content_end) in seen:
                    continue
                seen.add((c0, content_end))
                yield _part_headers(body[head_start:b]), body[c0:content_end]


def _part_headers(block: bytes) -> Dict[str, str]:
    headers = {}
    for line in re.split(rb"\r\n|\n|\r", block):
        k, colon, v = line.partition(b":")
        if colon:
            headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
    return headers


def _fields(body: bytes, seps: bytes, max_fields: int) -> Iterator[bytes]:
    pattern = re.compile(b"[^" + re.escape(seps) + b"]*")
    for n, m in enumerate(pattern.finditer(body)):
        if n > 2 * max_fields:  # each separator ends one match and starts an empty one
            raise TooManyParts(f"more than {max_fields} form fields")
        if m.group():
            yield m.group()


def form_values(body: bytes, max_fields: int = 10_000) -> Iterator[Tuple[str, bytes]]:
    """Every name and value of a url-encoded body, percent-decoded to bytes (what an app
    gets with a latin-1 decoding), split at ``&`` and also at ``;`` (older parsers)."""
    seen = set()
    for seps in (b"&", b"&;"):
        for field in _fields(body, seps, max_fields):
            name, _, value = field.partition(b"=")
            for label, raw in (("<form name>", name), (name.decode("latin-1"), value)):
                data = unquote_to_bytes(raw.replace(b"+", b" "))
                if data and data not in seen:
                    seen.add(data)
                    yield label, data


def _part_name(headers: Dict[str, str]) -> str:
    _, params = _parse_type("x;" + headers.get("content-disposition", ""))
    return params.get("filename") or params.get("name") or "<part>"


_FORM = "application/x-www-form-urlencoded"
DEFAULT_MAX_PARTS = 10_000


class _Inspector:
    """What both middlewares share: how to read a body, the verdict, the responses."""

    def __init__(self, mode: str = "ml", guard: Optional[PickleGuard] = None,
                 max_body_size: int = DEFAULT_MAX_BODY,
                 content_types: Iterable[str] = PICKLE_CONTENT_TYPES,
                 inspect_octet_stream: bool = True, inspect_multipart: bool = True,
                 max_parts: int = DEFAULT_MAX_PARTS, **guard_options: Any) -> None:
        if guard is not None and guard_options:
            raise TypeError("pass either guard= or policy options, not both")
        self.guard = guard if guard is not None else guard_for(mode, **guard_options)
        self.max_body_size = int(max_body_size)
        self.max_parts = int(max_parts)
        self.content_types = frozenset(t.lower() for t in content_types)
        #: Sniff bodies of every other type (text/plain, none, JSON, ...) by content.
        self.inspect_octet_stream = inspect_octet_stream
        self.inspect_multipart = inspect_multipart

    def kind(self, content_type: str) -> Tuple[Optional[str], Dict[str, str]]:
        """How a body is read: ``pickle`` (scanned whole), ``multipart`` / ``form`` (read
        whole, each part or field judged, and the raw body sniffed), ``sniff`` (the raw body
        judged when its start looks serialized; otherwise streamed through), None (left
        alone: ``inspect_octet_stream=False`` and a type not named above)."""
        main, params = _parse_type(content_type or "")
        if main in self.content_types:
            return "pickle", params
        if self.inspect_multipart and main.startswith("multipart/") and _boundaries(
                content_type or ""):
            params["_boundaries"] = content_type  # all candidates are taken from it
            return "multipart", params
        if self.inspect_multipart and main == _FORM:
            return "form", params
        if self.inspect_octet_stream:
            return "sniff", params
        return None, params

    def kind_of(self, values: List[str]) -> Tuple[Optional[str], Dict[str, str]]:
        """``kind`` for a request with several Content-Type headers (frameworks differ on
        which one counts): read whole, judged under every one of them."""
        if len(values) <= 1:
            return self.kind(values[0] if values else "")
        kinds = [self.kind(v)[0] for v in values]
        if all(k is None for k in kinds):
            return None, {}
        return "mixed", {"_boundaries": " ; ".join(values)}

    def verdict(self, kind: str, params: Dict[str, str], body: bytes,
                source: str) -> Optional[Tuple[PickleAnalysis, Optional[str]]]:
        """The first unsafe analysis (and the part it came from), or None."""
        g = self.guard
        if kind in ("pickle", "mixed") or looks_serialized(body[:_HEAD]):
            a = judged(g, body, source)
            if self._refuse(a, source):
                return a, None
        views: List[Iterable[Tuple[str, Optional[str], bytes]]] = []
        if kind in ("multipart", "mixed") and params.get("_boundaries"):
            views.append(self._parts(params["_boundaries"], body))
        if kind in ("form", "mixed"):
            views.append((name, None, value)
                         for name, value in form_values(body, self.max_parts))
        for name, ptype, content in itertools.chain(*views):
            if (ptype in self.content_types) or looks_serialized(content[:_HEAD]):
                a = judged(g, content, f"{source} part {name!r}")
                if self._refuse(a, a.source or source):
                    return a, name
        return None

    def _parts(self, content_type: str, body: bytes
               ) -> Iterator[Tuple[str, Optional[str], bytes]]:
        for boundary in _boundaries(content_type):
            for headers, content in multipart_views(body, boundary, self.max_parts):
                ptype, _ = _parse_type(headers.get("content-type", ""))
                yield _part_name(headers), ptype, content
                if headers.get("content-transfer-encoding", "").strip().lower() == "base64":
                    # Django decodes a base64 part before the app sees it.
                    try:
                        decoded = base64.b64decode(re.sub(rb"\s+", b"", content))
                    except ValueError:
                        continue
                    yield _part_name(headers), ptype, decoded

    def judge(self, kind: str, params: Dict[str, str], body: bytes,
              source: str) -> Optional[Tuple[int, bytes]]:
        """None when the body may pass, else the (status, problem body) to answer."""
        try:
            bad = self.verdict(kind, params, body, source)
        except TooManyParts as e:
            return 400, self.problem(400, "Too many parts", str(e))
        if bad is None:
            return None
        return 400, self.unsafe_body(*bad)

    def _refuse(self, a: PickleAnalysis, source: str) -> bool:
        if a.is_safe:
            return False
        if self.guard.mode == "audit":
            self.guard.check(a, source)  # logs
            return False
        return True

    @staticmethod
    def problem(status: int, title: str, detail: str, extra: Optional[Dict[str, Any]] = None
                ) -> bytes:
        doc: Dict[str, Any] = {"type": "about:blank" if status == 413 else
                               "urn:pickleguard:problem:unsafe-pickle",
                               "title": title, "status": status, "detail": detail}
        if extra:
            doc.update(extra)
        return json.dumps(doc).encode("utf-8")

    def unsafe_body(self, a: PickleAnalysis, part: Optional[str]) -> bytes:
        extra: Dict[str, Any] = {"risk_level": a.risk_level, "format": a.format,
                                 "findings": [f.to_dict() for f in a.findings]}
        if part is not None:
            extra["part"] = part
        return self.problem(400, "Unsafe pickle in request body",
                            f"pickleguard refused the request body: {a.summary()}", extra)

    def too_large_body(self) -> bytes:
        return self.problem(413, "Request body too large",
                            f"bodies that may carry pickles are limited to "
                            f"{self.max_body_size} bytes")


# ------------------------------------------------------------------ WSGI

class _Replay(io.RawIOBase):
    """``wsgi.input`` for the app: bytes already read, then the rest of the original."""

    def __init__(self, head: bytes, rest: Any) -> None:
        self._head = io.BytesIO(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self._head.read() + (self._rest.read() if self._rest else b"")
        data = self._head.read(size)
        if len(data) < size and self._rest is not None:
            data += self._rest.read(size - len(data))
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        memoryview(b).cast("B")[:len(data)] = data
        return len(data)

    def readline(self, size: Optional[int] = -1) -> bytes:
        line = self._head.readline(size)
        if (not line.endswith(b"\n")) and self._rest is not None and (
                size is None or size < 0 or len(line) < size):
            line += self._rest.readline(-1 if size is None or size < 0 else size - len(line))
        return line

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


def _read(stream: Any, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        chunk = stream.read(min(n - got, 1 << 20))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


class PickleGuardMiddleware(_Inspector):
    """WSGI middleware: ``app = PickleGuardMiddleware(app, mode='ml', max_body_size=...)``."""

    def __init__(self, app: Callable[..., Any], **options: Any) -> None:
        super().__init__(**options)
        self.app = app

    def _respond(self, start_response: Callable[..., Any], status: str, body: bytes) -> List[bytes]:
        start_response(status, [("Content-Type", "application/problem+json"),
                                ("Content-Length", str(len(body)))])
        return [body]

    def __call__(self, environ: Dict[str, Any], start_response: Callable[..., Any]) -> Any:
        kind, params = self.kind(environ.get("CONTENT_TYPE", ""))
        if kind is None:
            return self.app(environ, start_response)
        try:
            length: Optional[int] = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            length = None
        if length is None and not environ.get("wsgi.input_terminated"):
            return self.app(environ, start_response)  # no body (PEP 3333)
        limit = self.max_body_size
        too_large = length is not None and length > limit
        if too_large and kind != "sniff":
            return self._respond(start_response, "413 Request Entity Too Large",
                                 self.too_large_body())
        stream = environ["wsgi.input"]
        want = length if length is not None else limit + 1
        # Look at the start first: a body that is not serialized data by any reading
        # streams through, whatever its size.
        head = _read(stream, min(_HEAD, want))
        if kind == "sniff" and not looks_serialized(head):
            rest = stream if length is None or length > len(head) else None
            environ["wsgi.input"] = _Replay(head, rest)
            return self.app(environ, start_response)
        if too_large:
            return self._respond(start_response, "413 Request Entity Too Large",
                                 self.too_large_body())
        body = head + _read(stream, want - len(head))
        if len(body) > limit:
            return self._respond(start_response, "413 Request Entity Too Large",
                                 self.too_large_body())
        bad = self.judge(kind, params, body, environ.get("PATH_INFO") or "<request>")
        if bad is not None:
            status, doc = bad
            return self._respond(start_response, _STATUS[status], doc)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


_STATUS = {400: "400 Bad Request", 413: "413 Request Entity Too Large"}


# ------------------------------------------------------------------ ASGI

class PickleGuardASGIMiddleware(_Inspector):
    """ASGI middleware: ``app = PickleGuardASGIMiddleware(app, mode='ml', ...)``. The scan
    runs in a worker thread for large bodies (the Rust core releases the GIL)."""

    def __init__(self, app: Callable[..., Any], **options: Any) -> None:
        super().__init__(**options)
        self.app = app

    async def _respond(self, send: Callable[..., Any], status: int, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def __call__(self, scope: Dict[str, Any], receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        headers: Dict[str, str] = {}
        types: List[str] = []
        for k, v in scope.get("headers", []):
            name = k.decode("latin-1").lower()
            value = v.decode("latin-1")
            headers.setdefault(name, value)  # the first one, as starlette reads it
            if name == "content-type":
                types.append(value)
        kind, params = self.kind_of(types)
        if kind is None:
            await self.app(scope, receive, send)
            return
        try:
            length: Optional[int] = int(headers.get("content-length", ""))
        except ValueError:
            length = None
        limit = self.max_body_size
        too_large = length is not None and length > limit
        if too_large and kind != "sniff":
            await self._respond(send, 413, self.too_large_body())
            return
        chunks: List[bytes] = []
        size = 0
        more = True
        decided = kind != "sniff"
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            if msg["type"] != "http.request":
                continue
            chunk = msg.get("body", b"")
            if chunk:
                chunks.append(chunk)
                size += len(chunk)
            more = bool(msg.get("more_body", False))
            if not decided and (size >= _HEAD or not more):
                decided = True
                if not looks_serialized(b"".join(chunks)[:_HEAD]):
                    await self.app(scope, self._replay(chunks, more, receive), send)
                    return
            if decided and (too_large or size > limit):
                await self._respond(send, 413, self.too_large_body())
                return
        body = b"".join(chunks)
        source = scope.get("path") or "<request>"
        if len(body) > (1 << 20):
            bad = await asyncio.get_running_loop().run_in_executor(
                None, self.judge, kind, params, body, source)
        else:
            bad = self.judge(kind, params, body, source)
        if bad is not None:
            await self._respond(send, *bad)
            return
        await self.app(scope, self._replay([body], False, receive), send)

    @staticmethod
    def _replay(chunks: List[bytes], more: bool, receive: Callable[..., Any]) -> Any:
        pending = list(chunks) or [b""]

        async def replay() -> Dict[str, Any]:
            if pending:
                chunk = pending.pop(0)
                return {"type": "http.request", "body": chunk,
                        "more_body": bool(pending) or more}
            return await receive()

        return replay
