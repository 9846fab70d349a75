#!/usr/bin/env bash
# Fuzzes visorlab's decoders (tests/fuzz/*_fuzzer.cpp) with libFuzzer + ASan +
# UBSan, SECONDS each (default 30): TCP channel frames, channel images,
# controlvm messages, topology files, saved drill histories. Builds in
# build-fuzz with clang; each fuzzer works on a copy of its seed corpus
# (tests/fuzz/corpus/NAME/) in build-fuzz, never on the source tree. Exits
# non-zero at the first crash, leak, timeout or out-of-memory (the
# reproducer is in build-fuzz/fuzz/artifacts/).
# Usage: scripts/fuzz.sh [SECONDS] [NAME...]   (NAME: frame, channel_image, …)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frame channel_image controlvm topology history)
build=build-fuzz
artifacts="$build/fuzz/artifacts"

CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVISORLAB_FUZZ=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/%/_fuzzer}"

mkdir -p "$artifacts"
for name in "${targets[@]}"; do
  corpus="$build/fuzz/$name-corpus"
  mkdir -p "$corpus"
  # Seeds join whatever earlier runs found, so coverage accumulates.
  if [ -d "tests/fuzz/corpus/$name" ]; then cp -r tests/fuzz/corpus/"$name"/. "$corpus/"; fi
  extra=()
  [ -f "tests/fuzz/$name.dict" ] && extra+=(-dict="tests/fuzz/$name.dict")
  echo "== fuzz $name: ${seconds}s"
  "$build/bin/${name}_fuzzer" "$corpus" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$artifacts/$name-" -print_final_stats=1 "${extra[@]}" 2>&1 |
    grep -v '^#[0-9]' || true
  # grep ate the fuzzer's status; a finding leaves a reproducer behind.
  if compgen -G "$artifacts/$name-*" >/dev/null; then
    echo "fuzz $name: finding(s) in $artifacts:" >&2
    ls "$artifacts/$name-"* >&2
    exit 1
  fi
done
