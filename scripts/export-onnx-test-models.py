#!/usr/bin/python3
"""Exports the ONNX models the tests import, from PyTorch (Debian's python3-torch), with random
weights, and PyTorch's own output for a random input beside each.

Usage: scripts/export-onnx-test-models.py OUT_DIR

For each model NAME it writes NAME.onnx, NAME.json (input and output shapes), NAME.in.f32 and
NAME.out.f32 (raw little-endian float32, N x C x H x W). The architectures follow the families
users run (Compact/SRVGG, ESRGAN/RRDB, SPAN, RealPLKSR) at toy widths, plus one net that uses the
rarer ops; several opsets, fp32 and fp16 weights, dynamic and fixed input sizes. The published
families of sr_families.py (PLKSR, RealPLKSR, SAFMN) are exported as their own code writes them.
"""
import json
import os
import sys
import warnings

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sr_families  # noqa: E402

warnings.filterwarnings("ignore")


class Compact(nn.Module):
    """SRVGG: conv + PReLU stack, pixel shuffle, plus the nearest-upscaled input."""

    def __init__(self, feat=16, convs=4, scale=2):
        super().__init__()
        layers = [nn.Conv2d(3, feat, 3, 1, 1), nn.PReLU(feat)]
        for _ in range(convs):
            layers += [nn.Conv2d(feat, feat, 3, 1, 1), nn.PReLU(feat)]
        layers += [nn.Conv2d(feat, 3 * scale * scale, 3, 1, 1)]
        self.body = nn.Sequential(*layers)
        self.shuffle = nn.PixelShuffle(scale)
        self.scale = scale

    def forward(self, x):
        return self.shuffle(self.body(x)) + F.interpolate(x, scale_factor=self.scale, mode="nearest")


