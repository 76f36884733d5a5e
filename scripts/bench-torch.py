"""PyTorch CUDA fp16 model-only frames per second of the two models of the NVIDIA benchmark
(scripts/bench-gpu.sh): our compact model (training/model.py) and realesr-animevideov3-x2
(Real-ESRGAN's SRVGGNetCompact: 64 features, 16 convolutions, PReLU, a pixel shuffle and the
nearest-upscaled input added). Random weights: the speed does not depend on them.

Usage: python3 bench-torch.py [WxH ...]     (default 640x360 1920x1080)
Prints one line per model and size: "torch MODEL WxH fps=F ms=M".
"""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from model import CompactSR


class SRVGGNetCompact(nn.Module):
    def __init__(self, feat=64, convs=16, scale=2):
        super().__init__()
        self.scale = scale
        layers = [nn.Conv2d(3, feat, 3, padding=1), nn.PReLU(feat)]
        for _ in range(convs):
            layers += [nn.Conv2d(feat, feat, 3, padding=1), nn.PReLU(feat)]
        layers.append(nn.Conv2d(feat, 3 * scale * scale, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        out = F.pixel_shuffle(self.body(x), self.scale)
        return out + F.interpolate(x, scale_factor=self.scale, mode="nearest")


def fps(net, width, height, runs=50):
    x = torch.rand(1, 3, height, width, device="cuda", dtype=torch.half).contiguous(
        memory_format=torch.channels_last)
    with torch.inference_mode():
        for _ in range(10):
            net(x)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(runs):
            net(x)
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / runs
    return 1 / seconds, seconds * 1000


def main():
    sizes = [tuple(int(v) for v in s.split("x")) for s in (sys.argv[1:] or ["640x360", "1920x1080"])]
    torch.backends.cudnn.benchmark = True
    print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0))
    ours = CompactSR()
    for block in ours.body:  # folded into the convolutions at export, as upres runs it
        block.bn1 = block.bn2 = nn.Identity()
    for name, net in [("upres-compact-x2", ours), ("realesr-animevideov3-x2", SRVGGNetCompact())]:
        net = net.cuda().half().eval().to(memory_format=torch.channels_last)
        for width, height in sizes:
            f, ms = fps(net, width, height)
            print(f"torch {name} {width}x{height} fps={f:.1f} ms={ms:.2f}", flush=True)


if __name__ == "__main__":
    main()
