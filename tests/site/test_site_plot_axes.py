"""The experiment page's plots in headless Chromium, as a person reads them: the
numeric input on x under its own name (log where the grid is geometric), one colour
per other input, the 95% interval as the bar, the title and legend clear of Plotly's
toolbar, and a click on a point shows the command that measures it again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, efflab, write

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SHOTS = REPO / "results" / "site-screenshots"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="no chromium (tools/setup.sh installs Debian's)"
)

SWEEP = """\
name: sweep
description: n over a geometric grid, two scales
script: demo,square
grid:
  n: [2, 4, 8, 16]
  scale: [1.0, 2.0]
repetitions: 3
"""


def _boxes_overlap(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])  # fmt: skip


def test_plot_axes_colours_and_the_command_per_point(tiny_repo: Path) -> None:
    from playwright.sync_api import sync_playwright

    write(tiny_repo / "workflows/experiments/sweep.yaml", SWEEP)
    efflab(tiny_repo, "run", "sweep", "--runtime", "host", "-q", check=True)
    out = tiny_repo / "site"
    efflab(tiny_repo, "site", "build", "--out", str(out), "-q", check=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = b.new_page(viewport={"width": 1300, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((out / "experiments/sweep.html").as_uri())
        page.wait_for_selector("body[data-drawn='1']", state="attached", timeout=30000)
        plot = page.locator(".plot[data-metric='sumsq']")
        caption_text = page.locator("figure", has=plot).locator("figcaption").inner_text()
        assert caption_text == "sumsq [1] (lower is better)"
        info = plot.evaluate(
            """d => ({type: d._fullLayout.xaxis.type, title: d._fullLayout.xaxis.title.text,
                     names: d.data.map(t => t.name), xs: d.data.map(t => t.x),
                     bars: d.data.map(t => t.error_y.array.length),
                     plotTitle: ((d.layout.title || {}).text) || ''})"""
        )
        assert info["type"] == "log" and info["title"] == "n"  # the input's name, not param_n
        assert info["names"] == ["scale=1", "scale=2"]
        assert info["xs"] == [[2, 4, 8, 16], [2, 4, 8, 16]] and info["bars"] == [4, 4]
        assert info["plotTitle"] == ""  # the caption above the plot is the title
        plot.hover()  # the toolbar shows on hover
        bar = plot.locator(".modebar-container").bounding_box()
        legend = plot.locator(".legend").bounding_box()
        caption = page.locator("figure", has=plot).locator("figcaption").bounding_box()
        assert bar and legend and caption
        assert not _boxes_overlap(bar, legend) and not _boxes_overlap(bar, caption)
        plot.locator(".scatterlayer .trace").first.locator(".points path").first.click(force=True)
        detail = page.locator("#prov-detail").inner_text()  # the lowest n of one scale
        assert detail.startswith("n=2 scale=") and ": 3 records; commit" in detail, detail
        assert "measure it again: efflab run sweep --set n=2 --set scale=" in detail, detail
        cmds = page.locator("table code.cmd").all_inner_texts()
        assert "efflab run sweep --set n=16 --set scale=2.0" in cmds
        page.click(".related a[href='../scripts/square.html']")  # the script's own page
        assert page.url.endswith("scripts/square.html")
        assert "scale" in page.locator("main table").first.inner_text()
        assert page.locator("a[href='../experiments/sweep.html']").count() == 1
        page.go_back()
        page.wait_for_selector("body[data-drawn='1']", state="attached", timeout=30000)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "experiment-axes.png"), full_page=True)
        b.close()
    assert not errors, errors
