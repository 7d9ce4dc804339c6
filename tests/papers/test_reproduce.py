"""`efflab reproduce` / `efflab papers` end to end on a tiny real project.

Real Snakemake, runner, records and tables (conftest.tiny_repo: gen -> square, the
`demo` experiment over n x scale); paper specs are written into the project.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import efflab, write

GOOD = """\
id: squares
title: Sums of squares scale linearly
authors: [A. Tester, B. Checker]
venue: TestConf
year: 2024
link: https://example.org/squares
summary: A toy paper whose claims the demo experiment can check.
scale: {paper: "sums of squares by hand", ours: "the demo experiment"}
experiments:
  - name: demo
claims:
  - id: scale-doubles
    statement: "Doubling the scale doubles the sum of squares."
    paper: {value: 2, unit: x, text: "exactly 2x"}
    check:
      within:
        value:
          ratio:
            - {metric: sumsq, where: {n: 3, scale: 2.0}}
            - {metric: sumsq, where: {n: 3, scale: 1.0}}
        rel_tol: {value: 0.01, source: ours, why: "exact arithmetic"}
    control:
      replace: {scale: {2.0: 1.0}}
      why: "the same scale on both sides: nothing doubles"
  - id: grows-with-n
    statement: "The sum grows with n."
    check: {trend: {metric: sumsq, where: {scale: 1.0}, along: n, direction: increasing, strict: true}}
"""

BAD_CLAIM = """\
id: optimist
title: An overstated claim
authors: [C. Optimist]
year: 2023
link: https://example.org/optimist
scale: {paper: "1..3", ours: "1..3"}
experiments:
  - name: demo
    quick_inputs: {n: 3}
claims:
  - id: huge
    statement: "The sum of squares of 1..3 exceeds 100."
    paper: {value: 100, text: "> 100"}
    note: our scale is exactly the paper's
    check: {compare: {left: {metric: sumsq, where: {scale: 1.0}}, op: ">", right: {value: 100, source: paper, ref: "> 100"}}}
