"""asv in, MLflow out, against the real tools: a tiny asv project benchmarked by asv
itself (one result file per commit) imported into tables and nightly history; run
records logged to a real `mlflow server` (SQLite backend, 127.0.0.1, a free port)
and read back through MLflow's own client.

asv and the MLflow server come from .venv-tools (tools/setup.sh): their pins conflict
with the project's (mlflow requires pyarrow<26, asv pulls packaging 26).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, efflab, make_tiny_repo

TOOLS = Path(os.environ.get("EFFLAB_TOOLS_VENV", REPO / ".venv-tools"))
ASV = TOOLS / "bin" / "asv"
MLFLOW = TOOLS / "bin" / "mlflow"
COMMITS, SLOW_FROM = 10, 6


@pytest.fixture(scope="module")
def asv_project(tmp_path_factory) -> Path:
    if not ASV.exists():
        pytest.skip(f"no asv at {ASV} (tools/setup.sh installs it into .venv-tools)")
    folder = tmp_path_factory.mktemp("asv") / "tinypkg"
    helper = Path(__file__).with_name("asv_project.py")
    proc = subprocess.run([str(TOOLS / "bin" / "python"), str(helper), str(ASV), str(folder), str(COMMITS),
                           str(SLOW_FROM)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder


def _commits(folder: Path) -> list[str]:
    out = subprocess.run(["git", "-C", str(folder), "log", "--reverse", "--format=%H"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return out.split()


def test_asv_history_imports_as_nights_with_the_slowdown_found(
    asv_project: Path, tmp_path: Path
) -> None:
    repo = make_tiny_repo(tmp_path / "proj")
    r = efflab(repo, "results", "import", "--format", "asv", str(asv_project), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    commits = _commits(asv_project)
    assert [n["commit"] for n in out["nights"]] == commits  # one night per commit, in order
    # 2 parameters of time_work + track_answer, per commit
    assert out["records_added"] == 3 * COMMITS
    assert out["experiments"]["asv-tinypkg"]["points"] == 3
    table = efflab(repo, "results", "table", "asv-tinypkg", "--format", "json")
    rows = json.loads(table.stdout)
    assert {r["metric"] for r in rows} == {"time", "track"}
    assert {r["unit"] for r in rows} == {"seconds", "answers"}
    slow = [c for c in out["change_points"] if "time_work" in c["series"]]
    assert slow, out["change_points"]  # a 10x slowdown at commit SLOW_FROM
    assert all(c["metric"] == "time" for c in slow)
    at = [c for c in slow if c["commit_at"] == commits[SLOW_FROM - 1]]
    assert at and all(c["direction"] == "regression" for c in at)
    assert at[0]["commit_before"] == commits[SLOW_FROM - 2]
    assert not [c for c in out["change_points"] if "track_answer" in c["series"]]  # constant
    again = json.loads(
        efflab(repo, "results", "import", "--format", "asv", str(asv_project), "--json").stdout
    )
    assert again["records_added"] == 0 and again["nights"] == []


def test_asv_result_file_without_its_columns_is_bad_input(
    asv_project: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(asv_project / "results"), str(copy)], check=True)
    f = next(p for p in (copy / "testbox").glob("*.json") if p.name != "machine.json")
    data = json.loads(f.read_text())
    del data["result_columns"]
    f.write_text(json.dumps(data))
    repo = make_tiny_repo(tmp_path / "proj")
    r = efflab(repo, "results", "import", "--format", "asv", str(copy))
    assert r.returncode == 2 and str(f) in r.stderr and "$.result_columns" in r.stderr
    assert not (repo / "results" / "asv-tinypkg").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    if not MLFLOW.exists():
        pytest.skip(f"no MLflow server at {MLFLOW} (tools/setup.sh installs it into .venv-tools)")
    pytest.importorskip("mlflow")  # the client (mlflow-skinny, the formats extra)
    d = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    log = open(d / "server.log", "w")
    proc = subprocess.Popen(
        [str(MLFLOW), "server", "--backend-store-uri", f"sqlite:///{d / 'mlflow.db'}",
         "--default-artifact-root", str(d / "artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # a busy 2-core machine needs a while
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (d / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not start in 240 s"
            time.sleep(1)
        yield uri
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()


def test_records_logged_to_mlflow_and_read_back(mlflow_server: str, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    repo = make_tiny_repo(tmp_path / "proj")
    efflab(repo, "run", "demo", "--quick", "--runtime", "host", check=True)
    recs = [json.loads(f.read_text()) for f in (repo / "results" / "demo" / "runs").glob("*.json")]
    assert recs
    r = efflab(repo, "results", "export", "--mlflow", mlflow_server, "demo", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["runs_created"] == len(recs) and out["runs_unchanged"] == 0
    client = MlflowClient(tracking_uri=mlflow_server)
    exp = client.get_experiment_by_name("demo")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    by_name = {run.info.run_name: run for run in runs}
    assert set(by_name) == {rec["key"] for rec in recs}
    for rec in recs:
        run = by_name[rec["key"]]
        assert run.data.params == {
            k: str(v) if isinstance(v, str) else json.dumps(v) for k, v in rec["point"].items()
        }
        for m, v in rec["metrics"].items():
            assert run.data.metrics[m] == pytest.approx(v["value"])
            assert run.data.tags[f"efflab.unit.{m}"] == v["unit"]
            assert run.data.tags[f"efflab.better.{m}"] == v["better"]
        prov = rec["provenance"]
        assert run.data.tags["mlflow.source.git.commit"] == (prov["git"]["commit"] or "")
        assert run.data.tags["efflab.host"] == prov["host"]["hostname"]
        assert run.data.tags["efflab.runtime"] == prov["runtime"]
        assert run.data.tags["efflab.energy_method"] == prov["energy_method"]
        assert run.info.status == "FINISHED"
    again = efflab(repo, "results", "export", "--mlflow", mlflow_server, "--json")
    second = json.loads(again.stdout)
    assert second["runs_created"] == 0 and second["runs_unchanged"] == len(recs)
    assert len(client.search_runs([exp.experiment_id], max_results=1000)) == len(recs)
    bad = efflab(repo, "results", "export", "--mlflow", mlflow_server, "no-such-exp")
    assert bad.returncode == 2 and "no-such-exp" in bad.stderr


def test_unreachable_mlflow_is_a_failed_check_not_a_traceback(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    repo = make_tiny_repo(tmp_path / "proj")
    efflab(repo, "run", "demo", "--quick", "--runtime", "host", check=True)
    r = efflab(repo, "results", "export", "--mlflow", f"http://127.0.0.1:{_free_port()}", "demo",
               env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})  # fmt: skip
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "MLflow" in r.stderr
