"""The small digits/MLP training scripts (train-bpfree, train-zo, train-lowprec,
train-offload) through their run(ctx), real torch, tiny sizes.

Why: each paper claim rests on a mechanism the script must really implement — no
gradient crossing layers in Mono-Forward, no gradient buffers in zeroth-order steps,
16-bit tensors really in 16 bits, offloaded tensors really leaving memory and coming
back bit-exact. These tests check those properties, not just that metrics exist.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")
import torch  # noqa: E402
from conftest import REPO, add_family_lib, efflab, make_tiny_repo  # noqa: E402

from efflab.plan.registry import parse_script  # noqa: E402
from efflab.runtime.ctx import Context  # noqa: E402

add_family_lib("training")


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
    for p in script.include:
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))
    res = module(alias).run(Context(inputs=full, out_dir=tmp, script_dir=script.path))
    m = res["metrics"]
    assert set(m) == {k for k, d in script.metrics.items() if not d.get("optional")} | (
        set(m) & set(script.metrics)
    )
    assert all(math.isfinite(v) for v in m.values()), m
    return m


def test_bpfree_both_rules_learn(tmp_path: Path) -> None:
    for algo in ("bp", "mono-forward"):
        m = call("train-bpfree", tmp_path, algorithm=algo, hidden=32, layers=2, epochs=3, lr=0.01)
        assert m["accuracy"] > 0.5, (algo, m)


def test_readout_only_control_trains_the_head_alone(tmp_path: Path) -> None:
    """The accuracy claim's control: hidden layers stay at their random init (a
    random-features model), so it must lose accuracy against BP at the same size."""
    kw = {"hidden": 32, "layers": 2, "epochs": 3, "lr": 0.01}
    bp = call("train-bpfree", tmp_path / "bp", algorithm="bp", **kw)
    ro = call("train-bpfree", tmp_path / "ro", algorithm="readout-only", **kw)
    assert 0.1 < ro["accuracy"] < bp["accuracy"] - 0.05, (ro, bp)


def test_mono_forward_sends_no_gradient_across_layers() -> None:
    mf = module("train-bpfree").MonoForward(8, 6, 2, 3, seed=0)
    x, y = torch.randn(5, 8), torch.tensor([0, 1, 2, 0, 1])
    # loss of the second layer only: the first layer must get no gradient from it
    h1 = torch.relu(mf.layers[0](x))
    h2 = torch.relu(mf.layers[1](h1.detach()))
    torch.nn.functional.cross_entropy(h2 @ mf.proj[1], y).backward()
    assert mf.layers[0].weight.grad is None
    mf.zero_grad(set_to_none=True)
    mf.local_losses(x, y).backward()
    assert all(p.grad is not None for p in mf.parameters())


def test_zo_step_restores_weights_and_moves_along_z() -> None:
    mod = module("train-zo")
    from tinytrain.mlp import mlp

    net = mlp(4, 8, 1, 3, seed=0)
    before = [p.detach().clone() for p in net.parameters()]
    mod.perturb(net, 7, 0.5)
    mod.perturb(net, 7, -0.5)
    assert all(
        torch.allclose(a, b, atol=1e-6) for a, b in zip(before, net.parameters(), strict=True)
    )
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    mod.zo_step(net, x, y, lr=0.1, eps=1e-3, seed=3)
    assert all(p.grad is None for p in net.parameters())  # no gradient buffers, ever
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_zo_uses_less_memory_than_bp(tmp_path: Path) -> None:
    """Each method in a fresh process (the real pipeline, as the experiment runs it): a
    peak above baseline measured inside pytest's process would carry other tests' heap."""
    repo = make_tiny_repo(tmp_path / "proj")
    shutil.copytree(REPO / "scripts" / "train-zo", repo / "scripts" / "train-zo")
    shutil.copytree(REPO / "scripts" / "_lib", repo / "scripts" / "_lib")
    shutil.copytree(REPO / "envs" / "ml-cpu", repo / "envs" / "ml-cpu",
                    ignore=shutil.ignore_patterns("wheels"))  # fmt: skip
    sets = [
        "--set",
        "hidden=512",
        "--set",
        "layers=2",
        "--set",
        "batch_size=256",
        "--set",
        "steps=2",
    ]
    peak = {}
    for method in ("bp", "zo"):
        proc = efflab(repo, "script", "run", "train-zo", "--set", f"method={method}", *sets,
                      "--runtime", "host", "--json")  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        peak[method] = json.loads(proc.stdout)["metrics"]["peak_rss_above_baseline_mb"]
    assert peak["zo"] < peak["bp"], peak


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_lowprec_trains_in_16_bits(tmp_path: Path, precision: str) -> None:
    mod = module("train-lowprec")
    net = mod.net(4, 0).to(mod.DTYPES[precision])
    out = net(torch.rand(2, 64).to(mod.DTYPES[precision]))
    assert out.dtype == mod.DTYPES[precision]
    m = call("train-lowprec", tmp_path, precision=precision, channels=4, epochs=1)
    assert m["accuracy"] > 0.3


def test_fp16_without_master_weights_breaks(tmp_path: Path) -> None:
    """The accuracy claims' control: fp16 weights and Adam state, no fp32 master copy.
    Adam's eps (1e-8) is 0 in fp16, so a zero gradient gives 0/0 = NaN: the net
    collapses to one class (chance on digits), which the recipe with a master copy
    (fp16) and bf16 (fp32's exponent) do not."""
    assert float(torch.tensor(1e-8, dtype=torch.float16)) == 0.0
    m = call("train-lowprec", tmp_path, precision="fp16-nomaster", channels=4, epochs=1)
    assert m["accuracy"] < 0.2


def test_offload_round_trip_is_exact_and_leaves_memory(tmp_path: Path) -> None:
    mod = module("train-offload")
    for asynchronous in (False, True):
        off = mod.FileOffload(tmp_path, asynchronous, min_bytes=0)
        t = torch.randn(64, 64)
        packed = off.pack(t)
        assert not isinstance(packed, torch.Tensor)
        if not asynchronous:
            assert packed[0].exists()  # written before the forward pass goes on
        assert torch.equal(off.unpack(packed), t)
        assert not packed[0].exists()  # the file is removed once read back
    (tmp_path / "k").mkdir()
    (tmp_path / "s").mkdir()
    keep = call(
        "train-offload", tmp_path / "k", mode="keep", hidden=64, layers=2, batch_size=32, steps=2
    )
    sync = call(
        "train-offload",
        tmp_path / "s",
        mode="offload-sync",
        hidden=64,
        layers=2,
        batch_size=32,
        steps=2,
        min_offload_kb=0,
    )
    assert sync["offloaded_mb_per_step"] > 0 and keep["offloaded_mb_per_step"] == 0
    assert sync["final_loss"] == pytest.approx(keep["final_loss"], abs=1e-6)


def test_offloading_lowers_the_resident_peak_at_the_experiment_size(tmp_path: Path) -> None:
    """At training-offload's size the resident peak follows the live tensors (glibc's
    mmap threshold fixed, one warm-up step), so keeping the saved activations shows.
    Each mode in a fresh process, as a job runs it: in one process the first run's
    heap would set the second's peak."""
    peaks = {}
    for mode in ("keep", "offload-sync", "offload-async"):
        (tmp_path / mode).mkdir()
        code = (
            "import json, sys; from pathlib import Path; sys.path[:0] = [sys.argv[1], sys.argv[4]]; "
            "from test_training_small import call; "
            "print(json.dumps(call('train-offload', Path(sys.argv[2]), mode=sys.argv[3], "
            "hidden=512, layers=6, batch_size=512, steps=2)))"
        )
        r = subprocess.run(
            [sys.executable, "-c", code, str(Path(__file__).parent), str(tmp_path / mode), mode,
             str(Path(__file__).parents[2])],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
        peaks[mode] = json.loads(r.stdout.strip().splitlines()[-1])["peak_rss_above_baseline_mb"]
    # saved activations are ~9 MB of distinct tensors here; offloaded, the peak is the
    # backward's temporaries
    assert peaks["offload-sync"] <= 0.75 * peaks["keep"], peaks
