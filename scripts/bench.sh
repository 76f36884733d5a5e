#!/usr/bin/env bash
# ms per 640x360 frame for each model architecture in the zoo on the cpu backend, beside the sum
# of its oneDNN convolution times (the rest is graph overhead) and beside PyTorch CPU running the
# same network on the same frame in the same run (bench/torch_ncnn.py, which also reports the
# PSNR between the two outputs). Models with an int8 calibration table are also timed with
# --precision int8, and their int8 output compared with upres's float32 output the same way.
# Variants of one architecture (denoise levels) cost the same.
# Usage: scripts/bench.sh [BUILD] [MODEL...]      env: THREADS (2), RUNS (3), WIDTH, HEIGHT
set -euo pipefail
build=${1:-build}
shift || true
threads=${THREADS:-2}
runs=${RUNS:-3}
width=${WIDTH:-640}
height=${HEIGHT:-360}
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  models=(upres-compact-x2 realesr-animevideov3-x2 realesr-animevideov3-x4 realesr-general-x4v3 waifu2x-upconv7-x2
          waifu2x-cunet-x2 realcugan-up2x-no-denoise realcugan-up3x-no-denoise realcugan-up4x-no-denoise
          realesrgan-x4plus-anime realesrgan-x4plus)
fi
cache=${UPRES_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/upres/models}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The frame: a real photo (bsd68's first, resized) when ../shared is there, else uniform noise, on
# which int8 fares far worse than on any picture (see README, Precision).
photo=../shared/media/images/bsd68/101085.png
[ -f "$photo" ] || photo=$(ls ../shared/media/images/bsd68/*.png 2>/dev/null | head -1)
if [ -n "$photo" ] && [ -f "$photo" ]; then
  echo "frame: $photo resized to ${width}x${height}"
  /usr/bin/python3 -c "
import numpy as np
from PIL import Image
im = Image.open('$photo').convert('RGB').resize(($width, $height), Image.BICUBIC)
(np.asarray(im, np.float32) / 255).transpose(2, 0, 1).copy().tofile('$work/in.f32')"
else
  echo "frame: uniform noise (../shared is absent)"
  /usr/bin/python3 -c "import numpy as np; np.random.default_rng(1).random((3, $height, $width), np.float32).tofile('$work/in.f32')"
fi

printf '| model | upres f32 ms/frame | oneDNN conv ms | graph overhead | upres int8 ms/frame | PyTorch ms/frame | PyTorch / upres f32 | PyTorch / upres int8 | PSNR f32 vs PyTorch | PSNR int8 vs f32 |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
for m in "${models[@]}"; do
  line=$("$build/bench/upres_bench" "$m" --width "$width" --height "$height" --runs "$runs" --threads "$threads" \
         --input "$work/in.f32" --dump "$work/out.f32")
  ms=$(sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p' <<<"$line")
  # One more run with oneDNN's verbose log: the convolutions' own execution times.
  conv=$(OMP_NUM_THREADS=$threads ONEDNN_VERBOSE=1 "$build/bench/upres_bench" "$m" --width "$width" --height "$height" \
         --runs 1 --threads "$threads" --input "$work/in.f32" \
         | awk -F, '/^onednn_verbose,exec,cpu,(convolution|deconvolution)/ {n++; t[n]=$NF} END {
             # the first half of the lines are the warm-up run
             s=0; for (i=n/2+1; i<=n; i++) s+=t[i]; printf "%.1f", s }')
  # Zoo files live in the cache under their package; ours (package "repo") in the repository.
  param=$(node -e "const m=require('./models/manifest.json').models.find(x=>x.name==='$m');
    console.log(m.package === 'repo' ? process.cwd() + '/models/' + m.param : '$cache/' + m.package + '/' + m.param)")
  adds=$(node -e "const m=require('./models/manifest.json').models.find(x=>x.name==='$m');
    console.log((m.output_adds_input ? '--adds-input ' : '') + (m.border === 'zero' ? '' : '--border-mode ' + m.border))")
  border=$(sed -n 's/.*border=\([0-9]*\).*/\1/p' <<<"$line")
  align=$(sed -n 's/.*align=\([0-9,]*\).*/\1/p' <<<"$line")
  torch=$(/usr/bin/python3 bench/torch_ncnn.py "$param" --width "$width" --height "$height" --threads "$threads" \
          --runs "$runs" --input "$work/in.f32" --compare "$work/out.f32" --border "$border" --align "$align" $adds)
  tms=$(sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p' <<<"$torch")
  psnr=$(sed -n 's/.*psnr_vs_upres_db=\([0-9.]*\).*/\1/p' <<<"$torch")
  # int8, where the model has a calibration table (upres_bench fails without one).
  ims="" ipsnr=""
  if int8=$("$build/bench/upres_bench" "$m" --width "$width" --height "$height" --runs "$runs" --threads "$threads" \
            --precision int8 --input "$work/in.f32" --dump "$work/int8.f32" 2>/dev/null); then
    ims=$(sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p' <<<"$int8")
    ipsnr=$(/usr/bin/python3 -c "
import math, numpy as np
a = np.round(np.clip(np.fromfile('$work/int8.f32', np.float32), 0, 1) * 255)
b = np.round(np.clip(np.fromfile('$work/out.f32', np.float32), 0, 1) * 255)
print('%.1f' % (10 * math.log10(255 ** 2 / max(float(np.mean((a - b) ** 2)), 1e-12))))")
  fi
  awk -v m="$m" -v ms="$ms" -v conv="$conv" -v tms="$tms" -v psnr="$psnr" -v ims="$ims" -v ipsnr="$ipsnr" 'BEGIN {
    int8_ms = ims == "" ? "—" : sprintf("%.0f", ims)
    int8_ratio = ims == "" ? "—" : sprintf("%.2fx", tms / ims)
    int8_psnr = ipsnr == "" ? "—" : ipsnr " dB"
    printf "| %s | %.0f | %.0f | %.0f%% | %s | %.0f | %.2fx | %s | %s dB | %s |\n", m, ms, conv, 100 * (ms - conv) / ms,
      int8_ms, tms, tms / ms, int8_ratio, psnr, int8_psnr }'
done
