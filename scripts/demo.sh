#!/usr/bin/env bash
# The main job on the default model and a picture upres makes itself.
set -euo pipefail
build=${1:-build}
out=demo-output
mkdir -p "$out"
"$build/upres" sample -o "$out/sample.png" --size 320x180
"$build/upres" image "$out/sample.png" -o "$out/sample_2x.png" --overwrite
"$build/upres" image "$out/sample.png" -o "$out/sample_4x.png" -m realesr-animevideov3-x4 --overwrite
echo "demo: upscaled $out/sample.png to $out/sample_2x.png and $out/sample_4x.png"
