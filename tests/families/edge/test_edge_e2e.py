"""edge-digits through the real CLI (Snakemake, runner, records, tables) in quick mode.

Runs in a scratch project holding only the edge family, so it is isolated from other
families and from the real repo's artifacts/ and results/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


def efflab_cli(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env.pop("EFFLAB_SCRIPTS_PATH", None)
    return subprocess.run(
        [sys.executable, "-m", "efflab", "--repo", str(repo), *args],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("edge-proj")
    shutil.copy(REPO / "Snakefile", root / "Snakefile")
    shutil.copytree(REPO / "workflows" / "rules", root / "workflows" / "rules")
    shutil.copytree(REPO / "envs" / "ml-cpu", root / "envs" / "ml-cpu",
                    ignore=shutil.ignore_patterns("wheels"))  # fmt: skip
    for src in sorted((REPO / "scripts").glob("edge-*")):
        shutil.copytree(src, root / "scripts" / src.name)
    for lib in ("edge", "edgetour"):  # edgetour: the edge-tour-* (tournament) scripts'
        shutil.copytree(REPO / "scripts" / "_lib" / lib, root / "scripts" / "_lib" / lib)
    (root / "workflows" / "experiments").mkdir(parents=True)
    for f in (REPO / "workflows" / "experiments").glob("edge-*.yaml"):
        shutil.copy(f, root / "workflows" / "experiments" / f.name)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def test_edge_digits_quick_end_to_end(project: Path) -> None:
    args = ["run", "edge-digits", "--quick", "--cores", "2", "--json", "-q"]
    # One small model keeps the job count (and per-job start-up cost) down; the
    # cnn path is covered in-process by test_edge_scripts.py.
    sets = ["--set", "runs=50", "--set", "model=mlp-64"]
    r = efflab_cli(project, *args, *sets)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)["edge-digits"]
    # dataset, training, 3 quantizations, 3 benches x 3 repetitions (a timing claim keeps
    # 3 repetitions even in --quick)
    assert out["jobs_run"] == 1 + 1 + 3 + 3 * 3
    rows = out["rows"]
    assert {row["precision"] for row in rows} == {"fp32", "int8-dynamic", "int8-static"}
    metrics = {row["metric"] for row in rows}
    assert {"latency_p50_us", "accuracy", "model_size_kb", "energy_per_inference_mj"} <= metrics
    recs = [
        json.loads(f.read_text()) for f in (project / "results/edge-digits/runs").glob("*.json")
    ]
    assert len(recs) == 9 and all(rec["status"] == "ok" for rec in recs)
    assert all(rec["provenance"]["energy_method"] for rec in recs)
    assert all(rec["inputs"]["model"] == "mlp-64" for rec in recs)
    assert min(rec["metrics"]["accuracy"]["value"] for rec in recs) > 0.8
    # Unchanged inputs: everything is cached, nothing reruns.
    again = efflab_cli(project, *args, *sets)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["edge-digits"]["jobs_run"] == 0


def test_bad_model_is_exit_2_before_anything_runs(project: Path) -> None:
    r = efflab_cli(project, "run", "edge-digits", "--quick", "--set", "model=rnn-8")
    assert r.returncode == 2
    assert "model" in r.stderr and "rnn-8" in r.stderr
    r = efflab_cli(project, "plan", "edge-digits", "--set", "precision=int4")
    assert r.returncode == 2 and "precision" in r.stderr
