"""`efflab compare BASE HEAD [EXP...]`: does a change make anything slower?

The question a pull request asks (asv `continuous`, CodSpeed's and Bencher's PR
comments): the chosen experiments (default: the nightly suite's, at the suite's
size) are measured at two revisions, each in a throw-away worktree sharing one
artifacts cache (`.efflab/compare/artifacts`), by this efflab. Both arms are measured
anew (one salt per arm), repetition by repetition, the arms' order alternating
(ABBA: a slow drift of the machine's load hits both alike). Each (point, metric) is
judged with the nightly's statistics - one-sided Mann-Whitney U of head against base,
Holm-corrected over the comparison, plus the metric's `min_effect`; noiseless
metrics (instruction counts, sizes) exactly - and gets a verdict: slower, faster,
unchanged or inconclusive (too few repetitions to reach alpha, or nothing to compare),
with the relative change of the medians and its bootstrap interval. The records of
both arms are kept under `results/compare/<id>/{base,head}/<exp>/` and linked from
the report. Exit 1 when anything got slower beyond the policy (or a point failed).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import git
import numpy as np

from efflab.core import machine
from efflab.core.errors import BadInput, RunFailed
from efflab.core.runtime_identity import RuntimeIdentity
from efflab.core.specio import atomic_write_json
from efflab.nightly import regression as regress
from efflab.nightly import suite as suite_mod
from efflab.nightly.findings import finite
from efflab.nightly.worktrees import Worktrees
from efflab.plan.planner import Plan, Planner, load_experiment
from efflab.workflow.options import RunOptions
from efflab.workflow.pipeline import run_experiment

SLOWER, FASTER, UNCHANGED, INCONCLUSIVE = "slower", "faster", "unchanged", "inconclusive"
VERDICT = {
    regress.REGRESSION: SLOWER,
    regress.IMPROVEMENT: FASTER,
    regress.UNCHANGED: UNCHANGED,
    regress.UNDERPOWERED: INCONCLUSIVE,
    regress.NO_BASELINE: INCONCLUSIVE,
}
ORDER = (SLOWER, FASTER, INCONCLUSIVE, UNCHANGED)
BOOTSTRAP = 2000
MAX_REPETITIONS = 100


@dataclass
class Side:
    rev: str  # as given
    sha: str
    subject: str


@dataclass
class Request:
    repo: Path
    suite: suite_mod.Suite
    entries: list[suite_mod.Entry]
    base: Side
    head: Side


@dataclass
class Row:
    experiment: str
    point: dict[str, Any]
    metric: str
    unit: str
    better: str
    verdict: str
    base_median: float
    head_median: float
    change: float  # relative change of the median, head vs base
    low: float  # bootstrap interval of `change` (1 - alpha)
    high: float
    p: float  # one-sided, corrected, in the direction of the change
    method: str
    noiseless: bool
    base_values: list[float]
    head_values: list[float]
    base_records: list[str]
    head_records: list[str]
    note: str = ""


@dataclass
class Report:
    base: Side
    head: Side
    experiments: list[str]
    alpha: float
    correction: str
    records: str  # folder of both arms' records, relative to the repository
    rows: list[Row] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    repetitions: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0

    def count(self, verdict: str) -> int:
        return sum(r.verdict == verdict for r in self.rows)

    @property
    def exit_code(self) -> int:
        return 1 if self.count(SLOWER) or self.failures else 0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["summary"] = {v: self.count(v) for v in ORDER}
        out["exit_code"] = self.exit_code
        return finite(out)


def _side(r: git.Repo, rev: str, option: str) -> Side:
    try:
        c = r.commit(rev)
    except (git.BadName, ValueError, git.GitCommandError):
        raise BadInput(option, "$", f"a commit of {r.working_dir}", rev) from None
    return Side(rev, c.hexsha, c.summary)


def prepare(
    repo: Path,
    suite: suite_mod.Suite,
    base: str,
    head: str,
    experiments: list[str],
    repetitions: int | None = None,
    quick: bool = False,
    overrides: dict[str, Any] | None = None,
) -> Request:
    """Check every argument before anything runs (exit 2 early). An experiment of the
    suite is measured at the suite's size; any other at its own (`quick`: its quick
    block). `overrides` (--set) apply to every chosen experiment."""
    try:
        r = git.Repo(repo)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise BadInput(repo, "$", "a git repository (compare checks out two revisions)", "none") from None  # fmt: skip
    b, h = _side(r, base, "BASE"), _side(r, head, "HEAD")
    if repetitions is not None and not 2 <= repetitions <= MAX_REPETITIONS:
        raise BadInput("--repetitions", "$", f"a whole number in 2..{MAX_REPETITIONS}", repetitions)  # fmt: skip
    by_name = {e.name: e for e in suite.entries}
    entries = []
    for i, name in enumerate(experiments or list(by_name)):
        e = by_name.get(name) or suite_mod.Entry(index=-1, name=name, quick=quick)
        if not (repo / "workflows" / "experiments" / f"{name}.yaml").is_file():
            known = sorted(f.stem for f in (repo / "workflows" / "experiments").glob("*.yaml"))
            raise BadInput(f"EXP[{i}]", "$", f"an experiment ({', '.join(known)})", name)
        changes: dict[str, Any] = {}
        if repetitions is not None:
            changes["repetitions"] = repetitions
        if overrides:
            changes["overrides"] = {**e.overrides, **overrides}
        entries.append(suite_mod.Entry(**{**e.__dict__, **changes}))
    for e in entries:  # plans in the current tree: bad overrides fail here, not later
        _plan(repo, e, "")
    return Request(repo, suite, entries, b, h)


def _plan(
    root: Path, entry: suite_mod.Entry, salt: str, runtime: RuntimeIdentity | None = None
) -> Plan:
    exp = load_experiment(root, entry.name, entry.quick, entry.overrides)
    if entry.repetitions is not None:
        exp.repetitions = entry.repetitions
    return Planner(root, salt=salt, runtime=runtime).plan(exp)


def interval(base: list[float], head: list[float], level: float, rng: np.random.Generator) -> tuple[float, float]:  # fmt: skip
    """Percentile-bootstrap interval of the relative change of the medians."""
    b, h = np.asarray(base, float), np.asarray(head, float)
    if len(b) == 0 or len(h) == 0:
        return math.nan, math.nan
    bm = np.median(rng.choice(b, (BOOTSTRAP, len(b))), axis=1)
    hm = np.median(rng.choice(h, (BOOTSTRAP, len(h))), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ch = np.where(bm != 0, (hm - bm) / np.abs(bm), np.nan)
    ch = ch[np.isfinite(ch)]
    if len(ch) == 0:
        return math.nan, math.nan
    q = (1 - level) / 2
    return float(np.quantile(ch, q)), float(np.quantile(ch, 1 - q))


class _Arm:
    def __init__(self, name: str, side: Side, tree: Path, salt: str):
        self.name, self.side, self.tree, self.salt = name, side, tree, salt
        self.plans: dict[str, Plan] = {}
        # (experiment, point as JSON, metric) -> values; (experiment, point) -> record paths
        self.values: dict[tuple[str, str, str], list[float]] = {}
        self.records: dict[tuple[str, str], list[str]] = {}


def _pkey(params: dict[str, Any]) -> str:
    import json

    return json.dumps(params, sort_keys=True, default=str)


def run(
    req: Request,
    opts: RunOptions,
    run_id: str,
    on_step: Callable[[str], None] | None = None,
) -> Report:
    """Measure both arms, interleaved, and judge every (point, metric)."""
    t0 = time.perf_counter()
    say = on_step or (lambda _m: None)
    out_dir = Path("results") / "compare" / run_id
    rep = Report(req.base, req.head, [e.name for e in req.entries],
                 req.suite.policy_default.alpha, req.suite.correction, str(out_dir))  # fmt: skip
    rep.machine = machine.state(sample_s=0.5)
    trees = Worktrees(req.repo, "compare")
    try:
        arms = [
            _Arm("base", req.base, trees.add(req.base.sha, "b"), f"compare-{run_id}-base"),
            _Arm("head", req.head, trees.add(req.head.sha, "h"), f"compare-{run_id}-head"),
        ]
        entries = []
        identity = opts.runtime.identity()
        for e in req.entries:
            try:
                for arm in arms:
                    arm.plans[e.name] = _plan(arm.tree, e, arm.salt, identity)
            except BadInput as exc:
                rep.notes.append(f"{e.name}: not compared, cannot plan at {arm.name} {arm.side.sha[:10]}: {exc}")  # fmt: skip
                continue
            entries.append(e)
            reps = max(p.experiment.repetitions for p in (a.plans[e.name] for a in arms))
            rep.repetitions[e.name] = reps
        total = sum(rep.repetitions.values()) * 2
        done = 0
        for r in range(max(rep.repetitions.values(), default=0)):
            order = arms if r % 2 == 0 else arms[::-1]  # ABBA
            for e in entries:
                if r >= rep.repetitions[e.name]:
                    continue
                for arm in order:
                    _measure(req.repo, arm, e, r, opts, run_id, rep)
                    done += 1
                    say(f"compare: {e.name} repetition {r + 1} {arm.name} ({done}/{total})")
        _judge(req, entries, arms, rep)
        return rep
    finally:
        trees.close()
        rep.wall_s = time.perf_counter() - t0


def _measure(repo: Path, arm: _Arm, e: suite_mod.Entry, r: int, opts: RunOptions, run_id: str, rep: Report) -> None:  # fmt: skip
    p = arm.plans[e.name]
    part = replace(p, points=[x for x in p.points if x.repetition == r])
    if not part.points:
        return
    try:
        res = run_experiment(
            arm.tree,
            e.name,
            opts.but(quick=e.quick),
            overrides=e.overrides,
            run_id=f"{run_id}-{arm.name}",
            salt=arm.salt,
            prepared=part,
        )
    except RunFailed as exc:
        rep.failures.append(f"{e.name} {arm.name} repetition {r}: {exc}")
        return
    rep.failures += [f"{arm.name}: {f}" for f in res.failures]
    keys = {x.key for x in part.points}
    folder = repo / rep.records / arm.name / e.name
    for rec in res.collected.ok if res.collected else []:
        if rec.key not in keys:
            continue
        pk = _pkey(rec.point)
        path = folder / rec.file_name
        atomic_write_json(path, rec.to_json())  # the worktree goes; the record stays, linked
        arm.records.setdefault((e.name, pk), []).append(str(path.relative_to(repo)))
        for m, v in rec.metric_values().items():
            arm.values.setdefault((e.name, pk, m), []).append(float(v))


def _judge(req: Request, entries: list[suite_mod.Entry], arms: list[_Arm], rep: Report) -> None:
    base, head = arms
    shifts, policies, rows = [], [], []
    rng = np.random.default_rng(0)
    for e in entries:
        hp = head.plans[e.name]
        declared = {**base.plans[e.name].script.metrics, **hp.script.metrics}
        points = {_pkey(pt.params): pt.params for pt in hp.points}
        for pk, params in points.items():
            for m in suite_mod.compared_metrics(e, hp):
                meta = declared.get(m) or {}
                pol = req.suite.policy(e, m, declared)
                bv = base.values.get((e.name, pk, m), [])
                hv = head.values.get((e.name, pk, m), [])
                s = regress.shift(bv, hv, meta.get("better", "lower"), pol.noiseless)
                shifts.append(s)
                policies.append(pol)
                rows.append((e, params, pk, m, meta, pol, bv, hv))
    decisions = regress.decide(shifts, policies, rep.correction)
    for (e, params, pk, m, meta, pol, bv, hv), d in zip(rows, decisions, strict=True):
        s = d.shift
        if s.method in regress.EXACT_METHODS:
            lo = hi = s.change
        else:
            lo, hi = interval(bv, hv, 1 - pol.alpha, rng)
        p = d.p_worse_adj if s.worse_by > 0 else d.p_better_adj
        note = "; ".join(d.notes)
        if not bv or not hv:
            note = note or f"no values at {'base' if not bv else 'head'}"
        rep.rows.append(
            Row(
                experiment=e.name,
                point=params,
                metric=m,
                unit=meta.get("unit", ""),
                better=meta.get("better", "lower"),
                verdict=VERDICT[d.verdict],
                base_median=s.baseline_median,
                head_median=s.current_median,
                change=s.change,
                low=lo,
                high=hi,
                p=p,
                method=s.method,
                noiseless=pol.noiseless,
                base_values=bv,
                head_values=hv,
                base_records=base.records.get((e.name, pk), []),
                head_records=head.records.get((e.name, pk), []),
                note=note,
            )  # fmt: skip
        )
    rep.rows.sort(key=lambda r: (ORDER.index(r.verdict), r.experiment, _pkey(r.point), r.metric))


# -- rendering ---------------------------------------------------------------------


def _num(v: float) -> str:
    return "n/a" if v is None or v != v else f"{v:.4g}"


def _pct(v: float) -> str:
    if v is None or v != v:
        return "n/a"
    return f"{v:+.1%}" if math.isfinite(v) else ("+inf" if v > 0 else "-inf")


def _point(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items()) or "-"


def summary_line(rep: Report) -> str:
    counts = ", ".join(f"{rep.count(v)} {v}" for v in ORDER)
    fail = f", {len(rep.failures)} failed" if rep.failures else ""
    return (
        f"efflab compare {rep.base.sha[:10]} -> {rep.head.sha[:10]}: {counts}{fail} "
        f"({len(rep.rows)} point/metric pairs of {', '.join(rep.experiments)})"
    )


def chat_lines(rep: Report) -> list[str]:
    """What a webhook message lists: every row that is not unchanged, then failures."""
    out = [
        f"{r.verdict}: {r.experiment} {_point(r.point)} {r.metric} {_pct(r.change)} "
        f"[{_pct(r.low)}, {_pct(r.high)}]"
        for r in rep.rows
        if r.verdict != UNCHANGED
    ]
    return out + [f"failed: {f}" for f in rep.failures]


def markdown(rep: Report, link_base: str = "") -> str:
    """The report as a pull-request comment. `link_base` prefixes record links (a URL
    where results/ is published; default: paths relative to the repository)."""
    ms = rep.machine or {}
    load = (ms.get("load") or {}).get("load_1m", "unknown")
    noisy = [n for n in machine.noisy_summary(ms) if not n.startswith("load")]
    lines = [
        f"### efflab compare: `{rep.base.sha[:10]}` (base) -> `{rep.head.sha[:10]}` (head)",
        "",
        f"**{rep.count(SLOWER)} slower**, {rep.count(FASTER)} faster, "
        f"{rep.count(INCONCLUSIVE)} inconclusive, {rep.count(UNCHANGED)} unchanged"
        + (f", **{len(rep.failures)} failed**" if rep.failures else "")
        + f" - {', '.join(f'{k} x{v}' for k, v in rep.repetitions.items())} repetitions per "
        f"arm, interleaved; one-sided Mann-Whitney U, {rep.correction}, alpha {rep.alpha:g}, "
        f"plus each metric's min_effect; noiseless metrics exactly.",
        "",
        f"base: {rep.base.subject}  ",
        f"head: {rep.head.subject}  ",
        f"machine: {ms.get('cpu_model', 'unknown')}, load {load} at start"
        + (f" ({', '.join(noisy)})" if noisy else "")
        + f"; {rep.wall_s:.0f} s",
        "",
    ]
    header = [
        "| verdict | experiment | point | metric | base | head | change [interval] | p | records |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def row(r: Row) -> str:
        links = " ".join(
            f"[{arm}]({link_base}{paths[0]})" for arm, paths in (("base", r.base_records), ("head", r.head_records)) if paths
        )  # fmt: skip
        v = f"**{r.verdict}**" if r.verdict in (SLOWER, FASTER) else r.verdict
        exact = " (exact)" if r.method in regress.EXACT_METHODS else ""
        unit = "" if r.unit in ("", "1") else f" {r.unit}"
        return (
            f"| {v} | {r.experiment} | {_point(r.point)} | {r.metric} | "
            f"{_num(r.base_median)}{unit} | {_num(r.head_median)}{unit} | "
            f"{_pct(r.change)} [{_pct(r.low)}, {_pct(r.high)}]{exact} | {_num(r.p)} | {links} |"
        )

    flagged = [r for r in rep.rows if r.verdict != UNCHANGED]
    rest = [r for r in rep.rows if r.verdict == UNCHANGED]
    if flagged:
        lines += header + [row(r) for r in flagged] + [""]
    if rest:
        lines += [f"<details><summary>{len(rest)} unchanged</summary>", ""]
        lines += header + [row(r) for r in rest] + ["", "</details>", ""]
    for f in rep.failures:
        lines.append(f"- failed: {f}")
    for n in rep.notes:
        lines.append(f"- note: {n}")
    lines.append(f"\nrecords: `{rep.records}/`")
    return "\n".join(lines).rstrip() + "\n"
