"""Remote sources (issue 17): `pickleguard.scan_url` and `pickleguard scan URL` read a file
behind a URL through fsspec, fetching only what the scan needs (for a PyTorch zip: the end
records, the directory, local headers and pickle members; never the tensor storages).

The server is a real HTTP server on 127.0.0.1 that honours Range requests and counts the bytes
it sends.
"""
from __future__ import annotations

import http.server
import io
import json
import os
import pickle
import re
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

import pickleguard
from pickleguard import remote
from test_python_support import system_payload

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")
torch = pytest.importorskip("torch")


class RangeServer(http.server.ThreadingHTTPServer):
    """Serves files of a folder with HEAD, GET and single-range GET; counts body bytes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sent = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _file(self):
        p = self.server.root / self.path.lstrip("/").split("?")[0]
        return p if p.is_file() else None

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        p = self._file()
        if p is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = p.stat().st_size
        start, end = 0, size
        rng = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
        if m:
            start = int(m.group(1))
            end = min(size, int(m.group(2)) + 1) if m.group(2) else size
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if body:
            with open(p, "rb") as f:
                f.seek(start)
                data = f.read(end - start)
            self.wfile.write(data)
            with self.server.lock:
                self.server.sent += len(data)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    srv = RangeServer(root)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def checkpoint(path: Path) -> None:
    """A real torch checkpoint: about 17 MB of weights and a small pickle."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(1024, 2048), torch.nn.ReLU(),
                                torch.nn.Linear(2048, 1024))
    torch.save({"model": model.state_dict(), "epoch": 3}, path)


def poisoned(src: Path, dst: Path, payload: bytes) -> None:
    """The same archive with its data.pkl replaced by `payload` (written, never loaded)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = payload if info.filename.endswith("/data.pkl") else zin.read(info)
            zout.writestr(info, data)


def same_verdict(a, b) -> None:
    assert (a.is_safe, a.risk_level, a.format, a.complete, a.stopped_by) == \
           (b.is_safe, b.risk_level, b.format, b.complete, b.stopped_by)
    assert a.to_dict()["findings"] == b.to_dict()["findings"]
    assert a.to_dict()["globals"] == b.to_dict()["globals"]


def test_a_checkpoint_over_http_reads_a_small_fraction(server):
    ckpt = server.root / "model.pt"
    checkpoint(ckpt)
    size = ckpt.stat().st_size
    assert size > 15_000_000
    a = pickleguard.scan_url(f"{server.url}/model.pt")
    assert a.source == f"{server.url}/model.pt"
    same_verdict(a, pickleguard.scan_file(ckpt))
    assert a.is_safe and a.format == "pytorch_zip", a
    # The directory, headers and data.pkl: a few hundred KB at most of ~17 MB.
    assert server.sent < size / 50, (server.sent, size)


def test_a_poisoned_checkpoint_over_http_is_caught(server, tmp_path):
    clean = tmp_path / "clean.pt"
    checkpoint(clean)
    evil = server.root / "evil.pt"
    poisoned(clean, evil, system_payload("remote", protocol=2))
    a = pickleguard.scan_url(f"{server.url}/evil.pt")
    same_verdict(a, pickleguard.scan_file(evil))
    assert not a.is_safe and a.risk_level == "CRITICAL"
    assert any(f.type == "DANGEROUS_IMPORT" and f.member and f.member.endswith("data.pkl")
               for f in a.findings), a
    assert server.sent < evil.stat().st_size / 50


def test_files_that_are_no_zip_are_fetched_whole(server):
    p = server.root / "payload.pkl"
    p.write_bytes(system_payload("remote-raw"))
    a = pickleguard.scan_url(f"{server.url}/payload.pkl")
    assert not a.is_safe and server.sent == p.stat().st_size
    same_verdict(a, pickleguard.scan_file(p))


def test_the_command_line_scans_urls_through_python(server, tmp_path, pg_bin):
    ckpt = server.root / "model.pt"
    checkpoint(ckpt)
    poisoned(ckpt, server.root / "evil.pt", system_payload("remote-cli", protocol=2))
    env = dict(os.environ, PICKLEGUARD_PYTHON=sys.executable)
    local = tmp_path / "local.pkl"
    local.write_bytes(b"\x80\x02]q\x00.")
    proc = subprocess.run([str(pg_bin), "scan", "--no-config", "--format", "json",
                           f"{server.url}/model.pt", f"{server.url}/evil.pt", str(local)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 1, proc.stderr
    from conftest import validate_report
    doc = validate_report(json.loads(proc.stdout))
    by = {f["path"]: f for f in doc["files"]}
    assert by[f"{server.url}/model.pt"]["is_safe"]
    assert not by[f"{server.url}/evil.pt"]["is_safe"]
    assert by[str(local)]["is_safe"]
    assert server.sent < 2 * ckpt.stat().st_size / 50
    # A source that is not there is an I/O error (exit 2), not a safe file.
    proc = subprocess.run([str(pg_bin), "scan", f"{server.url}/missing.pt"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2 and "missing.pt" in proc.stderr


def test_what_is_remote():
    for s in ("https://h/x.pt", "s3://bucket/k", "hf://org/model", "gs://b/o"):
        assert remote.is_remote(s), s
    for s in ("model.pt", "/abs/x.pt", "file:///x.pt", "C:/x.pt", "x://y", "dir/a://b"):
        assert not remote.is_remote(s), s


def test_remote_files_get_the_same_bounds_and_names_on_every_path(server, tmp_path, pg_bin):
    """A URL is named by its URL and bounded by --max-size in text, JSON Lines and the
    batches of pickleguard.distributed; a file over the limit is not fetched at all."""
    from pickleguard import distributed
    (server.root / "big.pkl").write_bytes(pickle.dumps(list(range(100_000))))
    (server.root / "small.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    env = dict(os.environ, PICKLEGUARD_PYTHON=sys.executable)
    big, small = f"{server.url}/big.pkl", f"{server.url}/small.pkl"
    proc = subprocess.run([str(pg_bin), "scan", "--no-config", "--format", "jsonl",
                           "--max-size", "64K", big, small],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 1, proc.stderr
    from conftest import validate_jsonl
    by = {f["path"]: f for f in validate_jsonl(proc.stdout)["files"]}
    assert set(by) == {big, small}, proc.stdout
    assert by[big]["stopped_by"] == "limit:max_size" and not by[big]["is_safe"]
    assert by[small]["is_safe"] and by[small]["complete"]
    assert server.sent < 1000, server.sent  # the big file's body was never asked for
    proc = subprocess.run([str(pg_bin), "scan", "--no-config", "--color", "never",
                           "--max-size", "64K", big], capture_output=True, text=True,
                          timeout=300, env=env)
    assert f"{big}: UNSAFE" in proc.stdout, proc.stdout
    p = distributed.plan(["pickleguard", "scan", "--no-config", "--max-size", "64K", "--",
                          str(tmp_path)], [big, small])
    out = distributed.scan_batch(p["targets"], p["policy"], None, p["bounds"])
    by = {f["path"]: f for f in out["files"]}
    assert by[big]["stopped_by"] == "limit:max_size" and by[small]["is_safe"], by
