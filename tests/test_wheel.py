"""The wheel (issue 17): `tools/build_wheel.sh` builds one wheel into dist/ holding the Python
package, the extension `pickleguard._native` and the native `pickleguard` command; it installs
into a fresh environment with no Rust toolchain on PATH, and the command is the native binary
(no Python start-up), the way ruff and uv ship theirs.

One build (release), one fresh venv. tools/test.sh builds the wheel once with
tools/build_wheel.sh, installs it and passes it here as PICKLEGUARD_WHEEL: this module then
costs ~16 s (a venv and an install; 2026-12-07, load ≈ 5). Run alone without it, the fixture
builds the wheel first: 12.5 min wall / 4.6 min CPU on 2 busy cores (load ≈ 10) with the
dependencies already compiled.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from test_python_support import system_payload

ROOT = Path(__file__).resolve().parent.parent

# Runs in CI like every test here: it is the only check that a user without Rust gets a
# working command.
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX venv layout")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    given = os.environ.get("PICKLEGUARD_WHEEL")
    if given:  # a wheel tools/build_wheel.sh made already (development loops; CI builds)
        return Path(given)
    before = set((ROOT / "dist").glob("*.whl")) if (ROOT / "dist").exists() else set()
    proc = subprocess.run(["bash", str(ROOT / "tools" / "build_wheel.sh")], cwd=ROOT,
                          env=dict(os.environ, PYTHON=sys.executable),
                          capture_output=True, text=True, timeout=3000)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    wheels = sorted((ROOT / "dist").glob("pickleguard_scan-*.whl"),
                    key=lambda p: p.stat().st_mtime)
    assert wheels, (before, proc.stdout[-2000:])
    return wheels[-1]


def test_the_wheel_holds_the_native_command_and_the_extension(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        scripts = [n for n in names if ".data/scripts/" in n]
        assert [n.rsplit("/", 1)[1] for n in scripts] == ["pickleguard"], scripts
        exe = z.read(scripts[0])
        assert exe[:4] == b"\x7fELF" or exe[:4] in (b"\xcf\xfa\xed\xfe", b"MZ\x90\x00"), exe[:4]
        assert (z.getinfo(scripts[0]).external_attr >> 16) & 0o111, "not executable"
        assert any(n.startswith("pickleguard/_native") for n in names), names
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        assert "Name: pickleguard-scan" in meta
        # No Python shim competes with the binary for the name.
        ep = [n for n in names if n.endswith("entry_points.txt")]
        assert not ep or "pickleguard" not in z.read(ep[0]).decode()


def test_the_wheel_installs_and_runs_without_rust(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=600)
    bin_dir = venv / "bin"
    path = os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"])
    assert shutil.which("cargo", path=path) is None and shutil.which("rustc", path=path) is None
    env = {"PATH": path, "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-index",
                    "--no-deps", str(wheel)], check=True, env=env, timeout=600)
    exe = bin_dir / "pickleguard"
    assert exe.read_bytes()[:4] == b"\x7fELF", "the command is not the native binary"

    ok, evil = tmp_path / "ok.pkl", tmp_path / "evil.pkl"
    ok.write_bytes(b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00]\x94(K\x01K\x02e.")
    evil.write_bytes(system_payload("wheel"))
    work = tmp_path / "work"
    work.mkdir()
    for cmd in ([str(exe)], [str(bin_dir / "python"), "-m", "pickleguard"]):
        r = subprocess.run(cmd + ["scan", str(ok)], env=env, cwd=work, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        r = subprocess.run(cmd + ["scan", str(evil)], env=env, cwd=work, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 1 and "CRITICAL" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([str(exe), "--version"], env=env, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("pickleguard "), r
    r = subprocess.run([str(bin_dir / "python"), "-c",
                        "import pickleguard, pickleguard._native as n;"
                        "print(n.__version__, pickleguard.scan_file(%r).is_safe)" % str(evil)],
                       env=env, cwd=work, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split()[1] == "False", r.stdout + r.stderr
    assert not list(work.glob("pickleguard-marker-*"))
