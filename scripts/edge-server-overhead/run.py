"""edge-server-overhead: where an image-classification request's time goes.

Beyond Inference (Richins et al., 2024) measures DNN vision servers end to end and
finds much of a request's time outside the model: image decode, resize, normalization
and copies, post-processing — a share that grows as models and accelerators get
faster. Ours times each stage of one request on one CPU thread for conv nets of
growing width. The image is a seeded synthetic photo-like RGB frame compressed with
deflate (zlib) because the job image has no JPEG codec; JPEG decoding would cost more,
so the measured overhead is if anything an underestimate.
"""

from __future__ import annotations

import json
import time
import zlib
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def synthetic_image(h: int, w: int, seed: int) -> bytes:
    """A smooth gradient scene with texture noise, deflate-compressed (like a PNG body)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / w, yy / h, (xx + yy) / (w + h)], axis=-1) * 200
    img = np.clip(base + rng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.uint8)
    return zlib.compress(img.tobytes(), 6)


def net(width: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    w = width
    layers: list[nn.Module] = [nn.Conv2d(3, w, 3, stride=2, padding=1), nn.ReLU()]
    for cin, cout in ((w, 2 * w), (2 * w, 4 * w), (4 * w, 8 * w)):
        layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU()]
        layers += [nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8 * w, 1000)]
    return nn.Sequential(*layers).eval()


def serve_one(blob: bytes, h: int, w: int, size: int, model: nn.Module) -> dict[str, float]:
    """One request; returns seconds per stage."""
    t = [time.perf_counter()]
    img = np.frombuffer(bytearray(zlib.decompress(blob)), dtype=np.uint8).reshape(h, w, 3)
    t.append(time.perf_counter())
    x = torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    t.append(time.perf_counter())
    x = ((x / 255.0 - MEAN) / STD).contiguous()
    t.append(time.perf_counter())
    logits = model(x)
    t.append(time.perf_counter())
    top = torch.softmax(logits, dim=1).topk(5)
    json.dumps({"classes": top.indices[0].tolist(), "scores": top.values[0].tolist()})
    t.append(time.perf_counter())
    names = ("decode", "resize", "normalize", "model", "post")
    return {n: b - a for n, a, b in zip(names, t, t[1:], strict=False)}


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    torch.set_num_threads(int(inp["threads"]))
    h, w, size = int(inp["image_h"]), int(inp["image_w"]), int(inp["input_size"])
    model = net(int(inp["width"]), int(inp["seed"]))
    blob = synthetic_image(h, w, int(inp["seed"]))
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        model(torch.zeros(1, 3, size, size))
    rows = []
    with torch.inference_mode():
        for i in range(int(inp["warmup"]) + int(inp["requests"])):
            r = serve_one(blob, h, w, size, model)
            if i >= int(inp["warmup"]):
                rows.append(r)
    med = {k: float(np.median([r[k] for r in rows])) * 1e3 for k in rows[0]}
    totals = np.array([sum(r.values()) for r in rows])
    share = np.median([(sum(r.values()) - r["model"]) / sum(r.values()) for r in rows])
    ctx.log.info(f"width {inp['width']}: model {med['model']:.2f} ms, outside {share:.0%}")
    return {
        "metrics": {
            **{f"{k}_ms": v for k, v in med.items()},
            "total_ms": float(np.median(totals)) * 1e3,
            "non_model_share": float(share),
            "model_gmacs": fc.get_total_flops() / 2e9,
        },
        "values": {"image_bytes": len(blob), "raw_bytes": h * w * 3, "codec": "zlib-deflate"},
    }
