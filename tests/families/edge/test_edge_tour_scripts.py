"""The edge-digits tournament's scripts (edge-tour-*) through their run(ctx), in-process.

Chained as the tournament plans them (split -> train -> quantize; private; bench) at
tiny sizes: the participant-facing data holds training rows only, the scoring set is
fresh (no public image), seeded by the secret, and the bench scores fidelity and
refuses graphs that name files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_edge_scripts import REPO, call

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
from conftest import add_family_lib  # noqa: E402

add_family_lib("edgetour")
TRAIN = {"epochs": 3, "lr": 0.003, "model": "mlp-32"}


def public_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return x, train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)


def private_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("edge_tour_private_patched", REPO / "scripts/edge-tour-private/run.py")  # fmt: skip
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_private(mod, out: Path, digest: str) -> Path:
    from efflab.runtime.ctx import Context

    inputs = {"secret": digest, "seed": 0, "test_fraction": 0.2, "augment": "strong", "copies": 2}
    out.mkdir(parents=True)
    return out / mod.run(Context(inputs=inputs, out_dir=out, deps={}, script_dir=out))["files"]["scoring"]  # fmt: skip


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("edgetour")
    data = call("edge-tour-split", root / "data", seed=0)
    tr = call("edge-tour-train", root / "train", {"data": data}, **TRAIN)
    q = {"model": TRAIN["model"], "epochs": TRAIN["epochs"]}
    onnx = call("edge-tour-quantize", root / "q", {"model": tr, "data": data}, precision="int8-dynamic", **q)  # fmt: skip
    scoring = call("edge-tour-private", root / "private", copies=2)
    return {"root": root, "data": data, "train": tr, "onnx": onnx, "scoring": scoring}


def test_participant_data_holds_training_rows_only(chain: dict[str, Any]) -> None:
    from edgelib.data import load_digits_npz

    d = load_digits_npz(chain["data"].files["dataset"])
    _, (x_tr, x_te, _, _) = public_split()
    assert len(d.x_test) == len(d.y_test) == 0 and len(d.x_train) == len(x_tr) == 1437
    held_out = {r.tobytes() for r in x_te}
    assert not any(r.tobytes() in held_out for r in d.x_train)


def test_scoring_set_is_fresh_and_keyed_by_the_secret(chain: dict[str, Any], tmp_path: Path) -> None:  # fmt: skip
    import edgetour  # noqa: F401
    from edgetour.augment import STRENGTHS, augment

    x, _ = public_split()
    with np.load(chain["scoring"].files["scoring"]) as z:
        xs, ys = z["x"], z["y"]
    assert xs.shape == (720, 64) and np.bincount(ys).min() >= 60
    d2 = (xs * xs).sum(1)[:, None] - 2 * xs @ x.T + (x * x).sum(1)[None, :]
    assert d2.min() > 0.5  # no scoring image is a public image
    # a real secret: the step refuses without it, and another secret -> another set
    secret = tmp_path / "secret"
    secret.write_bytes(b"organiser secret 1\n")
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    with pytest.raises(RuntimeError, match="not mounted"):
        call("edge-tour-private", tmp_path / "a", secret=digest, copies=2)
    mod = private_module()
    mod.SECRET = secret  # where the sandbox mounts it: /run/efflab-private/secret
    other = run_private(mod, tmp_path / "b", digest)
    with np.load(other) as z:
        assert z["x"].shape == xs.shape and np.abs(z["x"] - xs).mean() > 0.05
    assert np.array_equal(np.load(run_private(mod, tmp_path / "b2", digest))["x"], np.load(other)["x"])  # fmt: skip
    secret.write_bytes(b"rotated\n")
    with pytest.raises(RuntimeError, match="differs"):
        run_private(mod, tmp_path / "c", digest)
    # the family is honest-model friendly: "none" strength is a near-copy of the source
    assert np.abs(augment(x[:5], np.random.default_rng(0), STRENGTHS["none"]) - x[:5]).mean() < 0.1


def test_bench_scores_private_set_and_fidelity(chain: dict[str, Any], tmp_path: Path) -> None:
    import onnx

    deps = {"onnx": chain["onnx"], "trained": chain["train"], "scoring": chain["scoring"]}
    b = call("edge-tour-bench", tmp_path / "b", deps, runs=20, warmup=2, model="mlp-32")
    m = b.metrics
    assert 0.3 < m["accuracy"] <= 1 and m["agreement"] > 0.9  # tiny + 3 epochs, above chance
    fp = dict(deps, onnx=chain["train"].__class__(metrics={}, files={"model": chain["train"].files["onnx"]}, values={}, alias="x"))  # fmt: skip
    same = call("edge-tour-bench", tmp_path / "s", fp, runs=20, warmup=2, model="mlp-32").metrics
    assert same["agreement"] == 1.0 and same["accuracy"] == same["fp32_accuracy"]
    # a graph whose weights live in a file it names could read the scoring set
    ext = tmp_path / "ext"
    ext.mkdir()
    onnx.save(onnx.load(str(chain["train"].files["onnx"])), str(ext / "model.onnx"),
              save_as_external_data=True, all_tensors_to_one_file=True, location="w.bin",
              size_threshold=0)  # fmt: skip
    bad = dict(deps, onnx=fp["onnx"].__class__(metrics={}, files={"model": ext / "model.onnx"}, values={}, alias="x"))  # fmt: skip
    with pytest.raises(ValueError, match="external data"):
        call("edge-tour-bench", tmp_path / "x", bad, runs=20, warmup=2, model="mlp-32")
