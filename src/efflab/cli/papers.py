"""`efflab papers list|show` and `efflab reproduce`.

Exit codes follow the project convention: 0 every counted claim reproduced, 1 any counted
claim not reproduced, inconclusive or an error (sanity checks never decide), 2 bad
input — found before anything runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from efflab.cli.common import Progress, find_repo, new_run_id, print_json
from efflab.cli.options import add_run_options, run_options
from efflab.core.errors import BadInput


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("papers", help="paper-reproduction specs: list, show, coverage")
    psub = p.add_subparsers(dest="papers_command", metavar="ACTION")
    ls = psub.add_parser("list", help="the papers under workflows/papers/")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cmd_list)
    sh = psub.add_parser("show", help="a paper's experiments and claims, as conditions")
    sh.add_argument("paper")
    sh.add_argument("--json", action="store_true", help="machine-readable output")
    sh.set_defaults(func=cmd_show)
    cv = psub.add_parser(
        "coverage",
        help="write workflows/papers/COVERAGE.md: every seed paper in one category",
        description="Render the literature coverage map from workflows/papers/coverage/"
        "papers.yaml over the seed file's papers. Exit 0: written (or current with "
        "--check); 1: --check and COVERAGE.md is stale; 2: bad input.",
    )
    cv.add_argument("--check", action="store_true", help="only check COVERAGE.md is current")
    cv.add_argument("--seed", default=None, help="seed file (default: the one the data names)")
    cv.add_argument("--json", action="store_true", help="machine-readable output")
    cv.set_defaults(func=cmd_coverage)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    r = sub.add_parser(
        "reproduce",
        help="run the experiments papers need, check their claims, write reports",
        description="Validate the papers' specs, run exactly the experiments they need "
        "(each once, cached invocations reused), evaluate every claim and write "
        "results/reproductions/<paper>/<n>/report.{md,html} with plots. "
        "Exit 0: every counted claim reproduced (whole 95%% interval); 1: some not reproduced, inconclusive or errored; 2: bad input.",
    )
    r.add_argument(
        "papers", nargs="*", metavar="PAPER", help="paper ids (see `efflab papers list`)"
    )
    r.add_argument("--all", action="store_true", help="every paper under workflows/papers/")
    add_run_options(r, profile=False)
    r.add_argument("--json", action="store_true", help="machine-readable verdicts")
    r.set_defaults(func=cmd_reproduce)


def _paper_brief(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "title": p.title,
        "venue": p.venue,
        "year": p.year,
        "link": p.link,
        "experiments": [n.name for n in p.experiments],
        "claims": len(p.claims),
    }


def cmd_list(args: argparse.Namespace) -> int:
    from efflab.papers.spec import load_paper, paper_ids

    repo = find_repo(args.repo)
    papers = []
    for pid in paper_ids(repo):
        try:
            papers.append(load_paper(repo, pid))
        except BadInput as exc:  # one broken spec is named and skipped; `show` exits 2
            print(f"efflab: skipped: {exc}", file=sys.stderr)
    if args.json:
        print_json([_paper_brief(p) for p in papers])
        return 0
    if not papers:
        print("no papers under workflows/papers/")
    for p in papers:
        exps = ", ".join(n.name for n in p.experiments)
        print(f"{p.id:<28} {len(p.claims)} claim(s)  [{exps}]  {p.title} ({p.venue} {p.year})")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from efflab.papers.claims import render
    from efflab.papers.spec import load_paper

    repo = find_repo(args.repo)
    p = load_paper(repo, args.paper)
    claims = [
        {
            "id": c.id,
            "statement": c.statement,
            "paper": None if c.paper is None else c.paper.text,
            "paper_value": None if c.paper is None else c.paper.value,
            "condition": render(c.condition),
            "kind": c.kind,
            "control": None if c.control is None else c.control.render(),
            "controlled": c.control is not None and not c.control.none,
            "requires": None if c.requires is None else c.requires.render(),
            "note": c.note,
        }
        for c in p.claims
    ]
    needs = [
        {"name": n.name, "inputs": n.inputs, "quick_inputs": n.quick_inputs} for n in p.experiments
    ]
    if args.json:
        print_json(
            {
                **_paper_brief(p),
                "authors": p.authors,
                "summary": p.summary,
                "experiments": needs,
                "claims": claims,
                "file": str(p.file),
            }
        )
        return 0
    print(f"{p.title}\n{', '.join(p.authors)} · {p.venue} {p.year} · {p.link}\n")
    if p.summary:
        print(p.summary.strip() + "\n")
    for n in needs:
        extra = "".join(f" {k}={v}" for k, v in n["inputs"].items())
        quick = "".join(f" {k}={v}" for k, v in n["quick_inputs"].items())
        print(f"experiment {n['name']}{extra}{' (quick:' + quick + ')' if quick else ''}")
    for c in claims:
        print(f"\n[{c['id']}] {c['statement'].strip()}")
        if c["paper"]:
            print(f"  paper: {c['paper']}")
        print(f"  check: {c['condition']}")
        if c["kind"] != "claim":
            print(f"  kind:  {c['kind']} (not counted)")
        if c["control"] is None:
            print("  control: none declared (uncontrolled)")
        else:
            print(f"  control: {c['control']}{'' if c['controlled'] else ' (uncontrolled)'}")
        if c["requires"]:
            print(f"  requires: {c['requires']} (else not applicable)")
        if c["note"]:
            print(f"  note:  {c['note'].strip()}")
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    from pathlib import Path

    from efflab.papers import coverage

    repo = find_repo(args.repo)
    cov = coverage.load(repo, Path(args.seed) if args.seed else None)
    current = coverage.is_current(repo, cov)
    if not args.check and not current:
        coverage.write(repo, cov)
    out = coverage.output_file(repo)
    if args.json:
        entries = [
            {"title": e.title, "category": e.category, "detail": e.detail, "why": e.why}
            for e in cov.entries
        ]
        print_json(
            {"file": str(out), "current": current, "counts": cov.counts(), "papers": entries}
        )
    else:
        counts = ", ".join(f"{k} {v}" for k, v in cov.counts().items())
        state = "current" if current else ("stale" if args.check else "written")
        print(f"{out}: {state} ({len(cov.entries)} papers: {counts})")
    if args.check and not current:
        print(f"efflab: {out} is not current; run `efflab papers coverage`", file=sys.stderr)
        return 1
    return 0


def _control_text(r: Any) -> str:
    if r.control is not None:
        text = {"pass": "holds", "fail": "fails"}.get(r.control.outcome.status, "undecided")
        return f"control {text}{'' if r.control.as_expected else ' (!)'}"
    return "uncontrolled" if r.claim.control is not None else "none declared"


def verdict_rows(results: list[Any]) -> list[tuple[str, ...]]:
    return [
        (
            res.paper.id,
            r.claim.id,
            r.claim.paper.text if r.claim.paper else "—",
            r.outcome.ours,
            r.verdict + (" (sanity)" if r.kind == "sanity" else ""),
            _control_text(r),
        )
        for res in results
        for r in res.results
    ]


def print_verdicts(results: list[Any]) -> None:
    head = ("paper", "claim", "paper's value", "ours", "verdict", "control")
    rows = [head, *verdict_rows(results)]
    cap = (22, 34, 30, 40, 24, 16)
    clip = [
        tuple(c if len(c) <= w else c[: w - 1] + "…" for c, w in zip(r, cap, strict=True))
        for r in rows
    ]
    widths = [max(len(r[i]) for r in clip) for i in range(len(head))]
    for i, r in enumerate(clip):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def headline_all(results: list[Any]) -> str:
    """Counted claims over all papers; a claim cited by several papers counts once."""
    seen: dict[str, str] = {}
    n_sanity, n_na, remeasured = 0, 0, 0
    for res in results:
        for c in res.results:
            if not c.counted:
                n_sanity += c.kind == "sanity"
                n_na += c.kind == "claim"
                continue
            seen.setdefault(c.claim.cites or f"{res.paper.id}/{c.claim.id}", c.verdict)
        remeasured += sum(run.remeasured for run in res.runs.values())
    good = sum(v == "reproduced" for v in seen.values())
    inc = sum(v == "inconclusive" for v in seen.values())
    text = f"{good} of {len(seen)} claims reproduced"
    text += f" ({inc} inconclusive)" if inc else ""
    text += f"; {n_na} not applicable on this machine" if n_na else ""
    text += f"; {n_sanity} sanity checks not counted" if n_sanity else ""
    text += f"; {remeasured} contended timing runs re-measured" if remeasured else ""
    return text


def cmd_reproduce(args: argparse.Namespace) -> int:
    from efflab.papers.report import summary
    from efflab.papers.reproduce import reproduce

    repo = find_repo(args.repo)
    opts = run_options(args, repo)
    quiet = opts.quiet
    bars: list[Progress] = []

    def on_experiment(run: Any, i: int, total: int) -> Any:
        while bars:
            bars.pop().__exit__(None, None, None)
        bar = Progress(f"[{i + 1}/{total}] {run.name} (for {', '.join(run.papers)})", quiet)
        bars.append(bar.__enter__())
        return bar.update

    t0 = time.monotonic()
    try:
        results = reproduce(
            repo,
            args.papers,
            all_papers=args.all,
            opts=opts,
            run_id=new_run_id(),
            on_experiment=on_experiment,
        )
    finally:
        while bars:
            bars.pop().__exit__(None, None, None)
    wall = time.monotonic() - t0
    ok = all(r.ok for r in results)
    if args.json:
        print_json(
            {"ok": ok, "wall_s": round(wall, 1), "papers": [summary(r, repo) for r in results]}
        )
    else:
        print()
        print_verdicts(results)
        print(f"\n{headline_all(results)} in {wall:.0f} s; reports:")
        for r in results:
            print(f"  {r.report_dir}/report.md")
    if not ok:
        bad = [
            f"{r.paper.id}/{c.claim.id}"
            for r in results
            for c in r.counted
            if c.verdict != "reproduced"
        ]
        print(f"efflab: not reproduced, inconclusive or error: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0
