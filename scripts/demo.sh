#!/usr/bin/env bash
# The main job, on the default model and inputs upres makes itself: a short video clip (with a
# tone and subtitles) upscaled 2x with audio and subtitles carried over, and a picture.
set -euo pipefail
build=${1:-build}
out=demo-output
mkdir -p "$out"
"$build/upres" sample -o "$out/clip.mkv" --size 320x180 --frames 48
"$build/upres" probe "$out/clip.mkv" -o "$out/clip_2x.mkv"
"$build/upres" video "$out/clip.mkv" -o "$out/clip_2x.mkv" --overwrite --progress bar
"$build/upres" sample -o "$out/sample.png" --size 320x180
"$build/upres" image "$out/sample.png" -o "$out/sample_4x.png" -m realesr-animevideov3-x4 --overwrite
echo "demo: upscaled $out/clip.mkv to $out/clip_2x.mkv (640x360, audio and subtitles kept)"
echo "      and $out/sample.png to $out/sample_4x.png"
