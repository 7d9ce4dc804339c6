"""Cross-links between the pages about one piece of work: an experiment, the script it
measures, the papers whose claims read it and the searches over it. Each of those
pages gets a "related" line; each measured script gets a page of its own (what it
takes, what it reports, who uses it).

Why apart from the page modules: the links need every page kind at once (and the
specs behind them); the page modules each render one kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from efflab.core.errors import BadInput
from efflab.papers.spec import load_paper, paper_ids
from efflab.plan.planner import load_experiment
from efflab.plan.registry import Registry, Script
from efflab.site.html import Page, esc, fmt, slug, table


@dataclass
class Links:
    script: dict[str, str] = field(default_factory=dict)  # experiment -> script alias
    papers: dict[str, list[str]] = field(default_factory=dict)  # experiment -> paper ids
    studies: set[str] = field(default_factory=set)  # experiments with a search
    scripts: dict[str, Script] = field(default_factory=dict)  # alias -> script


def gather(repo: Path, experiments: list[str], paper_pages: list[str], studies: list[str]) -> Links:
    """What links to what, from the specs; a broken spec links nothing (its own
    command reports it)."""
    out = Links(studies=set(studies))
    try:
        reg = Registry.for_repo(repo, lenient=True)
    except BadInput:  # a broken collections file: no links, the pages still build
        return out
    for name in experiments:
        try:
            s = reg.find(load_experiment(repo, name).script)
        except BadInput:
            continue  # results without a spec (imported, or the spec was removed)
        out.script[name] = s.alias
        out.scripts[s.alias] = s
    shown = set(paper_pages)
    for pid in paper_ids(repo):
        if pid not in shown:
            continue
        try:
            p = load_paper(repo, pid)
        except BadInput:
            continue
        for need in p.experiments:
            out.papers.setdefault(need.name, []).append(pid)
    return out


def _a(href: str, text: str) -> str:
    return f"<a href='{esc(href)}'>{esc(text)}</a>"


def related_line(page: Page, links: Links) -> str:
    """The "related" line of an experiment, paper or study page ("" for others)."""
    kind, _, name = page.path.removesuffix(".html").partition("/")
    parts: list[str] = []
    exps: list[str] = []
    if kind in ("experiments", "optimize") and "/" not in name:
        exps = [e for e in links.script if slug(e) == name]
    elif kind == "papers":
        exps = [e for e, ps in links.papers.items() if any(slug(p) == name for p in ps)]
    for e in exps:
        if kind != "experiments":
            parts.append("experiment " + _a(f"../experiments/{slug(e)}.html", e))
        if e in links.script:
            alias = links.script[e]
            parts.append("script " + _a(f"../scripts/{slug(alias)}.html", alias))
        for pid in links.papers.get(e, []):
            if kind != "papers":
                parts.append("paper " + _a(f"../papers/{slug(pid)}.html", pid))
        if e in links.studies and kind != "optimize":
            parts.append("search " + _a(f"../optimize/{slug(e)}.html", f"optimize {e}"))
    if not parts:
        return ""
    return f"<p class='related'>Related: {' · '.join(dict.fromkeys(parts))}</p>"


def script_pages(links: Links) -> list[Page]:
    """One page per measured script: inputs, metrics, dependencies, the experiments."""
    pages = []
    for alias, s in sorted(links.scripts.items()):
        users = sorted(e for e, a in links.script.items() if a == alias)
        inputs = [
            [esc(n), esc(spec.get("type", "")), esc(fmt(spec.get("default"))), esc(spec.get("description", ""))]
            for n, spec in s.inputs.items()
        ]  # fmt: skip
        metrics = [
            [esc(n), esc(m.get("unit", "")), esc(m.get("better", ""))] for n, m in s.metrics.items()
        ]
        deps = ", ".join(f"{esc(d.name)} ({esc(d.tags)})" for d in s.deps) or "none"
        used = " · ".join(_a(f"../experiments/{slug(e)}.html", e) for e in users)
        body = (
            f"<p>{esc(s.description)}</p><p>tags {esc(', '.join(sorted(s.tags)))} · env "
            f"{esc(s.env or 'host')} · dependencies {deps} · used by {used}</p>"
            f"<p>Try it: <code class='cmd'>efflab script show {esc(alias)}</code> · "
            f"<code class='cmd'>efflab script run {esc(alias)} --runtime host</code></p>"
            f"<h2>Inputs</h2>{table(['input', 'type', 'default', 'description'], inputs)}"
            f"<h2>Metrics</h2>{table(['metric', 'unit', 'better'], metrics)}"
        )
        pages.append(Page(f"scripts/{slug(alias)}.html", f"script {alias}", body))
    return pages