"""


def paper(repo: Path, text: str, name: str | None = None) -> Path:
    pid = name or text.split("\n", 1)[0].split(": ", 1)[1]
    return write(repo / f"workflows/papers/{pid}.yaml", text)


def runs_on_disk(repo: Path) -> int:
    d = repo / "results/demo/runs"
    return len(list(d.glob("*.json"))) if d.is_dir() else 0


def test_reproduce_writes_report_and_reuses_cached_runs(tiny_repo: Path) -> None:
    paper(tiny_repo, GOOD)
    r = efflab(tiny_repo, "reproduce", "squares", "--quick", "--cores", "2", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "scale-doubles" in r.stdout and "reproduced" in r.stdout
    rep = tiny_repo / "results/reproductions/squares/1"
    md, page = (rep / "report.md").read_text(), (rep / "report.html").read_text()
    for claim in ("scale-doubles", "grows-with-n"):
        assert claim in md and claim in page
        assert (rep / "plots" / f"{claim}.png").read_bytes()[:4] == b"\x89PNG"
    assert "exactly 2x" in md and "<img src='plots/scale-doubles.png'" in page
    v = json.loads((rep / "verdicts.json").read_text())
    assert [c["verdict"] for c in v["claims"]] == ["reproduced", "reproduced"]
    # the control (scale 1 over scale 1) is shown with its value and outcome; the trend
    # has no control declared and its placebos (flat lines) fail
    ctl = v["claims"][0]["control"]
    assert ctl["outcome"] == "fails" and ctl["value"] == pytest.approx(1.0)
    assert ctl["as_expected"] and "scale: 2.0 → 1.0" in ctl["change"]
    assert v["claims"][1]["controlled"] == "no control declared"
    assert [p["outcome"] for p in v["claims"][1]["placebos"]] == ["fails"] * 2
    assert "| **reproduced** | fails (1 x) |" in md and "Control (the same scale" in md
    assert v["experiments"][0]["jobs_run"] == 6 and v["experiments"][0]["table_version"] == 1
    assert not list(rep.parent.glob(".tmp-*"))  # written atomically: no leftovers

    # the second paper fails honestly; the first is judged again from cached invocations
    paper(tiny_repo, BAD_CLAIM)
    r = efflab(tiny_repo, "reproduce", "squares", "optimist", "--quick", "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["ok"] is False
    verdicts = {(p["paper"], c["id"]): c for p in out["papers"] for c in p["claims"]}
    assert verdicts[("squares", "scale-doubles")]["verdict"] == "reproduced"
    assert verdicts[("squares", "scale-doubles")]["value"] == pytest.approx(2.0)
    huge = verdicts[("optimist", "huge")]
    assert huge["verdict"] == "not reproduced" and huge["ours"] == "14"
    by_paper = {p["paper"]: p for p in out["papers"]}
    assert by_paper["squares"]["experiments"][0]["jobs_run"] == 0  # all cached
    assert by_paper["optimist"]["experiments"][0]["overrides"] == {"n": 3}
    assert (tiny_repo / "results/reproductions/squares/2/report.md").exists()


def test_papers_share_one_experiment_run(tiny_repo: Path) -> None:
    paper(tiny_repo, GOOD)
    paper(tiny_repo, GOOD.replace("id: squares", "id: squares-again"))
    r = efflab(tiny_repo, "reproduce", "--all", "--quick", "--json")
    assert r.returncode == 0, r.stderr
    exps = [p["experiments"][0] for p in json.loads(r.stdout)["papers"]]
    assert [e["table_version"] for e in exps] == [1, 1]
    assert runs_on_disk(tiny_repo) == 4  # 4 quick points, run once for both papers


def test_a_paper_collapsing_an_axis_leaves_the_other_papers_points_whole(
    tiny_repo: Path,
) -> None:
    """`optimist` runs demo with n fixed (no n axis), `squares` the whole grid; the
    invocations they share were recorded under the first grid, yet each run reads them
    at its own points: squares' claims on n=3 are judged, not errors."""
    paper(tiny_repo, BAD_CLAIM)  # sorted first: its run records the shared points
    paper(tiny_repo, GOOD)
    r = efflab(tiny_repo, "reproduce", "--all", "--quick", "--cores", "2", "--json")
    assert r.returncode == 1, r.stdout + r.stderr  # optimist's claim fails, honestly
    out = json.loads(r.stdout)
    verdicts = {(p["paper"], c["id"]): c["verdict"] for p in out["papers"] for c in p["claims"]}
    assert verdicts[("optimist", "huge")] == "not reproduced"
    assert verdicts[("squares", "scale-doubles")] == "reproduced", out
    assert verdicts[("squares", "grows-with-n")] == "reproduced", out
    table = efflab(tiny_repo, "results", "table", "demo", "--format", "json", check=True)
    rows = json.loads(table.stdout)
    rows = rows["rows"] if isinstance(rows, dict) else rows
    assert rows and all(row.get("n") is not None for row in rows), rows  # the latest: squares'


def test_failed_experiment_makes_claims_errors(tiny_repo: Path) -> None:
    paper(tiny_repo, GOOD.replace("  - name: demo\n", "  - name: demo\n    inputs: {fail: true}\n"))
    r = efflab(tiny_repo, "reproduce", "squares", "--quick", "--json")
    assert r.returncode == 1
    claims = json.loads(r.stdout)["papers"][0]["claims"]
    assert {c["verdict"] for c in claims} == {"error"}
    assert "asked to fail" in claims[0]["detail"] or "no successful runs" in claims[0]["detail"]


