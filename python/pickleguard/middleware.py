"""Web middleware: refuse request bodies that carry a dangerous pickle before the app sees
them.

``PickleGuardMiddleware`` (WSGI) and ``PickleGuardASGIMiddleware`` (ASGI) inspect a body when

* its content type is a pickle type (``application/python-pickle``,
  ``application/x-python-pickle``, ``application/pickle``, ``application/x-pickle``),
* it is ``application/octet-stream`` (or has no content type) and may be serialized data: it
  starts with a pickle protocol header or a zip / gzip / bz2 / xz / zstd / lz4 / zlib /
  ``.npy`` / 7z signature, or its first 64 KiB read as a pickle that gets to an import or a
  call before it breaks (protocol 0 and 1 streams have no header; a PNG or a JPEG breaks at
  once and streams through untouched), or
* it is ``multipart/form-data``: each part that has a pickle type or starts like serialized
  data is scanned on its own.

An unsafe body gets ``400`` with an ``application/problem+json`` body naming the findings; a
body over ``max_body_size`` gets ``413`` without being read into memory (a declared length is
refused before reading; a body of unknown length is read up to the limit only). A safe body
reaches the app byte for byte (a replayed ``wsgi.input`` / ``receive``). Audit mode logs and
lets everything through.
"""

from __future__ import annotations

import asyncio
import io
import json
import pickletools
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from . import _native
from ._analysis import PickleAnalysis
from ._formats import scan_deep
from ._guard import PickleGuard, guard_for

__all__ = ["PickleGuardMiddleware", "PickleGuardASGIMiddleware", "PICKLE_CONTENT_TYPES"]

PICKLE_CONTENT_TYPES = frozenset({
    "application/python-pickle", "application/x-python-pickle", "application/pickle",
    "application/x-pickle",
})
_OCTET = "application/octet-stream"
_OPCODES = frozenset(op.code.encode("latin-1")[0] for op in pickletools.opcodes)
_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00",
               b"\x28\xb5\x2f\xfd", b"\x04\x22\x4d\x18", b"\x93NUMPY", b"7z\xbc\xaf\x27\x1c")
_HEAD = 64 * 1024
DEFAULT_MAX_BODY = 100 * 1024 * 1024
_PLAIN = _native.Policy("strict")  # any import or call counts: only the shape matters here


def looks_serialized(head: bytes) -> bool:
    """Could a loader run something from data that starts with ``head`` (up to 64 KiB)?

    True for a pickle protocol header or a container / compression signature. Otherwise
    the Rust analyser reads ``head`` as a pickle: if it breaks at an invalid opcode inside
    ``head`` before any opcode that imports or calls, no loader can run anything from this
    data, whatever follows."""
    if not head:
        return False
    if head.startswith(_SIGNATURES) or (head[0] == 0x80 and len(head) > 1 and head[1] <= 5):
        return True
    if head[0] == 0x78 and len(head) > 1 and (head[0] * 256 + head[1]) % 31 == 0:
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


def _multipart(body: bytes, boundary: str) -> List[Tuple[Dict[str, str], bytes]]:
    """The parts of a multipart/form-data body: (headers, content)."""
    delim = b"--" + boundary.encode("latin-1")
    out = []
    chunks = body.split(delim)
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers = {}
        for line in head.split(b"\r\n"):
            k, colon, v = line.partition(b":")
            if colon:
                headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
        out.append((headers, content))
    return out


def _part_name(headers: Dict[str, str]) -> str:
    _, params = _parse_type("x;" + headers.get("content-disposition", ""))
    return params.get("filename") or params.get("name") or "<part>"


class _Inspector:
    """What both middlewares share: which bodies to look at, the verdict, the responses."""

    def __init__(self, mode: str = "ml", guard: Optional[PickleGuard] = None,
                 max_body_size: int = DEFAULT_MAX_BODY,
                 content_types: Iterable[str] = PICKLE_CONTENT_TYPES,
                 inspect_octet_stream: bool = True, inspect_multipart: bool = True,
                 **guard_options: Any) -> None:
        if guard is not None and guard_options:
            raise TypeError("pass either guard= or policy options, not both")
        self.guard = guard if guard is not None else guard_for(mode, **guard_options)
        self.max_body_size = int(max_body_size)
        self.content_types = frozenset(t.lower() for t in content_types)
        self.inspect_octet_stream = inspect_octet_stream
        self.inspect_multipart = inspect_multipart

    def kind(self, content_type: str) -> Tuple[Optional[str], Dict[str, str]]:
        main, params = _parse_type(content_type or "")
        if main in self.content_types:
            return "pickle", params
        if self.inspect_octet_stream and main in (_OCTET, ""):
            return "octet", params
        if self.inspect_multipart and main == "multipart/form-data" and params.get("boundary"):
            return "multipart", params
        return None, params

    def verdict(self, kind: str, params: Dict[str, str], body: bytes,
                source: str) -> Optional[Tuple[PickleAnalysis, Optional[str]]]:
        """The first unsafe analysis (and the part it came from), or None."""
        g = self.guard
        if kind == "multipart":
            for headers, content in _multipart(body, params["boundary"]):
                ptype, _ = _parse_type(headers.get("content-type", ""))
                if ptype in self.content_types or looks_serialized(content[:_HEAD]):
                    name = _part_name(headers)
                    a = scan_deep(g, content, f"{source} part {name!r}")
                    if self._refuse(a, a.source or source):
                        return a, name
            return None
        a = scan_deep(g, body, source)
        return (a, None) if self._refuse(a, source) else None

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
        if too_large and kind != "octet":
            return self._respond(start_response, "413 Request Entity Too Large",
                                 self.too_large_body())
        stream = environ["wsgi.input"]
        want = length if length is not None else limit + 1
        if kind == "octet":
            # Look at the start first: what is not serialized data streams through, whatever
            # its size.
            head = _read(stream, min(_HEAD, want))
            if not looks_serialized(head):
                rest = stream if length is None or length > len(head) else None
                environ["wsgi.input"] = _Replay(head, rest)
                return self.app(environ, start_response)
            if too_large:
                return self._respond(start_response, "413 Request Entity Too Large",
                                     self.too_large_body())
            body = head + _read(stream, want - len(head))
        else:
            body = _read(stream, want)
        if len(body) > limit:
            return self._respond(start_response, "413 Request Entity Too Large",
                                 self.too_large_body())
        bad = self.verdict(kind, params, body, environ.get("PATH_INFO") or "<request>")
        if bad is not None:
            return self._respond(start_response, "400 Bad Request", self.unsafe_body(*bad))
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


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
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        kind, params = self.kind(headers.get("content-type", ""))
        if kind is None:
            await self.app(scope, receive, send)
            return
        try:
            length: Optional[int] = int(headers.get("content-length", ""))
        except ValueError:
            length = None
        limit = self.max_body_size
        too_large = length is not None and length > limit
        if too_large and kind != "octet":
            await self._respond(send, 413, self.too_large_body())
            return
        chunks: List[bytes] = []
        size = 0
        more = True
        decided = kind != "octet"
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
                None, self.verdict, kind, params, body, source)
        else:
            bad = self.verdict(kind, params, body, source)
        if bad is not None:
            await self._respond(send, 400, self.unsafe_body(*bad))
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
