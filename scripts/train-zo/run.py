"""train-zo: memory of zeroth-order (MeZO/SPSA) fine-tuning against backpropagation.

DistZO2 (2025) builds on MeZO: a zeroth-order step estimates the gradient from two
forward passes at theta + eps*z and theta - eps*z, with z regenerated from a seed
instead of stored, so training needs inference memory only — no activations kept
for backward and no gradient buffers. We measure that gap on a wide MLP (weights of
tens of MB, a large batch so activations matter) with peak RSS above a baseline taken
after the model exists; loss_drop shows whether each method trained at all.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from tinytrain.data import digits
from tinytrain.memory import PeakAbove
from tinytrain.mlp import mlp
from torch import nn
from torch.nn import functional as F


def perturb(model: nn.Module, seed: int, scale: float) -> None:
    """theta += scale * z, z ~ N(0, 1) regenerated from `seed` (never stored)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen), alpha=scale)


def zo_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float, eps: float, seed: int
) -> None:
    with torch.no_grad():
        perturb(model, seed, eps)
        lp = F.cross_entropy(model(x), y)
        perturb(model, seed, -2 * eps)
        lm = F.cross_entropy(model(x), y)
        perturb(model, seed, eps)
        g = float(lp - lm) / (2 * eps)
        perturb(model, seed, -lr * g)  # theta -= lr * g * z


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    torch.set_num_threads(int(inp["threads"]))
    data = digits(int(inp["seed"]))
    seed = int(inp["seed"]) + ctx.repetition
    model = mlp(64, int(inp["hidden"]), int(inp["layers"]), 10, seed)
    bs = int(inp["batch_size"])
    gen = torch.Generator().manual_seed(seed)
    idx = [
        torch.randint(0, len(data.y_train), (bs,), generator=gen) for _ in range(int(inp["steps"]))
    ]
    xs = [data.x_train[i] for i in idx]
    ys = [data.y_train[i] for i in idx]
    with torch.no_grad():
        start = statistics.fmean(
            float(F.cross_entropy(model(x), y)) for x, y in zip(xs, ys, strict=True)
        )
    opt = (
        torch.optim.SGD(model.parameters(), lr=float(inp["lr"])) if inp["method"] == "bp" else None
    )
    times = []
    with PeakAbove() as mem:
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            t0 = time.perf_counter()
            if opt is not None:
                opt.zero_grad(set_to_none=False)  # gradient buffers stay allocated, as in training
                F.cross_entropy(model(x), y).backward()
                opt.step()
            else:
                zo_step(model, x, y, float(inp["lr"]), float(inp["eps"]), seed * 100003 + i)
            times.append(time.perf_counter() - t0)
    with torch.no_grad():
        end = statistics.fmean(
            float(F.cross_entropy(model(x), y)) for x, y in zip(xs, ys, strict=True)
        )
    params_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    ctx.log.info(f"{inp['method']}: peak +{mem.mb:.1f} MB, loss {start:.3f} -> {end:.3f}")
    return {
        "metrics": {
            "peak_rss_above_baseline_mb": mem.mb,
            "step_time_median_s": statistics.median(times),
            "loss_start": start,
            "loss_end": end,
            "loss_drop": start - end,
            "params_mb": params_mb,
        },
        "values": {"peak_method": mem.method, "torch": torch.__version__},
    }
