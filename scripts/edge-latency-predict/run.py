"""edge-latency-predict: a latency predictor moved to a new device with a few samples.

HELP (Lee et al., NeurIPS 2021) treats a device as a black box that maps an
architecture to a latency and meta-learns a predictor that, given about 10 measured
samples of an unseen device, ranks that device's latencies well, better than MAC
counts or a predictor fitted from scratch on the few samples. The mechanism at our
scale: one CPU, two runtimes as two devices (PyTorch eager = the fully profiled source
device, ONNX Runtime = the unseen target), both batch 1 on one thread. The transferred
predictor is a ridge model of log-latency on architecture features trained on every
source measurement, adapted to the target by a 3-parameter map (log target latency =
a * source prediction + b * log MACs + c) fitted on the `adapt` target samples; the baselines are the MAC count and the same ridge model
fitted on the `adapt` target samples alone. All three are scored on the held-out
architectures' measured target latency (Spearman rho).
"""

from __future__ import annotations

import io
import random
import time
import warnings
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from scipy.stats import spearmanr
from torch import nn

WIDTHS = (16, 24, 32, 48, 64)
BLOCKS = ("conv", "dwsep", "mbconv")
FEATURES = ("macs", "params", "act", "layers", "dw_macs", "pw_macs", "kxk_macs")


def sample_arch(rng: random.Random) -> list[dict[str, int | str]]:
    """Three stages (stride 2 at each start), each: block type, width, depth, kernel, expansion."""
    return [
        {
            "block": rng.choice(BLOCKS),
            "width": rng.choice(WIDTHS),
            "depth": rng.randint(1, 3),
            "kernel": rng.choice((3, 5)),
            "expand": rng.choice((1, 3, 6)),
        }
        for _ in range(3)
    ]


def _block(kind: str, cin: int, cout: int, k: int, e: int, stride: int) -> nn.Module:
    p = k // 2
    if kind == "conv":
        return nn.Sequential(nn.Conv2d(cin, cout, k, stride, p, bias=False), nn.ReLU())
    if kind == "dwsep":
        return nn.Sequential(
            nn.Conv2d(cin, cin, k, stride, p, groups=cin, bias=False),
            nn.ReLU(),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.ReLU(),
        )
    hid = cin * e
    return nn.Sequential(
        nn.Conv2d(cin, hid, 1, bias=False),
        nn.ReLU(),
        nn.Conv2d(hid, hid, k, stride, p, groups=hid, bias=False),
        nn.ReLU(),
        nn.Conv2d(hid, cout, 1, bias=False),
    )


def build(arch: list[dict[str, Any]]) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.ReLU()]
    cin = 16
    for st in arch:
        for i in range(int(st["depth"])):
            layers.append(
                _block(
                    st["block"], cin, st["width"], st["kernel"], st["expand"], 2 if i == 0 else 1
                )
            )
            cin = st["width"]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10)]
    return nn.Sequential(*layers).eval()


