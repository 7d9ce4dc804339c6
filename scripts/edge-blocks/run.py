"""edge-blocks: the modulation block against attention and conv blocks (EfficientMod).

Efficient Modulation (ICLR 2024) replaces attention's token-to-token softmax matrix by
a "modulation": a depthwise-conv context branch multiplied element-wise into a
projected value branch (ctx(x) * v(x), then a projection). Its cost is linear in the
number of tokens like a conv block, while attention's is quadratic, so the gap in
latency grows with resolution. MACs are counted by FlopCounterMode, never assumed.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


class Modulation(nn.Module):
    """EfficientMod block: proj(dwconv-context(x) * v(x)) on a channels-first map."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.v = nn.Conv2d(dim, dim, 1)
        self.ctx = nn.Sequential(
            nn.Conv2d(dim, dim, 1), nn.Conv2d(dim, dim, 7, padding=3, groups=dim), nn.GELU()
        )
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(self.ctx(x) * self.v(x))


class Attention(nn.Module):
    """Multi-head self-attention over all size^2 tokens (ViT-style)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)  # (b, n, c)
        q, k, v = self.qkv(t).view(b, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        # explicit matmuls (not the fused SDPA kernel) so FlopCounterMode sees them
        a = torch.softmax(q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5, dim=-1)
        out = (a @ v).transpose(1, 2).reshape(b, h * w, c)
        return x + self.proj(out).transpose(1, 2).reshape(b, c, h, w)


class ConvBlock(nn.Module):
    """Depthwise 7x7 + pointwise expansion (ConvNeXt-like mixing)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(dim, dim, 7, padding=3, groups=dim),
            nn.Conv2d(dim, 2 * dim, 1),
            nn.GELU(),
            nn.Conv2d(2 * dim, dim, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def build(block: str, dim: int, heads: int) -> nn.Module:
    if block == "modulation":
        return Modulation(dim).eval()
    if block == "attention":
        return Attention(dim, heads).eval()
    return ConvBlock(dim).eval()


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    torch.set_num_threads(int(inp["threads"]))
    torch.manual_seed(int(inp["seed"]))
    dim, size = int(inp["dim"]), int(inp["size"])
    net = build(inp["block"], dim, int(inp["heads"]))
    x = torch.randn(1, dim, size, size)
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        net(x)
    macs = int(fc.get_total_flops()) // 2
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
    return {
        "metrics": {
            "macs_m": macs / 1e6,
            "latency_p50_ms": p50 * 1e3,
            "gmacs_per_s": macs / 1e9 / p50,
            "energy_per_inference_mj": e.joules * 1e3 / (runs + warm),
        },
        "values": {"energy_method": e.method, "torch": torch.__version__},
    }
