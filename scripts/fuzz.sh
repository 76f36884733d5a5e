#!/usr/bin/env bash
# Builds the libFuzzer targets (clang; AddressSanitizer, UBSan and coverage on the library too) and
# runs each on a scratch copy of its committed corpus (fuzz/corpus/<target>/), with its dictionary
# of tokens (fuzz/dict/<target>.dict) when there is one. Reports every crash, leak, hang or
# sanitizer report, saving the input that caused it in fuzz-failures/.
# Usage: scripts/fuzz.sh [seconds per target] [target...]   (default: 60 s, every target)
#   make fuzz    60 s each;   make test    FUZZ_SECONDS (10) each
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
build=${UPRES_FUZZ_BUILD:-build-fuzz}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ncnn_loader_fuzz onnx_loader_fuzz http_request_fuzz multipart_fuzz options_json_fuzz
                                     mcp_message_fuzz stream_message_fuzz image_decode_fuzz int8_table_fuzz
                                     video_plan_fuzz segment_manifest_fuzz)

# -O1 with line tables: fast to build, readable stack traces.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Fuzz -DCMAKE_CXX_FLAGS_FUZZ="-O1 -gline-tables-only" \
  -DCMAKE_CXX_COMPILER=clang++ -DUPRES_BUILD_FUZZ=ON -DUPRES_SANITIZE=ON \
  -DUPRES_BUILD_TESTS=OFF -DUPRES_BUILD_BENCH=OFF -DUPRES_BUILD_CLI=OFF >/dev/null
cmake --build "$build" --target "${targets[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for target in "${targets[@]}"; do
  name=${target%_fuzz}
  mkdir -p "$work/$name/new" "$work/$name/crash"
  seeds=(fuzz/corpus/$name)
  # The ncnn loader also learns from the real model files, when they are installed.
  if [ "$name" = ncnn_loader ]; then
    mkdir -p "$work/$name/models"
    find "${UPRES_MODEL_DIR:-$HOME/.cache/upres/models}" models -name '*.param' -size -8k 2>/dev/null | head -20 |
      xargs -r -I{} cp {} "$work/$name/models/"
    seeds+=("$work/$name/models")
  fi
  log="$work/$name/log"
  echo "fuzz: $target for ${seconds}s"
  options=(-max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1
           -artifact_prefix="$work/$name/crash/")
  [ -f "fuzz/dict/$name.dict" ] && options+=(-dict="fuzz/dict/$name.dict")
  if ! "$build/fuzz/$target" "${options[@]}" "$work/$name/new" "${seeds[@]}" >"$log" 2>&1; then
    echo "fuzz: $target FAILED; the end of its log:" >&2
    tail -60 "$log" >&2
    for artifact in "$work/$name/crash"/*; do
      [ -e "$artifact" ] || continue
      mkdir -p fuzz-failures && cp "$artifact" "fuzz-failures/$name-$(basename "$artifact")"
      echo "fuzz: the input is saved as fuzz-failures/$name-$(basename "$artifact")" >&2
    done
    status=1
    continue
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$log" | sed "s/^/fuzz: $target /"
done
exit $status
