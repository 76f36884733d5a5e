#!/usr/bin/python3
"""Exports the published families of sr_families.py at their papers' default sizes (random weights:
speed does not depend on them) and times PyTorch's CPU run of each, for scripts/bench-families.sh.

Usage: bench-families.py OUT_DIR WIDTH HEIGHT THREADS RUNS
Writes OUT_DIR/NAME.onnx, OUT_DIR/input.f32 (planar RGB float32, the picture every runtime takes) and
OUT_DIR/NAME.torch.f32 (PyTorch's output); prints "torch NAME ms=M" (median of RUNS after a warm-up).
"""
import os
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sr_families as F  # noqa: E402

warnings.filterwarnings("ignore")


def families():
    plksr = F.PLKSR(dim=64, n_blocks=28, scale=4, kernel_size=17)
    realplksr = F.RealPLKSR(dim=64, n_blocks=28, scale=4, kernel_size=17, norm_groups=4)
    for net in (plksr, realplksr):
        net.written_out_repeat = True  # torch 1.13 exports repeat_interleave wrongly at dynamic sizes
    # SwinIR's lightweight x2 model: 60 features, four residual groups of six blocks, six heads, 8x8 windows.
    swinir = F.SwinIR(dim=60, depths=(6, 6, 6, 6), heads=(6, 6, 6, 6), ws=8, scale=2)
    return [("plksr", plksr, True), ("realplksr", realplksr, True),
            ("safmn", F.SAFMN(dim=36, n_blocks=8, scale=4), False),  # adaptive pooling: fixed size only
            ("swinir", swinir, True),
            ("mosr", F.MoSR(dim=64, n_block=24, scale=4), True)]  # spandrel's defaults


def main():
    out, width, height, threads, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(
        sys.argv[5])
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1)
    torch.set_num_threads(threads)
    x = torch.rand(1, 3, height, width)
    x.numpy().astype("<f4").tofile(os.path.join(out, "input.f32"))
    for name, net, dynamic in families():
        net.eval()
        for p in net.parameters():
            with torch.no_grad():
                p.uniform_(-0.05, 0.05)
        axes = {"input": {2: "h", 3: "w"}, "output": {2: "H", 3: "W"}} if dynamic else None
        torch.onnx.export(net, x, os.path.join(out, name + ".onnx"), opset_version=17, input_names=["input"],
                          output_names=["output"], dynamic_axes=axes)
        times = []
        with torch.inference_mode():
            y = net(x)
            for _ in range(runs):
                start = time.perf_counter()
                y = net(x)
                times.append(time.perf_counter() - start)
        y.numpy().astype("<f4").tofile(os.path.join(out, name + ".torch.f32"))
        print(f"torch {name} ms={sorted(times)[len(times) // 2] * 1000:.0f}", flush=True)


if __name__ == "__main__":
    main()
