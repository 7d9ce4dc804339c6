"""Controls, placebos and "by construction" on real recorded tables.

The tables are real measurements (ONNX Runtime on sklearn digits, a preprocessing
pipeline at three model widths): edge-server-overhead from tests/papers/recorded/, and
edge-digits from tests/papers/tables/edge-digits-7e2a3ff.json, the uncontended
recording of 7e2a3ff (Intel Xeon VM, Docker) that was tests/papers/recorded/ until #30's
harmful arms re-recorded edge-digits on a loaded AMD EPYC VM (every timing record
contended, so no claim on it can be decided; these tests need decisive ones, and
test_a_placebo_is_decided_on_a_contended_machine marks it contended itself). The specs
are written here so each rule is exercised both ways: a claim whose control and placebo
fail is counted, a claim that also holds on its control or placebo is demoted to a
sanity check, and a claim whose control cannot be decided is not reproduced outright.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from efflab.core.errors import BadInput
from efflab.papers import samples, verdict
from efflab.papers.reproduce import prepare
from efflab.papers.spec import load_paper

REPO = Path(__file__).resolve().parents[2]
RECORDED = Path(__file__).parent / "recorded"
TABLES = {"edge-digits": Path(__file__).parent / "tables" / "edge-digits-7e2a3ff.json"}


def table_file(name: str) -> Path:
    return TABLES.get(name, RECORDED / f"{name}.json")


def recorded(name: str) -> samples.Samples:
    d = json.loads(table_file(name).read_text())
    recs = [{**r, "status": "ok"} for r in d["records"]]
    return samples.from_records(
        name, recs, d["points"], d["params"], d["timing"], d.get("noiseless", ())
    )


@pytest.fixture(scope="module")
def tables() -> dict[str, samples.Samples]:
    return {n: recorded(n) for n in ("edge-digits", "edge-server-overhead")}


HEAD = """\
id: {pid}
title: Controls on real tables
authors: [A. Tester]
year: 2024
link: https://example.org/controls
scale: {{paper: "mobile CPUs", ours: "ONNX Runtime on one x86 thread"}}
experiments:
  - name: {exp}
claims:
"""
WHY = 'why: "set before measuring"'
SIZE = f"""\
  - id: size
    statement: "int8 weights make the model 4x smaller."
    paper: {{value: 4, text: "4x"}}
    check:
      within:
        value:
          ratio:
            - {{metric: model_size_kb, where: {{model: mlp-1024, precision: fp32}}}}
            - {{metric: model_size_kb, where: {{model: mlp-1024, precision: int8-static}}}}
        rel_tol: {{value: 0.1, source: ours, {WHY}}}
    control:
      replace: {{precision: {{int8-static: fp32}}}}
      why: "fp32 in place of int8: nothing is quantized, nothing shrinks"
"""
KEEPS = f"""\
  - id: keeps-accuracy
    statement: "int8 keeps accuracy within a point."
    check:
      compare:
        left: {{metric: accuracy, where: {{model: mlp-1024, precision: int8-static}}}}
        op: ">="
        right:
          difference:
            - {{metric: accuracy, where: {{model: mlp-1024, precision: fp32}}}}
            - {{value: 0.01, source: ours, {WHY}}}
"""
FASTER = """\
  - id: faster
    statement: "int8 is faster than fp32."
    check:
      compare:
        left: {metric: latency_p50_us, where: {model: mlp-1024, precision: fp32}}
        op: ">"
        right: {metric: latency_p50_us, where: {model: mlp-1024, precision: int8-static}}
    control:
      set: {model: cnn-64}
      why: "a model too small for int8 kernels to matter"
