"""The site in a real headless Chromium (Debian's, driven by Playwright), built from a
real small playground (tests/site/playground.py): every page type opens without a
JavaScript error, its plots are drawn with the expected traces, filters change what is
shown, the paper grid has one cell per run and claim, and every internal link resolves.
A screenshot of each page type is kept in results/site-screenshots/.
"""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from playground import REPO, build_playground, cli, must

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = REPO / "results" / "site-screenshots"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="no chromium (tools/setup.sh installs Debian's)"
)


@pytest.fixture(scope="module")
def playground(tmp_path_factory: pytest.TempPathFactory) -> dict:
    pg = build_playground(tmp_path_factory.mktemp("playground"))
    out = pg["repo"] / "public"
    built = must(cli(pg["repo"], "site", "build", "--out", str(out), "--json"))
    pg["site"] = out
    pg["built"] = json.loads(built.stdout)
    return pg


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Page:
    """One opened page with its console errors collected."""

    def __init__(self, browser, site: Path, rel: str):
        self.page = browser.new_page(viewport={"width": 1300, "height": 900})
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto((site / rel).as_uri())
        self.page.wait_for_selector("body[data-drawn='1']", state="attached", timeout=30000)

    def traces(self, sel: str = ".plot") -> list[int]:
        return self.page.eval_on_selector_all(
            sel, "els => els.map(e => e.querySelectorAll('.scatterlayer .trace').length)"
        )

    def point_traces(self) -> dict[str, int]:
        """Traces of each metric's points plot (the front plot has its own test)."""
        return dict(
            self.page.eval_on_selector_all(
                ".plot[data-kind='points']",
                "els => els.map(e => [e.dataset.metric, e.querySelectorAll('.scatterlayer .trace').length])",
            )
        )

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        f = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(f), full_page=True)
        return f

    def close(self) -> None:
        assert not self.errors, self.errors
        self.page.close()


def page_data(site: Path, rel: str) -> dict:
    text = (site / rel).read_text()
    start = text.index("id='page-data'>") + len("id='page-data'>")
    return json.loads(text[start : text.index("</script>", start)])


def test_build_sizes_and_offline_assets(playground: dict) -> None:
    b = playground["built"]
    # edge-digits, and edge-digits-ptq (int8-ptq reads edge-digits plus its control)
    assert b["counts"]["experiments"] == 2 and b["counts"]["papers"] == 1
    assert b["counts"]["tournaments"] == 1 and b["counts"]["nights"] == 2
    assert b["counts"]["machines"] == 2
    assert b["largest_page"][1] < 3_000_000 and not b["skipped"]
    site = playground["site"]
    assert (site / "assets/plotly.min.js").stat().st_size > 1_000_000  # the bundle, local
    for f in site.rglob("*.html"):  # nothing is fetched from the network
        assert "src='http" not in f.read_text() and 'src="http' not in f.read_text()


def series_groups(
    data: dict, metric: str, host: str | None = None, where: dict | None = None
) -> int:
    """Traces a points plot should draw: one per combination of the varying non-x inputs,
    and per machine while no host is chosen and there are several (assets.drawPoints)."""
    ser = (data.get("axes") or {}).get("series") or []
    many = len(data["hosts"]) > 1 and host is None
    return len(
        {
            (tuple(json.dumps(r["p"].get(k)) for k in ser), r["h"] if many else None)
            for r in data["rows"]
            if metric in r["m"]
            and (host is None or r["h"] == host)
            and all(r["p"].get(k) == v for k, v in (where or {}).items())
        }
    )


def test_experiment_page_plots_and_filters(playground: dict, browser) -> None:
    site = playground["site"]
    rel = "experiments/edge-digits.html"
    data = page_data(site, rel)
    hosts = data["hosts"]
    assert len(hosts) == 2 and "lab-b" in hosts
    p = Page(browser, site, rel)
    traces = p.point_traces()
    assert len(traces) == len(data["metrics"]) >= 5
    # one trace per series (other inputs) and machine, and more than one machine's
    assert traces == {m: series_groups(data, m) for m in traces}
    n_all = p.page.eval_on_selector(
        ".plot[data-metric='accuracy']",
        "e => e.querySelectorAll('.scatterlayer .trace .point').length",
    )
    assert n_all == sum(1 for r in data["rows"] if "accuracy" in r["m"])
    p.shot("experiment")
    # filter by a parameter: only that precision's points remain, in plots and table
    p.page.select_option(".param-filter[data-param='precision']", json.dumps("fp32"))
    n_fp32 = p.page.eval_on_selector(
        ".plot[data-metric='accuracy']",
        "e => e.querySelectorAll('.scatterlayer .trace .point').length",
    )
    want = sum(
        1 for r in data["rows"] if r["p"].get("precision") == "fp32" and "accuracy" in r["m"]
    )
    assert n_fp32 == want < n_all
    visible = p.page.eval_on_selector_all(
        "tr.prow", "rs => rs.filter(r => !r.classList.contains('hidden')).length"
    )
    assert visible == want
    # filter by host: that machine's traces only
    p.page.select_option("#host-filter", "lab-b")
    # (the precision filter chosen above still holds)
    fp32 = {"precision": "fp32"}
    assert p.point_traces() == {m: series_groups(data, m, "lab-b", fp32) for m in traces}
    p.page.select_option("#host-filter", "")
    p.page.select_option(".param-filter[data-param='precision']", "")
    # provenance of a point on click
    p.page.click(".plot[data-metric='accuracy'] .scatterlayer .trace .point >> nth=0", force=True)
    assert "commit" in p.page.inner_text("#prov-detail")
    p.close()