class DenseBlock(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(nf + i * gc, gc if i < 4 else nf, 3, 1, 1) for i in range(5)])

    def forward(self, x):
        feats = [x]
        for i, conv in enumerate(self.convs):
            y = conv(torch.cat(feats, 1))
            if i < 4:
                feats.append(F.leaky_relu(y, 0.2))
        return y * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN: residual-in-residual dense blocks, two nearest 2x upsamplings."""

    def __init__(self, nf=16, gc=8):
        super().__init__()
        self.first = nn.Conv2d(3, nf, 3, 1, 1)
        self.rdbs = nn.Sequential(DenseBlock(nf, gc), DenseBlock(nf, gc), DenseBlock(nf, gc))
        self.body = nn.Conv2d(nf, nf, 3, 1, 1)
        self.up1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.up2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.last = nn.Conv2d(nf, 3, 3, 1, 1)

    def forward(self, x):
        feat = self.first(x)
        feat = feat + self.body(self.rdbs(feat) * 0.2 + feat)
        feat = F.leaky_relu(self.up1(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        feat = F.leaky_relu(self.up2(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.last(F.leaky_relu(self.hr(feat), 0.2))


class SpanBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, 1, 1)
        self.c2 = nn.Conv2d(c, c, 3, 1, 0)  # reflect padding is applied before it
        self.c3 = nn.Conv2d(c, c, 1)

    def forward(self, x):
        out = F.silu(self.c1(x))
        out = self.c2(F.pad(out, (1, 1, 1, 1), mode="reflect"))
        out = self.c3(out)
        att = torch.sigmoid(out) - 0.5
        return (out + x) * att


class SpanStyle(nn.Module):
    """SPAN-like: pixel unshuffle in, parameter-free attention, reflect padding, pixel shuffle out."""

    def __init__(self, c=24):
        super().__init__()
        self.head = nn.Conv2d(12, c, 3, 1, 1)
        self.b1 = SpanBlock(c)
        self.b2 = SpanBlock(c)
        self.cat = nn.Conv2d(2 * c, c, 1)
        self.tail = nn.Conv2d(c, 3 * 16, 3, 1, 1)

    def forward(self, x):
        f = self.head(F.pixel_unshuffle(x, 2))
        y = self.b2(self.b1(f))
        y = self.cat(torch.cat([f, y], 1))
        return F.pixel_shuffle(self.tail(y), 4)


class PLKBlock(nn.Module):
    def __init__(self, c, split, kernel):
        super().__init__()
        self.mix1 = nn.Conv2d(c, 2 * c, 3, 1, 1)
        self.mix2 = nn.Conv2d(2 * c, c, 1)
        self.plk = nn.Conv2d(split, split, kernel, 1, kernel // 2)
        self.att = nn.Conv2d(c, c, 1)
        self.split = split

    def forward(self, x):
        y = self.mix2(F.mish(self.mix1(x)))
        a, b = torch.split(y, [self.split, y.shape[1] - self.split], dim=1)
        y = torch.cat([self.plk(a), b], 1)
        y = y * torch.sigmoid(self.att(y))
        return y + x


class RealPLKStyle(nn.Module):
    """RealPLKSR-like: a large kernel on a channel slice, Mish, element attention; bilinear base."""

    def __init__(self, c=16):
        super().__init__()
        self.head = nn.Conv2d(3, c, 3, 1, 1)
        self.blocks = nn.Sequential(PLKBlock(c, 4, 13), PLKBlock(c, 4, 13))
        self.tail = nn.Conv2d(c, 3 * 4, 3, 1, 1)

    def forward(self, x):
        f = self.head(x)
        y = self.blocks(f)[:, :, :, :]
        base = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return F.pixel_shuffle(self.tail(y), 2) + base


class Rare(nn.Module):
    """The rarer ops: padding to a multiple of 8 and cropping back (Mod shape arithmetic), grouped and
    depthwise convolutions, a batch norm no convolution absorbs, a transposed convolution,
    squeeze-excitation, Tanh, Clip, arithmetic with scalars and per-channel constants, bicubic resizing
    with aligned corners, edge padding."""

    def __init__(self, c=16):
        super().__init__()
        self.head = nn.Conv2d(3, c, 3, 1, 1)
        self.group = nn.Conv2d(c, c, 3, 1, 1, groups=4)
        self.depthwise = nn.Conv2d(c, c, 5, 1, 2, groups=c)
        self.se1 = nn.Conv2d(c, 4, 1)
        self.se2 = nn.Conv2d(4, c, 1)
        self.up = nn.ConvTranspose2d(c, c, 4, 2, 1)
        self.shift = nn.Parameter(torch.rand(1, c, 1, 1))
        self.bn = nn.BatchNorm2d(c)  # after a ReLU: the exporter cannot fold it into a convolution
        self.tail = nn.Conv2d(c, 3, 3, 1, 1)

    def forward(self, x):
        h, w = x.shape[2:]
        ph, pw = (8 - h % 8) % 8, (8 - w % 8) % 8
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        f = torch.tanh(self.head(x))
        f = self.depthwise(self.bn(F.relu(self.group(f)))) - self.shift
        s = torch.sigmoid(self.se2(F.relu(self.se1(F.adaptive_avg_pool2d(f, 1)))))
        f = torch.clamp(f * s / 1.5 + 0.1, -0.8, 0.9)
        f = self.up(F.pad(f, (1, 1, 1, 1), mode="replicate"))[:, :, 2:-2, 2:-2]
        base = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=True)
        return (self.tail(f) + base)[:, :, : h * 2, : w * 2]


class ReflectAligned(nn.Module):
    """Pads its input with reflect up to a multiple of 8 after taking a mean off (SwinIR's
    check_image_size), reflect-padded convolutions, crops back: runs at any size."""

    def __init__(self, c=16):
        super().__init__()
        self.head, self.body = nn.Conv2d(3, c, 3), nn.Conv2d(c, c, 3)
        self.tail = nn.Conv2d(c, 12, 3)

    def forward(self, x):
        h, w = x.shape[2:]
        x = F.pad(x - 0.45, (0, (8 - w % 8) % 8, 0, (8 - h % 8) % 8), mode="reflect")
        f = F.silu(self.head(F.pad(x, (1, 1, 1, 1), mode="reflect")))
        f = f + F.silu(self.body(F.pad(f, (1, 1, 1, 1), mode="reflect")))
        return F.pixel_shuffle(self.tail(F.pad(f, (1, 1, 1, 1), mode="reflect")), 2)[:, :, : h * 2, : w * 2] + 0.45


class MeanShift(nn.Conv2d):
    """EDSR's mean shift: a fixed 1x1 convolution adding or subtracting the RGB mean at 0..255."""

    def __init__(self, sign):
        super().__init__(3, 3, 1)
        self.weight.requires_grad = False
        self.bias.requires_grad = False
        self.sign = sign

    def reset(self):
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.bias.copy_(self.sign * 255 * torch.tensor([0.4488, 0.4371, 0.4040]))


