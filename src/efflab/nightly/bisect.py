"""`efflab nightly bisect`: which commit moved a metric of one point.

The nightly says *that* a point got slower; a lab's next question is *which commit*.
Bisect measures the point at commits between a good and a bad one, each in a
throw-away git worktree (gitpython; removed afterwards), with the suite's workload
(quick, repetitions, overrides) and the same statistics as the nightly: the one-sided
Mann-Whitney U test of the commit's repetitions against good's (measured anew,
interleaved repetition by repetition with the commit's) plus the metric's
`min_effect` (noiseless metrics exactly), at alpha / (number of measurements a
bisection of this range can need) (Bonferroni). Bad is measured first: if it
does not differ significantly, nothing is searched (exit 1).

What is measured at a commit is that commit's scripts, experiments and envs, run by
the efflab that runs the bisect (the job side is this efflab's runner): a regression
inside efflab's own framework code is outside what bisect can see.

Reuse: every worktree's `artifacts/` is one shared cache
(`.efflab/bisect/artifacts`), and the measured steps are salted with one salt per
bisect session, so content keys do the work: a commit whose script files (and inputs,
deps, env) did not change plans the same keys as good or as a commit measured before,
runs nothing and takes that verdict; unsalted deps (datasets, trained models) are
reused across commits and sessions. Only good's interleaved re-measurements are salted
per tested commit (they must be fresh).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import git

from efflab.core.errors import BadInput, RunFailed
from efflab.core.runtime_identity import RuntimeIdentity
from efflab.nightly import regression as regress
from efflab.nightly import suite as suite_mod
from efflab.nightly.findings import finite
from efflab.nightly.worktrees import Worktrees
from efflab.plan.planner import Plan, Planner, load_experiment
from efflab.workflow.options import RunOptions
from efflab.workflow.pipeline import run_experiment

GOOD, BAD, SKIP = "good", "bad", "skip"
MAX_REPETITIONS = 100  # per commit and per interleaved good


@dataclass
class Request:
    """What to bisect, validated against the current tree (`prepare`)."""

    repo: Path
    suite: suite_mod.Suite
    entry: suite_mod.Entry
    metric: str
    point: dict[str, Any]  # the full parameters of the one matched point
    good: str
    bad: str
    commits: list[str]  # good..bad on the first-parent line, oldest first, bad last
    better: str
    policy: regress.Policy

    @property
    def overrides(self) -> dict[str, Any]:
        return {**self.entry.overrides, **self.point}


@dataclass
class Tested:
    commit: str
    subject: str
    verdict: str  # good | bad | skip
    values: list[float] = field(default_factory=list)
    good_values: list[float] = field(default_factory=list)  # good, interleaved with these
    median: float = math.nan
    good_median: float = math.nan
    change: float = math.nan  # vs good's median
    p: float = math.nan  # one-sided p in the bisected direction
    jobs_run: int = 0
    good_jobs: int = 0
    reused: bool = False  # every measured invocation came from the shared cache
    wall_s: float = 0.0
    note: str = ""


@dataclass
class Result:
    experiment: str
    metric: str
    point: dict[str, Any]
    good: str
    bad: str
    commits_in_range: int
    alpha_per_test: float
    direction: str = ""  # regression | improvement (bad vs good)
    tested: list[Tested] = field(default_factory=list)
    first_bad: Tested | None = None
    message: str = ""
    wall_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return 0 if self.first_bad is not None else 1

    def to_json(self) -> dict[str, Any]:
        return finite({**asdict(self), "exit_code": self.exit_code})


def _commit(r: git.Repo, rev: str, option: str) -> git.Commit:
    try:
        return r.commit(rev)
    except (git.BadName, ValueError, git.GitCommandError):
        raise BadInput(option, "$", f"a commit of {r.working_dir}", rev) from None


def _plan(
    root: Path,
    entry: suite_mod.Entry,
    overrides: dict[str, Any],
    salt: str,
    runtime: RuntimeIdentity | None = None,
) -> Plan:
    exp = load_experiment(root, entry.name, entry.quick, overrides)
    if entry.repetitions is not None:
        exp.repetitions = entry.repetitions
    return Planner(root, salt=salt, runtime=runtime).plan(exp)


def prepare(
    repo: Path,
    suite: suite_mod.Suite,
    experiment: str,
    metric: str,
    point: dict[str, Any],
    good: str,
    bad: str,
    repetitions: int | None = None,
) -> Request:
    """Check every option against the repository and the current tree (exit 2 early).

    `repetitions` (--repetitions) replaces the suite's for this bisection: each tested
    commit and its interleaved good runs get that many.
    """
    try:
        r = git.Repo(repo)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise BadInput(repo, "$", "a git repository (bisect walks its commits)", "none") from None
    g, b = _commit(r, good, "--good"), _commit(r, bad, "--bad")
    if g == b:
        raise BadInput("--good", "$", "a commit other than --bad", good)
    if not r.is_ancestor(g, b):
        raise BadInput("--good", "$", f"an ancestor of --bad {b.hexsha[:10]}", good)
    entry = next((e for e in suite.entries if e.name == experiment), None)
    if entry is None:
        names = ", ".join(e.name for e in suite.entries)
        raise BadInput("EXP", "$", f"an experiment of the suite {suite.file} ({names})", experiment)
    if repetitions is not None:
        if repetitions < 1 or repetitions > MAX_REPETITIONS:
            raise BadInput("--repetitions", "$", f"a whole number in 1..{MAX_REPETITIONS}", repetitions)  # fmt: skip
        entry = replace(entry, repetitions=repetitions)
    p = _plan(repo, entry, entry.overrides, "")
    metrics = suite_mod.compared_metrics(entry, p)
    if metric not in metrics:
        raise BadInput(
            "--metric", "$", f"a metric of '{experiment}' ({', '.join(metrics)})", metric
        )
    names = p.param_names()
    for k in point:
        if k not in names:
            raise BadInput(
                "--point",
                "$",
                f"a parameter of the points of '{experiment}' ({', '.join(names)})",
                k,
            )
    matches: list[dict[str, Any]] = []
    for pt in p.points:
        if all(pt.params.get(k) == v for k, v in point.items()) and pt.params not in matches:
            matches.append(pt.params)
    if not matches:
        raise BadInput("--point", "$", f"values of a planned point of '{experiment}'", point)
    if len(matches) > 1:
        raise BadInput(
            "--point",
            "$",
            f"one point ({len(matches)} match; add parameters: {', '.join(names)})",
            point,
        )
    commits = [c.hexsha for c in r.iter_commits(f"{g.hexsha}..{b.hexsha}", first_parent=True)]
    commits.reverse()
    meta = p.script.metrics[metric]
    policy = suite.policy(entry, metric, p.script.metrics)
    if repetitions is not None and not policy.noiseless:
        alpha = policy.alpha / tests_needed(len(commits))
        if regress.min_p_value(repetitions, repetitions) > alpha:
            need = next(
                r for r in range(2, MAX_REPETITIONS + 1) if regress.min_p_value(r, r) <= alpha
            )
            raise BadInput(
                "--repetitions",
                "$",
                f"at least {need}: with fewer, no one-sided test of {metric} can reach "
                f"alpha {alpha:.3g} (the suite's {policy.alpha:g} over "
                f"{tests_needed(len(commits))} measurement(s))",
                repetitions,
            )
    return Request(
        repo=repo,
        suite=suite,
        entry=entry,
        metric=metric,
        point=matches[0],
        good=g.hexsha,
        bad=b.hexsha,
        commits=commits,
        better=meta["better"],
        policy=policy,
    )


def tests_needed(n: int) -> int:
    """Measurements a bisection of n commits after good can need, bad included."""
    return 1 + max(0, math.ceil(math.log2(n))) if n > 1 else 1


class Bisector:
    """Measures commits in worktrees that share one artifacts cache, each interleaved
    repetition by repetition with a fresh measurement of good (good's worktree stays
    for the whole session): load that drifts during a bisect hits both arms alike."""

    def __init__(self, req: Request, opts: RunOptions, run_id: str):
        self.req, self.opts, self.run_id = req, opts, run_id
        self.identity = opts.runtime.identity()
        self.salt = f"bisect-{run_id}"
        self.trees = Worktrees(req.repo, "bisect")
        self.cache = self.trees.cache
        self.git = self.trees.git
        self.good_tree: Path | None = None
        self.measured: dict[tuple[str, ...], Tested] = {}

    def close(self) -> None:
        self.trees.close()

    def tree(self, sha: str) -> Path:
        return self.trees.add(sha)

    def drop(self, wt: Path) -> None:
        self.trees.drop(wt)

    def one(self, wt: Path, p: Plan, rep: int, salt: str, sha: str) -> tuple[list[float], int]:
        """Run repetition `rep` of plan `p` in `wt`: (values, jobs run)."""
        part = replace(p, points=[x for x in p.points if x.repetition == rep])
        res = run_experiment(
            wt,
            self.req.entry.name,
            self.opts.but(quick=self.req.entry.quick),
            overrides=self.req.overrides,
            run_id=f"{self.run_id}-{sha[:10]}",
            salt=salt,
            prepared=part,
        )
        keys = {x.key for x in part.points}
        ok = [r for r in (res.collected.ok if res.collected else []) if r.key in keys]
        vals = [float(v) for r in ok if (v := r.value(self.req.metric)) is not None]
        if not vals:
            raise RunFailed("; ".join(res.failures) or f"no value of {self.req.metric}")
        return vals, res.jobs_run

    def measure(self, sha: str) -> Tested:
        """The commit's repetitions, each run right after one fresh repetition of good."""
        c = self.git.commit(sha)
        t = Tested(commit=sha, subject=c.summary, verdict=SKIP)
        t0 = time.perf_counter()
        wt = self.tree(sha)
        try:
            try:
                p = _plan(wt, self.req.entry, self.req.overrides, self.salt, self.identity)
            except BadInput as exc:
                t.note = f"cannot plan at this commit: {exc}"
                return t
            keys = tuple(sorted({x.key for x in p.points}))
            if self.good_tree is None:
                self.good_tree = self.tree(self.req.good)
                gk = _plan(
                    self.good_tree, self.req.entry, self.req.overrides, self.salt, self.identity
                )
                same = Tested(self.req.good, "good", GOOD, note="same content keys as good")
                self.measured[tuple(sorted({x.key for x in gk.points}))] = same
            if keys in self.measured:  # same content keys as a commit measured before
                old = self.measured[keys]
                t.values, t.good_values, t.reused = list(old.values), list(old.good_values), True
                t.verdict, t.median, t.change, t.p = old.verdict, old.median, old.change, old.p
                t.good_median = old.good_median
                t.note = old.note if old.commit == self.req.good else f"as {old.commit[:10]}"
                return t
            pair_salt = f"{self.salt}-vs-{sha[:12]}"  # good measured anew beside this commit
            gp = _plan(self.good_tree, self.req.entry, self.req.overrides, pair_salt, self.identity)
            reps = sorted({x.repetition for x in p.points})
            try:
                for r in reps:
                    gv, gj = self.one(self.good_tree, gp, r, pair_salt, self.req.good)
                    cv, cj = self.one(wt, p, r, self.salt, sha)
                    t.good_values += gv
                    t.values += cv
                    t.jobs_run += cj
                    t.good_jobs += gj
            except RunFailed as exc:
                t.note = f"run failed: {exc}"
                return t
            t.verdict = ""  # judged by the caller
            self.measured[keys] = t
            return t
        finally:
            t.wall_s = time.perf_counter() - t0
            self.drop(wt)


