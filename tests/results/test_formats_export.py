"""`efflab mlperf export`: a real efflab experiment whose script runs real LoadGen keeps
LoadGen's logs as artifacts; the export writes a submission tree that the MLPerf
importer reads back without loss (round trip), and that a second export never
overwrites."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import efflab, make_tiny_repo, write

from efflab.results.formats import loadgen, sysdesc

HELPER = Path(__file__).with_name("loadgen_run.py")
LG_META = """\
alias: lg
uid: 00000000000000b1
tags: [demo, loadgen]
description: Real MLPerf LoadGen against a trivial SUT (keeps LoadGen's logs).
version: "1"
run: run.py
inputs:
  scenario: {type: string, enum: [Server, SingleStream], default: Server}
  engine: {type: string, default: sleep}
outputs:
  metrics:
    result_valid: {unit: bool, better: higher}
    latency_p50_ns: {unit: ns, better: lower}
  files:
    summary: {}
    detail: {}
resources:
  timeout_s: 120
"""
LG_PY = """\
import json
import subprocess
import sys
from pathlib import Path


def run(ctx):
    out = ctx.out_dir / "loadgen"
    helper = Path(__file__).with_name("loadgen_run.py")
    subprocess.run([sys.executable, str(helper), ctx.inputs["scenario"], str(out), "200", "0.002"],
                   check=True)
    d = {}
    for line in (out / "mlperf_log_detail.txt").read_text().splitlines():
        if line.startswith(":::MLLOG "):
            ev = json.loads(line[9:])
            d.setdefault(ev["key"], ev["value"])
    return {
        "metrics": {"result_valid": 1.0 if d["result_validity"] == "VALID" else 0.0,
                    "latency_p50_ns": float(d["result_50.00_percentile_latency_ns"])},
        "files": {"summary": "loadgen/mlperf_log_summary.txt",
                  "detail": "loadgen/mlperf_log_detail.txt"},
    }
"""
LG_EXP = """\
name: lgdemo
description: real LoadGen runs kept as artifacts (for the MLPerf export)
script: demo,loadgen
grid:
  scenario: [Server, SingleStream]
  engine: [sleep]
repetitions: 2
"""


@pytest.fixture(scope="module")
def lg_repo(tmp_path_factory) -> Path:
    pytest.importorskip("mlperf_loadgen")
    repo = make_tiny_repo(tmp_path_factory.mktemp("lg") / "proj")
    write(repo / "scripts/lg/meta.yaml", LG_META)
    write(repo / "scripts/lg/run.py", LG_PY)
    shutil.copy(HELPER, repo / "scripts/lg/loadgen_run.py")
    write(repo / "workflows/experiments/lgdemo.yaml", LG_EXP)
    efflab(repo, "run", "lgdemo", "--runtime", "host", check=True, timeout=600)
    return repo


def test_export_then_import_is_lossless(lg_repo: Path, tmp_path: Path) -> None:
    repo = lg_repo
    out = tmp_path / "submission"
    r = efflab(repo, "mlperf", "export", "lgdemo", str(out), "--submitter", "Lab", "--division",
               "open", "--system", "box", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert {x["scenario"] for x in res["results"]} == {"Server", "SingleStream"}
    assert len(res["results"]) == 4 and sorted({x["run"] for x in res["results"]}) == [1, 2]
    sub = out / "open" / "Lab"
    desc = json.loads((sub / "systems" / "box-engine-sleep.json").read_text())
    assert list(desc) == sysdesc.FIELDS and desc["submitter"] == "Lab"
    assert desc["host_processor_model_name"] not in ("", "N/A")
    assert set(res["unfilled"]) >= {"cooling", "host_memory_configuration"}
    originals = {}
    for f in (repo / "results" / "lgdemo" / "runs").glob("*.json"):
        rec = json.loads(f.read_text())
        originals[rec["key"]] = rec
    # byte-identical logs, and every summary parses with the importer's parser
    for x in res["results"]:
        rec = originals[x["key"]]
        art = repo / "artifacts" / rec["alias"] / rec["key"]
        files = json.loads((art / "outputs.json").read_text())["files"]
        run = (
            sub
            / "results"
            / x["system"]
            / "lgdemo"
            / x["scenario"]
            / "performance"
            / f"run_{x['run']}"
        )
        for role, name in (("summary", loadgen.SUMMARY), ("detail", loadgen.DETAIL)):
            assert (run / name).read_bytes() == (art / files[role]).read_bytes()
    imp = efflab(repo, "results", "import", "--format", "mlperf", str(out), "--json")
    assert imp.returncode == 0, imp.stderr
    got = json.loads(imp.stdout)
    assert got["records_added"] == 4
    back = {}
    for exp in ("mlperf-lgdemo-server", "mlperf-lgdemo-singlestream"):
        for f in (repo / "results" / exp / "hosts" / "mlperf-Lab" / "runs").glob("*.json"):
            rec = json.loads(f.read_text())
            meas = rec["provenance"]["imported"]["measurements"]
            block = next(v["efflab"] for k, v in meas.items() if k.endswith(".json"))
            run_no = Path(rec["provenance"]["imported"]["files"]["summary"]).parent.name
            back[block["runs"][run_no]["key"]] = (rec, block)
    assert set(back) == set(originals)
    for key, orig in originals.items():
        rec, block = back[key]
        assert block["point"] == orig["point"] and block["experiment"] == "lgdemo"
        assert block["runs"][f"run_{orig['repetition'] + 1}"]["key"] == key
        assert (
            rec["metrics"]["latency_p50_ns"]["value"] == orig["metrics"]["latency_p50_ns"]["value"]
        )
        assert rec["metrics"]["valid"]["value"] == orig["metrics"]["result_valid"]["value"]
        assert rec["point"]["implementation"] == "engine-sleep"
        assert rec["values"]["mlperf"]["scenario"] == orig["point"]["scenario"]
    # a submission is never overwritten
    again = efflab(repo, "mlperf", "export", "lgdemo", str(out), "--submitter", "Lab")
    assert again.returncode == 2 and "existing folder" in again.stderr


def test_export_of_an_experiment_without_loadgen_logs_is_bad_input(
    tiny_repo: Path, tmp_path: Path
) -> None:
    efflab(tiny_repo, "run", "demo", "--quick", "--runtime", "host", check=True)
    r = efflab(tiny_repo, "mlperf", "export", "demo", str(tmp_path / "o"), "--submitter", "Lab")
    assert r.returncode == 2
    assert "outputs.json" in r.stderr and "$.files.summary" in r.stderr
    assert not (tmp_path / "o" / "open" / "Lab").exists()
