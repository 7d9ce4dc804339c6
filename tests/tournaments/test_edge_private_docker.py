"""edge-digits scores on a private set: a label hunter neither finds nor fakes it.

Real Docker, the real CLI, the shipped edge-digits tournament (made cheaper: one
repetition, a short timed loop, an open identity) in a scratch project with an
organiser secret in a throwaway $EFFLAB_ORGANISER_DIR. An honest entry and a "label
hunter" (tests/tournaments/edge_hunter.py: the whole public digits set with labels in
its archive, a 1-NN lookup graph, and a hunt through mounts, the filesystem, the
environment and /proc) are verified; both are on the ledger. The hunter finds no
scoring labels, scores 1.0 on the public test split but not above the honest entry on
the private set, and is rejected by the fidelity constraint.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from edge_hunter import RUN_PY

from efflab.tournaments.ledger import attempts_only, verify

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.docker
pytest.importorskip("onnxruntime")
MARGIN = 0.03  # how much better than honest a memoriser may look (sampling noise, n=1800)


def cli(repo: Path, env: dict, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "EFFLAB_SCRIPTS_PATH"} | env
    full["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), full.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "efflab", "--repo", str(repo), *args],
        capture_output=True, text=True, timeout=timeout, env=full,
    )  # fmt: skip


def public_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return x, y, train_test_split(x / 16.0, y, test_size=0.2, stratify=y, random_state=0)


def onnx_accuracy(model: Path, x: np.ndarray, y: np.ndarray) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return float((sess.run(None, {"x": x.astype(np.float32)})[0].argmax(1) == y).mean())


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("edge-private")
    repo = root / "proj"
    repo.mkdir()
    shutil.copy(REPO / "Snakefile", repo / "Snakefile")
    shutil.copytree(REPO / "workflows/rules", repo / "workflows/rules")
    shutil.copytree(REPO / "envs/ml-cpu", repo / "envs/ml-cpu", ignore=shutil.ignore_patterns("wheels"))  # fmt: skip
    for src in [*sorted((REPO / "scripts").glob("edge-tour-*")), REPO / "scripts/_lib/edge", REPO / "scripts/_lib/edgetour"]:  # fmt: skip
        shutil.copytree(src, repo / "scripts" / src.relative_to(REPO / "scripts"))
    (repo / "workflows/experiments").mkdir(parents=True)
    shutil.copy(REPO / "workflows/experiments/edge-digits-private.yaml", repo / "workflows/experiments")  # fmt: skip
    spec = yaml.safe_load((REPO / "workflows/tournaments/edge-digits.yaml").read_text())
    spec["base"]["inputs"].update(runs=100, warmup=10)  # the timed loop is not under test
    spec["verification"]["repetitions"] = 1
    spec["identity"] = {"mode": "open"}
    # a small honest model must pass the accuracy bar; the fidelity bar stays as shipped
    spec["constraints"] = [c if c["metric"] != "accuracy" else {**c, "value": 0.6} for c in spec["constraints"]]  # fmt: skip
    spec["submissions"] = {"limit": 100, "window_h": 24}
    (repo / "workflows/tournaments").mkdir(parents=True)
    (repo / "workflows/tournaments/edge-digits.yaml").write_text(yaml.safe_dump(spec))
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    env = {"EFFLAB_ORGANISER_DIR": str(root / "organiser")}
    r = cli(repo, env, "env", "build", "ml-cpu", timeout=3000)
    assert r.returncode == 0, r.stderr
    r = cli(repo, env, "tournament", "init-secret", "edge-digits")
    assert r.returncode == 0, r.stderr
    return repo, env


def submit(repo: Path, env: dict, folder: Path, name: str, inputs: dict, archive: Path | None = None) -> dict:  # fmt: skip
    f = folder / f"{name}.yaml"
    f.write_text(json.dumps({"participant": name, "entry": name, "inputs": inputs}))
    extra = ["--archive", str(archive)] if archive else []
    r = cli(repo, env, "tournament", "submit", "edge-digits", str(f), "--json", *extra)
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr
    return json.loads(r.stdout)


def hunter_archive(folder: Path) -> Path:
    x, y, _ = public_split()
    src = folder / "hunter"
    src.mkdir()
    (src / "run.py").write_text(RUN_PY)
    np.savez_compressed(src / "public_digits.npz", x=x.astype(np.uint8), y=y.astype(np.uint8))
    out = folder / "hunter.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(src, arcname="hunter")
    assert out.stat().st_size < 1_000_000  # inside the tournament's archive limit
    return out


def test_label_hunter_finds_nothing_and_does_not_outscore_honest(
    arena: tuple[Path, dict], tmp_path: Path
) -> None:
    repo, env = arena
    inputs = {"model": "mlp-256", "precision": "fp32"}
    honest = submit(repo, env, tmp_path, "honest", inputs)
    hunter = submit(repo, env, tmp_path, "hunter", inputs, hunter_archive(tmp_path))
    assert honest["verdict"] == "accepted", honest.get("reason")
    # recorded either way, with what it scored on the private set
    assert hunter["verdict"] == "rejected" and "agreement" in hunter["reason"], hunter
    ledger = verify(repo / "results/tournaments/edge-digits/ledger.jsonl")
    assert ledger.ok and [
        e["submission"]["participant"] for e in attempts_only(ledger.entries)
    ] == [
        "honest",
        "hunter",
    ]

    # the hunt: no scoring labels, no secret, no repo, no verifier variables
    (found_file,) = list(repo.glob("artifacts/edge-tour-quantize/*/out/found.json"))
    found = json.loads(found_file.read_text())
    assert found["npz"], "the hunter saw the training rows it is allowed to"
    # efflab's own package is mounted read-only at /opt/efflab for the runner: its
    # source (tournaments/organiser.py among it) is public code, not organiser data
    own_code = [p for p in found["named"] if p.startswith("/opt/efflab/efflab/")]
    assert all(p.endswith((".py", ".pyc")) for p in own_code), own_code
    named = [p for p in found["named"] if p not in own_code]
    assert found["label_files"] == [] and named == [] and found["repo"] == []
    assert not found["private_mount"] and found["env"] == [] and found["proc"] == []
    assert not any("efflab-private" in m or "edge-tour-private" in m for m in found["mounts"])
    secret = (Path(env["EFFLAB_ORGANISER_DIR"]) / "edge-digits/secret").read_text().strip()
    assert secret not in found_file.read_text()

    # memorisation pays on the public split, not on the private set
    _, _, (_, x_te, _, y_te) = public_split()
    (model,) = [p for p in repo.glob("artifacts/edge-tour-quantize/*/out/model.onnx") if p.parent == found_file.parent]  # fmt: skip
    assert onnx_accuracy(model, x_te, y_te) == 1.0
    h, m = honest["metrics"]["accuracy"], hunter["metrics"]["accuracy"]
    assert m <= h + MARGIN, (m, h)
    assert m < 0.95 and hunter["metrics"]["agreement"] < 0.95