"""


def spec(tmp_path: Path, exp: str, *claims_text: str, pid: str = "ctl") -> Path:
    f = tmp_path / "workflows" / "papers" / f"{pid}.yaml"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(HEAD.format(pid=pid, exp=exp) + "".join(claims_text))
    return f


def judge(tmp_path: Path, tables, exp: str, *claims_text: str) -> dict:
    spec(tmp_path, exp, *claims_text)
    return {c.id: verdict.judge(c, tables) for c in load_paper(tmp_path, "ctl").claims}


def test_a_claim_whose_control_and_placebo_fail_is_counted(tmp_path: Path, tables) -> None:
    r = judge(tmp_path, tables, "edge-digits", SIZE)["size"]
    assert r.outcome.status == "pass" and r.counted and r.kind == "claim"
    assert r.controlled == "controlled"
    # the control reads fp32 / fp32: exactly 1, far from 4
    assert r.control is not None and r.control.outcome.status == "fail"
    assert r.control.outcome.value == pytest.approx(1.0)
    assert "precision: int8-static → fp32" in r.control.label
    # placebos: both sides fp32, then both int8-static
    assert [p.outcome.status for p in r.placebos] == ["fail", "fail"]
    assert [p.outcome.value for p in r.placebos] == [1.0, 1.0]


def test_a_non_inferiority_claim_holds_on_its_placebo_and_is_demoted(
    tmp_path: Path, tables
) -> None:
    r = judge(tmp_path, tables, "edge-digits", KEEPS)["keeps-accuracy"]
    assert r.outcome.status == "pass"  # the claim itself holds
    assert r.by_construction.startswith("it also holds on its placebo: both sides")
    assert r.kind == "sanity" and not r.counted
    assert r.controlled == "no control declared"


def test_an_equivalence_claim_needs_a_control_that_fails(tmp_path: Path, tables) -> None:
    declared = KEEPS + '    placebo: {expect: holds, why: "equivalence: equal arms pass"}\n'
    # its control swaps int8-static for int8-dynamic, which keeps accuracy too: it holds
    weak = declared + (
        "    control:\n      replace: {precision: {int8-static: int8-dynamic}}\n"
        '      why: "another int8 scheme"\n'
    )
    r = judge(tmp_path, tables, "edge-digits", weak)["keeps-accuracy"]
    assert r.placebos and all(p.as_expected for p in r.placebos)  # holds, as declared
    assert r.by_construction.startswith("it also holds on its control")
    assert not r.counted
    # declared without a control: counted, shown as such
    r = judge(tmp_path, tables, "edge-digits", declared)["keeps-accuracy"]
    assert r.counted and r.outcome.status == "pass" and r.controlled == "no control declared"


def test_a_claim_whose_control_is_undecided_is_not_reproduced_outright(
    tmp_path: Path, tables
) -> None:
    r = judge(tmp_path, tables, "edge-digits", FASTER)["faster"]
    # mlp: fp32 190-238 us against int8-static 56-65 us in every repetition
    assert r.control is not None and r.control.outcome.status == "inconclusive"
    assert r.outcome.status == "inconclusive" and r.counted
    assert "not shown to be able to fail: its control" in r.outcome.detail


def test_trend_placebo_is_a_flat_line(tmp_path: Path, tables) -> None:
    trend = (
        "  - id: share-falls\n    statement: s\n"
        "    check: {trend: {metric: model_gmacs, along: width, direction: decreasing, strict: %s}}\n"
        '    control: {none: "no neutral width"}\n'
    )
    # model GMACs grow with width: the strict decreasing claim fails honestly...
    r = judge(tmp_path, tables, "edge-server-overhead", trend % "true")["share-falls"]
    assert r.outcome.status == "fail" and r.controlled == "uncontrolled"
    assert [p.label for p in r.placebos] == [
        "placebo: flat at width=8",
        "placebo: flat at width=32",
    ]
    assert all(p.outcome.status == "fail" for p in r.placebos)
    # ...and a non-strict trend holds on a flat line: it could not tell a falling metric
    # from a constant one, whatever it reads
    r = judge(tmp_path, tables, "edge-server-overhead", trend % "false")["share-falls"]
    assert r.by_construction == "it also holds on its placebo: flat at width=8"


@pytest.mark.parametrize(
    ("control", "path", "expected"),
    [
        (
            "{replace: {precision: {int4: fp32}}, why: w}",
            "$.claims[0].control.replace.precision.int4",
            "a value of 'precision' the claim selects",
        ),
        ("{set: {model: mlp-1024}, why: w}", "$.claims[0].control", "a control that changes"),
        ("{replace: {precision: {int8-static: fp32}}}", "$.claims[0].control", "required"),
        ("{none: ''}", "$.claims[0].control", ""),
    ],
)
def test_bad_controls_name_the_field(tmp_path: Path, control, path, expected) -> None:
    bad = FASTER.split("    control:")[0] + f"    control: {control}\n"
    spec(tmp_path, "edge-digits", bad)
    with pytest.raises(BadInput) as exc:
        load_paper(tmp_path, "ctl")
    assert exc.value.path.startswith(path), exc.value
    assert expected in str(exc.value)


def test_a_control_the_plan_lacks_is_bad_input_before_anything_runs(tmp_path: Path) -> None:
    bad = FASTER.replace("set: {model: cnn-64}", "set: {model: resnet-50}")
    f = spec(tmp_path, "edge-digits", bad)
    paper = load_paper(REPO, str(f))
    with pytest.raises(BadInput) as exc:
        prepare(REPO, [paper], True)
    assert exc.value.path == "$.claims[0].control"
    assert "resnet-50" in str(exc.value) and "experiments[].inputs" in str(exc.value)


# re-done on the vLLM engine (#37): their owner adds controls with this syntax
LEAD_PAPERS = {"sarathi-serve", "kinetics", "llm-inference-hyperparams"}


def test_every_counted_shipped_claim_names_its_control() -> None:
    """`control:` (or `control: {none: why}`) on every counted claim of every spec."""
    from efflab.papers.spec import load_papers

    missing = [
        f"{p.id}/{c.id}"
        for p in load_papers(REPO, [], True)
        if p.id not in LEAD_PAPERS
        for c in p.claims
        if c.kind == "claim" and c.control is None and not c.cites
    ]
    assert missing == []


def test_a_placebo_is_decided_on_a_contended_machine(tmp_path: Path) -> None:
    """The same recorded timings marked contended (as on a loaded machine): the claim
    itself is inconclusive, but an arm against itself is exactly 1 whatever the load,
    so its placebo and an arm-swap control still fail."""
    d = json.loads(table_file("edge-digits").read_text())
    recs = [{**r, "status": "ok", "contended": True} for r in d["records"]]
    busy = {
        "edge-digits": samples.from_records("edge-digits", recs, d["points"], d["params"], True)
    }
    r = judge(tmp_path, busy, "edge-digits", SIZE)["size"]
    assert r.outcome.status == "inconclusive" and "contended" in r.outcome.detail
    assert r.control is not None and r.control.outcome.status == "fail"
    assert [p.outcome.status for p in r.placebos] == ["fail", "fail"]
    assert "exact: an arm against itself" in r.placebos[0].outcome.detail
    # a control reading other points (cnn-64) stays undecided under contention
    r = judge(tmp_path, busy, "edge-digits", FASTER)["faster"]
    assert r.control is not None and r.control.outcome.status == "inconclusive"


def test_a_noiseless_metric_is_decided_on_a_contended_machine(tmp_path: Path) -> None:
    """Model size is declared `noiseless` by edge-bench: records measured on a busy
    machine decide a claim on it (load cannot move a size), while a latency claim on
    the same records stays undecided."""
    from efflab.plan.registry import Registry

    declared = Registry.for_repo(REPO).scripts["edge-bench"].metrics
    quiet = {m for m, v in declared.items() if v.get("noiseless")}
    assert {"model_size_kb", "accuracy"} <= quiet and "latency_p50_us" not in quiet
    d = json.loads(table_file("edge-digits").read_text())
    recs = [{**r, "status": "ok", "contended": True} for r in d["records"]]
    busy = {"edge-digits": samples.from_records("edge-digits", recs, d["points"], d["params"], True, quiet)}  # fmt: skip
    r = judge(tmp_path, busy, "edge-digits", SIZE)["size"]
    assert r.outcome.status == "pass" and "contended" not in r.outcome.detail, r.outcome
    r = judge(tmp_path, busy, "edge-digits", FASTER)["faster"]
    assert r.outcome.status == "inconclusive" and "contended" in r.outcome.detail