class EdsrStyle(nn.Module):
    """EDSR-like: pictures in and out at 0..255, with the mean shifted away and back by 1x1 convs."""

    def __init__(self, c=16):
        super().__init__()
        self.sub = MeanShift(-1)
        self.head = nn.Conv2d(3, c, 3, 1, 1)
        self.body = nn.Conv2d(c, c, 3, 1, 1)
        self.tail = nn.Conv2d(c, 3 * 4, 3, 1, 1)
        self.add = MeanShift(1)

    def forward(self, x):
        f = self.head(self.sub(x))
        f = f + F.relu(self.body(f))
        return self.add(F.pixel_shuffle(self.tail(f), 2))


def to_fp16(model):
    """Stores every floating-point initializer and constant in float16, and the input and output too."""
    f16 = onnx.TensorProto.FLOAT16
    for t in model.graph.initializer:
        if t.data_type == onnx.TensorProto.FLOAT:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name))
    for node in model.graph.node:
        for a in node.attribute:
            if node.op_type == "Constant" and a.name == "value" and a.t.data_type == onnx.TensorProto.FLOAT:
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16)))
            if node.op_type == "Cast" and a.name == "to" and a.i == onnx.TensorProto.FLOAT:
                a.i = f16
    for v in list(model.graph.input) + list(model.graph.output):
        v.type.tensor_type.elem_type = f16
    return model


def export(out_dir, name, net, shape, opset, dynamic=True, fp16=False, batch_dynamic=False, run_shape=None,
           range255=False, bgr=False):
    """range255: the net takes and gives 0..255; bgr: it takes and gives BGR (said in its metadata).
    The saved input and output are in upres's terms either way: RGB in 0..1."""
    torch.manual_seed(sum(map(ord, name)))
    net.eval()
    for p in net.parameters():  # weights of a trained net's scale, so outputs stay in a sane range
        with torch.no_grad():
            if p.requires_grad:
                p.uniform_(-0.25, 0.25)
    for m in net.modules():
        if isinstance(m, MeanShift):
            m.reset()
        if isinstance(m, nn.BatchNorm2d):  # statistics a trained net would have
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    if fp16:
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(p.half().float())
    x = torch.rand(*shape)
    path = os.path.join(out_dir, name + ".onnx")
    axes = None
    if dynamic:
        axes = {"input": {2: "h", 3: "w"}, "output": {2: "H", 3: "W"}}
        if batch_dynamic:
            axes["input"][0] = "n"
            axes["output"][0] = "n"
    torch.onnx.export(net, x, path, opset_version=opset, input_names=["input"], output_names=["output"],
                      dynamic_axes=axes, do_constant_folding=True)
    if fp16:
        onnx.save(to_fp16(onnx.load(path)), path)
    if bgr:
        model = onnx.load(path)
        entry = model.metadata_props.add()
        entry.key, entry.value = "upres.channel_order", "BGR"
        onnx.save(model, path)
    # The input the test runs (another size for a fixed-size export: it must still work).
    run = torch.rand(*(run_shape or shape))
    with torch.no_grad():
        fed = run.flip(1) if bgr else run
        y = net(fed * 255 if range255 else fed)
        y = y.flip(1) if bgr else y
        y = y / 255 if range255 else y
    run.numpy().astype("<f4").tofile(os.path.join(out_dir, name + ".in.f32"))
    y.numpy().astype("<f4").tofile(os.path.join(out_dir, name + ".out.f32"))
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump({"input": list(run.shape), "output": list(y.shape)}, f)


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    for opset in (11, 13, 17):
        export(out_dir, f"compact_opset{opset}", Compact(), (1, 3, 17, 23), opset)
    export(out_dir, "compact_fp16", Compact(), (1, 3, 17, 23), 13, fp16=True)
    export(out_dir, "compact_fixed", Compact(), (1, 3, 16, 20), 13, dynamic=False, run_shape=(1, 3, 19, 13))
    export(out_dir, "rrdb_opset13", RRDBNet(), (1, 3, 13, 11), 13, batch_dynamic=True)
    export(out_dir, "rrdb_fp16", RRDBNet(), (1, 3, 13, 11), 17, fp16=True)
    for opset in (11, 17):
        export(out_dir, f"span_opset{opset}", SpanStyle(), (1, 3, 18, 22), opset)
    export(out_dir, "realplk_opset17", RealPLKStyle(), (1, 3, 15, 19), 17)
    export(out_dir, "realplk_opset13", RealPLKStyle(), (1, 3, 15, 19), 13)
    export(out_dir, "rare_opset13", Rare(), (1, 3, 16, 24), 13)
    export(out_dir, "rare_opset17", Rare(), (1, 3, 16, 24), 17)
    export(out_dir, "edsr_range255", EdsrStyle(), (1, 3, 13, 17), 13, range255=True)
    export(out_dir, "compact_bgr", Compact(), (1, 3, 17, 23), 13, bgr=True)
    export(out_dir, "reflect_aligned", ReflectAligned(), (1, 3, 16, 24), 17, run_shape=(1, 3, 81, 97))
    export_families(out_dir)
    export_ours(out_dir)


