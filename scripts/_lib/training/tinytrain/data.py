"""The scikit-learn digits split every small training script uses (seeded, [0, 1])."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


@dataclass(frozen=True)
class Split:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def digits(seed: int, test_size: float = 0.25) -> Split:
    """8x8 digits flattened to 64 float32 features in [0, 1], stratified split."""
    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(
        (x / 16.0).astype(np.float32), y, test_size=test_size, random_state=seed, stratify=y
    )
    return Split(
        torch.from_numpy(xtr),
        torch.from_numpy(ytr.astype(np.int64)),
        torch.from_numpy(xte),
        torch.from_numpy(yte.astype(np.int64)),
    )


def batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """Index batches of one shuffled epoch."""
    perm = torch.randperm(n, generator=gen)
    return [perm[i : i + batch_size] for i in range(0, n, batch_size)]
