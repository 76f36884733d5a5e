"""Super-resolution families as their papers and public descriptions define them, written for upres's
tests (our own code, small configurations): PLKSR, RealPLKSR and SAFMN. Each class keeps the layer
names and the eval-mode forward of the published network, because that is what decides the ONNX graph
an exporter writes (in-place channel slices become ScatterND, repeat_interleave becomes
Reshape/Expand, GroupNorm becomes InstanceNormalization between Reshapes, GELU becomes Erf)."""
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F


class DCCM(nn.Sequential):
    """Doubled convolutional channel mixer: 3x3 to twice the width, an activation, 3x3 back."""

    def __init__(self, dim, act):
        super().__init__(nn.Conv2d(dim, dim * 2, 3, 1, 1), act(), nn.Conv2d(dim * 2, dim, 3, 1, 1))


class PLKConv2d(nn.Module):
    """Partial large kernel: a large convolution over the first `dim` channels only, written in place
    at inference as the published code does."""

    def __init__(self, dim, kernel_size, with_idt=False):
        super().__init__()
        self.with_idt = with_idt
        self.conv = nn.Conv2d(dim, dim, kernel_size, 1, kernel_size // 2)
        self.idx = dim

    def forward(self, x):
        if self.training:
            x1, x2 = torch.split(x, [self.idx, x.size(1) - self.idx], dim=1)
            x1 = self.conv(x1) + x1 if self.with_idt else self.conv(x1)
            return torch.cat([x1, x2], dim=1)
        if self.with_idt:
            x[:, : self.idx] = x[:, : self.idx] + self.conv(x[:, : self.idx])
        else:
            x[:, : self.idx] = self.conv(x[:, : self.idx])
        return x


class EA(nn.Module):
    """Element-wise attention: x times the sigmoid of a 3x3 convolution of x."""

    def __init__(self, dim):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(dim, dim, 3, 1, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.f(x)


class PLKBlock(nn.Module):
    def __init__(self, dim, kernel_size, split_ratio, act, norm_groups=0, use_ea=True):
        super().__init__()
        self.channel_mixer = DCCM(dim, act)
        self.lk = PLKConv2d(int(dim * split_ratio), kernel_size)
        self.attn = EA(dim) if use_ea else nn.Identity()
        self.refine = nn.Conv2d(dim, dim, 1, 1, 0)
        self.norm = nn.GroupNorm(norm_groups, dim) if norm_groups else nn.Identity()

    def forward(self, x):
        skip = x
        x = self.refine(self.attn(self.lk(self.channel_mixer(x))))
        return self.norm(x) + skip


class PLKSR(nn.Module):
    """PLKSR (Lee et al., 2024): PLK blocks with GELU mixers; the input repeated per sub-pixel is added
    before the pixel shuffle."""

    def __init__(self, dim=16, n_blocks=2, scale=2, kernel_size=13, split_ratio=0.25, act=nn.GELU, norm_groups=0):
        super().__init__()
        self.feats = nn.Sequential(
            nn.Conv2d(3, dim, 3, 1, 1),
            *[PLKBlock(dim, kernel_size, split_ratio, act, norm_groups) for _ in range(n_blocks)],
            nn.Dropout2d(0),
            nn.Conv2d(dim, 3 * scale**2, 3, 1, 1),
        )
        self.repeat_op = partial(torch.repeat_interleave, repeats=scale**2, dim=1)
        self.to_img = nn.PixelShuffle(scale)
        self.scale = scale
        self.written_out_repeat = False

    def repeat(self, x):
        """repeat_interleave over channels. Debian's torch 1.13 exports it wrongly for dynamic sizes
        (its closing Reshape copies dimensions from the wrong axes, so ONNX Runtime cannot run the file
        either); with `written_out_repeat` the same computation is written as torch 2's exporter writes
        repeat_interleave: Unsqueeze, Expand, Reshape."""
        if not self.written_out_repeat:
            return self.repeat_op(x)
        n, c, h, w = x.shape
        r = self.scale**2
        return x.unsqueeze(2).expand(n, c, r, h, w).reshape(n, c * r, h, w)

    def forward(self, x):
        return self.to_img(self.feats(x) + self.repeat(x))


def RealPLKSR(dim=16, n_blocks=2, scale=2, kernel_size=13, norm_groups=4):
    """RealPLKSR (neosr): PLKSR with Mish mixers and a GroupNorm closing each block."""
    return PLKSR(dim, n_blocks, scale, kernel_size, 0.25, nn.Mish, norm_groups)


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over the channels of each pixel, written out as SAFMN (and ConvNeXt) do."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class CCM(nn.Module):
    def __init__(self, dim, growth_rate=2.0):
        super().__init__()
        hidden = int(dim * growth_rate)
        self.ccm = nn.Sequential(nn.Conv2d(dim, hidden, 3, 1, 1), nn.GELU(), nn.Conv2d(hidden, dim, 1, 1, 0))

    def forward(self, x):
        return self.ccm(x)


class SAFM(nn.Module):
    """Spatially-adaptive feature modulation: channel chunks pooled to 1/2, 1/4, 1/8 of the size,
    depthwise-filtered, brought back by nearest upsampling, mixed, GELU, times the input."""

    def __init__(self, dim, n_levels=4):
        super().__init__()
        self.n_levels = n_levels
        chunk = dim // n_levels
        self.mfr = nn.ModuleList([nn.Conv2d(chunk, chunk, 3, 1, 1, groups=chunk) for _ in range(n_levels)])
        self.aggr = nn.Conv2d(dim, dim, 1, 1, 0)
        self.act = nn.GELU()

    def forward(self, x):
        h, w = x.size()[-2:]
        xc = x.chunk(self.n_levels, dim=1)
        out = []
        for i in range(self.n_levels):
            if i > 0:
                s = F.adaptive_max_pool2d(xc[i], (h // 2**i, w // 2**i))
                s = F.interpolate(self.mfr[i](s), size=(h, w), mode="nearest")
            else:
                s = self.mfr[i](xc[i])
            out.append(s)
        return self.act(self.aggr(torch.cat(out, dim=1))) * x


class AttBlock(nn.Module):
    def __init__(self, dim, ffn_scale=2.0):
        super().__init__()
        self.norm1 = ChannelsFirstLayerNorm(dim)
        self.norm2 = ChannelsFirstLayerNorm(dim)
        self.safm = SAFM(dim)
        self.ccm = CCM(dim, ffn_scale)

    def forward(self, x):
        x = self.safm(self.norm1(x)) + x
        return self.ccm(self.norm2(x)) + x


class SAFMN(nn.Module):
    """SAFMN (Sun et al., 2023)."""

    def __init__(self, dim=16, n_blocks=2, ffn_scale=2.0, scale=2):
        super().__init__()
        self.to_feat = nn.Conv2d(3, dim, 3, 1, 1)
        self.feats = nn.Sequential(*[AttBlock(dim, ffn_scale) for _ in range(n_blocks)])
        self.to_img = nn.Sequential(nn.Conv2d(dim, 3 * scale**2, 3, 1, 1), nn.PixelShuffle(scale))

    def forward(self, x):
        x = self.to_feat(x)
        return self.to_img(self.feats(x) + x)
