"""Paper reproductions: spec loading, plan-time checks, and `reproduce` orchestration.

A paper spec (workflows/papers/<id>.yaml) names the experiments a paper needs and its
claims. `reproduce` validates every requested spec and plans every experiment first —
so a typo in any claim fails (exit 2) before a single job runs — then runs each
distinct (experiment, overrides) once through `pipeline.run_experiment` (the normal
engine: cached invocations, run records, a table version), evaluates the claims on
the tables and writes one report per paper.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from . import claims
from .claims_eval import Outcome, evaluate
from .errors import BadInput, RunFailed
from .pipeline import ExperimentResult, run_experiment
from .plan import Plan, Planner, load_experiment
from .specio import canonical_json, load_yaml, validate

VERDICTS = {claims.PASS: "reproduced", claims.FAIL: "not reproduced", claims.ERROR: "error"}


@dataclass
class Need:
    """An experiment a paper needs, with the input overrides it runs under."""

    name: str
    inputs: dict[str, Any]
    quick_inputs: dict[str, Any]
    path: str

    def overrides(self, quick: bool) -> dict[str, Any]:
        return {**self.inputs, **(self.quick_inputs if quick else {})}


@dataclass
class PaperValue:
    text: str
    value: float | None = None
    unit: str | None = None


@dataclass
class Claim:
    id: str
    statement: str
    condition: claims.Condition
    paper: PaperValue | None
    note: str
    path: str

    @property
    def experiments(self) -> list[str]:
        return sorted({s.experiment for s in claims.selections(self.condition)})


@dataclass
class Paper:
    id: str
    title: str
    authors: list[str]
    venue: str
    year: int
    link: str
    summary: str
    experiments: list[Need]
    claims: list[Claim]
    file: Path


def papers_dir(repo: Path) -> Path:
    return repo / "workflows" / "papers"


def paper_ids(repo: Path) -> list[str]:
    return sorted(p.stem for p in papers_dir(repo).glob("*.yaml"))


def paper_file(repo: Path, pid: str) -> Path:
    if pid.endswith((".yaml", ".yml")) and Path(pid).is_file():
        return Path(pid)
    f = papers_dir(repo) / f"{pid}.yaml"
    if not f.is_file():
        known = ", ".join(paper_ids(repo)) or "none"
        raise BadInput(f, "$", f"a paper id (known: {known})", pid, "see `efflab papers list`")
    return f


def load_paper(repo: Path, pid: str) -> Paper:
    """Load + schema-validate one spec and parse its claims (no plan checks yet)."""
    f = paper_file(repo, pid)
    raw = load_yaml(f)
    validate(raw, "paper", f)
    if raw["id"] != f.stem:
        raise BadInput(f, "$.id", f"the file name '{f.stem}'", raw["id"])
    needs: list[Need] = []
    for i, e in enumerate(raw["experiments"]):
        if any(n.name == e["name"] for n in needs):
            raise BadInput(f, f"$.experiments[{i}].name", "each experiment once", e["name"])
        needs.append(
            Need(
                e["name"], e.get("inputs") or {}, e.get("quick_inputs") or {}, f"$.experiments[{i}]"
            )
        )
    names = [n.name for n in needs]
    out: list[Claim] = []
    for i, c in enumerate(raw["claims"]):
        path = f"$.claims[{i}]"
        if any(o.id == c["id"] for o in out):
            raise BadInput(f, f"{path}.id", "a claim id unique in the paper", c["id"])
        pv = c.get("paper")
        paper = PaperValue(pv["text"], pv.get("value"), pv.get("unit")) if pv else None
        cond = claims.parse(c["check"], f"{path}.check", names, f, paper.value if paper else None)
        out.append(Claim(c["id"], c["statement"], cond, paper, c.get("note", ""), path))
    return Paper(
        id=raw["id"],
        title=raw["title"],
        authors=list(raw["authors"]),
        venue=raw.get("venue", ""),
        year=raw["year"],
        link=raw["link"],
        summary=raw.get("summary", ""),
        experiments=needs,
        claims=out,
        file=f,
    )


def load_papers(repo: Path, ids: list[str], all_papers: bool = False) -> list[Paper]:
    """The requested papers (or all), each loaded once, in the order asked."""
    if all_papers:
        ids = paper_ids(repo)
        if not ids:
            raise BadInput(papers_dir(repo), "$", "at least one paper spec (*.yaml)", "none")
    if not ids:
        raise BadInput("reproduce", "$", "a paper id or --all", "nothing")
    return [load_paper(repo, pid) for pid in dict.fromkeys(ids)]


@dataclass
class ExperimentRun:
    """One distinct (experiment, overrides) to run, shared by every paper that needs it."""

    name: str
    overrides: dict[str, Any]
    plan: Plan
    papers: list[str] = field(default_factory=list)
    result: ExperimentResult | None = None
    error: str | None = None
    wall_s: float = 0.0
    runtime: str = "host"

    @property
    def table(self) -> pd.DataFrame | None:
        return None if self.result is None else self.result.table


def _catalog(plan: Plan) -> claims.Catalog:
    metrics = list(plan.experiment.metrics or plan.script.metrics)
    points: list[dict[str, Any]] = []
    for pt in plan.points:
        if pt.params not in points:
            points.append(pt.params)
    return claims.Catalog(plan.experiment.name, metrics, plan.param_names(), points)


def prepare(
    repo: Path, papers: list[Paper], quick: bool
) -> tuple[list[ExperimentRun], dict[str, dict[str, ExperimentRun]]]:
    """Plan each distinct experiment once and check every claim against its plan.

    Returns the runs and, per paper, experiment name -> its run. Raises BadInput
    (naming the paper file and JSON path) before anything runs.
    """
    exp_dir = repo / "workflows" / "experiments"
    known = sorted(p.stem for p in exp_dir.glob("*.yaml"))
    planner = Planner(repo)
    runs: dict[tuple[str, str], ExperimentRun] = {}
    per_paper: dict[str, dict[str, ExperimentRun]] = {}
    for paper in papers:
        mine: dict[str, ExperimentRun] = {}
        for need in paper.experiments:
            if need.name not in known:
                raise BadInput(
                    paper.file,
                    f"{need.path}.name",
                    f"an experiment (known: {', '.join(known)})",
                    need.name,
                )
            ov = need.overrides(quick)
            key = (need.name, canonical_json(ov))
            if key not in runs:
                exp = load_experiment(repo, need.name, quick, ov)
                script = planner.registry.find(exp.script, exp.file, "$.script")
                for k, v in ov.items():  # name the paper, not the experiment, for a bad override
                    field_ = "quick_inputs" if k in need.quick_inputs and quick else "inputs"
                    planner.check_inputs(
                        script, {k: v}, paper.file, {k: f"{need.path}.{field_}.{k}"}
                    )
                runs[key] = ExperimentRun(need.name, ov, planner.plan(exp))
            runs[key].papers.append(paper.id)
            mine[need.name] = runs[key]
        catalogs = {n: _catalog(r.plan) for n, r in mine.items()}
        for c in paper.claims:
            claims.check(c.condition, catalogs, paper.file)
        per_paper[paper.id] = mine
    return list(runs.values()), per_paper


@dataclass
class ClaimResult:
    claim: Claim
    outcome: Outcome

    @property
    def verdict(self) -> str:
        return VERDICTS[self.outcome.status]


@dataclass
class PaperResult:
    paper: Paper
    quick: bool
    runs: dict[str, ExperimentRun]
    results: list[ClaimResult]
    started: str
    report_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return all(r.outcome.status == claims.PASS for r in self.results)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {n: r.table for n, r in self.runs.items() if r.table is not None}


def judge(paper: Paper, runs: dict[str, ExperimentRun]) -> list[ClaimResult]:
    """Evaluate every claim; a claim on an experiment that failed to run is an error."""
    tables = {n: r.table for n, r in runs.items() if r.table is not None}
    out = []
    for c in paper.claims:
        broken = [f"{n}: {runs[n].error}" for n in c.experiments if runs[n].error]
        if broken:
            out.append(ClaimResult(c, Outcome(claims.ERROR, "—", "; ".join(broken))))
        else:
            out.append(ClaimResult(c, evaluate(c.condition, tables)))
    return out


def reproduce(
    repo: Path,
    ids: list[str],
    *,
    all_papers: bool = False,
    quick: bool = False,
    cores: int = 1,
    runtime: str = "host",
    run_id: str = "",
    on_experiment: Callable[[ExperimentRun, int, int], Callable[[int, int], None] | None]
    | None = None,
    write: bool = True,
) -> list[PaperResult]:
    """Validate all specs, run the needed experiments once each, judge, write reports."""
    from .report import write_report

    papers = load_papers(repo, ids, all_papers)
    runs, per_paper = prepare(repo, papers, quick)  # every bad input surfaces here
    if runtime == "docker":  # asked for Docker and none answers: exit 2 before running
        from .images import connect

        connect(timeout=10)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    for i, run in enumerate(runs):
        progress = on_experiment(run, i, len(runs)) if on_experiment else None
        t0 = time.monotonic()
        run.runtime = runtime
        try:
            run.result = run_experiment(
                repo,
                run.name,
                cores=cores,
                quick=quick,
                overrides=run.overrides,
                runtime=runtime,
                run_id=run_id,
                on_progress=progress,
                prepared=run.plan,
            )
            if run.result.table is None or run.result.table.empty:
                run.error = "no successful runs: " + "; ".join(run.result.failures[:3])
        except (RunFailed, BadInput) as exc:
            # specs were all checked above; what fails now is the environment (an
            # engine that went away, an image that does not build): the claims on
            # this experiment become errors, the other experiments still run
            run.error = str(exc)
        run.wall_s = time.monotonic() - t0
    out = []
    for paper in papers:
        mine = per_paper[paper.id]
        res = PaperResult(paper, quick, mine, judge(paper, mine), started)
        if write:
            res.report_dir = write_report(repo, res)
        out.append(res)
    return out
