"""Trains the compact x2 model. Resumable: every run continues from the checkpoint it finds.

    /usr/bin/python3 training/train.py --data ../shared/training --val ../shared/media/images/bsd68 \
        --checkpoint training/checkpoints/compact-x2.pt --steps 200000 --minutes 30

L1 loss, Adam, cosine learning-rate schedule over --steps, deterministic seed. Stops after
--steps or --minutes (whichever first), saving the checkpoint; the next run resumes there.
"""
import argparse
import math
import os
import random
import time

import numpy as np
import torch

from data import PatchSampler
from metrics import evaluate
from model import CompactSR, macs_per_input_pixel, parameter_count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="folder of training photos")
    ap.add_argument("--val", help="folder of validation photos (bsd68)")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--init", help="weights to start from when --checkpoint does not exist yet "
                                   "(e.g. training/weights/compact-x2-run3.pt, committed)")
    ap.add_argument("--steps", type=int, default=200000, help="length of the cosine schedule")
    ap.add_argument("--minutes", type=float, default=0, help="stop after this much wall time (0: no limit)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=96, help="high-resolution patch side")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--val-every", type=int, default=2000)
    ap.add_argument("--val-limit", type=int, default=0, help="validate on the first N images (0: all)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)
    device = torch.device(args.device)

    model = CompactSR().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99))
    step, best = 0, None
    if os.path.exists(args.checkpoint):
        state = torch.load(args.checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, best = state["step"], state.get("best_psnr")
        print(f"resumed at step {step} (best validation {best})", flush=True)
    elif args.init:
        state = torch.load(args.init, map_location=device)
        model.load_state_dict(state["model"])
        step = state.get("step", 0)
        print(f"starting from {args.init} (step {step}), fresh optimizer", flush=True)
    else:
        print(f"new model: {parameter_count(model)} parameters, "
              f"{macs_per_input_pixel(model) / 1e6:.3f} MMAC per input pixel", flush=True)
    # The sampler's stream depends on the step, so a resumed run does not repeat its patches.
    sampler = PatchSampler(args.data, patch=args.patch, seed=args.seed * 1000003 + step)

    def save(path):
        tmp = path + ".tmp"
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                    "best_psnr": best}, tmp)
        os.replace(tmp, path)

    os.makedirs(os.path.dirname(os.path.abspath(args.checkpoint)), exist_ok=True)
    start = time.time()
    loss_sum, loss_n = 0.0, 0
    model.train()
    while step < args.steps:
        # A short warm-up: the net starts as a plain enlargement and large first steps undo that.
        warm = min(1.0, (step + 1) / 500)
        lr_now = warm * args.lr * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = lr_now
        lr_img, hr_img = sampler.batch(args.batch)
        lr_img, hr_img = lr_img.to(device), hr_img.to(device)
        loss = torch.nn.functional.l1_loss(model(lr_img), hr_img)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        loss_sum += loss.item()
        loss_n += 1
        if step % 100 == 0:
            print(f"step {step} loss {loss_sum / loss_n:.5f} lr {lr_now:.2e} "
                  f"{(time.time() - start) / 60:.1f} min", flush=True)
            loss_sum, loss_n = 0.0, 0
        out_of_time = args.minutes and time.time() - start > args.minutes * 60
        if args.val and (step % args.val_every == 0 or out_of_time or step == args.steps):
            psnr, bicubic = evaluate(model, args.val, limit=args.val_limit)
            print(f"validation step {step}: Y-PSNR {psnr:.3f} dB, bicubic {bicubic:.3f} dB, "
                  f"gain {psnr - bicubic:+.3f} dB", flush=True)
            if best is None or psnr > best:
                best = psnr
                save(args.checkpoint.replace(".pt", "-best.pt"))
        if step % 500 == 0 or out_of_time:
            save(args.checkpoint)
        if out_of_time:
            break
    save(args.checkpoint)
    print(f"stopped at step {step} after {(time.time() - start) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
