"""edge-macs-latency: counted MACs vs measured batch-1 CPU latency of one 224-px net.

EfficientFormer / LowFormer argue MACs misrank real latency (depthwise convs and
attention reshapes are memory-bound). Each invocation reports both numbers for one
net so the experiment table can rank the nets by either.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from macs_nets import build_net
from torch.utils.flop_counter import FlopCounterMode


def count_macs(net: torch.nn.Module, x: torch.Tensor) -> tuple[int, dict[str, int]]:
    """MACs of one forward pass (= FlopCounterMode flops / 2) and the per-op split."""
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        net(x)
    by_op = {str(op): int(n) // 2 for op, n in fc.get_flop_counts().get("Global", {}).items()}
    return int(fc.get_total_flops()) // 2, by_op


def time_forward(net: torch.nn.Module, x: torch.Tensor, runs: int, warmup: int) -> np.ndarray:
    """Per-call wall seconds of `runs` forward passes after `warmup` untimed ones."""
    out = np.empty(runs)
    with torch.inference_mode():
        for _ in range(warmup):
            net(x)
        for i in range(runs):
            t0 = time.perf_counter()
            net(x)
            out[i] = time.perf_counter() - t0
    return out


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    torch.set_num_threads(int(inp["threads"]))
    torch.manual_seed(int(inp["seed"]))
    size = int(inp["image_size"])
    net = build_net(inp["model"], size, float(inp["width"]))
    x = torch.randn(1, 3, size, size)
    with ctx.timer("count_macs"):
        macs, by_op = count_macs(net, x)
    with ctx.timer("latency"), ctx.energy.measure() as e:
        secs = time_forward(net, x, int(inp["runs"]), int(inp["warmup"]))
    p50 = float(np.median(secs))
    params = sum(p.numel() for p in net.parameters())
    ctx.log.info(f"{inp['model']}@{size}: {macs / 1e9:.3f} GMACs, p50 {p50 * 1e3:.2f} ms")
    return {
        "metrics": {
            "macs_g": macs / 1e9,
            "params_m": params / 1e6,
            "latency_p50_ms": p50 * 1e3,
            "latency_p90_ms": float(np.percentile(secs, 90)) * 1e3,
            "latency_min_ms": float(secs.min()) * 1e3,
            "gmacs_per_s": macs / 1e9 / p50,
            "energy_per_inference_mj": e.joules * 1e3 / (int(inp["runs"]) + int(inp["warmup"])),
        },
        "values": {"macs_by_op": by_op, "energy_method": e.method, "torch": torch.__version__},
    }
