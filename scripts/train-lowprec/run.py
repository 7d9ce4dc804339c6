"""train-lowprec: on-device-style training of a small conv net in fp32, fp16 or bf16.

The MCU paper (Nadalini et al., 2023) runs forward and backward of conv layers in FP16
with SIMD kernels and reports up to 1.72x faster training steps than FP32 at no
accuracy cost. On this CPU the 16-bit types change the kernels PyTorch picks (bf16 has
AVX-512/AMX paths on some x86 CPUs, fp16 mostly none), so speed is measured, not
assumed; accuracy tells whether 16-bit training still converges. fp16 keeps an fp32
master copy of the weights and a static loss scale, the usual recipe for its narrow
exponent; bf16 trains its weights directly.

`fp16-nomaster` is the known failure that fp32 master weights exist for: bf16's recipe
(16-bit weights and Adam state, no master copy) in fp16. With fp16's 5-bit exponent,
Adam's eps (1e-8) rounds to 0 (fp16's smallest subnormal is 6e-8), so every weight
whose gradient is exactly 0 (inputs from a ReLU unit that is dead over the batch: about
780 of the net's 3,800 weights on the first batch) is updated by 0/0 = NaN on the first
step and the net predicts one class. It is the control of the "keeps accuracy" claims:
a 16-bit recipe that does lose accuracy.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from tinytrain.data import batches, digits
from torch import nn
from torch.nn import functional as F

DTYPES = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
    "fp16-nomaster": torch.float16,
}


def net(channels: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    c = channels
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, c, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c, 2 * c, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * c * 16, 10),
    )


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    torch.set_num_threads(int(inp["threads"]))
    dtype = DTYPES[inp["precision"]]
    data = digits(int(inp["seed"]))
    seed = int(inp["seed"]) + ctx.repetition
    master = net(int(inp["channels"]), seed)  # fp32 weights the optimizer updates
    work = master if dtype is torch.float32 else net(int(inp["channels"]), seed).to(dtype)
    if inp["precision"] in ("bf16", "fp16-nomaster"):
        master = work  # trains its own 16-bit weights (and Adam state): no fp32 copy
    opt = torch.optim.Adam(master.parameters(), lr=float(inp["lr"]))
    scale = float(inp["loss_scale"]) if inp["precision"] == "fp16" else 1.0
    gen = torch.Generator().manual_seed(seed)
    steps: list[float] = []
    with ctx.energy.measure() as e:
        for _ in range(int(inp["epochs"])):
            for idx in batches(len(data.y_train), int(inp["batch_size"]), gen):
                t0 = time.perf_counter()
                x, y = data.x_train[idx].to(dtype), data.y_train[idx]
                if work is not master:
                    with torch.no_grad():
                        for w, m in zip(work.parameters(), master.parameters(), strict=True):
                            w.copy_(m)
                    work.zero_grad(set_to_none=True)
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(work(x).float(), y)
                (loss * scale).backward()
                if work is not master:
                    for w, m in zip(work.parameters(), master.parameters(), strict=True):
                        m.grad = w.grad.float() / scale
                opt.step()
                steps.append(time.perf_counter() - t0)
    with torch.no_grad():
        work.eval()
        if work is not master:
            for w, m in zip(work.parameters(), master.parameters(), strict=True):
                w.copy_(m)
        acc = float((work(data.x_test.to(dtype)).argmax(1) == data.y_test).float().mean())
    ctx.log.info(f"{inp['precision']}: acc {acc:.4f}, step {statistics.median(steps) * 1e3:.2f} ms")
    return {
        "metrics": {
            "accuracy": acc,
            "step_time_median_s": statistics.median(steps),
            "train_time_s": sum(steps),
            "energy_j": e.joules,
        },
        "values": {"energy_method": e.method, "torch": torch.__version__},
    }
