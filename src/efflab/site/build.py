"""`efflab site build`: read results/ once, write every page, swap the site in whole.

The site is built in a folder beside `--out` and renamed into place, so a reader (or
`efflab site serve`) never sees half a site. Replacing `--out` deletes what it held,
so it must be empty, missing, or an earlier efflab site (the marker file `MARKER`),
and never the project, its results/ or a folder holding either (`check_out`). What could not be read is skipped, named
on the home page and returned (`Built.skipped`): one corrupt record must not take the
whole site down.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from efflab.core import layout
from efflab.core.errors import BadInput
from efflab.results.provenance import host_info
from efflab.site.assets import write_assets
from efflab.site.experiment_page import experiment_pages
from efflab.site.experiments import Skipped, experiment_names, load_experiment
from efflab.site.html import Page
from efflab.site.links import gather, related_line, script_pages
from efflab.site.nightly_page import load_nightly, nightly_page
from efflab.site.optimize_page import load_studies, study_cards, study_page
from efflab.site.overview_pages import home_page, machines, machines_page
from efflab.site.paper_page import copy_reports, load_papers, paper_page
from efflab.site.tournament_page import board_pages, load_boards

TITLE = "efflab playground"
MARKER = ".efflab-site"  # written into every built site: this folder may be replaced


def _is_site(d: Path) -> bool:
    if (d / MARKER).is_file():
        return True
    try:  # a site built before the marker existed: its home page and script
        head = (d / "index.html").read_bytes()[-4096:]
    except OSError:
        return False
    return b"by <code>efflab site build</code>" in head and (d / "assets" / "site.js").is_file()


def check_out(repo: Path, out: Path) -> None:
    """BadInput (exit 2) unless `out` may be replaced by a new site."""
    repo, out = repo.resolve(), out.resolve()
    results = layout.results_dir(repo).resolve()
    default = layout.site_dir(repo).resolve()
    why = None
    if out == repo or out in repo.parents:
        why = "the project folder (or a folder holding it)"
    elif out == results or out in results.parents:
        why = "results/ (or a folder holding it)"
    elif results in out.parents and out != default:
        why = f"a folder inside results/ (only {default} is the site's there)"
    elif out.exists() and not out.is_dir():
        why = "a file"
    elif out.is_dir() and any(out.iterdir()) and not _is_site(out):
        why = f"a non-empty folder that is not an efflab site (no {MARKER} in it)"
    if why:
        raise BadInput(out, "$", "for --out a new or empty folder, or an earlier efflab site",
                       why, "the site replaces the whole folder")  # fmt: skip


@dataclass
class Built:
    out: Path
    seconds: float = 0.0
    pages: dict[str, int] = field(default_factory=dict)  # page path -> bytes
    assets: dict[str, int] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "out": str(self.out),
            "seconds": round(self.seconds, 2),
            "pages": len(self.pages),
            "largest_page": max(self.pages.items(), key=lambda kv: kv[1], default=(None, 0)),
            "total_page_bytes": sum(self.pages.values()),
            "assets": self.assets,
            "counts": self.counts,
            "skipped": [{"file": s.file, "reason": s.reason} for s in self.skipped],
        }


def build(
    repo: Path,
    out: Path | None = None,
    title: str = TITLE,
    on_step: Callable[[str], None] | None = None,
) -> Built:
    t0 = time.monotonic()
    out = (out or layout.site_dir(repo)).resolve()
    check_out(repo, out)
    step = on_step or (lambda s: None)
    skipped: list[Skipped] = []
    step("experiments")
    exps = [e for n in experiment_names(repo) if (e := load_experiment(repo, n, skipped))]
    step("papers")
    papers = load_papers(repo, skipped)
    step("tournaments")
    boards = load_boards(repo, skipped)
    step("nightly")
    nightly = load_nightly(repo, skipped)
    step("optimize")
    studies = load_studies(repo, skipped)
    seen: set[str] = set()  # a file read by two pages is named once
    skipped[:] = [s for s in skipped if not (s.file in seen or seen.add(s.file))]
    ms = machines(exps)
    me = next((s.host for e in exps for s in e.sources if not s.imported), host_info()["hostname"])
    step("pages")
    pages: list[Page] = []
    for e in exps:
        pages += experiment_pages(e)
    pages += [paper_page(p) for p in papers]
    for b in boards:
        pages += board_pages(b)
    pages += [study_page(s) for s in studies]
    links = gather(
        repo, [e.name for e in exps], [p.paper for p in papers], [s.experiment for s in studies]
    )
    for p in pages:  # experiment <-> script <-> paper <-> search
        line = related_line(p, links)
        if line:
            p.body = line + p.body
    pages += script_pages(links)
    if nightly:
        pages.append(nightly_page(nightly, me))
    pages.append(machines_page(ms))
    pages.insert(0, home_page(exps, papers, boards, nightly, ms, skipped, study_cards(studies)))
    all_hosts = sorted({h for p in pages for h in p.hosts})
    built = datetime.now(UTC).isoformat(timespec="seconds")
    res = Built(out, skipped=skipped)
    res.counts = {
        "experiments": len(exps),
        "papers": len(papers),
        "tournaments": len(boards),
        "optimize_studies": len(studies),
        "nights": len(nightly.history) if nightly else 0,
        "machines": len(ms),
        "records_read": sum(s.records for e in exps for s in e.sources),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        step("writing")
        res.assets = write_assets(tmp)
        for p in pages:
            f = tmp / p.path
            f.parent.mkdir(parents=True, exist_ok=True)
            text = p.render(title, all_hosts, built).encode()
            f.write_bytes(text)
            res.pages[p.path] = len(text)
        for p in papers:  # an imported report's page is rendered here, never copied
            for page in copy_reports(p, tmp, skipped):
                text = page.render(title, all_hosts, built).encode()
                (tmp / page.path).write_bytes(text)
                res.pages[page.path] = len(text)
        if nightly:
            for n in nightly.summaries:
                src = layout.nightly_dir(repo) / str(n)
                shutil.copytree(src, tmp / "nightly" / str(n), dirs_exist_ok=True)
        (tmp / MARKER).write_text("built by efflab site build; replaced whole by the next build\n")
        tmp.chmod(0o755)
        _swap(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res.seconds = time.monotonic() - t0
    return res


def _swap(tmp: Path, out: Path) -> None:
    """Replace `out` by `tmp` with two renames (the old site is removed afterwards)."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{time.monotonic_ns()}"
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