def test_paper_grid_has_a_cell_per_run_and_claim(playground: dict, browser) -> None:
    site, repo = playground["site"], playground["repo"]
    runs = sorted((repo / "results/reproductions/int8-ptq").glob("*/verdicts.json"))
    claims = json.loads(runs[0].read_text())["claims"]
    p = Page(browser, site, "papers/int8-ptq.html")
    cells = p.page.eval_on_selector_all("a.cell", "cs => cs.map(c => c.getAttribute('href'))")
    assert len(cells) == len(runs) * len(claims)
    assert all((site / "papers" / unquote(urlsplit(c).path)).is_file() for c in cells)
    p.shot("paper")
    p.close()


def test_tournament_page_pareto_and_links(playground: dict, browser) -> None:
    site = playground["site"]
    data = page_data(site, "tournaments/edge-digits.html")
    accepted = [e for e in playground["ledger"] if e["verdict"] == "accepted"]
    assert len(data["entries"]) == len(accepted) >= 2
    fronts = {e["front"] for e in data["entries"]}
    n_front1 = sum(e["front"] == 1 for e in data["entries"])
    want = (1 if 1 in fronts else 0) + (1 if fronts - {1} else 0) + (1 if n_front1 > 1 else 0)
    p = Page(browser, site, "tournaments/edge-digits.html")
    assert p.traces() == [want]
    assert p.page.locator("svg .shapelayer path").count() >= 1  # the accuracy constraint
    p.shot("tournament")
    first = accepted[0]["seq"]  # the ledger opens with the organiser's genesis and keys
    p.page.click(f"text=entry {first}")
    assert p.page.url.endswith(f"ledger.html#entry-{first}")
    p.page.wait_for_selector(f"#entry-{first}")
    p.shot("tournament-ledger")
    p.close()


def test_nightly_page_trends(playground: dict, browser) -> None:
    site = playground["site"]
    data = page_data(site, "nightly.html")
    assert {(t["exp"], t["metric"]) for t in data["trends"]} == {
        ("edge-digits", "accuracy"),
        ("edge-digits", "latency_p50_us"),
    }
    p = Page(browser, site, "nightly.html")
    want = [
        len(t["series"]) + (1 if any(f["verdict"] == "regression" for f in t["flags"]) else 0)
        for t in data["trends"]
    ]
    assert p.traces() == want and all(w == 3 for w in want)  # three precisions, no regression
    p.shot("nightly")
    p.close()


def test_home_and_machines(playground: dict, browser) -> None:
    site = playground["site"]
    p = Page(browser, site, "index.html")
    text = p.page.inner_text("main")
    assert "2 experiment(s), 1 paper(s), 1 tournament(s), 2 night(s)" in text
    assert "leader:" in text
    p.shot("home")
    p.close()
    m = Page(browser, site, "machines.html")
    heads = m.page.eval_on_selector_all("th", "hs => hs.map(h => h.textContent)")
    assert "lab-b" in heads and len(heads) == 3
    m.shot("machines")
    m.close()


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        for k in ("href", "src"):
            if a.get(k):
                self.hrefs.append(a[k])


def test_every_internal_link_resolves(playground: dict) -> None:
    site = playground["site"]
    parsed: dict[Path, Links] = {}
    for f in site.rglob("*.html"):
        parsed[f] = Links()
        parsed[f].feed(f.read_text())
    checked = 0
    for f, links in parsed.items():
        for h in links.hrefs:
            u = urlsplit(h)
            if u.scheme or h.startswith("//"):
                continue
            target = (f.parent / unquote(u.path)).resolve() if u.path else f
            assert target.is_file(), f"{f.relative_to(site)} -> {h}"
            if u.fragment and target.suffix == ".html" and target in parsed:
                assert u.fragment in parsed[target].ids or f.name == "report.html", (f, h)
            checked += 1
    assert checked > 50


def test_serve_rebuilds_when_results_change(playground: dict) -> None:
    import threading
    import urllib.request

    from efflab.site.serve import serve

    repo = playground["repo"]
    out = repo / "served"
    ready, stop = threading.Event(), threading.Event()
    logs: list[str] = []
    t = threading.Thread(target=serve, args=(repo, out, 0, 0.3, logs.append, ready, stop))
    t.start()
    try:
        assert ready.wait(120)
        url = f"http://127.0.0.1:{ready.port}/index.html"
        assert "Skipped" not in urllib.request.urlopen(url, timeout=10).read().decode()
        from efflab.results import tables

        # damage a record behind the latest table (the records the site reads)
        key = tables.manifest(repo, "edge-digits", tables.versions(repo, "edge-digits")[-1])[
            "keys"
        ][0]
        bad = repo / f"results/edge-digits/runs/{key}.json"
        good = bad.read_bytes()
        tmp = bad.with_suffix(".tmp")  # replaced as efflab writes files: temp + rename
        tmp.write_text("{not json")
        tmp.replace(bad)
        try:
            for _ in range(100):
                if any("rebuilt" in m for m in logs):
                    break
                stop.wait(0.3)
            page = urllib.request.urlopen(url, timeout=10).read().decode()
            assert "Skipped" in page and bad.name in page
        finally:
            tmp.write_bytes(good)
            tmp.replace(bad)
    finally:
        stop.set()
        t.join(30)
