"""Iteration cost models for the simulator: fitted to the CPU engine, or a GPU roofline.

Why two: the fitted model ties the simulator to what the real engine measured (and its
fit error says how far to trust it); the roofline extrapolates to GPUs and model sizes
this machine cannot run, from datasheet numbers kept as data (hardware.yaml).
Power: busy power follows how compute-bound an iteration is; a POLCA-style cap lowers
the clock (dynamic power ~ f^3) so only the compute-bound part slows down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .scheduler import Work, features

DATA = Path(__file__).with_name("hardware.yaml")
FIT_FEATURES = [
    "const",
    "prefill_tokens",
    "decode_tokens",
    "prefill_seqs",
    "decode_ctx",
    "prefill_ctx",
]


def load_data() -> dict[str, Any]:
    return yaml.safe_load(DATA.read_text())


@dataclass
class Cost:
    seconds: float
    power_w: float  # per device, while busy


def _capped(
    compute_s: float, other_s: float, fixed_s: float, idle_w: float, tdp_w: float, cap: float
) -> Cost:
    """Busy power rises with the compute-bound share; under a cap the clock drops."""
    busy = max(compute_s, other_s)
    u = compute_s / busy if busy > 0 else 0.0
    demand = idle_w + (tdp_w - idle_w) * (0.6 + 0.4 * u)  # memory-bound: ~60% of range
    cap_w = cap * tdp_w
    if demand > cap_w:
        f = ((cap_w - idle_w) / (demand - idle_w)) ** (1 / 3) if cap_w > idle_w else 0.05
        busy = max(compute_s / max(f, 0.05), other_s)
        demand = cap_w
    return Cost(busy + fixed_s, demand)


@dataclass
class FittedCost:
    """t = c . [1, P, D, prefill seqs, decode ctx, prefill ctx] (non-negative LSQ)."""

    coef: np.ndarray
    idle_w: float = 5.0
    busy_w: float = 20.0
    cap: float = 1.0
    devices: int = 1

    def __call__(self, works: list[Work]) -> Cost:
        f = features(works)
        x = np.array([1.0] + [f[k] for k in FIT_FEATURES[1:]])
        t = float(self.coef @ x)
        return _capped(t, 0.0, 0.0, self.idle_w, self.busy_w, self.cap)


def design(cols: dict[str, np.ndarray]) -> np.ndarray:
    """Feature matrix from an iterations profile (CSV columns)."""
    n = len(cols["seconds"])
    pf_seqs = cols["n_seqs"] - cols["decode_tokens"]
    return np.column_stack(
        [
            np.ones(n),
            cols["prefill_tokens"],
            cols["decode_tokens"],
            pf_seqs,
            cols["decode_ctx"],
            cols["prefill_ctx"],
        ]
    )


def fit(cols: dict[str, np.ndarray], target: str = "cpu_seconds") -> np.ndarray:
    """Non-negative least squares (a cost cannot be negative), relative-error weighted so
    short decode steps count as much as long prefills. The default target is the engine
    thread's CPU time per iteration: on a shared machine wall time also holds preemption
    by other processes, which no iteration-mix model can predict."""
    from scipy.optimize import nnls

    x, y = design(cols), cols[target]
    w = 1.0 / np.maximum(y, 1e-4)
    coef, _ = nnls(x * w[:, None], y * w)
    return coef


def fit_error(
    coef: np.ndarray, cols: dict[str, np.ndarray], target: str = "cpu_seconds"
) -> dict[str, float]:
    """Errors of predicted vs measured iteration seconds (`target` column)."""
    y = cols[target]
    p = design(cols) @ coef
    ape = np.abs(p - y) / np.maximum(y, 1e-9)
    ss_res, ss_tot = float(np.sum((p - y) ** 2)), float(np.sum((y - y.mean()) ** 2))
    return {
        "mape": float(np.mean(ape)),
        "median_ape": float(np.median(ape)),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
        "total_time_error": float(abs(p.sum() - y.sum()) / y.sum()),
    }


@dataclass
class Roofline:
    """Tensor-parallel instance of `tp` GPUs running a dense fp16 model."""

    gpu: str
    model: str
    tp: int = 1
    cap: float = 1.0
    data: dict[str, Any] = field(default_factory=load_data)

    def __post_init__(self) -> None:
        self.g = self.data["gpus"][self.gpu]
        self.m = self.data["models"][self.model]
        self.eff = self.data["efficiency"]
        m = self.m
        self.weight_bytes = 2.0 * m["params"]
        hd = m["d_model"] // m["heads"]
        self.kv_bytes_per_token = 2.0 * 2 * m["layers"] * m["kv_heads"] * hd

    @property
    def devices(self) -> int:
        return self.tp

    @property
    def idle_w(self) -> float:
        return float(self.g["idle_w"])

    def kv_capacity_tokens(self, usable: float = 0.9) -> int:
        """KV tokens that fit beside the weights on the instance (0 if weights don't)."""
        free = usable * self.g["memory_gb"] * 1e9 * self.tp - self.weight_bytes
        return max(0, int(free / self.kv_bytes_per_token))

    def __call__(self, works: list[Work]) -> Cost:
        f = features(works)
        m, g, e = self.m, self.g, self.eff
        tokens = f["prefill_tokens"] + f["decode_tokens"]
        attn_pairs = f["decode_ctx"] + f["prefill_ctx"] / 2
        flops = 2.0 * m["params"] * tokens + 4.0 * m["layers"] * m["d_model"] * attn_pairs
        kv_read = self.kv_bytes_per_token * (f["decode_ctx"] + f["prefill_tokens"])
        compute = flops / (self.tp * g["flops_fp16"] * e["compute"])
        memory = (self.weight_bytes + kv_read) / (self.tp * g["hbm_bw"] * e["bandwidth"])
        comm = 0.0
        if self.tp > 1:  # two all-reduces per layer over the activations
            vol = 2 * tokens * m["d_model"] * 2.0 * 2 * (self.tp - 1) / self.tp
            comm = m["layers"] * (vol / g["nvlink_bw"] + 2 * e["allreduce_latency_us"] * 1e-6)
        fixed = comm + e["step_overhead_ms"] * 1e-3
        return _capped(compute, memory, fixed, g["idle_w"], g["tdp_w"], self.cap)


def auto_tp(gpu: str, model: str, data: dict[str, Any] | None = None) -> int:
    """Smallest power-of-two TP degree leaving >= 30% of memory for the KV cache."""
    data = data or load_data()
    tp = 1
    while tp < 64:
        r = Roofline(gpu, model, tp, data=data)
        if r.weight_bytes <= 0.7 * 0.9 * r.g["memory_gb"] * 1e9 * tp:
            return tp
        tp *= 2
    return tp
