"""Optimize studies on the site, in a real headless Chromium (Playwright): a real
two-objective study over the quad project (tests/optimize/quad_project.py), the site
built by the CLI, the study page's plot drawn with its traces (feasible, infeasible,
front) from the versioned front table, no JavaScript error, linked from home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import efflab
from optimize.quad_project import make_quad_repo
from test_site_browser import ARGS, CHROMIUM, Page

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="no chromium (tools/setup.sh installs Debian's)"
)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_study_page_plots_trials_and_the_front(tmp_path: Path, browser) -> None:
    repo = make_quad_repo(tmp_path / "proj")
    s = json.loads(
        efflab(
            repo, "optimize", "quad", "--objective", "loss:min", "--objective", "cost:min",
            "--constraint", "cost<=6", "--search", "x=2..8", "--search", "kind=a,b",
            "--trials", "10", "--sampler", "random", "--seed", "2", "--cores", "2",
            "--runtime", "host", "-q", "--json", check=True,
        ).stdout
    )  # fmt: skip
    infeasible = [t for t in s["trials"] if t["feasible"] is False]
    feasible = [t for t in s["trials"] if t["feasible"]]
    assert feasible and infeasible, s["trials"]  # the seed gives both kinds
    out = tmp_path / "site"
    built = json.loads(
        efflab(repo, "site", "build", "--out", str(out), "--json", check=True).stdout
    )
    assert built["counts"]["optimize_studies"] == 1 and not built["skipped"]
    html = (out / "optimize/quad.html").read_text()
    start = html.index("<script type='application/json' id='page-data'>") + 47
    data = json.loads(html[start : html.index("</script>", start)])
    # the front drawn is the versioned table's
    table = efflab(repo, "results", "table", "quad/optimize", "--format", "json", check=True)
    assert {f["trial"] for f in data["front"]} == {r["trial"] for r in json.loads(table.stdout)}
    assert {f["trial"] for f in data["front"]} == {t["trial"] for t in s["front"]}
    assert len(data["trials"]) == 10
    p = Page(browser, out, "optimize/quad.html")
    assert p.traces() == [3]  # feasible, infeasible, front
    names = p.page.eval_on_selector_all(".legendtext", "els => els.map(e => e.textContent)")
    assert names == ["feasible trials", "infeasible trials", "Pareto front"]
    assert p.page.locator("main table tbody tr").count() == len(s["front"])
    # intervals: each front median with its 95% interval, and the bars in the plot
    head = p.page.locator("main table thead").inner_text()
    assert "loss median [95% interval]" in head and "measure it again" in head
    cells = p.page.locator("main table tbody tr td").all_inner_texts()
    assert any(" [" in c and c.endswith("]") for c in cells), cells
    assert any(c.startswith("efflab run quad --set ") for c in cells), cells
    bars = p.page.eval_on_selector(
        ".plot", "d => d.data.map(t => !!(t.error_y && t.error_y.array))"
    )
    assert bars == [True, True, True]
    p.shot("optimize")
    p.close()
    home = Page(browser, out, "index.html")
    home.page.click("#optimize ~ .cards a")
    assert home.page.url.endswith("optimize/quad.html")
    home.close()