def judge(t: Tested, req: Request, alpha: float) -> str:
    """Compare t with its interleaved good repetitions as the nightly would (one test);
    fills t's statistics and returns the verdict (regression | improvement | ...)."""
    pol = replace(req.policy, alpha=alpha)
    s = regress.shift(t.good_values, t.values, req.better, pol.noiseless)
    t.good_median = s.baseline_median
    d = regress.decide([s], [pol], correction="none")[0]
    t.median, t.change = s.current_median, s.change
    t.p = min(s.p_worse, s.p_better)
    if not d.detectable:
        t.note = f"underpowered: smallest reachable p {s.min_p:.2g} > alpha {alpha:.2g}"
    return d.verdict


def run(
    req: Request, opts: RunOptions, run_id: str, on_step: Callable[[Tested], None] | None = None
) -> Result:
    """Bisect good..bad to the first commit that differs from good like bad does."""
    t0 = time.perf_counter()
    n = len(req.commits)
    alpha = req.policy.alpha / tests_needed(n)
    res = Result(req.entry.name, req.metric, req.point, req.good, req.bad, n, alpha)
    bis = Bisector(req, opts, run_id)

    def step(t: Tested) -> Tested:
        res.tested.append(t)
        if on_step:
            on_step(t)
        return t

    try:
        bad = bis.measure(req.bad)
        if bad.verdict == SKIP:
            step(bad)
            res.message = f"bad {req.bad[:10]} could not be measured: {bad.note}"
            return res
        verdict = judge(bad, req, alpha)
        moved = verdict in (regress.REGRESSION, regress.IMPROVEMENT)
        bad.verdict = BAD if moved else GOOD
        step(bad)
        if not moved:
            res.message = (
                f"bad {req.bad[:10]} does not differ significantly from good "
                f"({bad.change:+.1%}, p={bad.p:.3g}, alpha {alpha:.3g}): nothing to bisect"
            )
            return res
        res.direction = verdict
        lo, hi = -1, n - 1  # commits[lo] is good (-1: good itself), commits[hi] is bad
        skipped: set[int] = set()
        while hi - lo > 1:
            candidates = [i for i in range(lo + 1, hi) if i not in skipped]
            if not candidates:
                break
            mid = min(candidates, key=lambda i: abs(i - (lo + hi) // 2))
            t = bis.measure(req.commits[mid])
            if t.verdict == SKIP:
                skipped.add(mid)
                step(t)
                continue
            if not t.reused:
                t.verdict = BAD if judge(t, req, alpha) == res.direction else GOOD
            step(t)
            if t.verdict == BAD:
                hi = mid
            else:
                lo = mid
        if hi - lo > 1:
            res.message = (
                f"the first bad commit is one of {req.commits[lo + 1][:10]}..{req.commits[hi][:10]} "
                "(the commits between could not be measured)"
            )
            return res
        res.first_bad = next(t for t in res.tested if t.commit == req.commits[hi])
        res.message = f"first bad commit: {res.first_bad.commit[:10]} {res.first_bad.subject}"
        return res
    finally:
        bis.close()
        res.wall_s = time.perf_counter() - t0
