"""PSNR on the Y channel as SR papers (and `upres eval`) measure it: 8-bit RGB, MATLAB's
rgb2ycbcr luma on the 16..235 scale, a border of `scale` pixels ignored."""
import numpy as np
import torch

from data import list_images, load_rgb, shrink


def luma(rgb01):
    """rgb01: 3xHxW float tensor in [0, 1] -> HxW luma, rounded like the C++ side."""
    q = torch.round(rgb01.clamp(0, 1) * 255) / 255
    return torch.round(16.0 + 65.481 * q[0] + 128.553 * q[1] + 24.966 * q[2])


def psnr_y(sr, hr, border):
    a, b = luma(sr)[border:-border, border:-border], luma(hr)[border:-border, border:-border]
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return 100.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@torch.no_grad()
def evaluate(model, folder, scale=2, limit=0):
    """Mean Y-PSNR of the model and of bicubic on a folder of high-resolution images."""
    files = list_images(folder)
    if limit:
        files = files[:limit]
    model.eval()
    total_model = total_bicubic = 0.0
    for path in files:
        img = load_rgb(path)
        h, w = img.shape[0] // scale * scale, img.shape[1] // scale * scale
        hr = torch.from_numpy(np.ascontiguousarray(img[:h, :w])).permute(2, 0, 1).float().div(255)[None]
        lr = shrink(hr, scale)
        sr = model(lr).clamp(0, 1)
        bic = torch.nn.functional.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
        total_model += psnr_y(sr[0], hr[0], scale)
        total_bicubic += psnr_y(bic[0], hr[0], scale)
    model.train()
    return total_model / len(files), total_bicubic / len(files)
