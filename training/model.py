"""The upres compact native-2x network.

PiperSR-class cost: conv 3->64, six residual blocks (conv-BN-SiLU-conv-BN, plus the block input),
conv 64->12, PixelShuffle(2), plus the nearest-upscaled input as a global skip, so the network
only learns the detail a plain enlargement lacks. About 453K parameters and 0.45 MMAC per input
pixel. BatchNorm is folded into the convolutions at export (export_ncnn.py).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        y = F.silu(self.bn1(self.conv1(x)))
        return x + self.bn2(self.conv2(y))


class CompactSR(nn.Module):
    def __init__(self, channels=64, blocks=6, scale=2):
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.body = nn.ModuleList([ResidualBlock(channels) for _ in range(blocks)])
        self.tail = nn.Conv2d(channels, 3 * scale * scale, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # start as the nearest enlargement, learn the rest
        nn.init.zeros_(self.tail.bias)

    def forward(self, x):
        f = self.head(x)
        for block in self.body:
            f = block(f)
        detail = F.pixel_shuffle(self.tail(f), self.scale)
        return detail + F.interpolate(x, scale_factor=self.scale, mode="nearest")


def parameter_count(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad) - sum(
        m.weight.numel() + m.bias.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d))


def macs_per_input_pixel(model):
    """Multiply-accumulates per low-resolution pixel (convolutions only; BN folds away)."""
    total = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            total += m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1]
    return total