def written_out(net):
    net.written_out_repeat = True  # see PLKSR.repeat: torch 1.13's dynamic repeat_interleave is broken
    return net


def export_families(out_dir):
    """MoSR (gated convolutions, a mean over eight channel groups). SwinIR (window attention: LayerNorm over tokens, linear layers, shifted windows with Swin's mask,
    relative position biases). PLKSR (GELU through Erf, in-place channel slices as ScatterND, repeat_interleave), RealPLKSR (Mish,
    GroupNorm as InstanceNormalization between Reshapes) and SAFMN (LayerNorm written out over channels,
    adaptive max pooling, which torch exports only at a fixed size)."""
    F = sr_families
    for opset in (13, 17):
        export(out_dir, f"plksr_opset{opset}", written_out(F.PLKSR()), (1, 3, 15, 19), opset)
        export(out_dir, f"realplksr_opset{opset}", written_out(F.RealPLKSR()), (1, 3, 17, 13), opset)
    export(out_dir, "plksr_fp16", written_out(F.PLKSR()), (1, 3, 15, 19), 17, fp16=True)
    export(out_dir, "realplksr_fixed", F.RealPLKSR(), (1, 3, 21, 18), 17, dynamic=False)
    export(out_dir, "safmn_fixed", F.SAFMN(), (1, 3, 24, 32), 17, dynamic=False)
    export(out_dir, "safmn_fp16", F.SAFMN(), (1, 3, 32, 16), 13, dynamic=False, fp16=True)
    # SwinIR: two residual Swin blocks (the second of each pair in shifted windows), 4x4 windows, two
    # heads. It pads itself to a multiple of 4 (the runtime does that in its place): the graph runs at
    # multiples of 4, the Upscaler at any size (swinir_odd).
    for opset in (13, 17):
        export(out_dir, f"swinir_opset{opset}", F.SwinIR(depths=(2, 2), heads=(2, 2)), (1, 3, 16, 20), opset,
               run_shape=(1, 3, 20, 12))
    export(out_dir, "swinir_fp16", F.SwinIR(depths=(2,), heads=(2,)), (1, 3, 16, 20), 17, fp16=True,
           run_shape=(1, 3, 24, 16))
    # MoSR: gated convolutions after a LayerNorm over channels, the plain and the geo-ensemble upsampler.
    export(out_dir, "mosr_opset17", F.MoSR(), (1, 3, 15, 19), 17)
    export(out_dir, "mosr_gps_opset13", F.MoSR(upsampler="gps"), (1, 3, 15, 19), 13)
    export(out_dir, "mosr_fp16", F.MoSR(upsampler="gps"), (1, 3, 15, 19), 17, fp16=True)
    export(out_dir, "swinir_odd", F.SwinIR(depths=(2, 2), heads=(2, 2)), (1, 3, 16, 20), 17, run_shape=(1, 3, 81, 97))


def export_ours(out_dir):
    """upres's own model (training/) as ONNX, fp32 and fp16, with its trained weights: the test runs it
    beside the ncnn export upres ships."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    sys.path.insert(0, os.path.join(root, "training"))
    from model import CompactSR  # noqa: E402

    state = torch.load(os.path.join(root, "training", "weights", "compact-x2-run3.pt"), map_location="cpu")
    for name, fp16 in (("upres_compact_x2", False), ("upres_compact_x2_fp16", True)):
        net = CompactSR()
        net.load_state_dict(state["model"])
        net.eval()
        x = torch.rand(1, 3, 17, 23)
        path = os.path.join(out_dir, name + ".onnx")
        torch.onnx.export(net, x, path, opset_version=17, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {2: "h", 3: "w"}, "output": {2: "H", 3: "W"}})
        if fp16:
            onnx.save(to_fp16(onnx.load(path)), path)
        with torch.no_grad():
            y = net(x)
        x.numpy().astype("<f4").tofile(os.path.join(out_dir, name + ".in.f32"))
        y.numpy().astype("<f4").tofile(os.path.join(out_dir, name + ".out.f32"))
        with open(os.path.join(out_dir, name + ".json"), "w") as f:
            json.dump({"input": list(x.shape), "output": list(y.shape)}, f)


if __name__ == "__main__":
    main()
