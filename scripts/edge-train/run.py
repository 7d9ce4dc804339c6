"""edge-train: seeded single-thread PyTorch training of a digits MLP/CNN + fp32 ONNX export."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from edgelib.data import load_digits_npz
from edgelib.models import ONNX_OPSET, build_model, export_onnx, parse_model


def train(
    model_name: str, x: np.ndarray, y: np.ndarray, epochs: int, batch: int, lr: float, seed: int
) -> tuple[torch.nn.Module, float]:
    """Adam + cross-entropy, seeded init and shuffling; returns (model, last-epoch loss)."""
    torch.manual_seed(seed)
    model = build_model(parse_model(model_name))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    last = float("nan")
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        total, n = 0.0, 0
        for i in range(0, len(xt), batch):
            idx = perm[i : i + batch]
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            n += len(idx)
        last = total / n
    model.eval()
    return model, last


def run(ctx: Any) -> dict[str, Any]:
    torch.set_num_threads(1)  # comparable across machines and parallel jobs
    inp = ctx.inputs
    d = load_digits_npz(ctx.deps["data"].files["dataset"])
    t0 = time.perf_counter()
    with ctx.timer("train"):
        model, loss = train(
            inp["model"],
            d.x_train,
            d.y_train,
            int(inp["epochs"]),
            int(inp["batch_size"]),
            float(inp["lr"]),
            int(inp["seed"]),
        )
    train_s = time.perf_counter() - t0
    with torch.inference_mode():
        pred = model(torch.from_numpy(d.x_test)).argmax(1).numpy()
    acc = float((pred == d.y_test).mean())
    ctx.log.info(f"{inp['model']}: test accuracy {acc:.4f}, last loss {loss:.4f}")
    torch.save(model.state_dict(), ctx.out_dir / "model.pt")
    with ctx.timer("export"):
        export_onnx(model, ctx.out_dir / "model.onnx")
    return {
        "metrics": {
            "accuracy": acc,
            "train_loss": loss,
            "params": sum(p.numel() for p in model.parameters()),
            "train_time_s": train_s,
        },
        "files": {"state_dict": "model.pt", "onnx": "model.onnx"},
        "values": {"onnx_opset": ONNX_OPSET, "torch": torch.__version__},
    }
