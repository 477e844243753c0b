#!/usr/bin/env bash
# Build the wheel into dist/: the Python package, the extension pickleguard._native and the
# native `pickleguard` command (tools/build_backend/pickleguard_build.py). Needs cargo and a
# Python with pip; the wheel it makes installs with neither Rust nor a compiler.
#   tools/build_wheel.sh            # -> dist/pickleguard_scan-<version>-cp39-abi3-<platform>.whl
# PYTHON picks the interpreter (default: python3). When it already has maturin, the build uses
# it; otherwise pip fetches maturin into an isolated build environment.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
isolation=()
if "$PY" -c 'import maturin' 2>/dev/null; then
    isolation=(--no-build-isolation)
fi
mkdir -p dist
"$PY" -m pip wheel --no-deps "${isolation[@]}" --wheel-dir dist .
