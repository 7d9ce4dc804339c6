"""A participant's edge-quantize replacement: static int8 in QOperator format.

Same contract as scripts/edge-tour-quantize/run.py (reads the trained fp32 ONNX export,
writes out/model.onnx, returns model_size_kb + quantize_time_s), different recipe:
QLinearMatMul/QLinearConv nodes instead of QDQ pairs and percentile (99.999)
calibration instead of MinMax, so outliers don't stretch the activation ranges.
"""

from __future__ import annotations

import time
from typing import Any

from edgelib.data import load_digits_npz
from edgelib.ort import INPUT_NAME, op_histogram


class Reader:
    def __init__(self, x, batch: int = 32) -> None:
        self._it = iter([{INPUT_NAME: x[i : i + batch]} for i in range(0, len(x), batch)])

    def get_next(self):
        return next(self._it, None)


def run(ctx: Any) -> dict[str, Any]:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if ctx.inputs["precision"] != "int8-static":
        raise ValueError("this recipe only implements int8-static")
    src = ctx.deps["model"].files["onnx"]
    d = load_digits_npz(ctx.deps["data"].files["dataset"])
    calib = d.x_train[: int(ctx.inputs["calib_samples"])]  # never the test split
    pre, dst = ctx.out_dir / "pre.onnx", ctx.out_dir / "model.onnx"
    t0 = time.perf_counter()
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)

    class Calib(Reader, CalibrationDataReader):
        pass

    quantize_static(
        str(pre),
        str(dst),
        Calib(calib),
        quant_format=QuantFormat.QOperator,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        calibrate_method=CalibrationMethod.Percentile,
        extra_options={"CalibPercentile": 99.999},
    )
    pre.unlink()
    return {
        "metrics": {
            "model_size_kb": dst.stat().st_size / 1024,
            "quantize_time_s": time.perf_counter() - t0,
        },
        "files": {"model": "model.onnx"},
        "values": {
            "settings": {"format": "QOperator", "calibration": "Percentile 99.999"},
            "ops": op_histogram(dst),
        },
    }
