#!/usr/bin/env bash
# Record what a pickleguard binary says about every file of some corpora, to show that a
# refactoring changed nothing: `scan --format json` over each corpus directory in several
# modes, and `explain --color never` of every file. Record once with the binary built
# before the change and once after, then compare (byte for byte).
#
#   tools/compare_outputs.sh record BIN OUTDIR DIR...   # DIR: corpus directories
#   tools/compare_outputs.sh compare OUTDIR_BEFORE OUTDIR_AFTER
#
# Corpora: `python tests/corpus/gen_attacks.py --out DIR`, `gen_benign.py --out DIR`,
# /work/shared/peer-fixtures, crates/pickleguard/tests (its fixtures). Paths in the output
# are the DIR arguments as given, so record both runs with the same DIRs.
set -euo pipefail

record() {
    local bin=$1 out=$2
    shift 2
    mkdir -p "$out"
    local i=0
    for dir in "$@"; do
        i=$((i + 1))
        local tag
        tag="$i-$(basename "$dir")"
        for mode in ml strict audit allowlist; do
            # Exit 1 means "something unsafe": expected here.
            "$bin" scan "$dir" --format json --mode "$mode" --quiet --no-config \
                >"$out/$tag.scan-$mode.json" 2>"$out/$tag.scan-$mode.err" || [ $? -eq 1 ]
        done
        : >"$out/$tag.explain.txt"
        find "$dir" -type f -print0 | LC_ALL=C sort -z | while IFS= read -r -d '' f; do
            {
                printf '=== %s\n' "$f"
                "$bin" explain --color never "$f" 2>&1 || printf '(exit %s)\n' "$?"
            } >>"$out/$tag.explain.txt"
        done
    done
}

compare() {
    if diff -r -q "$1" "$2"; then
        echo "identical: $(find "$1" -type f | wc -l) files"
    else
        echo "outputs differ (diff -r $1 $2)" >&2
        exit 1
    fi
}

case "${1:-}" in
record) shift; record "$@" ;;
compare) shift; compare "$@" ;;
*) sed -n '2,12p' "$0"; exit 2 ;;
esac