def features(net: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Counted MACs (split by conv kind), parameters, activation elements, layer count."""
    f = dict.fromkeys(FEATURES, 0.0)

    def hook(mod: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        f["act"] += out.numel()
        f["layers"] += 1
        if isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            m = out.numel() * (mod.in_channels // mod.groups) * kh * kw
            key = "dw_macs" if mod.groups > 1 else ("pw_macs" if kh == 1 else "kxk_macs")
            f[key] += m
            f["macs"] += m
        elif isinstance(mod, nn.Linear):
            f["macs"] += mod.in_features * mod.out_features

    hs = [
        m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    with torch.inference_mode():
        net(x)
    for h in hs:
        h.remove()
    f["params"] = float(sum(p.numel() for p in net.parameters()))
    return f


def _median_ms(call: Any, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        call()
    t = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter_ns()
        call()
        t[i] = time.perf_counter_ns() - t0
    return float(np.median(t)) / 1e6


def measure(
    net: nn.Module, x: torch.Tensor, runs: int, warmup: int, threads: int
) -> tuple[float, float]:
    """(source ms, target ms): PyTorch eager and ONNX Runtime, batch 1, `threads` threads."""
    with torch.inference_mode():
        src = _median_ms(lambda: net(x), runs, warmup)
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (x,), buf, input_names=["x"], output_names=["y"], dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    sess = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    tgt = _median_ms(lambda: sess.run(None, feed), runs, warmup)
    return src, tgt


def design(feats: list[dict[str, float]]) -> np.ndarray:
    """log1p features, with a constant column."""
    x = np.log1p(np.array([[f[k] for k in FEATURES] for f in feats], dtype=float))
    return np.hstack([x, np.ones((len(x), 1))])


def ridge(x: np.ndarray, y: np.ndarray, lam: float = 1e-2) -> np.ndarray:
    """Ridge on standardized columns (the constant column unpenalized)."""
    mu, sd = x[:, :-1].mean(0), x[:, :-1].std(0) + 1e-9
    z = np.hstack([(x[:, :-1] - mu) / sd, x[:, -1:]])
    pen = lam * np.eye(z.shape[1])
    pen[-1, -1] = 0.0
    w = np.linalg.solve(z.T @ z + pen, z.T @ y)
    return lambda q: np.hstack([(q[:, :-1] - mu) / sd, q[:, -1:]]) @ w


def evaluate(feats: list[dict[str, float]], src: np.ndarray, tgt: np.ndarray, adapt_idx: list[int]):
    """The three predictors' rho (and MAPE) on the archs not in adapt_idx."""
    x = design(feats)
    held = np.array([i for i in range(len(tgt)) if i not in set(adapt_idx)])
    a = np.array(adapt_idx)
    f_src = ridge(x, np.log(src))  # the fully profiled source device
    s = f_src(x)
    macs = np.array([f["macs"] for f in feats])
    # few-sample adaptation: log t = a * source prediction + b * log MACs + c (3 numbers)
    basis = np.stack([s, np.log(macs), np.ones_like(s)], axis=1)
    coef, *_ = np.linalg.lstsq(basis[a], np.log(tgt[a]), rcond=None)
    pred_t = np.exp(basis @ coef)
    pred_s = np.exp(ridge(x[a], np.log(tgt[a]))(x))

    def rho(p: np.ndarray) -> float:
        return float(spearmanr(p[held], tgt[held]).statistic)

    def mape(p: np.ndarray) -> float:
        return float(np.mean(np.abs(p[held] - tgt[held]) / tgt[held]))

    return {
        "rho_transfer": rho(pred_t),
        "rho_scratch": rho(pred_s),
        "rho_macs": rho(macs),
        "mape_transfer": mape(pred_t),
        "mape_scratch": mape(pred_s),
    }


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    n, k = int(inp["archs"]), int(inp["adapt"])
    if n - k < 8:
        raise ValueError(f"adapt {k} leaves fewer than 8 of {n} archs to score")
    threads = int(inp["threads"])
    torch.set_num_threads(threads)
    torch.manual_seed(int(inp["arch_seed"]))
    arng = random.Random(int(inp["arch_seed"]))
    archs = [sample_arch(arng) for _ in range(n)]
    x = torch.randn(1, 3, int(inp["image_size"]), int(inp["image_size"]))
    feats, src, tgt = [], [], []
    t0 = time.perf_counter()
    for arch in archs:
        net = build(arch)
        feats.append(features(net, x))
        s, t = measure(net, x, int(inp["runs"]), int(inp["warmup"]), threads)
        src.append(s)
        tgt.append(t)
    measure_s = time.perf_counter() - t0
    src_a, tgt_a = np.array(src), np.array(tgt)
    adapt_idx = random.Random(int(inp["seed"]) * 1000 + ctx.repetition).sample(range(n), k)
    metrics = evaluate(feats, src_a, tgt_a, adapt_idx)
    ctx.log.info(
        "%d archs, %d adapt: rho transfer %.3f scratch %.3f macs %.3f (devices %.3f)",
        n, k, metrics["rho_transfer"], metrics["rho_scratch"], metrics["rho_macs"],
        float(spearmanr(src_a, tgt_a).statistic),
    )  # fmt: skip
    metrics.update(
        rho_devices=float(spearmanr(src_a, tgt_a).statistic),
        target_latency_p50_ms=float(np.median(tgt_a)),
        measure_s=measure_s,
    )
    return {
        "metrics": metrics,
        "values": {
            "adapt_idx": sorted(adapt_idx),
            "source_ms": [round(v, 4) for v in src],
            "target_ms": [round(v, 4) for v in tgt],
            "macs": [f["macs"] for f in feats],
            "torch": torch.__version__,
            "onnxruntime": ort.__version__,
        },
    }
