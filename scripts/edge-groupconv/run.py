"""edge-groupconv: group convolution's MAC savings against its measured latency.

E2GC (2020) observes that grouping a convolution cuts MACs by the number of groups but
not latency or energy in proportion: small groups have low arithmetic intensity (the
layer becomes memory-bound), so throughput in MAC/s falls as groups grow. It proposes
a fixed group width instead. One invocation measures one grouping of a conv stack.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn


def stack(channels: int, groups: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [
            nn.Conv2d(channels, channels, 3, padding=1, groups=groups, bias=False),
            nn.ReLU(),
        ]
    return nn.Sequential(*layers).eval()


def macs(channels: int, groups: int, depth: int, size: int) -> int:
    """Multiply-accumulates of the stack: per output pixel, (C/G) * 9 per output channel."""
    return depth * size * size * channels * (channels // groups) * 9


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    c, g, d, s = (int(inp[k]) for k in ("channels", "groups", "depth", "size"))
    if c % g:
        raise ValueError(f"groups {g} must divide channels {c}")
    torch.set_num_threads(int(inp["threads"]))
    torch.manual_seed(int(inp["seed"]))
    net = stack(c, g, d)
    x = torch.randn(1, c, s, s)
    runs, warm = int(inp["runs"]), int(inp["warmup"])
    secs = np.empty(runs)
    with torch.inference_mode(), ctx.energy.measure() as e:
        for _ in range(warm):
            net(x)
        for i in range(runs):
            t0 = time.perf_counter()
            net(x)
            secs[i] = time.perf_counter() - t0
    p50 = float(np.median(secs))
    m = macs(c, g, d, s)
    return {
        "metrics": {
            "macs_m": m / 1e6,
            "latency_p50_ms": p50 * 1e3,
            "gmacs_per_s": m / 1e9 / p50,
            "energy_per_inference_mj": e.joules * 1e3 / (runs + warm),
        },
        "values": {"energy_method": e.method, "torch": torch.__version__},
    }
