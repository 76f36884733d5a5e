#!/usr/bin/python3
"""Builds an ncnn .param/.bin model as a PyTorch module (our own reader, independent of upres's
C++ loader), times it on the CPU, and optionally compares its output with upres's.

    torch_ncnn.py MODEL.param --width 640 --height 360 --threads 2 --runs 3
                  [--input frame.f32] [--compare upres_out.f32] [--adds-input]

Runs with Debian's python3-torch. Prints one line: median ms per frame and, with --compare,
the 8-bit PSNR between the two outputs (a second parity check of the whole model)."""
import argparse
import math
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def parse_params(tokens):
    params = {}
    for t in tokens:
        key, value = t.split('=', 1)
        key = int(key)
        if key <= -23300:
            items = value.split(',')
            params[-23300 - key] = [float(v) for v in items[1:]]
        else:
            params[key] = float(value) if any(c in value for c in '.e') else int(value)
    return params


class Bin:
    def __init__(self, path):
        self.data = open(path, 'rb').read()
        self.offset = 0

    def raw(self, n):
        v = np.frombuffer(self.data, np.float32, n, self.offset)
        self.offset += 4 * n
        return torch.from_numpy(v.copy())

    def tagged(self, n):
        tag = int.from_bytes(self.data[self.offset:self.offset + 4], 'little')
        self.offset += 4
        if tag == 0x01306B47:
            v = np.frombuffer(self.data, np.float16, n, self.offset).astype(np.float32)
            self.offset += (2 * n + 3) // 4 * 4
            return torch.from_numpy(v)
        assert tag == 0, hex(tag)
        return self.raw(n)


def activation(x, p):
    kind, args = p.get(9, 0), p.get(10, [])
    if kind == 1: return F.relu(x)
    if kind == 2: return F.leaky_relu(x, args[0])
    if kind == 3: return x.clamp(args[0], args[1])
    if kind == 4: return torch.sigmoid(x)
    return x


def load(param_path, bin_path):
    lines = [l.split() for l in open(param_path) if l.strip()]
    weights = Bin(bin_path)
    layers = []
    for t in lines[2:]:
        kind, n_in, n_out = t[0], int(t[2]), int(t[3])
        ins, outs = t[4:4 + n_in], t[4 + n_in:4 + n_in + n_out]
        p = parse_params(t[4 + n_in + n_out:])
        w = {}
        if kind in ('Convolution', 'Deconvolution'):
            w['weight'] = weights.tagged(p[6])
            if p.get(5): w['bias'] = weights.raw(p[0])
        elif kind == 'PReLU':
            w['slope'] = weights.raw(p[0])
        elif kind == 'InnerProduct':
            w['weight'] = weights.tagged(p[2])
            if p.get(1): w['bias'] = weights.raw(p[0])
        elif kind == 'Scale' and p.get(0) != -233:
            w['scale'] = weights.raw(p[0])
            if p.get(1): w['bias'] = weights.raw(p[0])
        layers.append((kind, ins, outs, p, w))
    return layers


def crop(x, p, ref):
    _, c, h, w = x.shape
    if ref is not None:
        return x[:, p.get(2, 0):p.get(2, 0) + ref.shape[1], p.get(1, 0):p.get(1, 0) + ref.shape[2],
                 p.get(0, 0):p.get(0, 0) + ref.shape[3]]
    dims = [c, h, w]
    sl = [slice(None)] * 3
    for start, end, axis in zip(p[9], p[10], p[11]):
        a = int(axis) + 3 if axis < 0 else int(axis)
        e = int(end) if end > 0 else dims[a] + int(end)
        sl[a] = slice(int(start), e)
    return x[:, sl[0], sl[1], sl[2]]


