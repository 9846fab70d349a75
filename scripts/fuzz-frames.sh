#!/usr/bin/env bash
# Fuzzes the TCP channel's frame decoder (tests/fuzz/frame_fuzzer.cpp) with
# libFuzzer + ASan + UBSan for SECONDS (default 60). Builds in build-fuzz with
# clang; the fuzzer works on a copy of the seed corpus in build-fuzz, never on
# the source tree. Exits non-zero if it finds a crash (reproducer in
# build-fuzz/fuzz/artifacts/).
# Usage: scripts/fuzz-frames.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
build=build-fuzz
corpus="$build/fuzz/frame-corpus"
artifacts="$build/fuzz/artifacts"

CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVISORLAB_FUZZ=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target frame_fuzzer

# Seeds join whatever earlier runs found, so coverage accumulates.
mkdir -p "$corpus" "$artifacts"
cp tests/fuzz/corpus/* "$corpus/"

exec "$build/bin/frame_fuzzer" "$corpus" \
  -max_total_time="$seconds" -rss_limit_mb=2048 \
  -dict=tests/fuzz/frame.dict -artifact_prefix="$artifacts/" -print_final_stats=1
