"""Digits dataset file format shared by every edge script (one .npz, float32 in [0, 1])."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

N_FEATURES = 64  # 8x8 digits, flattened; CNNs reshape inside the model
N_CLASSES = 10


@dataclass(frozen=True)
class Digits:
    """Train/test split; X is (n, 64) float32 scaled to [0, 1], y is int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def save_digits(path: Path, d: Digits) -> None:
    """Write the split as an uncompressed npz (fast to load in every consumer)."""
    np.savez(path, x_train=d.x_train, y_train=d.y_train, x_test=d.x_test, y_test=d.y_test)


def load_digits_npz(path: Path | str) -> Digits:
    """Read a split written by :func:`save_digits`, checking shapes so bad files fail early."""
    with np.load(path) as z:
        d = Digits(
            x_train=np.ascontiguousarray(z["x_train"], dtype=np.float32),
            y_train=z["y_train"].astype(np.int64),
            x_test=np.ascontiguousarray(z["x_test"], dtype=np.float32),
            y_test=z["y_test"].astype(np.int64),
        )
    for name in ("x_train", "x_test"):
        arr = getattr(d, name)
        if arr.ndim != 2 or arr.shape[1] != N_FEATURES:
            raise ValueError(f"{path}: {name} has shape {arr.shape}, expected (n, 64)")
    return d