@pytest.mark.parametrize(
    "edit, where",
    [
        (
            (
                "metric: sumsq, where: {n: 3, scale: 2.0}",
                "metric: sumsq2, where: {n: 3, scale: 2.0}",
            ),
            "$.claims[0].check.within.value.ratio[0].metric",
        ),
        (
            # the denominator's scale: the control (2.0 -> 1.0) still names a selected value
            ("where: {n: 3, scale: 1.0}}", "where: {n: 3, scale: 5.0}}"),
            "$.claims[0].check.within.value.ratio[1].where.scale",
        ),
        (
            ("where: {n: 3, scale: 2.0}", "where: {n: 4, scale: 2.0}"),
            "$.claims[0].check.within.value.ratio[0].where.n",
        ),
        (
            ("  - name: demo\n", "  - name: demo\n    inputs: {sclae: 2}\n"),
            "$.experiments[0].inputs.sclae",
        ),
        (("  - name: demo\n", "  - name: dmeo\n"), "$.experiments[0].name"),
        (("direction: increasing", "direction: upward"), "$.claims[1].check.trend.direction"),
        (
            ('rel_tol: {value: 0.01, source: ours, why: "exact arithmetic"}', "rel_tol: 0.01"),
            "$.claims[0].check.within.rel_tol",
        ),
        (
            ("        rel_tol: {value: 0.01", "        target: 2\n        rel_tol: {value: 0.01"),
            "$.claims[0].check.within.target",
        ),
        (
            ('source: ours, why: "exact arithmetic"', "source: ours"),
            "$.claims[0].check.within.rel_tol",
        ),
        (("scale: {paper:", "scal: {paper:"), "$"),
        (("id: squares", "id: squares-v2"), "$.id"),
    ],
)
def test_bad_specs_exit_2_naming_file_and_path_before_running(tiny_repo, edit, where) -> None:
    f = paper(tiny_repo, GOOD.replace(*edit), name="squares")
    r = efflab(tiny_repo, "reproduce", "--all", "--quick")
    assert r.returncode == 2, r.stdout + r.stderr
    assert str(f) in r.stderr and where in r.stderr, r.stderr
    assert runs_on_disk(tiny_repo) == 0 and not (tiny_repo / "results/reproductions").exists()


def test_quick_only_collapsed_axis_and_unknown_paper(tiny_repo: Path) -> None:
    # an override that fixes n removes the axis the trend claim needs: bad input, exit 2
    paper(tiny_repo, GOOD.replace("  - name: demo\n", "  - name: demo\n    quick_inputs: {n: 3}\n"))
    r = efflab(tiny_repo, "reproduce", "squares", "--quick")
    assert r.returncode == 2 and "$.claims[0].check.within.value.ratio[0].where.n" in r.stderr
    r = efflab(tiny_repo, "reproduce", "nosuch")
    assert r.returncode == 2 and "nosuch" in r.stderr and "newest first: squares" in r.stderr
    r = efflab(tiny_repo, "reproduce")
    assert r.returncode == 2
    assert runs_on_disk(tiny_repo) == 0


def test_papers_list_and_show(tiny_repo: Path) -> None:
    paper(tiny_repo, GOOD)
    paper(tiny_repo, BAD_CLAIM)
    r = efflab(tiny_repo, "papers", "list", "--json", check=True)
    listed = {p["id"]: p for p in json.loads(r.stdout)}
    assert set(listed) == {"squares", "optimist"} and listed["squares"]["claims"] == 2
    r = efflab(tiny_repo, "papers", "show", "squares", check=True)
    assert (
        "median(sumsq | n=3, scale=2.0) / median(sumsq | n=3, scale=1.0) within ±1% of 2"
        in r.stdout
    )
    shown = json.loads(efflab(tiny_repo, "papers", "show", "optimist", "--json", check=True).stdout)
    assert shown["claims"][0]["condition"] == "median(sumsq | scale=1.0) > 100"
    assert shown["experiments"] == [{"name": "demo", "inputs": {}, "quick_inputs": {"n": 3}}]
    assert efflab(tiny_repo, "papers", "show", "nope").returncode == 2


