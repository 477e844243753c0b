#!/usr/bin/env bash
# The whole test suite, Rust and Python, on a fresh machine or a warm one.
#
# Heavy Python libraries (torch, scikit-learn, ...) are installed once into a cached virtual
# environment (PICKLEGUARD_VENV, default ~/.cache/pickleguard/venv) at the pinned versions of
# requirements-lock.txt and reused; the install is skipped while the lock file is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${PICKLEGUARD_VENV:-$HOME/.cache/pickleguard/venv}"
PY="$VENV/bin/python"
stamp="$VENV/.requirements-test.sha256"
want="$(sha256sum requirements-lock.txt | cut -d' ' -f1)"

if [ ! -x "$PY" ]; then
    echo "== creating virtual environment $VENV"
    python3 -m venv "$VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "== installing test requirements (first run downloads torch: several minutes)"
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q -r requirements-lock.txt
    echo "$want" > "$stamp"
fi

echo "== cargo fmt --check, cargo clippy"
cargo fmt --all -- --check
cargo clippy --quiet --all-targets -- -D warnings
# The bindings too: not a default member, since PyO3 needs a Python (the venv's).
PYO3_PYTHON="$PY" cargo clippy --quiet -p pickleguard-py --all-targets -- -D warnings

echo "== cargo test"
cargo test --quiet   # default-members: the PyO3 crate is built by pip below

echo "== building the pickleguard binary used by the Python tests"
cargo build --quiet -p pickleguard-cli
export PICKLEGUARD_BIN="$PWD/target/debug/pickleguard"

if [ -f pyproject.toml ]; then
    echo "== installing the Python package into $VENV"
    # The distribution was called pickleguard before pickleguard-scan: a venv that still has
    # it would keep two packages writing the same files.
    "$PY" -m pip uninstall -y -q pickleguard 2>/dev/null || true
    # One release build per run: the wheel tools/build_wheel.sh makes (the documented
    # command) is what gets installed here, and tests/test_wheel.py checks that same file
    # (PICKLEGUARD_WHEEL) instead of building another.
    rm -f dist/pickleguard_scan-*.whl
    PYTHON="$PY" tools/build_wheel.sh >/dev/null
    wheel="$(ls dist/pickleguard_scan-*.whl)"
    "$PY" -m pip install -q --no-deps --force-reinstall "$wheel"
    export PICKLEGUARD_WHEEL="$PWD/$wheel"
fi

echo "== pytest"
cd tests
set +e
"$PY" -m pytest -q -p no:cacheprovider "$@" .
rc=$?
set -e
# pytest exits 5 when it collected no test: that is a failure of the suite, not a pass.
exit $rc
