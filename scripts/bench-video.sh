#!/usr/bin/env bash
# End-to-end video fps (decode, convert, model, convert, x264, mux) beside inference-only fps on
# the same frames, in the same run, and peak RSS. Uses the 640x360 clip in ../shared/media when
# it is there, else a clip upres makes itself.
# Usage: scripts/bench-video.sh [BUILD]      env: FRAMES (60), THREADS (2), MODEL, PRECISIONS ("f32 int8")
set -euo pipefail
build=${1:-build}
frames=${FRAMES:-60}
threads=${THREADS:-2}
model=${MODEL:-realesr-animevideov3-x2}
clip=../shared/media/video/exoplayer_sample_with_increasing_timestamps_360p.mp4
if [ ! -f "$clip" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  clip=$work/clip.mp4
  "$build/upres" sample -o "$clip" --size 640x360 --frames "$frames" >/dev/null
  echo "(../shared is absent: using a synthetic 640x360 clip)"
fi
echo "clip: $clip, $frames frames, $model, $threads threads"
for precision in ${PRECISIONS:-f32 int8}; do
  "$build/bench/video_bench" "$clip" --frames "$frames" --model "$model" --threads "$threads" --precision "$precision"
done
