#!/usr/bin/env bash
# The NVIDIA rows of docs/BENCHMARKS.md (issue 15) in one run on a lent GPU machine, from the
# bundle scripts/gpu-bundle.sh makes. Everything runs through the bundle's own glibc loader, so
# only the machine's GPU driver is used. Writes OUT/results.txt (and prints it as it goes):
#   - the machine: nvidia-smi, the Vulkan ICDs, `upres devices`;
#   - model only (upres_bench, median of 20 runs after warm-up) at 640x360 and 1920x1080 for
#     upres-compact-x2 and realesr-animevideov3-x2: f16 with the automatic kernel choice, then
#     each kernel forced (direct, tiled, coopmat), and f32 automatic;
#   - end to end: `upres video` on a 360p and a 1080p generated clip (NVENC when the driver has
#     it, else libx264 ultrafast), frames / wall seconds;
#   - the peer realesrgan-ncnn-vulkan on a folder of the same frames (whole process / frames);
#   - PyTorch CUDA fp16 model-only (bench-torch.py) when torch with CUDA is installed.
# upres's model-only times include copying the frame to and from the device; PyTorch's do not.
# The peer's -g takes the same index as upres's --device where every device has Vulkan 1.2.
# Usage, on the device from the repository root: scripts/bench-gpu.sh build/gpu-bundle.tar.xz "$OUT"
# (build/gpu-bundle-media-{1,2}.tar.xz beside it, when there, add the end-to-end rows)
# env: FRAMES (120 at 360p; a quarter of that at 1080p), STEP_TIMEOUT (120 s per step),
#      SIZES ("640x360 1920x1080"), DEVICE_KIND (gpu; "software gpu" tries the script on lavapipe)
set -uo pipefail
tarball=$1 out=$2
frames=${FRAMES:-120} step_timeout=${STEP_TIMEOUT:-120}
mkdir -p "$out"
log=$out/results.txt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xJf "$tarball"
media=yes
for part in 1 2; do  # FFmpeg's tree, merged into gpu-bundle/lib
  m=$(dirname "$tarball")/gpu-bundle-media-$part.tar.xz
  if [ -f "$m" ]; then tar -C "$work" -xJf "$m"; else media=no; fi
