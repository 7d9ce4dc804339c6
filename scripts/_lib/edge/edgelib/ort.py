"""ONNX Runtime helpers: pinned-thread sessions, accuracy, timed batch-1 loops, quantization."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

INPUT_NAME = "x"  # must match edgelib.models.INPUT_NAME (kept torch-free here)
PRECISIONS = ("fp32", "int8-dynamic", "int8-static", "int2-static")


def make_session(path: Path | str, threads: int = 1) -> ort.InferenceSession:
    """CPU session with intra-op `threads`, one inter-op thread, sequential execution.

    Spinning is disabled so a 1-thread benchmark doesn't burn a second core between
    calls, which would both skew energy estimates and disturb a parallel job.
    """
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def predict(sess: ort.InferenceSession, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Logits for all rows of x, in batches (accuracy is not the timed part)."""
    outs = [sess.run(None, {INPUT_NAME: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    return np.concatenate(outs, axis=0)


def accuracy(sess: ort.InferenceSession, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of an ONNX classifier on (x, y)."""
    return float((predict(sess, x).argmax(axis=1) == y).mean())


def timed_runs(sess: ort.InferenceSession, x: np.ndarray, runs: int, warmup: int) -> np.ndarray:
    """Per-call wall time (ns) of `runs` batch-1 calls cycling over rows of x.

    Feeds are pre-built so the loop measures session.run only; warm-up calls
    (allocations, lazy kernel init) are excluded.
    """
    feeds = [{INPUT_NAME: x[i : i + 1]} for i in range(min(len(x), 256))]
    for i in range(warmup):
        sess.run(None, feeds[i % len(feeds)])
    out = np.empty(runs, dtype=np.int64)
    clock = time.perf_counter_ns
    for i in range(runs):
        t0 = clock()
        sess.run(None, feeds[i % len(feeds)])
        out[i] = clock() - t0
    return out


def op_histogram(path: Path | str) -> dict[str, int]:
    """Op-type counts of a saved graph: shows which int8 kernels a quantizer produced."""
    model = onnx.load(str(path), load_external_data=False)
    return dict(sorted(Counter(n.op_type for n in model.graph.node).items()))


def optimized_op_histogram(path: Path, scratch: Path) -> dict[str, int]:
    """Op counts after ORT's CPU graph optimizations: the kernels that actually run.

    Explains latency differences the saved graph hides (e.g. QDQ Gemm -> QGemm,
    dynamic Conv left as unfused ConvInteger + Cast/Mul/Add).
    """
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.optimized_model_filepath = str(scratch)
    so.log_severity_level = 3
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    try:
        return op_histogram(scratch)
    finally:
        scratch.unlink(missing_ok=True)


class _Calibration:
    """CalibrationDataReader over training rows, fed in small batches."""

    def __init__(self, x: np.ndarray, batch: int = 32) -> None:
        self._it: Iterator[dict[str, np.ndarray]] = iter(
            [{INPUT_NAME: x[i : i + batch]} for i in range(0, len(x), batch)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # pragma: no cover - only used by some calibrators
        raise NotImplementedError


def quantize(
    src: Path, dst: Path, precision: str, calib_x: np.ndarray | None = None
) -> dict[str, object]:
    """Write `dst` = `src` at `precision`; returns settings worth recording.

    - fp32: the exported graph, re-saved unchanged.
    - int8-dynamic: int8 weights, activations quantized per call (MatMulInteger /
      ConvInteger). ORT's CPU ConvInteger only takes uint8 weights, hence QUInt8.
    - int8-static: QDQ graph (uint8 activations, per-channel int8 weights) with
      MinMax ranges from `calib_x`; ORT fuses it into QLinear* kernels.
    - int2-static: int8-static with every weight first rounded to 2 bits ({-1, 0, 1}
      x its output channel's max |w|; see `round_weights`), so the int8 graph holds
      three levels per channel: the same symmetric MinMax quantizer below 4 bits,
      where post-training quantization without retraining is known to lose accuracy
      (the control of the int8 accuracy claim).
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} not in {PRECISIONS}")
    if precision == "fp32":
        onnx.save(onnx.load(str(src)), str(dst))
        return {"quantizer": None}
    pre = dst.with_name(dst.stem + ".pre.onnx")
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    try:
        if precision == "int8-dynamic":
            quantize_dynamic(str(pre), str(dst), weight_type=QuantType.QUInt8)
            return {"quantizer": "quantize_dynamic", "weight_type": "QUInt8"}
        if calib_x is None or len(calib_x) == 0:
            raise ValueError(f"{precision} needs calibration samples")

        class Reader(_Calibration, CalibrationDataReader):
            pass

        settings: dict[str, object] = {}
        if precision == "int2-static":  # weights on a 2-bit grid first, then int8-static
            settings = round_weights(pre, pre, bits=2)

        quantize_static(
            str(pre),
            str(dst),
            Reader(calib_x),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
        )
        return {
            "quantizer": "quantize_static",
            "format": "QDQ",
            "activation_type": "QUInt8",
            "weight_type": "QInt8",
            **settings,
            "per_channel": True,
            "calibration": "MinMax",
            "calibration_samples": int(len(calib_x)),
        }
    finally:
        pre.unlink(missing_ok=True)


def round_weights(src: Path, dst: Path, bits: int) -> dict[str, object]:
    """Round every weight tensor of an fp32 graph to `bits`-bit symmetric levels.

    Per output channel (axis 0 of Conv and of torch's exported Gemm weights), the
    symmetric MinMax quantizer: w -> clip(round(w / s), -m, m) * s with
    m = 2**(bits-1) - 1 and s = max |w| / m. Biases (1-D) are left alone: they are
    quantized to int32 later, as in int8-static.
    """
    from onnx import numpy_helper

    model = onnx.load(str(src))
    m = 2 ** (bits - 1) - 1
    done = 0
    for init in model.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.ndim < 2 or w.dtype != np.float32:
            continue
        peak = np.abs(w).reshape(w.shape[0], -1).max(axis=1)
        s = (np.where(peak > 0, peak, 1.0) / m).reshape((-1,) + (1,) * (w.ndim - 1))
        init.CopyFrom(
            numpy_helper.from_array(
                (np.clip(np.round(w / s), -m, m) * s).astype(np.float32), init.name
            )
        )
        done += 1
    onnx.save(model, str(dst))
    return {"weight_bits": bits, "weights_rounded": done}
