"""PEP 517 build backend: maturin's, plus the native `pickleguard` command in the wheel.

maturin builds one Rust artifact per wheel: here the PyO3 module `pickleguard._native`. The
command line is a separate Rust binary (crates/pickleguard-cli), so before maturin writes a
wheel this backend builds that binary (release, stripped) and stages it as the wheel's
`<dist>.data/scripts/pickleguard`, which installers put next to the environment's `python`
(the way ruff and uv ship theirs). maturin picks the staging directory up by its default
name, `pickleguard._native.data` beside pyproject.toml; it is removed again after the build,
so a later `maturin develop` never ships a stale binary. docs/install.md describes the wheel.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import maturin
from maturin import (  # noqa: F401  (re-exported PEP 517 hooks)
    build_sdist,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

ROOT = Path(__file__).resolve().parents[2]
STAGE = ROOT / "pickleguard._native.data"
EXE = "pickleguard.exe" if sys.platform == "win32" else "pickleguard"


def _target_dir() -> Path:
    env = os.environ.get("CARGO_TARGET_DIR")
    if env:
        return Path(env)
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout
    return Path(json.loads(out)["target_directory"])


def _stage_cli() -> None:
    """Build the release binary and put it where maturin takes the wheel's scripts from."""
    # `cargo rustc` passes -C strip to the binary alone: the crates it links are the ones
    # `cargo build --release` made (and maturin reuses), without their debug info in the wheel.
    subprocess.run(
        ["cargo", "rustc", "--release", "--locked", "-p", "pickleguard-cli",
         "--bin", "pickleguard", "--", "-C", "strip=debuginfo"],
        cwd=ROOT, check=True, stdout=sys.stderr,
    )
    built = _target_dir() / "release" / EXE
    shutil.rmtree(STAGE, ignore_errors=True)
    (STAGE / "scripts").mkdir(parents=True)
    shutil.copy2(built, STAGE / "scripts" / EXE)


def _with_cli(build, *args, **kwargs) -> str:
    _stage_cli()
    try:
        return build(*args, **kwargs)
    finally:
        shutil.rmtree(STAGE, ignore_errors=True)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None) -> str:
    return _with_cli(maturin.build_wheel, wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None) -> str:
    return _with_cli(maturin.build_editable, wheel_directory, config_settings, metadata_directory)
