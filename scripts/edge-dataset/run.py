"""edge-dataset: build the seeded, stratified digits split every edge script consumes."""

from __future__ import annotations

from typing import Any

import numpy as np
from edgelib.data import Digits, save_digits
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def make_split(seed: int, test_fraction: float) -> Digits:
    """Stratified split so every class appears in the test set at its natural share."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)  # pixel counts 0..16 -> [0, 1]
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    return Digits(
        x_train=np.ascontiguousarray(x_tr),
        y_train=y_tr.astype(np.int64),
        x_test=np.ascontiguousarray(x_te),
        y_test=y_te.astype(np.int64),
    )


def run(ctx: Any) -> dict[str, Any]:
    d = make_split(int(ctx.inputs["seed"]), float(ctx.inputs["test_fraction"]))
    save_digits(ctx.out_dir / "digits.npz", d)
    ctx.log.info(f"digits split: {len(d.y_train)} train / {len(d.y_test)} test")
    return {
        "metrics": {"n_train": len(d.y_train), "n_test": len(d.y_test)},
        "files": {"dataset": "digits.npz"},
        "values": {"class_counts_test": np.bincount(d.y_test, minlength=10).tolist()},
    }