done
b=$work/gpu-bundle
loader=$(ls "$b"/lib/ld-linux-x86-64.so.* | head -1)
run() {  # a bundled program (bin/NAME or a path) through the bundled loader and libraries
  local exe=$1
  shift
  [[ $exe == */* ]] || exe=$b/bin/$exe
  timeout "$step_timeout" "$loader" --library-path "$b/lib" "$exe" "$@"
}
say() { echo "$*" | tee -a "$log"; }
seconds() {  # runs the command quietly, prints its wall seconds, or "failed: " and its last line
  local s e
  s=$(date +%s.%N)
  if "$@" >"$work/step.log" 2>&1; then
    e=$(date +%s.%N)
    awk -v s="$s" -v e="$e" 'BEGIN {printf "%.3f", e - s}'
  else
    echo "failed: $(grep -v '^ *[0-9.]*%$' "$work/step.log" | tail -1)"
  fi
  cat "$work/step.log" >>"$out/commands.log"
}
fps() { awk -v n="$1" -v s="$2" 'BEGIN {if (s ~ /^[0-9.]+$/ && s > 0) printf "%.1f", n / s; else print "-"}'; }

say "# upres on $(hostname) at $(date -u +%FT%TZ)"
say "## machine"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "no nvidia-smi"; } | tee -a "$log"
say "Vulkan ICDs: $(ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null | tr '\n' ' ')"
run upres devices 2>&1 | tee -a "$log"
devices=$(run upres devices --json 2>&1)
gpu=$(grep '"backend":"vulkan"' <<<"$devices" | grep "\"kind\":\"${DEVICE_KIND:-gpu}\"" | head -1 |
  sed -n 's/.*"index":\([0-9]*\).*/\1/p')
if ! grep -q '"backend"' <<<"$devices"; then
  say "upres did not start (are gpu-bundle-media-1/2.tar.xz there?): $(tail -1 <<<"$devices")"
  say "assuming Vulkan device 0 for the model-only rows"
  gpu=0
elif [ -z "$gpu" ]; then
  say "NO VULKAN GPU: the Vulkan loader finds no hardware device on this machine (no NVIDIA ICD);"
  say "the upres and realesrgan-ncnn-vulkan rows cannot run here."
fi

sizes=${SIZES:-640x360 1920x1080}
models="upres-compact-x2 realesr-animevideov3-x2"
if [ -n "$gpu" ]; then
  say "## model only (upres_bench, median ms of 20 runs; fps = 1000 / ms)"
  for size in $sizes; do
    w=${size%x*} h=${size#*x}
    for model in $models; do
      for choice in "f16 auto" "f16 direct" "f16 tiled" "f16 coopmat" "f32 auto"; do
        set -- $choice
        line=$(UPRES_VULKAN_CONV=$2 run upres_bench "$b/models/$model.param" --backend vulkan \
          --device "$gpu" --precision "$1" --width "$w" --height "$h" --runs 20 2>&1 | tail -1)
        ms=$(sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p' <<<"$line")
        if [ -n "$ms" ]; then
          say "upres model-only $model $size $1 conv=$2 ms=$ms fps=$(awk -v m="$ms" 'BEGIN {printf "%.1f", 1000 / m}')"
        else
          say "upres model-only $model $size $1 conv=$2 FAILED: $line"
        fi
      done
    done
  done

  say "## end to end (upres video, frames / wall seconds)"
  [ "$media" = yes ] || say "(gpu-bundle-media-1/2.tar.xz missing: upres cannot load its FFmpeg libraries; these rows fail)"
  encoder=h264_nvenc
  run upres sample -o "$work/probe.mp4" --size 256x144 --frames 2 >/dev/null 2>&1
  if ! run upres video "$work/probe.mp4" -o "$work/probe-out.mp4" -c:v h264_nvenc --backend vulkan \
    --device "$gpu" -m "$b/models/upres-compact-x2.param" -y >/dev/null 2>&1; then
    encoder=libx264
  fi
  say "encoder: $encoder"
  for size in $sizes; do
    n=$frames
    [ "${size#*x}" -ge 1080 ] && n=$((frames / 4))
    run upres sample -o "$work/clip-$size.mp4" --size "$size" --frames "$n" >/dev/null 2>&1
    for model in $models; do
      extra=()
      [ "$encoder" = libx264 ] && extra=(--encoder-preset ultrafast)
      s=$(seconds run upres video "$work/clip-$size.mp4" -o "$work/out.mp4" -y -c:v "$encoder" ${extra[@]+"${extra[@]}"} \
        --backend vulkan --device "$gpu" --precision f16 -m "$b/models/$model.param")
      say "upres end-to-end $model $size frames=$n seconds=$s fps=$(fps "$n" "$s")"
    done
  done

  if [ -x "$b/peer/realesrgan-ncnn-vulkan" ]; then
    say "## realesrgan-ncnn-vulkan (a folder of PNG frames, whole process / frames)"
    for size in $sizes; do
      n=$((frames / 4))
      mkdir -p "$work/frames-$size" "$work/peer-out-$size"
      for ((k = 0; k < n; ++k)); do
        run upres sample -o "$work/frames-$size/$(printf %04d "$k").png" --size "$size" --seed "$((k + 1))" >/dev/null 2>&1
      done
      for model in $models; do
        # (its ncnn predates the Swish layer, so our model fails on it: the row says so)
        s=$(seconds run "$b/peer/realesrgan-ncnn-vulkan" -i "$work/frames-$size" \
          -o "$work/peer-out-$size" -m "$b/peer/models" -n "$model" -s 2 -g "$gpu" -f png)
        say "realesrgan-ncnn-vulkan $model $size frames=$n seconds=$s fps=$(fps "$n" "$s")"
        s=$(seconds run upres image "$work/frames-$size" -o "$work/upres-out-$size" --overwrite --backend vulkan \
          --device "$gpu" --precision f16 -m "$b/models/$model.param")
        say "upres image folder $model $size frames=$n seconds=$s fps=$(fps "$n" "$s")"
      done
    done
  fi
fi

say "## PyTorch CUDA fp16 (model only)"
if python3 -c 'import torch; assert torch.cuda.is_available()' >/dev/null 2>&1; then
  (cd "$b" && timeout "$step_timeout" python3 bench-torch.py 2>&1) | tee -a "$log"
else
  say "no PyTorch with CUDA on this machine: $(python3 -c 'import torch; print(torch.__version__, torch.cuda.is_available())' 2>&1 | tail -1)"
fi
say "# done at $(date -u +%FT%TZ)"
