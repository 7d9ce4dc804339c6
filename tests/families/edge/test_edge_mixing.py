"""edge-groupconv and edge-blocks through run(ctx) with real torch, tiny sizes.

Why: E2GC's and EfficientMod's claims compare counted MACs with measured latency, so
the MAC counts must be right (grouped MACs fall exactly by the group count; attention's
quadratic term must be seen by the counter) and the blocks must be what they claim.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
import torch  # noqa: E402
from conftest import REPO  # noqa: E402

from efflab.plan.registry import parse_script  # noqa: E402
from efflab.runtime.ctx import Context  # noqa: E402


def module(alias: str) -> Any:
    spec = importlib.util.spec_from_file_location(
        f"t_{alias.replace('-', '_')}", REPO / "scripts" / alias / "run.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def call(alias: str, tmp: Path, **inputs: Any) -> dict[str, Any]:
    script = parse_script(REPO / "scripts" / alias)
    full = {**script.defaults(), **inputs}
    assert not list(script.input_validator.iter_errors(full))
    m = module(alias).run(Context(inputs=full, out_dir=tmp, script_dir=script.path))["metrics"]
    assert set(m) == set(script.metrics)
    return m


def test_groupconv_macs_match_the_counter_and_fall_by_groups(tmp_path: Path) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    mod = module("edge-groupconv")
    net = mod.stack(16, 4, 2)
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        net(torch.randn(1, 16, 8, 8))
    assert fc.get_total_flops() // 2 == mod.macs(16, 4, 2, 8)
    g1 = call("edge-groupconv", tmp_path, channels=16, groups=1, size=8, depth=2, runs=3)
    g4 = call("edge-groupconv", tmp_path, channels=16, groups=4, size=8, depth=2, runs=3)
    assert g1["macs_m"] == pytest.approx(4 * g4["macs_m"])
    assert g1["latency_p50_ms"] > 0 and g4["energy_per_inference_mj"] > 0


def test_groups_must_divide_channels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must divide"):
        call("edge-groupconv", tmp_path, channels=10, groups=4, size=4, depth=1, runs=3)


def test_attention_macs_grow_quadratically_modulation_linearly(tmp_path: Path) -> None:
    m = {
        (b, s): call("edge-blocks", tmp_path, block=b, dim=16, heads=2, size=s, runs=3)["macs_m"]
        for b in ("attention", "modulation", "conv")
        for s in (4, 8)
    }
    assert m[("modulation", 8)] == pytest.approx(4 * m[("modulation", 4)], rel=0.01)
    assert m[("conv", 8)] == pytest.approx(4 * m[("conv", 4)], rel=0.01)
    assert m[("attention", 8)] > 4.5 * m[("attention", 4)]  # the n^2 term shows


def test_modulation_is_context_times_value() -> None:
    mod = module("edge-blocks")
    blk = mod.Modulation(8).eval()
    x = torch.randn(1, 8, 5, 5)
    with torch.no_grad():
        want = x + blk.proj(blk.ctx(x) * blk.v(x))
        torch.nn.init.zeros_(blk.v.weight)
        torch.nn.init.zeros_(blk.v.bias)
        assert torch.allclose(blk(x), x + blk.proj.bias.view(1, -1, 1, 1))  # v = 0 gates all
    assert want.shape == x.shape


def test_server_overhead_stages_add_up_and_decode_is_lossless(tmp_path: Path) -> None:
    import zlib

    import numpy as np

    mod = module("edge-server-overhead")
    blob = mod.synthetic_image(96, 128, seed=1)
    img = np.frombuffer(zlib.decompress(blob), dtype=np.uint8)
    assert img.size == 96 * 128 * 3 and len(blob) < 0.95 * img.size  # really compressed
    blob = mod.synthetic_image(12, 16, seed=1)
    stages = mod.serve_one(blob, 12, 16, 8, mod.net(2, 0))
    assert set(stages) == {"decode", "resize", "normalize", "model", "post"}
    m = call(
        "edge-server-overhead", tmp_path, width=2, image_h=24, image_w=32, input_size=16, requests=3
    )
    parts = sum(m[f"{k}_ms"] for k in stages)
    assert 0 < m["non_model_share"] < 1 and m["model_gmacs"] > 0
    assert parts == pytest.approx(m["total_ms"], rel=0.5)  # medians of parts vs of totals
