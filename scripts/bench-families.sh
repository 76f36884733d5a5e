#!/bin/sh
# The large-kernel, normalised, window-attention and gated-convolution families (PLKSR, RealPLKSR,
# SAFMN, SwinIR, MoSR at their papers' default sizes)
# on one picture, in one run: upres's cpu backend beside ONNX Runtime's CPU provider (the npm package
# onnxruntime-node, installed here with --ignore-scripts) and PyTorch on the CPU, the same threads.
# Prints each runtime's median ms per picture, upres's speed-up over each, and how far upres's and
# ONNX Runtime's outputs are from PyTorch's (PSNR, outputs clamped to 0..1 as upres writes them).
#
# Usage: scripts/bench-families.sh [WIDTH HEIGHT THREADS RUNS]   (default 128 128 2 3)
# Needs `make build` (build/bench/upres_bench), python3-torch and node with npm.
set -eu
cd "$(dirname "$0")/.."
width=${1:-128} height=${2:-128} threads=${3:-2} runs=${4:-3}
out=build/bench-families
ort=build/bench-ort/node_modules/onnxruntime-node
if [ ! -d "$ort" ]; then
  mkdir -p build/bench-ort
  (cd build/bench-ort && npm install --ignore-scripts --no-audit --no-fund onnxruntime-node@1 >/dev/null)
fi
/usr/bin/python3 scripts/bench-families.py "$out" "$width" "$height" "$threads" "$runs" >"$out.torch.txt"
node scripts/bench-ort.mjs "$ort" "$out" "$width" "$height" "$threads" "$runs" plksr realplksr safmn swinir mosr >"$out.ort.txt"
for name in plksr realplksr safmn swinir mosr; do
  build/bench/upres_bench "$out/$name.onnx" --width "$width" --height "$height" --threads "$threads" \
    --runs "$runs" --input "$out/input.f32" --dump "$out/$name.upres.f32" | sed "s/^/upres $name /"
done >"$out.upres.txt"
/usr/bin/python3 - "$out" "$threads" <<'PY'
import re, sys
import numpy as np
out, threads = sys.argv[1], sys.argv[2]
def ms(tool, name):
    for line in open(f"{out}.{tool}.txt"):
        if line.startswith(f"{tool} {name} "):
            return float(re.search(r"(?:median_ms|ms)=([0-9.]+)", line).group(1))
    raise SystemExit(f"no {tool} time for {name}")
def psnr(a, b):
    a, b = np.clip(a, 0, 1), np.clip(b, 0, 1)
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(1 / mse)
print(f"| family | upres cpu ms | ONNX Runtime ms | PyTorch ms | upres vs ORT | upres vs PyTorch | upres / ORT PSNR vs PyTorch |")
print("|---|---|---|---|---|---|---|")
for name in ("plksr", "realplksr", "safmn", "swinir", "mosr"):
    u, o, t = ms("upres", name), ms("ort", name), ms("torch", name)
    ref = np.fromfile(f"{out}/{name}.torch.f32", "<f4")
    pu = psnr(np.fromfile(f"{out}/{name}.upres.f32", "<f4"), ref)
    po = psnr(np.fromfile(f"{out}/{name}.ort.f32", "<f4"), ref)
    print(f"| {name} | {u:.0f} | {o:.0f} | {t:.0f} | {o / u:.2f}x | {t / u:.2f}x | {pu:.1f} / {po:.1f} dB |")
PY
