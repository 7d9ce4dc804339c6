"""`efflab site build` on the tiny project (real Snakemake runs of the demo experiment):
a corrupt record is skipped and named, the site still builds; the versions diff pages
carry the same content as `efflab results diff`."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import efflab


def test_corrupt_record_is_skipped_and_named(tiny_repo: Path) -> None:
    efflab(tiny_repo, "run", "demo", "--quick", "--runtime", "host", check=True)
    runs = sorted((tiny_repo / "results/demo/runs").glob("*.json"))
    runs[0].write_text('{"point": 3, "metrics": {}}')  # valid JSON, not a record
    runs[1].write_bytes(b"\x00\x01 not json")
    r = efflab(tiny_repo, "site", "build")
    assert r.returncode == 0, r.stderr
    assert f"skipped {runs[0]}" in r.stderr and "$.point" in r.stderr
    assert f"skipped {runs[1]}" in r.stderr
    home = (tiny_repo / "results/site/index.html").read_text()
    assert runs[0].name in home and runs[1].name in home
    exp = (tiny_repo / "results/site/experiments/demo.html").read_text()
    assert "sumsq" in exp


def test_diff_page_matches_results_diff(tiny_repo: Path) -> None:
    efflab(tiny_repo, "run", "demo", "--quick", "--runtime", "host", check=True)
    efflab(tiny_repo, "run", "demo", "--runtime", "host", check=True)  # 2 repetitions: v2
    out = tiny_repo / "public"
    built = json.loads(
        efflab(tiny_repo, "site", "build", "--out", str(out), "--json", check=True).stdout
    )
    pages = [p for p in out.rglob("diff-v1-v2.html")]
    assert len(pages) == 1 and built["pages"] >= 4
    d = json.loads(
        efflab(tiny_repo, "results", "diff", "demo", "1", "2", "--json", check=True).stdout
    )
    html = pages[0].read_text()
    assert html.count("<tr>") - 1 == len(d)  # one row per diff row (+ the header row)
    for row in d:
        assert row["status"] in html
    assert "efflab results diff demo 1 2" in html
    r = efflab(tiny_repo, "site", "build", "--help")
    assert r.returncode == 0 and "--out" in r.stdout
