#!/usr/bin/env bash
# Re-resolve requirements-test.txt in a throw-away virtual environment and write the pinned
# result to requirements-lock.txt (what tools/test.sh and CI install).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --upgrade pip
"$tmp/venv/bin/python" -m pip install -q -r requirements-test.txt
{
    echo "# Pinned versions of requirements-test.txt (and everything they pull in), as installed on"
    echo "# Linux x86_64 with CPython 3.11. Regenerate with tools/lock.sh; do not edit by hand."
    "$tmp/venv/bin/python" -m pip freeze --exclude-editable
} > requirements-lock.txt
echo "wrote requirements-lock.txt"
