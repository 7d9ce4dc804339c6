"""Does memorising the public digits pay on edge-digits' private scoring set?

For each augmentation strength: a secret-seeded scoring set (5 fresh images per public
held-out row), and the accuracy on it of
- honest: a CNN trained (organiser recipe: fresh public-seed augmentation each epoch)
  on the training rows only;
- memo-train: the same recipe trained on ALL 1797 public images (the scoring sources
  included): a memoriser that learns the held-out images and their labels;
- 1nn-all / 1nn-train: nearest public image (all vs training rows only);
- 1nn-aug-all / 1nn-aug-train: nearest of 10 own-seed augmented copies of each;
plus `recover`: how often the nearest public image of a scoring image is its source.
The advantage of memorisation is (all - train) for each method. One repetition per
strength set (1800 images); the spread shown is over --seeds training seeds (default 3).

    PYTHONPATH=src python bench/bench_edge_private.py [--strengths mild,strong,heavy]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

import numpy as np

print = functools.partial(print, flush=True)  # noqa: A001
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts/_lib/edge"), str(ROOT / "scripts/_lib/edgetour")]

from edgetour.augment import STRENGTHS, augment  # noqa: E402
from edgetour.training import train_augmented  # noqa: E402


def nn_acc(ref_x, ref_y, x, y) -> float:
    d = (x * x).sum(1)[:, None] - 2 * x @ ref_x.T + (ref_x * ref_x).sum(1)[None, :]
    return float((ref_y[d.argmin(1)] == y).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--strengths", default="mild,strong,heavy")
    ap.add_argument("--model", default="cnn-32")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    print(f"loadavg before: {open('/proc/loadavg').read().strip()}  cpus {os.cpu_count()}")
    for name in a.strengths.split(","):
        s = STRENGTHS[name]
        secret = np.random.default_rng(123456789)  # stands for the organiser's secret
        xs, ys = augment(xte, secret, s, copies=5), np.repeat(yte, 5)
        src = np.repeat(np.arange(len(xte)), 5)
        d = (xs * xs).sum(1)[:, None] - 2 * xs @ x.T + (x * x).sum(1)[None, :]
        te_rows = np.array([np.flatnonzero((x == r).all(1))[0] for r in xte])
        recover = float((d.argmin(1) == te_rows[src]).mean())
        att = np.random.default_rng(7)  # the attacker's own augmentation seed
        ax, ay = augment(x, att, s, copies=10), np.repeat(y, 10)
        atx, aty = augment(xtr, att, s, copies=10), np.repeat(ytr, 10)
        print(f"  [{name}] sets built; loadavg {open('/proc/loadavg').read().strip()}")
        row = {
            "recover": recover,
            "1nn-all": nn_acc(x, y, xs, ys),
            "1nn-train": nn_acc(xtr, ytr, xs, ys),
            "1nn-aug-all": nn_acc(ax, ay, xs, ys),
            "1nn-aug-train": nn_acc(atx, aty, xs, ys),
        }
        hon, mem, clean = [], [], []
        t0 = time.perf_counter()
        for seed in range(a.seeds):
            import torch

            m, _ = train_augmented(a.model, xtr, ytr, a.epochs, 64, 1e-3, seed, s)
            mm, _ = train_augmented(a.model, x, y, a.epochs, 64, 1e-3, seed, s)
            with torch.inference_mode():
                hon.append(float((m(torch.from_numpy(xs)).argmax(1).numpy() == ys).mean()))
                mem.append(float((mm(torch.from_numpy(xs)).argmax(1).numpy() == ys).mean()))
                clean.append(float((m(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean()))
            print(f"  [{name}] seed {seed}: honest {hon[-1]:.4f} memo {mem[-1]:.4f}")
        train_s = (time.perf_counter() - t0) / (2 * a.seeds)
        f = lambda v: f"{np.median(v):.4f} [{min(v):.4f}, {max(v):.4f}]"  # noqa: E731
        print(f"\n== {name}: {s}")
        for k, v in row.items():
            print(f"  {k:14s} {v:.4f}")
        print(f"  honest {a.model} (train rows)       {f(hon)}")
        print(f"  memo   {a.model} (all 1797 public)  {f(mem)}")
        print(f"  honest {a.model} on clean public test {f(clean)}")
        print(
            f"  median training time {train_s:.1f} s; loadavg {open('/proc/loadavg').read().strip()}"
        )


if __name__ == "__main__":
    main()
