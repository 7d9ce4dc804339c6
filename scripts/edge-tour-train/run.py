"""edge-tour-train: augmented training (public seed) of a digits MLP/CNN + fp32 ONNX export."""

from __future__ import annotations

import time
from typing import Any

import torch
from edgelib.data import load_digits_npz
from edgelib.models import ONNX_OPSET, export_onnx
from edgetour.augment import STRENGTHS
from edgetour.training import train_augmented


def run(ctx: Any) -> dict[str, Any]:
    torch.set_num_threads(1)
    inp = ctx.inputs
    d = load_digits_npz(ctx.deps["data"].files["dataset"])
    t0 = time.perf_counter()
    with ctx.timer("train"):
        model, loss = train_augmented(
            inp["model"], d.x_train, d.y_train, int(inp["epochs"]), int(inp["batch_size"]),
            float(inp["lr"]), int(inp["seed"]), STRENGTHS[inp["augment"]],
        )  # fmt: skip
    train_s = time.perf_counter() - t0
    ctx.log.info(f"{inp['model']} ({inp['augment']} augmentation): last loss {loss:.4f}")
    torch.save(model.state_dict(), ctx.out_dir / "model.pt")
    with ctx.timer("export"):
        export_onnx(model, ctx.out_dir / "model.onnx")
    return {
        "metrics": {
            "train_loss": loss,
            "params": sum(p.numel() for p in model.parameters()),
            "train_time_s": train_s,
        },
        "files": {"state_dict": "model.pt", "onnx": "model.onnx"},
        "values": {"onnx_opset": ONNX_OPSET, "torch": torch.__version__},
    }
