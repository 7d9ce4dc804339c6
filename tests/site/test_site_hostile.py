"""The site over hostile imported results (issue #31), in a real headless Chromium.

A real lab B (the tiny project: the demo experiment and a reproduction of the `squares`
paper) hands over results laced with script: a hostname, a paper title and claims
holding `<script>` and `onerror=` payloads, and a scripted `report.html`. Project A
imports them, and also holds what an older efflab's import left behind (a scripted
report.html beside an imported report, a manifest with `"keys": 5`, verdicts with
`"experiments": "abc"`). The site must build (skipping and naming the bad files), and
no page may run any of the payloads. `--out` and `site serve` are attacked too.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from conftest import efflab, make_tiny_repo, write

sys.path.insert(0, str(Path(__file__).parents[1] / "papers"))
from test_reproduce import GOOD  # noqa: E402 - the squares paper spec

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
PAYLOAD = (
    "<script>window.__pwned=(window.__pwned||0)+1</script>"
    '<img src=x onerror="window.__pwned=(window.__pwned||0)+1">'
    '\'><svg onload="window.__pwned=(window.__pwned||0)+1">'
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("hostile-site")
    b = make_tiny_repo(root / "b")
    write(b / "workflows/papers/squares.yaml", GOOD)
    efflab(b, "reproduce", "squares", "--quick", "--runtime", "host", check=True)
    src = b / "results"
    for f in (src / "demo/runs").glob("*.json"):  # scripted hostname, commit, env, unit
        rec = json.loads(f.read_text())
        rec["provenance"]["host"]["hostname"] = "lab-b" + PAYLOAD
        rec["provenance"]["host"]["cpu_model"] = PAYLOAD
        rec["provenance"]["git"]["commit"] = PAYLOAD
        rec["provenance"]["env"] = PAYLOAD
        rec["run_id"] = PAYLOAD
        for m in rec["metrics"].values():
            m["unit"] = PAYLOAD
        f.write_text(json.dumps(rec))
    table = src / "demo/tables/v1/table.parquet"  # the table the plots draw: scripted text
    df = pd.read_parquet(table)
    df["unit"] = "s" + PAYLOAD
    df["metric"] = df["metric"] + PAYLOAD
    df.to_parquet(table, index=False)
    rep = src / "reproductions/squares/1"
    v = json.loads((rep / "verdicts.json").read_text())
    v["title"] = "Squares" + PAYLOAD
    for c in v["claims"]:
        c["statement"] = c["detail"] = c["ours"] = PAYLOAD
    v["claims"][0]["id"] = "x" + PAYLOAD
    (rep / "verdicts.json").write_text(json.dumps(v))
    (rep / "report.html").write_text(f"<html><body>{PAYLOAD}</body></html>")
    a = make_tiny_repo(root / "a")
    efflab(a, "results", "import", str(src), check=True)
    # what an older efflab's import left in results/ (the site must cope with it)
    reps = a / "results/reproductions/squares"
    shutil.copytree(reps / "1", reps / "2")
    (reps / "2/report.html").write_text(f"<html><body>{PAYLOAD}</body></html>")
    shutil.copytree(reps / "1", reps / "3")
    (reps / "3/verdicts.json").write_text(json.dumps({**v, "experiments": "abc"}))
    old = a / "results/demo/hosts/old-lab/tables/v1"
    shutil.copytree(next((a / "results/demo/hosts").glob("*/tables/v1")), old)
    man = json.loads((old / "manifest.json").read_text())
    (old / "manifest.json").write_text(json.dumps({**man, "keys": 5}))
    r = efflab(a, "site", "build", "--json")
    return {"a": a, "b": b, "build": r, "site": a / "results/site"}


def test_build_skips_malformed_imports_and_names_them(lab: dict) -> None:
    r = lab["build"]
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    skipped = {s["file"]: s["reason"] for s in json.loads(r.stdout)["skipped"]}
    a = lab["a"]
    man = str(a / "results/demo/hosts/old-lab/tables/v1/manifest.json")
    verdicts = str(a / "results/reproductions/squares/3/verdicts.json")
    assert "$.keys" in skipped[man] and "$.experiments" in skipped[verdicts]
    assert f"skipped {man}" in r.stderr


def test_no_foreign_html_reaches_the_site(lab: dict) -> None:
    site = lab["site"]
    for n in (1, 2):  # the imported report and the one an old import left with its HTML
        page = (site / f"papers/squares/{n}/report.html").read_text()
        assert "rendered here from the run's verdicts.json" in page
        assert "<script>window" not in page and 'onerror="window' not in page
        assert "&lt;script&gt;window.__pwned" in page  # there, as text
    for f in site.rglob("*"):
        if f.is_file() and f.suffix in (".html", ".svg", ".htm"):
            assert PAYLOAD not in f.read_text(), f
    assert (site / "papers/squares/1/plots/grows-with-n.png").is_file()
    assert not (site / "papers/squares/3").exists()


@pytest.mark.slow  # over a minute on a shared machine; the full suite runs it
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium (tools/setup.sh installs it)")
def test_nothing_executes_in_chromium(lab: dict) -> None:
    from playwright.sync_api import sync_playwright

    site = lab["site"]
    pages = ["index.html", "papers/squares.html", "papers/squares/1/report.html",
             "papers/squares/2/report.html", "experiments/demo.html", "machines.html"]  # fmt: skip
    pages += [str(p.relative_to(site)) for p in (site / "experiments").rglob("*.html")]
    dialogs: list[str] = []

    def on_dialog(d) -> None:  # an alert() would be a payload running
        dialogs.append(d.message)
        d.dismiss()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            # the control: the foreign report itself does run its payload in this browser
            page = browser.new_page()
            page.goto((lab["b"] / "results/reproductions/squares/1/report.html").as_uri())
            page.wait_for_load_state("load")
            assert page.evaluate("window.__pwned") >= 2
            page.close()
            for rel in pages:
                page = browser.new_page()
                dialogs.clear()
                page.on("dialog", on_dialog)
                page.goto((site / rel).as_uri())
                page.wait_for_selector("body[data-drawn='1']", state="attached", timeout=30000)
                page.wait_for_timeout(200)
                assert page.evaluate("window.__pwned") is None, rel
                assert not dialogs, rel
                if rel.startswith("papers/squares/1"):  # shown as text, not run
                    assert "<script>window.__pwned" in page.inner_text("main")
                page.close()
        finally:
            browser.close()


@pytest.mark.slow  # ten CLI runs and three builds
def test_out_refuses_a_folder_it_would_wipe(lab: dict, tmp_path: Path) -> None:
    a = lab["a"]
    mine = tmp_path / "my-folder"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    for out, why in [
        (mine, "not an efflab site"),
        (a / "results", "results/"),
        (a, "the project folder"),
        (a.parent, "the project folder (or a folder holding it)"),
        (a / "results/demo", "inside results/"),
        (mine / "thesis.tex", "a file"),
    ]:
        before = sorted(p.name for p in (a / "results").iterdir())
        r = efflab(a, "site", "build", "--out", str(out), "-q")
        assert r.returncode == 2, (out, r.stdout, r.stderr)
        assert why in r.stderr and "Traceback" not in r.stderr
        assert sorted(p.name for p in (a / "results").iterdir()) == before
    assert (mine / "thesis.tex").read_text() == "years of work"
    fresh = tmp_path / "public"
    efflab(a, "site", "build", "--out", str(fresh), "-q", check=True)
    (fresh / "stale.html").write_text("old")
    efflab(a, "site", "build", "--out", str(fresh), "-q", check=True)  # an earlier site
    assert (fresh / ".efflab-site").is_file() and not (fresh / "stale.html").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    efflab(a, "site", "build", "--out", str(empty), "-q", check=True)


def test_serve_answers_hostile_paths_without_a_traceback(lab: dict, capfd) -> None:
    from efflab.site.serve import serve

    a = lab["a"]
    ready, stop = threading.Event(), threading.Event()
    logs: list[str] = []
    out = a / "results/site"
    t = threading.Thread(target=serve, args=(a, out, 0, 60, logs.append, ready, stop))
    t.start()
    try:
        assert ready.wait(120)
        base = f"http://127.0.0.1:{ready.port}"
        for path, code in [("/index.html%00.js", 400), ("/%00", 400), ("/../../etc/passwd", 404),
                           ("/papers/squares/1/report.html%00", 400)]:  # fmt: skip
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(base + path, timeout=10)
            assert e.value.code == code, path
        with urllib.request.urlopen(base + "/papers/squares/1/plots/grows-with-n.png") as resp:
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert resp.read().startswith(b"\x89PNG")
    finally:
        stop.set()
        t.join(30)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ValueError" not in err, err
    assert not any("failed" in m for m in logs)
    assert os.environ.get("EFFLAB_NO_SUCH") is None
