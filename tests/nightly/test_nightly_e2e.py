"""`efflab nightly` end to end on the tiny project: real Snakemake, runner, records, git.

Three nights of the `demo` experiment at one point: the first has no baseline (exit 0),
the second is unchanged (exit 0), then the script gets slower — a code regression, as
a nightly should catch it — and the third night fails (exit 1) and publishes.
"""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest
from conftest import efflab, write

from efflab.cli import main

SUITE = """\
name: tiny-nightly
defaults: {repetitions: 4}
correction: holm
policy:
  default: {alpha: 0.05, min_effect: 0.5, baseline_runs: 5}
experiments:
  - name: demo
    overrides: {n: 2, scale: 1.0, sleep_s: 0.05}
    metrics: [wall_s, sumsq]
"""


def test_nightly_passes_then_fails_on_injected_slowdown(tiny_repo: Path, tmp_path: Path) -> None:
    suite = write(tiny_repo / "workflows/nightly.yaml", SUITE)
    r1 = efflab(tiny_repo, "nightly", "--cores", "2", "--strict")  # no baseline: fails
    assert r1.returncode == 1, r1.stdout + r1.stderr
    assert "2 without baseline" in r1.stdout
    assert r1.stdout.index("NO BASELINE - fails (--strict)") < r1.stdout.index("UNCHANGED")
    r2 = efflab(tiny_repo, "nightly", "--suite", str(suite), "--cores", "2", "--json")
    assert r2.returncode == 0, r2.stdout + r2.stderr
    s2 = json.loads(r2.stdout)
    assert s2["counts"]["unchanged"] == 2 and s2["exit_code"] == 0
    assert s2["experiments"]["demo"]["jobs_run"] == 4  # measured anew; shared dep `gen` cached

    run_py = tiny_repo / "scripts/square/run.py"
    run_py.write_text(
        run_py.read_text().replace('(ctx.inputs["sleep_s"])', '(ctx.inputs["sleep_s"] * 4)')
    )
    results = tmp_path / "results-repo"
    r3 = efflab(tiny_repo, "nightly", "--cores", "2", "--publish", str(results))
    assert r3.returncode == 1, r3.stdout + r3.stderr
    out = r3.stdout
    assert out.index("REGRESSIONS") < out.index("UNCHANGED")
    reg_line = out.splitlines()[out.splitlines().index("REGRESSIONS") + 1]
    assert "wall_s" in reg_line and "lower is better" in reg_line

    night = tiny_repo / "results/nightly/3"
    summary = json.loads((night / "summary.json").read_text())
    assert summary["counts"]["regression"] == 1 and summary["exit_code"] == 1
    assert (night / "index.html").read_text().count("<img") == 2
    assert (night / "demo__wall_s.png").stat().st_size > 1000
    history = (tiny_repo / "results/nightly/history.jsonl").read_text().splitlines()
    assert [json.loads(h)["exit_code"] for h in history] == [1, 0, 1]
    versions = [json.loads(h)["experiments"]["demo"]["version"] for h in history]
    assert versions == sorted(set(versions))  # a new table version every night
    names = {t.name for t in git.Repo(results).tags}
    assert {f"demo/v{versions[-1]}", "nightly/3"} <= names
    assert (results / "nightly/3/summary.md").is_file()

    bad = efflab(tiny_repo, "nightly", "accept", "3", "--metric", "sumsq")  # never flagged
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--metric" in bad.stderr
    ok = efflab(tiny_repo, "nightly", "accept", "3", "--metric", "wall_s", "--reason", "slower")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    line = json.loads((tiny_repo / "results/nightly/history.jsonl").read_text().splitlines()[2])
    assert line["accepted"][0]["reason"] == "slower" and line["accepted"][0]["metric"] == "wall_s"


@pytest.mark.parametrize(
    ("suite", "where"),
    [
        ("experiments: [{name: nope}]", "$.experiments[0].name"),
        ("experiments: [{name: demo, repetitions: 0}]", "$.experiments[0].repetitions"),
        ("experiments: [{name: demo, overrides: {bogus: 1}}]", "$.experiments[0].overrides.bogus"),
        ("experiments: [{name: demo, metrics: [nope]}]", "$.experiments[0].metrics[0]"),
        ("experiments: [{name: demo}]\npolicy: {default: {alpha: 2}}", "$.policy.default.alpha"),
        ("experiments: [{name: demo}]\npolicy: {metrics: {wal_s: {}}}", "$.policy.metrics.wal_s"),
    ],
)
def test_bad_suite_exits_2_naming_file_and_path(
    tiny_repo: Path, suite: str, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write(tiny_repo / "bad.yaml", suite)
    assert main(["--repo", str(tiny_repo), "nightly", "--suite", str(f)]) == 2
    err = capsys.readouterr().err
    assert str(f) in err and where in err, err
    assert not (tiny_repo / "results/nightly/history.jsonl").exists()