def run(layers, x):
    # Each blob is dropped after its last reader, so deep networks (RRDB) fit in memory.
    last_use = {}
    for index, (_, ins, _, _, _) in enumerate(layers):
        for i in ins:
            last_use[i] = index
    blobs = {}
    for index, (kind, ins, outs, p, w) in enumerate(layers):
        a = [blobs[i] for i in ins]
        for i in set(ins):
            if last_use[i] == index:
                del blobs[i]
        if kind == 'Input': y = x
        elif kind == 'Split':
            for o in outs: blobs[o] = a[0]
            continue
        elif kind == 'Convolution':
            k = p[1]
            ic = w['weight'].numel() // (p[0] * k * k)
            y = F.conv2d(a[0], w['weight'].view(p[0], ic, k, k), w.get('bias'), p.get(3, 1), p.get(4, 0), p.get(2, 1))
            y = activation(y, p)
        elif kind == 'Deconvolution':
            k = p[1]
            ic = w['weight'].numel() // (p[0] * k * k)
            weight = w['weight'].view(p[0], ic, k, k).transpose(0, 1)
            y = F.conv_transpose2d(a[0], weight, w.get('bias'), p.get(3, 1), p.get(4, 0))
            y = activation(y, p)
        elif kind == 'PReLU': y = F.prelu(a[0], w['slope'])
        elif kind == 'Swish': y = F.silu(a[0])
        elif kind == 'PixelShuffle': y = F.pixel_shuffle(a[0], p[0])
        elif kind == 'Interp':
            mode = {1: 'nearest', 2: 'bilinear', 3: 'bicubic'}[p[0]]
            size = (int(a[0].shape[2] * p[1]), int(a[0].shape[3] * p[2]))
            y = F.interpolate(a[0], size=size, mode=mode, **({} if mode == 'nearest' else {'align_corners': False}))
        elif kind == 'BinaryOp':
            op = p.get(0, 0)
            b = a[1]
            if b.dim() == 2: b = b.view(1, -1, 1, 1)
            y = {0: torch.add, 1: torch.sub, 2: torch.mul, 3: torch.div}[op](a[0], b)
        elif kind == 'Eltwise':
            coeffs = p.get(1, [1.0] * len(a))
            y = sum(c * t for c, t in zip(coeffs, a))
        elif kind == 'Concat': y = torch.cat(a, 1)
        elif kind == 'Crop': y = crop(a[0], p, a[1] if len(a) == 2 else None)
        elif kind == 'Pooling': y = a[0].mean((2, 3)) if p.get(0) == 1 else a[0].amax((2, 3))
        elif kind == 'InnerProduct':
            y = activation(F.linear(a[0].flatten(1), w['weight'].view(p[0], -1), w.get('bias')), p)
        elif kind == 'Scale':
            s = a[1] if p.get(0) == -233 else w['scale']
            y = a[0] * s.view(1, -1, 1, 1)
        else:
            sys.exit(f'torch_ncnn: unsupported layer {kind}')
        blobs[outs[0]] = y
    return y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('param')
    ap.add_argument('--width', type=int, default=640)
    ap.add_argument('--height', type=int, default=360)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--input')
    ap.add_argument('--compare')
    ap.add_argument('--adds-input', action='store_true')
    ap.add_argument('--border', type=int, default=0, help='pixels a side the network eats')
    ap.add_argument('--align', default='1,0', help='alignment,remainder of padded sizes')
    ap.add_argument('--border-mode', default='replicate', choices=['reflect', 'replicate'])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    layers = load(args.param, args.param[:-len('.param')] + '.bin')
    if args.input:
        frame = np.fromfile(args.input, np.float32).reshape(1, 3, args.height, args.width)
    else:
        frame = np.random.default_rng(1).random((1, 3, args.height, args.width), np.float32)
    x = torch.from_numpy(frame)
    times = []
    with torch.inference_mode():
        # Networks that eat a border get the frame padded by it, plus the few pixels some need
        # to reach a size their strided layers accept; the output is cropped back.
        align, rem = (int(v) for v in args.align.split(','))
        b = args.border
        ex = next(e for e in range(align) if (args.width + 2 * b + e - rem) % align == 0)
        ey = next(e for e in range(align) if (args.height + 2 * b + e - rem) % align == 0)
        net_in = x if b == 0 and ex == 0 and ey == 0 else F.pad(x, (b, b + ex, b, b + ey), mode=args.border_mode)
        out = run(layers, net_in)  # warm-up
        for _ in range(args.runs):
            t = time.perf_counter()
            out = run(layers, net_in)
            times.append((time.perf_counter() - t) * 1000)
    s = out.shape[2] // (net_in.shape[2] - 2 * args.border)
    out = out[:, :, :s * args.height, :s * args.width]
    if args.adds_input:
        out = out + F.interpolate(x, scale_factor=s, mode='nearest')
    line = f'torch {torch.__version__} threads={args.threads} median_ms={statistics.median(times):.1f}'
    if args.compare:
        ours = np.fromfile(args.compare, np.float32).reshape(out.shape[1:])
        theirs = out[0].clamp(0, 1).numpy()
        a, b = np.round(ours * 255), np.round(theirs * 255)
        mse = float(np.mean((a - b) ** 2))
        line += f' psnr_vs_upres_db={99.0 if mse == 0 else 10 * math.log10(255 ** 2 / mse):.1f}'
    print(line)


if __name__ == '__main__':
    main()
