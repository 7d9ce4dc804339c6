"""edge-tour-split: the training rows of the digits split only (no held-out rows)."""

from __future__ import annotations

from typing import Any

import numpy as np
from edgelib.data import Digits, save_digits
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def run(ctx: Any) -> dict[str, Any]:
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_tr, _, y_tr, _ = train_test_split(
        x, y, test_size=float(ctx.inputs["test_fraction"]), stratify=y,
        random_state=int(ctx.inputs["seed"]),
    )  # fmt: skip
    empty = np.zeros((0, x.shape[1]), dtype=np.float32)
    d = Digits(np.ascontiguousarray(x_tr), y_tr.astype(np.int64), empty, np.zeros(0, np.int64))
    save_digits(ctx.out_dir / "digits.npz", d)
    ctx.log.info(f"public training rows: {len(y_tr)} (no test rows)")
    return {"metrics": {"n_train": len(y_tr)}, "files": {"dataset": "digits.npz"}}
