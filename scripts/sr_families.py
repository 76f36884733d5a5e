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


# ---- window attention (SwinIR) ----


def window_partition(x, ws):
    """(B, H, W, C) -> (B * H/ws * W/ws, ws, ws, C)."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws, ws, c)


def window_reverse(windows, ws, h, w):
    b = int(windows.shape[0] / (h * w / ws / ws))
    x = windows.view(b, h // ws, w // ws, ws, ws, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, -1)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside a window, with a learned bias per relative position."""

    def __init__(self, dim, ws, heads):
        super().__init__()
        self.ws, self.heads = ws, heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) * (2 * ws - 1), heads))
        coords = torch.stack(torch.meshgrid([torch.arange(ws), torch.arange(ws)], indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
        rel[:, :, 0] += ws - 1
        rel[:, :, 1] += ws - 1
        rel[:, :, 0] *= 2 * ws - 1
        self.register_buffer("relative_position_index", rel.sum(-1))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        b_, n, c = x.shape
        qkv = self.qkv(x).reshape(b_, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = q * self.scale
        attn = q @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(
            self.ws * self.ws, self.ws * self.ws, -1)
        attn = attn + bias.permute(2, 0, 1).contiguous().unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(b_ // nw, nw, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.heads, n, n)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b_, n, c)
        return self.proj(x)


class SwinBlock(nn.Module):
    def __init__(self, dim, heads, ws, shift, mlp_ratio=2.0):
        super().__init__()
        self.ws, self.shift = ws, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, ws, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def calculate_mask(self, h, w):
        img_mask = torch.zeros((1, h, w, 1))
        cnt = 0
        for hs in (slice(0, -self.ws), slice(-self.ws, -self.shift), slice(-self.shift, None)):
            for wsl in (slice(0, -self.ws), slice(-self.ws, -self.shift), slice(-self.shift, None)):
                img_mask[:, hs, wsl, :] = cnt
                cnt += 1
        mw = window_partition(img_mask, self.ws).view(-1, self.ws * self.ws)
        mask = mw.unsqueeze(1) - mw.unsqueeze(2)
        return mask.masked_fill(mask != 0, float(-100.0)).masked_fill(mask == 0, float(0.0))

    def forward(self, x, x_size):
        h, w = x_size
        b, _, c = x.shape
        shortcut = x
        x = self.norm1(x).view(b, h, w, c)
        if self.shift > 0:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = window_partition(x, self.ws).view(-1, self.ws * self.ws, c)
        mask = self.calculate_mask(h, w) if self.shift > 0 else None
        windows = self.attn(windows, mask).view(-1, self.ws, self.ws, c)
        x = window_reverse(windows, self.ws, h, w)
        if self.shift > 0:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        x = shortcut + x.view(b, h * w, c)
        return x + self.mlp(self.norm2(x))


class RSTB(nn.Module):
    """Residual Swin transformer block: Swin blocks (alternately shifted), a 3x3 convolution, a skip."""

    def __init__(self, dim, depth, heads, ws):
        super().__init__()
        self.blocks = nn.ModuleList([SwinBlock(dim, heads, ws, 0 if i % 2 == 0 else ws // 2) for i in range(depth)])
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1)

    def forward(self, x, x_size):
        y = x
        for blk in self.blocks:
            y = blk(y, x_size)
        b, _, c = y.shape
        y = y.transpose(1, 2).view(b, c, x_size[0], x_size[1])
        return self.conv(y).flatten(2).transpose(1, 2) + x


class SwinIR(nn.Module):
    """SwinIR (Liang et al., 2021), the lightweight 'pixelshuffledirect' form: a 3x3 convolution,
    residual Swin transformer blocks on the tokens, LayerNorm, a 3x3 convolution, a pixel shuffle. The
    input is padded (reflect) to a multiple of the window, and the output cropped back."""

    def __init__(self, dim=12, depths=(2,), heads=(2,), ws=4, scale=2, img_range=1.0):
        super().__init__()
        self.ws, self.scale, self.img_range = ws, scale, img_range
        self.mean = torch.zeros(1, 3, 1, 1)
        self.conv_first = nn.Conv2d(3, dim, 3, 1, 1)
        self.layers = nn.ModuleList([RSTB(dim, d, h, ws) for d, h in zip(depths, heads)])
        self.norm = nn.LayerNorm(dim)
        self.conv_after_body = nn.Conv2d(dim, dim, 3, 1, 1)
        self.upsample = nn.Sequential(nn.Conv2d(dim, 3 * scale * scale, 3, 1, 1), nn.PixelShuffle(scale))

    def forward(self, x):
        h, w = x.shape[2:]
        x = F.pad(x, (0, (self.ws - w % self.ws) % self.ws, 0, (self.ws - h % self.ws) % self.ws), "reflect")
        x = (x - self.mean) * self.img_range
        x = self.conv_first(x)
        x_size = (x.shape[2], x.shape[3])
        t = x.flatten(2).transpose(1, 2)
        for layer in self.layers:
            t = layer(t, x_size)
        t = self.norm(t)
        b, _, c = t.shape
        y = t.transpose(1, 2).view(b, c, x_size[0], x_size[1])
        x = self.conv_after_body(y) + x
        x = self.upsample(x) / self.img_range + self.mean
        return x[:, :, : h * self.scale, : w * self.scale]


# ---- MoSR (MambaOut-style gated convolutions) ----


class ConvShortcut(nn.Module):
    """Two 3x3 convolutions with Mish beside a 1x1 convolution, summed."""

    def __init__(self, cin, cout):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), nn.Mish(), nn.Conv2d(cout, cout, 3, 1, 1), nn.Mish())
        self.conv11 = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return self.block(x) + self.conv11(x)


class GatedConvBlock(nn.Module):
    """LayerNorm over channels, a 3x3 convolution to two halves, one half split into an identity part
    and a depthwise-filtered part, gated by Mish of the other half, a 3x3 convolution back, Mish, and
    the input less 0.5 added."""

    def __init__(self, dim, expansion_ratio=1.5, kernel_size=7, conv_ratio=1.0):
        super().__init__()
        self.norm = ChannelsFirstLayerNorm(dim)
        hidden = int(expansion_ratio * dim)
        self.fc1 = nn.Conv2d(dim, hidden * 2, 3, 1, 1)
        self.act = nn.Mish()
        conv_channels = int(conv_ratio * dim)
        self.split_indices = [hidden, hidden - conv_channels, conv_channels]
        self.conv = nn.Conv2d(conv_channels, conv_channels, kernel_size, 1, kernel_size // 2, groups=conv_channels)
        self.fc2 = nn.Conv2d(hidden, dim, 3, 1, 1)

    def forward(self, x):
        shortcut = x
        g, i, c = torch.split(self.fc1(self.norm(x)), self.split_indices, dim=1)
        x = self.act(self.fc2(self.act(g) * torch.cat((i, self.conv(c)), dim=1)))
        return x + (shortcut - 0.5)


class GeoEnsembleShuffle(nn.Module):
    """A convolution to eight versions of every sub-pixel, their mean, a pixel shuffle."""

    def __init__(self, dim, scale, out_ch=3):
        super().__init__()
        self.in_to_k = nn.Conv2d(dim, scale * scale * out_ch * 8, 3, 1, 1)
        self.ps = nn.PixelShuffle(scale)

    def forward(self, x):
        x = self.in_to_k(x)
        x = x.reshape(x.shape[0], 8, -1, x.shape[-2], x.shape[-1]).mean(dim=1)
        return self.ps(x)


class MoSR(nn.Module):
    """MoSR ("Mamba Out Super-Resolution", as spandrel describes it): gated convolution blocks, a
    convolutional tail, a convolutional shortcut from the input, and a pixel-shuffle upsampler (plain,
    or the geo-ensemble one)."""

    def __init__(self, dim=16, n_block=2, scale=2, kernel_size=7, expansion_ratio=1.5, upsampler="ps"):
        super().__init__()
        self.gblocks = nn.Sequential(
            nn.Conv2d(3, dim, 3, 1, 1),
            *[GatedConvBlock(dim, expansion_ratio, kernel_size) for _ in range(n_block)],
            nn.Conv2d(dim, dim * 2, 3, 1, 1), nn.Mish(), nn.Conv2d(dim * 2, dim, 3, 1, 1), nn.Mish(),
            nn.Conv2d(dim, dim, 1, 1),
        )
        self.shortcut = ConvShortcut(3, dim)
        if upsampler == "ps":
            self.upsampler = nn.Sequential(nn.Conv2d(dim, 3 * scale**2, 3, 1, 1), nn.PixelShuffle(scale))
        else:
            self.upsampler = GeoEnsembleShuffle(dim, scale)

    def forward(self, x):
        return self.upsampler(self.gblocks(x) + (self.shortcut(x) - 0.5))
