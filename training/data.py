"""Training pairs: random high-resolution patches from a folder of photos and their MATLAB-style
antialiased bicubic x2 shrinks (the standard degradation), with flips and 90-degree turns."""
import glob
import os
import random

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def list_images(folder):
    files = [p for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
             if p.lower().endswith(EXTENSIONS)]
    return sorted(files)


def load_rgb(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def shrink(hr, scale=2):
    """MATLAB imresize-style bicubic shrink (antialiased, a = -0.5) of an NCHW float batch."""
    return F.interpolate(hr, scale_factor=1.0 / scale, mode="bicubic", align_corners=False,
                         antialias=True).clamp(0, 1)


class PatchSampler:
    """Holds the photos in memory (uint8) and cuts random patch batches from them."""

    def __init__(self, folder, patch=96, min_side=None, seed=1):
        self.patch = patch
        self.rng = random.Random(seed)
        self.images = [img for img in (load_rgb(p) for p in list_images(folder))
                       if min(img.shape[:2]) >= (min_side or patch)]
        if not self.images:
            raise SystemExit(f"no usable images (>= {patch} px) in {folder}")
        # Larger photos hold more distinct patches: sample them in proportion to their area.
        areas = np.array([img.shape[0] * img.shape[1] for img in self.images], dtype=np.float64)
        self.weights = (areas / areas.sum()).tolist()

    def batch(self, size, scale=2):
        hr = np.empty((size, self.patch, self.patch, 3), dtype=np.uint8)
        for i in range(size):
            img = self.rng.choices(self.images, weights=self.weights)[0]
            y = self.rng.randrange(img.shape[0] - self.patch + 1)
            x = self.rng.randrange(img.shape[1] - self.patch + 1)
            p = img[y:y + self.patch, x:x + self.patch]
            if self.rng.random() < 0.5:
                p = p[:, ::-1]
            if self.rng.random() < 0.5:
                p = p[::-1]
            p = np.rot90(p, self.rng.randrange(4))
            hr[i] = p
        hr_t = torch.from_numpy(hr).permute(0, 3, 1, 2).float().div_(255)
        return shrink(hr_t, scale), hr_t
