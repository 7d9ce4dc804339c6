"""serve-fit: least-squares iteration cost model from the engine's measured profile."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from llmserve.costmodel import FIT_FEATURES, fit, fit_error
from llmserve.engine import read_iterations_csv


def run(ctx: Any) -> dict[str, Any]:
    parts = [
        read_iterations_csv(ctx.deps[n].files["iterations"]) for n in ("train_pf", "train_chunked")
    ]
    train = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    held = read_iterations_csv(ctx.deps["heldout"].files["iterations"])
    coef = fit(train)
    e_tr, e_ho = fit_error(coef, train), fit_error(coef, held)
    e_wall = fit_error(coef, held, target="seconds")
    named = dict(zip(FIT_FEATURES, coef.tolist(), strict=True))
    ctx.log.info("fit %s; train %s; held-out %s", named, e_tr, e_ho)
    (ctx.out_dir / "coef.json").write_text(
        json.dumps(
            {"features": FIT_FEATURES, "coef": coef.tolist(), "train": e_tr, "heldout": e_ho},
            indent=2,
        )
    )
    return {
        "metrics": {
            "fit_mape": e_tr["mape"],
            "fit_r2": e_tr["r2"],
            "heldout_mape": e_ho["mape"],
            "heldout_median_ape": e_ho["median_ape"],
            "heldout_r2": e_ho["r2"],
            "heldout_total_time_error": e_ho["total_time_error"],
            "heldout_wall_mape": e_wall["mape"],
            "prefill_token_us": named["prefill_tokens"] * 1e6,
            "decode_token_us": named["decode_tokens"] * 1e6,
            "iteration_const_us": named["const"] * 1e6,
        },
        "files": {"coef": "coef.json"},
        "values": {
            "coef": named,
            "train_iterations": int(train["seconds"].size),
            "heldout_iterations": int(held["seconds"].size),
        },
    }