def test_a_contended_timing_record_is_re_measured(tiny_repo: Path, monkeypatch) -> None:
    monkeypatch.setenv("EFFLAB_QUIET_WAIT_S", "0")  # the rounds themselves, whatever the load
    meta = tiny_repo / "scripts/square/meta.yaml"
    write(
        meta, meta.read_text().replace("  timeout_s: 60\n", "  timeout_s: 60\n  exclusive: true\n")
    )
    paper(tiny_repo, GOOD)
    r = efflab(tiny_repo, "reproduce", "squares", "--quick", "--cores", "2", "-q")
    assert r.returncode in (0, 1), r.stdout + r.stderr  # 1 rep of a timing point: inconclusive
    outs = sorted(tiny_repo.glob("artifacts/square/*/outputs.json"))
    assert outs
    # the job side measured it; say it was contended, as a busy machine would have
    first = json.loads(outs[0].read_text())
    assert "others_cores" in first["contention"]
    first["contention"]["contended"] = True
    outs[0].write_text(json.dumps(first))
    rec_file = tiny_repo / "results/demo/runs" / f"{first['key']}.json"
    rec = json.loads(rec_file.read_text())  # the record says what the job side measured
    rec["contended"] = True
    rec_file.write_text(json.dumps(rec))
    r = efflab(tiny_repo, "reproduce", "squares", "--quick", "--cores", "2", "--json")
    v = json.loads(r.stdout)["papers"][0]
    (exp,) = v["experiments"]
    assert exp["timing"] and exp["remeasured"] >= 1, exp
    aside = list(outs[0].parent.glob("outputs.contended-*.json"))
    assert 1 <= len(aside) <= 2  # bounded: at most MAX_REMEASURE rounds
    assert json.loads(aside[0].read_text())["contention"]["contended"] is True
    assert outs[0].exists()  # measured again
    # and the claim on one repetition of a timing point is inconclusive, never a pass
    assert {c["verdict"] for c in v["claims"]} == {"inconclusive"}


def test_a_contended_exclusive_dependency_is_re_measured_with_what_builds_on_it(
    tiny_repo: Path, monkeypatch
) -> None:
    """A calibration-like dependency measured on a busy machine skews every point built
    on it: reproduce measures it again, and the points above it with it."""
    monkeypatch.setenv("EFFLAB_QUIET_WAIT_S", "0")
    for alias, before in (("square", "  timeout_s: 60\n"), ("gen", "outputs:\n")):
        meta = tiny_repo / f"scripts/{alias}/meta.yaml"
        extra = "  exclusive: true\n" if alias == "square" else "resources: {exclusive: true}\n"
        text = meta.read_text()
        assert before in text
        write(meta, text.replace(before, before + extra if alias == "square" else extra + before))
    paper(tiny_repo, GOOD)
    r = efflab(tiny_repo, "reproduce", "squares", "--quick", "--cores", "2", "-q")
    assert r.returncode in (0, 1), r.stdout + r.stderr
    gens = sorted(tiny_repo.glob("artifacts/gen/*/outputs.json"))
    squares = sorted(tiny_repo.glob("artifacts/square/*/outputs.json"))
    assert gens and squares
    for f in gens + squares:  # a loaded machine may have contended some for real: clear
        for aside in f.parent.glob("outputs.contended-*.json"):
            aside.unlink()
    out = json.loads(gens[0].read_text())
    out["contention"]["contended"] = True  # a busy machine, seen by the job side
    gens[0].write_text(json.dumps(out))
    r = efflab(tiny_repo, "reproduce", "squares", "--quick", "--cores", "2", "--json")
    assert r.returncode in (0, 1), r.stdout + r.stderr
    assert list(gens[0].parent.glob("outputs.contended-*.json"))  # set aside...
    assert gens[0].exists()  # ...and measured again
    key = gens[0].parent.name

    def built_on(f: Path) -> str:
        return json.loads((f.parent / "invocation.json").read_text())["deps"]["src"]["key"]

    above = [f for f in squares if built_on(f) == key]
    assert above  # the squares built on that gen were measured again with it
    assert all(list(f.parent.glob("outputs.contended-*.json")) for f in above)
    # (whether the others are left alone depends on the machine's real load: not asserted)
