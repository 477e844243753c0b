#!/usr/bin/env bash
# Run one cargo-fuzz target with the shared dictionary and seeds (docs/fuzzing.md).
#
#   fuzz/run.sh TARGET [SECONDS] [extra libFuzzer flags...]
#
# TARGET is reader_machine, container, zip_structure or policy_file. The working corpus lives in
# fuzz/corpus/TARGET (ignored by git) and starts from fuzz/seeds/TARGET; crashes, timeouts and
# OOMs go to fuzz/artifacts/TARGET. One job, so it can run beside other work.
# Without a nightly toolchain, RUSTC_BOOTSTRAP=1 lets stable rustc accept the flags.
set -euo pipefail
target=${1:?usage: fuzz/run.sh reader_machine|container|zip_structure|policy_file [seconds] [flags...]}
secs=${2:-600}
shift $(( $# > 1 ? 2 : 1 ))
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
toolchain=+nightly
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=""
  export RUSTC_BOOTSTRAP=1
fi
cargo $toolchain fuzz build -O --sanitizer none "$target"
mkdir -p "corpus/$target" "artifacts/$target"
case "$target" in
  policy_file) max_len=8192 ;;
  *) max_len=262144 ;;
esac
exec "target/x86_64-unknown-linux-gnu/release/$target" "corpus/$target" "seeds/$target" \
  -dict="$here/pickle.dict" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
  -timeout=3 -report_slow_units=1 -rss_limit_mb=2048 -max_len=$max_len \
  -max_total_time="$secs" -artifact_prefix="artifacts/$target/" -print_final_stats=1 "$@"
