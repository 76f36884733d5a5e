#!/usr/bin/env bash
# Remakes the int8 calibration tables upres ships (models/int8/NAME.json, compiled into the
# binary) from the training photos in ../shared/training: 72 pictures (64 sampled, a quarter of
# them also with grain, and 8 held back to tune on), the centre 128x128 of each. Run it after the
# weights of a shipped model change (a table is keyed by its weights' sha256), then rebuild.
# Usage: scripts/calibrate-shipped.sh [BUILD] [MODEL...]     (default: every table in models/int8)
set -euo pipefail
build=${1:-build}
shift || true
photos=../shared/training
if [ ! -d "$photos" ]; then
  echo "calibrate-shipped: $photos is missing; the shipped tables are made from its photos" >&2
  exit 1
fi
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  for table in models/int8/*.json; do models+=("$(basename "$table" .json)"); done
fi
folders=()
for d in "$photos"/*; do [ -d "$d" ] && folders+=("$d"); done
for m in "${models[@]}"; do
  "$build/upres" models calibrate "$m" --images "${folders[@]}" --pictures 64 --crop 128 \
    -o "models/int8/$m.json" --overwrite
done
