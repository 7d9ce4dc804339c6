"""A plain ReLU MLP and its test accuracy (the model the digits scripts train)."""

from __future__ import annotations

import torch
from torch import nn


def mlp(n_in: int, hidden: int, layers: int, n_out: int, seed: int) -> nn.Sequential:
    """`layers` hidden Linear+ReLU blocks of width `hidden`, then a Linear head."""
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    width = n_in
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    mods.append(nn.Linear(width, n_out))
    return nn.Sequential(*mods)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    pred = model(x.to(next(model.parameters()).dtype)).argmax(dim=1)
    model.train()
    return float((pred == y).float().mean())
