"""Exports a trained CompactSR checkpoint to ncnn .param/.bin (float16 weights) for upres.

    /usr/bin/python3 training/export_ncnn.py training/checkpoints/compact-x2-best.pt models/upres-compact-x2

BatchNorm is folded into the convolutions. The exporter also writes a parity pair beside the
model (<out>.parity-in.f32 / -out.f32: a random 23x17 input and PyTorch's output of the exported
float16 weights), which the C++ test suite runs through upres and compares.
"""
import argparse
import hashlib
import json
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

from model import CompactSR

FP16_TAG = 0x01306B47


def fold_bn(conv, bn):
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    w = conv.weight * scale.reshape(-1, 1, 1, 1)
    b = (conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)) - bn.running_mean
    return w.detach(), (b * scale + bn.bias).detach()


def convs_of(model):
    """(weight, bias) of every convolution in order: head, 2 per block, tail."""
    out = [(model.head.weight.detach(), model.head.bias.detach())]
    for block in model.body:
        out.append(fold_bn(block.conv1, block.bn1))
        out.append(fold_bn(block.conv2, block.bn2))
    out.append((model.tail.weight.detach(), model.tail.bias.detach()))
    return out


def half_rounded(t):
    return t.to(torch.float16).to(torch.float32)


def forward_exported(convs, x, scale=2):
    """The exported network in PyTorch: fp16-rounded weights, float32 arithmetic."""
    def conv(i, t):
        w, b = convs[i]
        return F.conv2d(t, half_rounded(w), b.float(), padding=1)
    f = conv(0, x)
    for k in range(6):
        y = F.silu(conv(1 + 2 * k, f))
        f = f + conv(2 + 2 * k, y)
    detail = F.pixel_shuffle(conv(13, f), scale)
    return detail + F.interpolate(x, scale_factor=scale, mode="nearest")


def write_ncnn(convs, stem):
    layers, blobs = [], set()

    def layer(kind, name, inputs, outputs, params=""):
        layers.append(f"{kind:<16} {name:<16} {len(inputs)} {len(outputs)} {' '.join(inputs + outputs)} {params}".rstrip())
        blobs.update(outputs)

    def conv_params(w, bias=True):
        o, i, kh, kw = w.shape
        return f"0={o} 1={kw} 11={kh} 2=1 12=1 3=1 13=1 4=1 14=1 15=1 16=1 5={int(bias)} 6={w.numel()}"

    layer("Input", "input", [], ["data"], "0=0 1=0 2=3")
    layer("Split", "split_input", ["data"], ["data_a", "data_b"])
    layer("Convolution", "head", ["data_a"], ["f0"], conv_params(convs[0][0]))
    for k in range(6):
        f = f"f{k}"
        layer("Split", f"split{k}", [f], [f"{f}_a", f"{f}_b"])
        layer("Convolution", f"block{k}_conv1", [f"{f}_a"], [f"b{k}_c1"], conv_params(convs[1 + 2 * k][0]))
        layer("Swish", f"block{k}_silu", [f"b{k}_c1"], [f"b{k}_s"])
        layer("Convolution", f"block{k}_conv2", [f"b{k}_s"], [f"b{k}_c2"], conv_params(convs[2 + 2 * k][0]))
        layer("BinaryOp", f"block{k}_add", [f"{f}_b", f"b{k}_c2"], [f"f{k + 1}"], "0=0")
    layer("Convolution", "tail", ["f6"], ["t"], conv_params(convs[13][0]))
    layer("PixelShuffle", "shuffle", ["t"], ["detail"], "0=2")
    layer("Interp", "enlarge", ["data_b"], ["base"], "0=1 1=2.000000e+00 2=2.000000e+00")
    layer("BinaryOp", "add_base", ["detail", "base"], ["output"], "0=0")
    with open(stem + ".param", "w") as f:
        f.write("7767517\n")
        f.write(f"{len(layers)} {len(blobs) + 0}\n")
        f.write("\n".join(layers) + "\n")
    with open(stem + ".bin", "wb") as f:
        for w, b in convs:
            f.write(struct.pack("<I", FP16_TAG))
            data = w.contiguous().numpy().astype(np.float16).tobytes()
            f.write(data)
            if len(data) % 4:
                f.write(b"\0" * (4 - len(data) % 4))
            f.write(b.contiguous().numpy().astype(np.float32).tobytes())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("stem", help="output path without extension, e.g. models/upres-compact-x2")
    ap.add_argument("--manifest", help="models/manifest.json to register the model in")
    args = ap.parse_args()
    state = torch.load(args.checkpoint, map_location="cpu")
    model = CompactSR()
    model.load_state_dict(state["model"])
    model.eval()
    convs = convs_of(model)
    write_ncnn(convs, args.stem)
    # Parity pair: the exported network's output (clamped like upres's) on a random odd-sized input.
    g = torch.Generator().manual_seed(7)
    x = torch.rand((1, 3, 17, 23), generator=g)
    with torch.no_grad():
        y = forward_exported(convs, x).clamp(0, 1)
        drift = (model(x).clamp(0, 1) - y).abs().max().item()
    x[0].numpy().astype(np.float32).tofile(args.stem + ".parity-in.f32")
    y[0].numpy().astype(np.float32).tofile(args.stem + ".parity-out.f32")
    print(f"wrote {args.stem}.param/.bin (step {state.get('step')}); float16 export drift {drift:.2e}")
    if args.manifest:
        register(args.manifest, args.stem, state.get("step"))


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def register(manifest_path, stem, step):
    """Adds or updates the model's entry (package "repo": files under models/) in the manifest."""
    models_dir = os.path.dirname(os.path.abspath(manifest_path))
    name = os.path.basename(stem)
    rel = os.path.relpath(os.path.abspath(stem), models_dir)
    with open(manifest_path) as f:
        manifest = json.load(f)
    entry = {
        "name": name,
        "package": "repo",
        "family": "upres",
        "scale": 2,
        "license": "MIT",
        "description": f"upres compact native-2x (6 residual SiLU blocks, 451K params, 0.45 MMAC/px; step {step})",
        "border": "zero",
        "param": rel + ".param",
        "param_sha256": sha256(stem + ".param"),
        "bin": rel + ".bin",
        "bin_sha256": sha256(stem + ".bin"),
        "bin_size": os.path.getsize(stem + ".bin"),
    }
    models = [m for m in manifest["models"] if m["name"] != name]
    models.insert(0, entry)
    manifest["models"] = models
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"registered {name} in {manifest_path}")


if __name__ == "__main__":
    main()
