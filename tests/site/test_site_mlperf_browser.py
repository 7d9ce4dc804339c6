"""Imported MLPerf systems on the site, in a real headless Chromium: the shared
submission tree (13 resnet50 systems) and a hostile system description with HTML in
every field are imported; the experiment page draws each system's point, filters by
framework and processor, and draws throughput against a second metric with the
Pareto front; no HTML from the import runs. Screenshots go to
results/site-screenshots/ (mlperf-*.png)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import REPO, efflab, make_tiny_repo

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SHARED = Path(os.environ.get("EFFLAB_SHARED", REPO.parent / "shared")) / "mlperf"
SHOTS = REPO / "results" / "site-screenshots"
TF = "gh_ubuntu-latest_x86-reference-cpu-tf_v2.20.0-default_config"

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="no chromium (tools/setup.sh installs it)"
    ),
    pytest.mark.skipif(not (SHARED / "tree").is_dir(), reason=f"no shared MLPerf data at {SHARED}"),
]


def test_imported_systems_side_by_side_with_filters_and_front(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    repo = make_tiny_repo(tmp_path / "proj")
    tree = tmp_path / "tree"
    shutil.copytree(SHARED / "tree", tree)
    # one hostile system: HTML in every field of its description
    sysdir = tree / "open" / "MLCommons" / "systems"
    desc = json.loads((sysdir / f"{TF}.json").read_text())
    evil = "evil_box"
    (sysdir / f"{evil}.json").write_text(
        json.dumps({k: f"<img src=x onerror=window.pwned=1>{k}" for k in desc})
    )
    shutil.copytree(tree / "open/MLCommons/results" / TF, tree / "open/MLCommons/results" / evil)
    r = efflab(repo, "results", "import", "--format", "mlperf", str(tree), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["experiments"]["mlperf-resnet50-offline"]["points"] == 14
    out = tmp_path / "site"
    assert efflab(repo, "site", "build", "--out", str(out), "-q").returncode == 0
    page_file = out / "experiments" / "mlperf-resnet50-offline.html"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = b.new_page(viewport={"width": 1300, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(120_000)  # 17 plots on a busy shared machine
        page.goto(page_file.as_uri())
        page.wait_for_selector("body[data-drawn='1']", state="attached")
        assert page.evaluate("window.pwned") is None  # no imported HTML ran
        assert page.text_content("#shown") == "14 point(s) shown"
        front = page.query_selector(".plot[data-kind='front']")
        assert front.get_attribute("data-traces") == "2"  # the source's points + the front
        n_front = int(front.get_attribute("data-front"))
        assert 1 <= n_front < 14
        axes = page.eval_on_selector_all(".front-axis", "els => els.map(e => e.value)")
        assert axes == ["samples_per_s", "latency_p90_ns"]
        dots = page.eval_on_selector_all(
            ".plot[data-kind='front'] .scatterlayer .trace:first-child .point", "els => els.length"
        )
        assert dots == 14
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "mlperf-resnet50-offline.png"), full_page=True)
        filters = page.eval_on_selector_all(".param-filter", "els => els.map(e => e.dataset.param)")
        assert {"system", "framework", "processor", "accelerator"} <= set(filters)
        tf_opt = page.eval_on_selector(
            ".param-filter[data-param='framework']",
            "s => Array.from(s.options).map(o => o.value).filter(v => v.includes('tf v2'))",
        )
        page.select_option(".param-filter[data-param='framework']", tf_opt[0])
        assert page.text_content("#shown") == "1 point(s) shown"
        page.select_option(".param-filter[data-param='framework']", "")
        page.select_option(".front-axis[data-axis='y']", "acc_accuracy")
        assert page.query_selector(".plot[data-kind='front']").get_attribute("data-traces") == "2"
        page.screenshot(path=str(SHOTS / "mlperf-resnet50-offline-accuracy.png"), full_page=True)
        assert not errors, errors
        b.close()
    html = page_file.read_text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=window.pwned=1&gt;" in html
