"""`efflab results import --format mlperf`: a real MLPerf submission tree (the shared one,
from MLCommons' CI) and real LoadGen runs made here, into records and tables; hostile
trees refused with exit 2 naming the file and field, nothing written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, efflab, make_tiny_repo

from efflab.results.formats import loadgen, mlperf

SHARED = Path(os.environ.get("EFFLAB_SHARED", REPO.parent / "shared")) / "mlperf"
TREE = SHARED / "tree"
needs_shared = pytest.mark.skipif(not TREE.is_dir(), reason=f"no shared MLPerf data at {SHARED}")
SUBMITTER = TREE / "open" / "MLCommons"
TF = "gh_ubuntu-latest_x86-reference-cpu-tf_v2.20.0-default_config"
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def loadgen_run(out: Path, scenario: str, min_ms: int = 200, latency: float = 0.002) -> Path:
    """A real LoadGen run's logs (tests/results/loadgen_run.py)."""
    pytest.importorskip("mlperf_loadgen")
    helper = Path(__file__).with_name("loadgen_run.py")
    proc = subprocess.run([sys.executable, str(helper), scenario, str(out), str(min_ms), str(latency)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def lg_runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("loadgen")
    return {s: loadgen_run(root / s, s) for s in ("Server", "SingleStream", "MultiStream")}


def make_tree(root: Path, runs: dict[str, Path], system: str = "lab-box") -> Path:
    """A submission tree around real LoadGen logs, with the shared tree's real system
    description (only the system name changed)."""
    sub = root / "closed" / "Lab"
    desc = json.loads((SUBMITTER / "systems" / f"{TF}.json").read_text())
    (sub / "systems").mkdir(parents=True)
    (sub / "systems" / f"{system}.json").write_text(json.dumps(desc))
    for scen, logs in runs.items():
        d = sub / "results" / system / "resnet50" / scen / "performance" / "run_1"
        d.mkdir(parents=True)
        for f in (loadgen.SUMMARY, loadgen.DETAIL):
            shutil.copy(logs / f, d / f)
        m = sub / "measurements" / system / "resnet50" / scen
        m.mkdir(parents=True)
        (m / f"{system}_cpp.json").write_text('{"retraining": "no"}')
    return root


@needs_shared
def test_shared_tree_every_run_parses_and_numbers_match_the_summary() -> None:
    results = mlperf.read_tree(TREE)
    assert len(results) == 24
    assert {r.experiment for r in results} == {
        "mlperf-resnet50-offline", "mlperf-retinanet-offline", "mlperf-bert-99-offline",
        "mlperf-rgat-offline", "mlperf-mixtral-8x7b-offline", "mlperf-stable-diffusion-xl-offline",
    }  # fmt: skip
    tf = next(r for r in results if r.system == TF)
    run = tf.runs[0]
    assert run.valid and run.scenario == "Offline" and run.headline == "samples_per_s"
    assert run.metrics["samples_per_s"].value == 21.0563
    assert run.metrics["latency_p90_ns"].value == 23724530891
    assert run.test_settings["max_query_count"] == 500
    assert tf.accuracy.metrics["acc_accuracy"].value == 76.0
    assert tf.point()["framework"] == "tf v2.20.0"
    sdxl = next(r for r in results if r.benchmark == "stable-diffusion-xl")
    assert sdxl.accuracy.metrics["acc_fid_score"].better == "lower"
    mixtral = next(r for r in results if r.benchmark == "mixtral-8x7b")
    assert mixtral.runs[0].metrics["tokens_per_s"].unit == "tokens/s"


@needs_shared
def test_import_shared_tree_records_tables_and_idempotence(tmp_path: Path) -> None:
    repo = make_tiny_repo(tmp_path / "proj")
    r = efflab(repo, "results", "import", "--format", "mlperf", str(TREE), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["records_added"] == 24 and out["tables_added"] == 6 and out["invalid"] == []
    assert out["experiments"]["mlperf-resnet50-offline"]["points"] == 13
    root = repo / "results" / "mlperf-resnet50-offline" / "hosts" / "mlperf-MLCommons"
    rec = json.loads(next(f for f in (root / "runs").glob("*.json")
                          if TF in f.read_text()).read_text())  # fmt: skip
    assert rec["metrics"]["samples_per_s"] == {
        "value": 21.0563,
        "unit": "samples/s",
        "better": "higher",
    }
    assert rec["provenance"]["imported"]["system_description"]["framework"] == "tf v2.20.0"
    assert rec["provenance"]["packages"]["tensorflow"]
    t = efflab(repo, "results", "import", "--format", "mlperf", str(TREE), "--json")
    again = json.loads(t.stdout)
    assert again["records_added"] == 0 and again["records_unchanged"] == 24
    assert again["tables_added"] == 0


def test_loadgen_scenarios_and_invalid_runs_imported_and_marked(tmp_path: Path, lg_runs) -> None:
    server = loadgen.read_run(lg_runs["Server"], lambda p: p.read_text())
    assert server.headline == "completed_samples_per_s"
    assert "scheduled_samples_per_s" in server.metrics and "perf_constraints_met" in server.metrics
    ss = loadgen.read_run(lg_runs["SingleStream"], lambda p: p.read_text())
    assert ss.headline == "latency_p90_ns" and ss.metrics["latency_p90_ns"].better == "lower"
    ms = loadgen.read_run(lg_runs["MultiStream"], lambda p: p.read_text())
    assert ms.headline == "query_latency_p99_ns"
    tree = make_tree(tmp_path / "sub", lg_runs)
    repo = make_tiny_repo(tmp_path / "proj")
    r = efflab(repo, "results", "import", "--format", "mlperf", str(tree), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    invalid = {i["experiment"] for i in out["invalid"]}
    # LoadGen itself judged these runs; the importer keeps its verdict
    for scen, logs in lg_runs.items():
        said = "INVALID" in (logs / loadgen.SUMMARY).read_text().split("Result is :")[1][:10]
        assert (f"mlperf-resnet50-{scen.lower()}" in invalid) == said
    assert invalid, "a Server run at 50 QPS with a 10 ms bound and 32 queries is INVALID"
    exp = sorted(invalid)[0]
    rec = json.loads(
        next((repo / "results" / exp / "hosts" / "mlperf-Lab" / "runs").glob("*.json")).read_text()
    )
    assert (
        rec["metrics"]["valid"]["value"] == 0.0 and rec["values"]["mlperf"]["validity"] == "INVALID"
    )
    assert rec["point"]["implementation"] == "cpp" and rec["point"]["division"] == "closed"


def _expect_bad(repo: Path, tree: Path, *needles: str) -> str:
    before = sorted(p for p in (repo / "results").rglob("*"))
    r = efflab(repo, "results", "import", "--format", "mlperf", str(tree))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr
    assert sorted(p for p in (repo / "results").rglob("*")) == before, "nothing written"
    return r.stderr


@pytest.mark.parametrize("which", ["summary", "detail"])
def test_truncated_logs_exit_2_naming_file_and_field(tmp_path: Path, lg_runs, which: str) -> None:
    tree = make_tree(tmp_path / "sub", {"Server": lg_runs["Server"]})
    run = tree / "closed/Lab/results/lab-box/resnet50/Server/performance/run_1"
    f = run / (loadgen.SUMMARY if which == "summary" else loadgen.DETAIL)
    data = f.read_bytes()
    cut = data.index(b"Result is") if which == "summary" else len(data) - 57
    f.write_bytes(data[:cut])
    repo = make_tiny_repo(tmp_path / "proj")
    field = "$.Result is" if which == "summary" else "line "
    _expect_bad(repo, tree, str(f), field)


def test_summary_contradicting_detail_exit_2(tmp_path: Path, lg_runs) -> None:
    tree = make_tree(tmp_path / "sub", {"SingleStream": lg_runs["SingleStream"]})
    f = (
        tree
        / "closed/Lab/results/lab-box/resnet50/SingleStream/performance/run_1"
        / loadgen.SUMMARY
    )
    text = f.read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("Mean latency (ns)"))
    value = int(line.split(":")[1])
    f.write_text(text.replace(line, f"Mean latency (ns)                : {value // 2}"))
    repo = make_tiny_repo(tmp_path / "proj")
    err = _expect_bad(repo, tree, str(f), "$.Mean latency (ns)", "result_mean_latency_ns",
                      "contradicts its detail log")  # fmt: skip
    assert str(value) in err
    # a verdict too: VALID in the summary, INVALID in the detail log
    f.write_text(text.replace("Result is : VALID", "Result is : INVALID"))
    _expect_bad(repo, tree, "$.Result is", "contradicts")


@pytest.mark.parametrize("target", ["/etc/passwd", "..", "../../outside"])
def test_symlinks_and_dotdot_refused(tmp_path: Path, lg_runs, target: str) -> None:
    tree = make_tree(tmp_path / "sub", {"Server": lg_runs["Server"]})
    run = tree / "closed/Lab/results/lab-box/resnet50/Server/performance/run_1"
    (run / loadgen.DETAIL).unlink()
    (run / loadgen.DETAIL).symlink_to(target)
    repo = make_tiny_repo(tmp_path / "proj")
    _expect_bad(repo, tree, str(run / loadgen.DETAIL), "symbolic link")
    # `..` in PATH itself is resolved first and the tree is read from where it is
    r = efflab(
        repo,
        "results",
        "import",
        "--format",
        "mlperf",
        str(tree / "closed" / ".." / "closed" / "Lab"),
    )
    assert r.returncode == 2 and "symbolic link" in r.stderr
    # a link to a folder on the way is refused too, never walked into
    (run / loadgen.DETAIL).unlink()
    shutil.copy(lg_runs["Server"] / loadgen.DETAIL, run / loadgen.DETAIL)
    bench = tree / "closed/Lab/results/lab-box/resnet50"
    (bench / "Offline").symlink_to(bench / "Server")
    _expect_bad(repo, tree, str(bench / "Offline"), "symbolic link")
    (bench / "Offline").unlink()


def test_huge_file_refused_before_reading(tmp_path: Path, lg_runs) -> None:
    tree = make_tree(tmp_path / "sub", {"Server": lg_runs["Server"]})
    f = tree / "closed/Lab/results/lab-box/resnet50/Server/performance/run_1" / loadgen.DETAIL
    with open(f, "r+b") as fh:  # sparse: 8 GiB on paper, nothing on disk
        fh.truncate(8 << 30)
    repo = make_tiny_repo(tmp_path / "proj")
    _expect_bad(repo, tree, str(f), "a file of at most", str(8 << 30))


def test_malformed_system_json_names_the_field(tmp_path: Path, lg_runs) -> None:
    tree = make_tree(tmp_path / "sub", {"Server": lg_runs["Server"]})
    f = tree / "closed/Lab/systems/lab-box.json"
    f.write_text(json.dumps({"framework": {"nested": "object"}}))
    repo = make_tiny_repo(tmp_path / "proj")
    _expect_bad(repo, tree, str(f), "$.framework")
    f.write_text('{"framework": "tf",')
    _expect_bad(repo, tree, str(f), "JSON")


def test_html_in_every_system_field_is_escaped_on_the_site(tmp_path: Path, lg_runs) -> None:
    tree = make_tree(tmp_path / "sub", {"Server": lg_runs["Server"]}, system="evil")
    f = tree / "closed/Lab/systems/evil.json"
    desc = json.loads(f.read_text())
    f.write_text(json.dumps({k: f"{HOSTILE}{k}" for k in desc}))
    repo = make_tiny_repo(tmp_path / "proj")
    r = efflab(repo, "results", "import", "--format", "mlperf", str(tree))
    assert r.returncode == 0, r.stderr
    r = efflab(repo, "site", "build", "-q")
    assert r.returncode == 0, r.stderr
    pages = list((repo / "results" / "site").rglob("*.html"))
    page = next(p for p in pages if p.name == "mlperf-resnet50-server.html").read_text()
    assert "framework" in page and "onerror" in page  # the values are there ...
    for p in pages:
        text = p.read_text()
        assert "<script>alert" not in text and "<img src=x" not in text, p  # ... never as HTML
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize(
    ("key", "name", "unit", "better"),
    [  # every result key LoadGen 6.0 logs (loadgen/results.cc, LogDetail)
        ("result_samples_per_second", "samples_per_s", "samples/s", "higher"),
        ("result_completed_samples_per_sec", "completed_samples_per_s", "samples/s", "higher"),
        ("result_scheduled_samples_per_sec", "scheduled_samples_per_s", "samples/s", "higher"),
        ("result_tokens_per_second", "tokens_per_s", "tokens/s", "higher"),
        ("result_completed_tokens_per_second", "completed_tokens_per_s", "tokens/s", "higher"),
        ("result_90.00_percentile_latency_ns", "latency_p90_ns", "ns", "lower"),
        ("result_99.90_percentile_latency_ns", "latency_p99_9_ns", "ns", "lower"),
        ("result_99.00_percentile_per_query_latency_ns", "query_latency_p99_ns", "ns", "lower"),
        ("result_min_query_latency_ns", "query_latency_min_ns", "ns", "lower"),
        ("result_mean_latency_ns", "latency_mean_ns", "ns", "lower"),
        ("result_first_token_max_latency_ns", "first_token_latency_max_ns", "ns", "lower"),
        (
            "result_first_token_50.00_percentile_latency_ns",
            "first_token_latency_p50_ns",
            "ns",
            "lower",
        ),
        (
            "result_time_per_output_token_99.00_percentile_ns",
            "time_per_output_token_p99_ns",
            "ns",
            "lower",
        ),
        ("result_time_to_output_token_mean", "time_per_output_token_mean_ns", "ns", "lower"),
        ("result_token_throughput", "token_throughput_per_ns", "tokens/ns", "higher"),
        (
            "result_token_throughput_with_loadgen_overhead",
            "tokens_per_s_with_loadgen_overhead",
            "tokens/s",
            "higher",
        ),
        ("result_qps_with_loadgen_overhead", "qps_with_loadgen_overhead", "queries/s", "higher"),
        ("result_overlatency_query_count", "overlatency_query_count", "count", "lower"),
        ("early_stopping_latency_ss", "early_stopping_latency_p90_ns", "ns", "lower"),
    ],
)
def test_loadgen_keys_become_named_metrics(key: str, name: str, unit: str, better: str) -> None:
    assert loadgen.metric_name(key) == name
    assert loadgen.unit_of(name) == (unit, better)
