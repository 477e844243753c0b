"""The web middleware under real servers on loopback: wsgiref (threaded) for WSGI, uvicorn
for ASGI, with concurrent requests. Unsafe pickles get 400 problem+json naming the
findings, safe bodies reach the app byte for byte, oversized bodies get 413 unread."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import http.client
import io
import json
import pickle
import socket
import socketserver
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from pickleguard.middleware import (PickleGuardASGIMiddleware, PickleGuardMiddleware,
                                    looks_serialized)
from test_python_support import assert_no_marker, in_tmp, open_payload, system_payload  # noqa

LIMIT = 64 * 1024
BENIGN = pickle.dumps({"model": [1.0, 2.0], "meta": collections.OrderedDict(v=1)})
JSON = json.dumps({"hello": "world"}).encode()
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def _boundary_body(parts):
    b = "pgboundary7MA4YWxkTrZu0gW"
    out = io.BytesIO()
    for name, filename, ctype, content in parts:
        out.write(f"--{b}\r\n".encode())
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out.write(f"Content-Disposition: {disp}\r\n".encode())
        if ctype:
            out.write(f"Content-Type: {ctype}\r\n".encode())
        out.write(b"\r\n" + content + b"\r\n")
    out.write(f"--{b}--\r\n".encode())
    return f"multipart/form-data; boundary={b}", out.getvalue()


MULTI_OK = _boundary_body([("note", None, None, b"just text"),
                           ("model", "m.pkl", "application/octet-stream", BENIGN)])
MULTI_BAD = _boundary_body([("note", None, None, b"just text"),
                            ("model", "m.pkl", "application/octet-stream",
                             system_payload("multi"))])


# ------------------------------------------------------------------ the apps behind

def wsgi_app(environ, start_response):
    n = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(n) if n else b""
    out = json.dumps({"sha256": hashlib.sha256(body).hexdigest(), "len": len(body)}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(out)))])
    return [out]


async def asgi_app(scope, receive, send):
    assert scope["type"] == "http"
    h = hashlib.sha256()
    n = 0
    while True:
        msg = await receive()
        body = msg.get("body", b"")
        h.update(body)
        n += len(body)
        if not msg.get("more_body"):
            break
    out = json.dumps({"sha256": h.hexdigest(), "len": n}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})


# ------------------------------------------------------------------ servers

class _Quiet(WSGIRequestHandler):
    def log_message(self, *a):
        pass


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


@pytest.fixture(scope="module")
def wsgi_server():
    app = PickleGuardMiddleware(wsgi_app, mode="ml", max_body_size=LIMIT)
    srv = make_server("127.0.0.1", 0, app, server_class=_ThreadingWSGIServer,
                      handler_class=_Quiet)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True)
    t.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(timeout=10)


@pytest.fixture(scope="module")
def asgi_server():
    uvicorn = pytest.importorskip("uvicorn")
    app = PickleGuardASGIMiddleware(asgi_app, mode="ml", max_body_size=LIMIT)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off"))
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        t.join(timeout=15)
        sock.close()


def request(port, body, ctype, length=None, path="/upload"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": ctype} if ctype else {}
    headers["Content-Length"] = str(len(body) if length is None else length)
    try:
        c.request("POST", path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        c.close()


def check_pass(resp, body):
    status, ctype, data = resp
    assert status == 200, (status, data[:300])
    doc = json.loads(data)
    assert doc == {"sha256": hashlib.sha256(body).hexdigest(), "len": len(body)}


def check_refused(resp, *names):
    status, ctype, data = resp
    assert status == 400, (status, data[:300])
    assert ctype.startswith("application/problem+json")
    doc = json.loads(data)
    assert doc["status"] == 400 and doc["findings"]
    text = json.dumps(doc["findings"])
    for n in names:
        assert n in text, (n, text)
    return doc


CASES = [
    ("pickle type, safe", BENIGN, "application/python-pickle", True),
    ("x-python-pickle, evil", system_payload("h1"), "application/x-python-pickle", False),
    ("pickle, evil proto 0", b"cposix\nsystem\n(Vtouch pickleguard-marker-h2\ntR.",
     "application/pickle", False),
    ("octet, evil", open_payload("h3"), "application/octet-stream", False),
    ("octet, safe", BENIGN, "application/octet-stream", True),
    ("octet, png (not a pickle)", PNG, "application/octet-stream", True),
    ("json passes untouched", JSON, "application/json", True),
    ("evil json-typed is not our business", system_payload("h4"), "application/json", True),
    ("multipart safe", MULTI_OK[1], MULTI_OK[0], True),
    ("multipart evil", MULTI_BAD[1], MULTI_BAD[0], False),
]


def _run_cases(port):
    for label, body, ctype, ok in CASES:
        resp = request(port, body, ctype)
        if ok:
            check_pass(resp, body)
        else:
            doc = check_refused(resp, "system" if b"system" in body else "open")
            assert doc["risk_level"] in ("HIGH", "CRITICAL"), label
            if label.startswith("multipart"):
                assert doc["part"] == "m.pkl"


def _run_limits(port):
    big = b"\x80\x04" + b"N" * (LIMIT + 10)
    status, ctype, data = request(port, big, "application/python-pickle")
    assert status == 413 and ctype.startswith("application/problem+json")
    # a PNG over the limit is not a pickle: it streams through untouched
    png = PNG * ((LIMIT // len(PNG)) + 2)
    check_pass(request(port, png, "application/octet-stream"), png)


def _concurrently(port):
    jobs = [CASES[i % len(CASES)] for i in range(60)]
    with ThreadPoolExecutor(max_workers=12) as ex:
        results = list(ex.map(lambda c: (c, request(port, c[1], c[2])), jobs))
    for (label, body, ctype, ok), resp in results:
        if ok:
            check_pass(resp, body)
        else:
            assert resp[0] == 400, label


def test_wsgi_under_wsgiref(wsgi_server, in_tmp):
    _run_cases(wsgi_server)
    _run_limits(wsgi_server)
    _concurrently(wsgi_server)
    for n in ("h1", "h2", "h3", "h4", "multi"):
        assert_no_marker(n)


def test_asgi_under_uvicorn(asgi_server, in_tmp):
    _run_cases(asgi_server)
    _run_limits(asgi_server)
    _concurrently(asgi_server)


# ------------------------------------------------------------------ without a server

class _Guarded(io.RawIOBase):
    """A wsgi.input that fails the test if more than ``allowed`` bytes are read."""

    def __init__(self, data, allowed):
        self._b = io.BytesIO(data)
        self.allowed = allowed
        self.read_total = 0

    def readable(self):
        return True

    def readinto(self, b):
        data = self._b.read(len(b))
        self.read_total += len(data)
        assert self.read_total <= self.allowed, "read past the limit"
        b[:len(data)] = data
        return len(data)


def _call_wsgi(mw, environ):
    out = {}

    def start_response(status, headers):
        out["status"], out["headers"] = status, dict(headers)

    body = b"".join(mw(environ, start_response))
    return out["status"], out["headers"], body


def test_413_reads_nothing_with_a_declared_length_and_at_most_the_limit_without():
    mw = PickleGuardMiddleware(wsgi_app, max_body_size=1000)
    inp = _Guarded(b"\x80\x04" + b"N" * 5000, allowed=0)
    st, h, body = _call_wsgi(mw, {"CONTENT_TYPE": "application/python-pickle",
                                  "CONTENT_LENGTH": "5002", "wsgi.input": inp})
    assert st.startswith("413") and inp.read_total == 0
    assert json.loads(body)["status"] == 413
    inp = _Guarded(b"\x80\x04" + b"N" * 5000, allowed=1001)
    st, h, body = _call_wsgi(mw, {"CONTENT_TYPE": "application/python-pickle",
                                  "wsgi.input_terminated": True, "wsgi.input": inp})
    assert st.startswith("413") and inp.read_total == 1001


def test_asgi_413_without_reading_and_disconnects():
    mw = PickleGuardASGIMiddleware(asgi_app, max_body_size=1000)
    sent = []
    received = []

    async def receive():
        received.append(1)
        return {"type": "http.request", "body": b"x", "more_body": True}

    async def send(msg):
        sent.append(msg)

    scope = {"type": "http", "method": "POST", "path": "/",
             "headers": [(b"content-type", b"application/python-pickle"),
                         (b"content-length", b"5000")]}
    asyncio.run(mw(scope, receive, send))
    assert sent[0]["status"] == 413 and not received
    # chunked (no length): stops reading once over the limit
    scope["headers"] = scope["headers"][:1]
    sent.clear()
    asyncio.run(mw(scope, receive, send))
    assert sent[0]["status"] == 413 and len(received) == 1001


def test_audit_mode_middleware_logs_and_passes(tmp_path):
    mw = PickleGuardMiddleware(wsgi_app, mode="audit", log_file=tmp_path / "a.log")
    evil = system_payload("audit-mw")
    st, h, body = _call_wsgi(mw, {"CONTENT_TYPE": "application/python-pickle",
                                  "CONTENT_LENGTH": str(len(evil)),
                                  "wsgi.input": io.BytesIO(evil)})
    assert st.startswith("200")
    assert "DANGEROUS_IMPORT" in (tmp_path / "a.log").read_text()


def test_looks_serialized():
    assert looks_serialized(b"\x80\x05") and looks_serialized(b"cos\n")
    assert looks_serialized(b"PK\x03\x04") and looks_serialized(b"\x1f\x8b\x08")
    assert not looks_serialized(b"{") and not looks_serialized(b"") and not looks_serialized(
        b"\xff\xd8\xff")
    assert not looks_serialized(PNG) and not looks_serialized(b"%PDF-1.7\n")
    assert looks_serialized(b"N0cposix\nsystem\n(Vx\ntR.")  # no header, still a payload
