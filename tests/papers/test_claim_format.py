"""The agreed claim format: threshold objects with a source, `kind: sanity`, `scale:`,
and `cites:` — checked by loading real spec files (schema + parser), no job runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from efflab.core.errors import BadInput
from efflab.papers import claims
from efflab.papers.spec import load_paper

SPEC = """\
id: {pid}
title: Toy
authors: [A. Tester]
year: 2024
link: https://example.org/toy
scale: {{paper: "GPU at scale", ours: "one CPU thread"}}
experiments:
  - name: demo
claims:
  - id: faster
    statement: "It is 2x faster."
    paper: {{value: 2, text: "2x"}}
    check:
      compare:
        left:
          ratio:
            - {{metric: sumsq, where: {{n: 3, scale: 2.0}}}}
            - {{metric: sumsq, where: {{n: 3, scale: 1.0}}}}
        op: ">="
        right: {right}
  - id: by-construction
    kind: sanity
    statement: "Holds by construction."
    check:
      within:
        value: {{metric: sumsq, where: {{n: 3, scale: 1.0}}}}
        rel_tol: {{value: 0.1, source: ours, why: "set before measuring"}}
        target: {{value: 14, source: paper, ref: "Table 1"}}
"""
GOOD_RIGHT = '{value: 2, source: paper, ref: "Abstract: 2x faster"}'


def write(repo: Path, pid: str, text: str) -> Path:
    f = repo / "workflows" / "papers" / f"{pid}.yaml"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(text)
    return f


def test_thresholds_keep_their_source_and_sanity_is_not_counted(tmp_path: Path) -> None:
    write(tmp_path, "toy", SPEC.format(pid="toy", right=GOOD_RIGHT))
    p = load_paper(tmp_path, "toy")
    assert p.scale is not None and p.scale.paper == "GPU at scale"
    a, b = p.claims
    assert a.counted and not b.counted and b.kind == "sanity"
    (t,) = claims.thresholds(a.condition)
    assert (t.value, t.source, t.basis) == (2.0, "paper", "Abstract: 2x faster")
    tgt, tol = claims.thresholds(b.condition)
    assert (tgt.source, tgt.basis, tol.source, tol.basis) == (
        "paper",
        "Table 1",
        "ours",
        "set before measuring",
    )


@pytest.mark.parametrize(
    "right, path",
    [
        ("2", "$.claims[0].check.compare.right"),
        ("{difference: [{metric: sumsq}, 1]}", "$.claims[0].check.compare.right.difference[1]"),
    ],
)
def test_a_bare_number_is_bad_input_naming_file_and_path(tmp_path, right, path) -> None:
    f = write(tmp_path, "toy", SPEC.format(pid="toy", right=right))
    with pytest.raises(BadInput) as e:
        load_paper(tmp_path, "toy")
    assert e.value.file == f and e.value.path == path
    assert "source: paper" in e.value.expected


@pytest.mark.parametrize(
    "right, path",
    [
        ("{value: 2, source: paper}", "$.claims[0].check.compare.right"),  # no ref
        ('{value: 2, source: ours, ref: "x"}', "$.claims[0].check.compare.right"),  # no why
        ('{value: 2, source: vibes, why: "x"}', "$.claims[0].check.compare.right"),
    ],
)
def test_a_threshold_without_its_ref_or_why_is_bad_input(tmp_path, right, path) -> None:
    f = write(tmp_path, "toy", SPEC.format(pid="toy", right=right))
    with pytest.raises(BadInput) as e:
        load_paper(tmp_path, "toy")
    assert e.value.file == f and e.value.path.startswith("$.claims[0]")


def test_a_spec_without_scale_is_bad_input(tmp_path: Path) -> None:
    text = SPEC.format(pid="toy", right=GOOD_RIGHT).replace("scale: {", "scal: {")
    write(tmp_path, "toy", text)
    with pytest.raises(BadInput):
        load_paper(tmp_path, "toy")


def test_cites_reuses_the_other_papers_check(tmp_path: Path) -> None:
    write(tmp_path, "toy", SPEC.format(pid="toy", right=GOOD_RIGHT))
    citing = SPEC.format(pid="other", right=GOOD_RIGHT).replace(
        "    check:\n      compare:", "    cites: toy/faster\n    xcheck:\n      compare:", 1
    )
    head, rest = citing.split("    xcheck:", 1)
    citing = head + "  - id: by-construction" + rest.split("  - id: by-construction", 1)[1]
    write(tmp_path, "other", citing)
    p = load_paper(tmp_path, "other")
    assert p.claims[0].cites == "toy/faster"
    assert p.claims[0].condition == load_paper(tmp_path, "toy").claims[0].condition
    write(tmp_path, "other", citing.replace("cites: toy/faster", "cites: toy/nosuch"))
    with pytest.raises(BadInput) as e:
        load_paper(tmp_path, "other")
    assert e.value.path == "$.claims[0].cites"
