#!/usr/bin/env bash
# Builds the libFuzzer targets with clang + ASan/UBSan and fuzzes the ncnn loader for a while.
# Usage: scripts/fuzz.sh [seconds]   (default 60)
set -euo pipefail
seconds=${1:-60}
build=build-fuzz
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DUPRES_BUILD_FUZZ=ON -DUPRES_SANITIZE=ON -DUPRES_BUILD_TESTS=OFF -DUPRES_BUILD_BENCH=OFF -DUPRES_BUILD_CLI=OFF
cmake --build "$build" --target ncnn_loader_fuzz
corpus=$(mktemp -d)
cp fuzz/corpus/* "$corpus"/
# Real model params make good seeds when they are installed.
find "${UPRES_MODEL_DIR:-$HOME/.cache/upres/models}" -name '*.param' -size -8k 2>/dev/null | head -20 | xargs -r -I{} cp {} "$corpus"/
"$build/fuzz/ncnn_loader_fuzz" -max_total_time="$seconds" -max_len=16384 "$corpus"
