#!/usr/bin/env bash
# Cold-page-cache scans: for each file and each binary, drop the page cache, time
# `pickleguard scan FILE`, and report how much of the file the scan brought into memory
# (fincore). Needs root (/proc/sys/vm/drop_caches) and util-linux's fincore.
#
#   benches/cold_cache.sh [--reps N] BINARY... -- FILE...
# e.g. benches/cold_cache.sh /tmp/pg-before target/release/pickleguard -- ~/.cache/pickleguard/bench-data/*.pt
# Results: docs/benchmarks.md, "CLI", "Cold page cache".
set -euo pipefail
reps=3
if [[ "${1:-}" == "--reps" ]]; then reps=$2; shift 2; fi
bins=()
while [[ $# -gt 0 && "$1" != "--" ]]; do bins+=("$1"); shift; done
shift || true
[[ ${#bins[@]} -gt 0 && $# -gt 0 ]] || { echo "usage: $0 [--reps N] BINARY... -- FILE..." >&2; exit 2; }
printf "%-28s %-36s %10s %12s\n" file binary "time ms" "read MB"
for f in "$@"; do
  for ((r = 0; r < reps; r++)); do
    for b in "${bins[@]}"; do  # interleaved, so the host's speed drifts hit all alike
      sync
      echo 3 > /proc/sys/vm/drop_caches
      s=$(date +%s%N)
      rc=0
      "$b" scan "$f" --no-config > /dev/null || rc=$?
      e=$(date +%s%N)
      [[ $rc -le 1 ]] || { echo "$b failed on $f ($rc)" >&2; exit 1; }
      res=$(fincore -nb -o RES "$f")
      printf "%-28s %-36s %10.1f %12.1f\n" "$(basename "$f")" "$b" \
        "$(echo "($e - $s) / 1000000" | bc -l)" "$(echo "$res / 1048576" | bc -l)"
    done
  done
done
