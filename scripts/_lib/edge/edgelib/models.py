"""Model zoo of the digits experiments: ``mlp-<width>`` and ``cnn-<channels>`` (torch)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgelib.data import N_CLASSES, N_FEATURES

MODEL_RE = re.compile(r"^(mlp|cnn)-([1-9][0-9]*)$")
ONNX_OPSET = 17  # fixed so exported graphs (and their hashes) don't drift with torch
INPUT_NAME = "x"
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class ModelSpec:
    """Parsed model string: family ('mlp' | 'cnn') and size (width or channels)."""

    family: str
    size: int


def parse_model(name: str) -> ModelSpec:
    """Parse 'mlp-1024' / 'cnn-64'; ValueError for anything else (the schema pattern agrees)."""
    m = MODEL_RE.match(name)
    if not m:
        raise ValueError(f"model {name!r}: expected 'mlp-<width>' or 'cnn-<channels>'")
    return ModelSpec(m.group(1), int(m.group(2)))


class MLP(nn.Module):
    """Two hidden layers of equal width: big enough that int8 weights matter."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(N_FEATURES, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, N_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """Two 3x3 convs + max-pool + linear on the 8x8 image; input stays (n, 64)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(channels * 16, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x.reshape(-1, 1, 8, 8))
        return self.head(torch.flatten(h, 1))


def build_model(spec: ModelSpec | str) -> nn.Module:
    """Fresh (random-init) module for a spec; seed torch before calling for reproducibility."""
    if isinstance(spec, str):
        spec = parse_model(spec)
    if spec.family == "mlp":
        return MLP(spec.size)
    return SmallCNN(spec.size)


def export_onnx(model: nn.Module, path: Path) -> None:
    """Export fp32 ONNX with a dynamic batch axis (batch-1 latency, batched accuracy).

    Uses the TorchScript exporter: the dynamo exporter needs onnxscript, which the
    ml-cpu env does not ship, and the legacy path is stable for these plain graphs.
    """
    model.eval()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (torch.zeros(1, N_FEATURES),),
            str(path),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
