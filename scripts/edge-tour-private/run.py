"""edge-tour-private: the secret-seeded scoring set (organiser-only step).

The sources are the public held-out rows, but no scoring image is public: each is a
fresh draw of a strong augmentation (elastic + affine + ink gain + noise) whose
generator is seeded from the secret, which only this step's container can read.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import numpy as np
from edgetour.augment import STRENGTHS, augment
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SECRET = Path("/run/efflab-private/secret")
PUBLIC_STAND_IN = b"edge-digits public stand-in secret: not the tournament's"


def secret_bytes(expected: str) -> bytes:
    if expected == "public":
        return PUBLIC_STAND_IN
    if not SECRET.is_file():
        raise RuntimeError(f"{SECRET}: the organiser's secret is not mounted into this step")
    raw = SECRET.read_bytes()
    if hashlib.sha256(raw).hexdigest() != expected:
        raise RuntimeError(f"{SECRET}: sha256 differs from the `secret` input (rotated?)")
    return raw


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    _, x_te, _, y_te = train_test_split(
        x, y, test_size=float(inp["test_fraction"]), stratify=y, random_state=int(inp["seed"])
    )
    key = hmac.new(secret_bytes(inp["secret"]), b"edge-digits scoring set v1", "sha256").digest()
    rng = np.random.default_rng(int.from_bytes(key, "big"))
    copies = int(inp["copies"])
    xs = augment(x_te, rng, STRENGTHS[inp["augment"]], copies)
    ys = np.repeat(y_te.astype(np.int64), copies)
    order = rng.permutation(len(ys))  # sources not in a recognisable order either
    np.savez(ctx.out_dir / "scoring.npz", x=xs[order], y=ys[order])
    ctx.log.info(f"scoring set: {len(ys)} images ({inp['augment']}, secret {inp['secret'][:8]}…)")
    return {"metrics": {"n_scoring": len(ys)}, "files": {"scoring": "scoring.npz"}}
