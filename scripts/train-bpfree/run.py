"""train-bpfree: backpropagation against the BP-free Mono-Forward rule on digits.

Beyond Backpropagation (2025) reports that Mono-Forward (MF) matches or beats BP's
accuracy on MLPs while cutting training time and energy. The mechanism: each layer
learns from a local loss through its own class projection M_i, so the backward pass
never computes gradients with respect to a layer's input (the dX matmuls of BP) and no
activation is kept across layers. Both arms train the same architecture, data order
and epochs; only the learning rule differs.

`readout-only` is the control for "MF matches BP's accuracy": the hidden layers stay
at their random initialisation and only the output layer is trained (a random-features
model). It is the known floor of any rule that trains hidden layers: without learned
features the MLP loses accuracy, so a non-inferiority check against BP must fail on it.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from tinytrain.data import batches, digits
from tinytrain.mlp import accuracy, mlp
from torch import nn
from torch.nn import functional as F


class MonoForward(nn.Module):
    """Hidden layers with per-layer class projections; predicts from the last one."""

    def __init__(self, n_in: int, hidden: int, layers: int, n_out: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        dims = [n_in] + [hidden] * layers
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:], strict=False))
        self.proj = nn.ParameterList(
            nn.Parameter(torch.randn(hidden, n_out) / hidden**0.5) for _ in range(layers)
        )

    def local_losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = x.new_zeros(())
        h = x
        for lin, m in zip(self.layers, self.proj, strict=True):
            h = F.relu(lin(h.detach()))  # detach: no gradient reaches the layer below
            total = total + F.cross_entropy(h @ m, y)
        return total

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for lin in self.layers:
            h = F.relu(lin(h))
        return h @ self.proj[-1]


def train(inp: dict[str, Any], repetition: int, energy: Any) -> dict[str, Any]:
    data = digits(int(inp["seed"]))
    wseed = int(inp["seed"]) + repetition
    hidden, layers = int(inp["hidden"]), int(inp["layers"])
    if inp["algorithm"] == "mono-forward":
        model: nn.Module = MonoForward(64, hidden, layers, 10, wseed)
        params = list(model.parameters())
    else:
        model = mlp(64, hidden, layers, 10, wseed)
        # readout-only: hidden layers frozen at their random init, only the head learns
        params = list(model.parameters() if inp["algorithm"] == "bp" else model[-1].parameters())
    opt = torch.optim.Adam(params, lr=float(inp["lr"]))
    gen = torch.Generator().manual_seed(wseed)
    loss = torch.zeros(())
    t0, c0 = time.perf_counter(), time.process_time()
    with energy.measure() as e:
        for _ in range(int(inp["epochs"])):
            for idx in batches(len(data.y_train), int(inp["batch_size"]), gen):
                x, y = data.x_train[idx], data.y_train[idx]
                opt.zero_grad(set_to_none=True)
                if inp["algorithm"] == "mono-forward":
                    loss = model.local_losses(x, y)
                else:
                    loss = F.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "accuracy": accuracy(model, data.x_test, data.y_test),
        "train_time_s": wall,
        "train_cpu_s": cpu,
        "energy_j": e.joules,
        "final_train_loss": float(loss.detach()),
        "_method": e.method,
    }


def run(ctx: Any) -> dict[str, Any]:
    torch.set_num_threads(int(ctx.inputs["threads"]))
    m = train(ctx.inputs, ctx.repetition, ctx.energy)
    method = m.pop("_method")
    ctx.log.info(f"{ctx.inputs['algorithm']}: acc {m['accuracy']:.4f} in {m['train_time_s']:.2f} s")
    return {"metrics": m, "values": {"energy_method": method, "torch": torch.__version__}}
