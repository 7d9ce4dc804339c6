"""Verifying a tournament submission: the sealed re-run and its scoring.

Plan the base experiment for a submission's inputs (a per-submission salt makes the
measured step a fresh invocation, so nothing is served from cache; the organiser's
secret enters only as its digest) → run it through the shared pipeline with
runtime=docker under the tournament's sealed settings ($EFFLAB_SEALED, see
efflab.runtime.sealed) → aggregate the repetitions, with an interval per metric →
claims. Whose fault a failure is comes from the runtime's `failure_kind` only
(`VerifierFailed` for the verifier's, `Rejected` for the entry's); the flow around it
(intake, identity, limits, the ledger line) is efflab.tournaments.submit.

Verifications take a project-wide lock: two measurements on one machine would disturb
each other's timings, and shared dependencies are then never built twice at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from efflab.core.errors import BadInput
from efflab.core.locks import FileLock
from efflab.core.runtime_identity import RuntimeIdentity
from efflab.plan.planner import Experiment, Plan, Planner, load_experiment
from efflab.plan.registry import Registry
from efflab.runtime import base, sealed
from efflab.runtime.base import Runtime
from efflab.runtime.failure import INFRASTRUCTURE
from efflab.tournaments.rank_ranges import interval
from efflab.tournaments.spec import Tournament
from efflab.tournaments.submission import Rejected
from efflab.workflow.options import RunOptions
from efflab.workflow.pipeline import run_experiment


class VerifierFailed(Exception):
    """The verifier broke, not the entry (runtime failure kind `infrastructure`)."""


@dataclass
class Measured:
    metrics: dict[str, float]
    repetitions: dict[str, list[float]]
    intervals: dict[str, dict[str, Any]] = field(default_factory=dict)


def new_submission_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)


def registry_with(repo: Path, replaced: dict[str, Path]) -> Registry:
    """The project's registry with some steps' code taken from other folders.

    The organiser's declaration stays: inputs, outputs, env, resources, includes and
    the plan-time checker are the original script's; only the files (and so the key)
    change. The checker is the original's, so no submitted code runs on the host.
    """
    reg = Registry.for_repo(repo)
    for alias, folder in replaced.items():
        orig = reg.scripts[alias]
        new = dataclasses.replace(orig, path=folder.resolve())
        new.__dict__["checker"] = orig.checker  # pre-fill the cached_property
        reg.scripts[alias] = new
    return reg


def sealed_runtime() -> Runtime:
    """Where verification runs: docker, the runtime that seals."""
    return base.get("docker")


def plan_submission(
    repo: Path,
    t: Tournament,
    inputs: dict[str, Any],
    salt: str,
    file: Path,
    replaced: dict[str, Path] | None = None,
    private_digest: str | None = None,
    runtime: RuntimeIdentity | None = None,
) -> Plan:
    """One point (the submission's inputs over the fixed ones), `t.repetitions` times,
    keyed for `runtime` (default: docker, where verification runs sealed)."""
    base = load_experiment(repo, t.experiment, t.quick)
    fixed = dict(t.fixed_inputs)
    if t.private is not None:
        fixed[t.private.input] = private_digest
    exp = Experiment(
        name=f"tournaments/{t.id}",
        file=file,
        script=base.script,
        description=f"verification runs of tournament {t.id}",
        inputs={**base.inputs, **fixed},
        grid={k: [v] for k, v in inputs.items()},  # one point (params = the inputs)
        points=[],
        repetitions=t.repetitions,
        metrics=None,
        raw={},
    )
    try:
        reg = registry_with(repo, replaced or {})
        identity = runtime or sealed_runtime().identity()
        plan = Planner(repo, reg, salt=salt, runtime=identity).plan(exp)
    except BadInput as exc:
        if exc.file != file:
            raise
        where = re.sub(r"^\$\.grid\.([^\[.]+)(\[0\])?", r"$.inputs.\1", exc.path)
        raise Rejected("plan", str(dataclasses.replace(exc, path=where))) from None
    for inv in plan.invocations.values():
        if not inv.env or (t.env and inv.env != t.env):
            raise BadInput(t.file, "$.verification.env", f"env {t.env}", f"{inv.alias}: {inv.env}")
    return plan


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _infrastructure(kind: str | None, error: str, runtime: Runtime) -> None:
    """VerifierFailed when a failure is the verifier's, not the entry's.

    Decided from the failure kind the runtime set (never from error text, which an
    entry's stderr can write) and from whether the engine still answers.
    """
    if kind == INFRASTRUCTURE or not runtime.available():
        first = error.strip().splitlines()[0][:300] if error.strip() else str(kind)
        raise VerifierFailed(f"verification could not run ({first})")


def aggregate(values: list[float], how: str, better: str) -> float:
    if how == "mean":
        return float(statistics.fmean(values))
    if how == "worst":
        return float(max(values) if better == "lower" else min(values))
    return float(statistics.median(values))


def run_sealed(
    repo: Path,
    t: Tournament,
    plan: Plan,
    run_id: str,
    details: dict[str, Any],
    on_progress: Callable[[int, int], None] | None = None,
    runtime: Runtime | None = None,
    settings: dict[str, Any] | None = None,
) -> Measured:
    """Run the plan sealed; aggregated metrics, repetitions, intervals. Fills `details`."""
    runtime = runtime or sealed_runtime()
    encoded = sealed.encode(settings or {**t.limits, "own_files_only": True})
    lock_dir = repo / "results" / "tournaments"
    lock_dir.mkdir(parents=True, exist_ok=True)
    lock, t0 = FileLock(str(lock_dir / ".verify.lock")), time.monotonic()
    with lock, _environ({sealed.ENV_VAR: encoded}):
        details["queued_s"] = round(time.monotonic() - t0, 3)  # waiting for other verifications
        try:
            res = run_experiment(
                repo,
                plan.experiment.name,
                RunOptions(cores=t.cores, runtime=runtime),
                run_id=run_id,
                prepared=plan,
                on_progress=on_progress,
            )
        except BadInput as exc:  # images could not be prepared: the verifier's, never the entry's
            raise VerifierFailed(f"verification could not start ({exc})") from None
    recs = res.collected.ok if res.collected else []
    failed = res.collected.failed if res.collected else []
    details.update(
        keys=sorted({p.key for p in plan.points}),
        records=[f"runs/{r.file_name}" for r in recs],
        images=sorted({r.provenance["image"] for r in recs if r.provenance.get("image")}),
        runtimes=sorted({r.runtime for r in recs}),
        jobs_run=res.jobs_run,
    )
    if failed:
        for f in failed:  # any failure the runtime calls its own makes it the verifier's
            _infrastructure(f.failure_kind, f.error or "", runtime)
        f = failed[0]
        details["log_tail"] = f.log_tail
        raise Rejected("run", f"{f.failed_step} failed: {f.error}")
    if len(recs) != t.repetitions:
        raise Rejected("run", f"{len(recs)} of {t.repetitions} repetitions produced results")
    per_rep: dict[str, list[float]] = {}
    for r in sorted(recs, key=lambda r: r.repetition):
        for m, v in r.metric_values().items():
            per_rep.setdefault(m, []).append(float(v))
    metrics = {m: aggregate(vs, t.aggregate, t.better(m)) for m, vs in per_rep.items()}
    ivs = {m: interval(vs, t.aggregate, t.confidence).to_json() for m, vs in per_rep.items()}
    return Measured(metrics, per_rep, ivs)


def claim_flags(t: Tournament, claimed: dict[str, float], measured: dict[str, float]) -> list[str]:
    """A flag per claimed metric that differs from the measurement beyond the tolerance."""
    flags = []
    for m, c in sorted(claimed.items()):
        v = measured.get(m)
        if v is None:
            flags.append(f"claimed {m}={c:g}, which the verifier did not measure")
            continue
        rel = (c - v) / abs(v) if v else (0.0 if c == v else float("inf"))
        if abs(rel) > t.claim_tolerance:
            better = (c < v) if t.better(m) == "lower" else (c > v)
            flags.append(
                f"claimed {m}={c:.4g}, measured {v:.4g} ({rel:+.0%}, "
                f"{'better' if better else 'worse'} than measured; tolerance "
                f"{t.claim_tolerance:.0%})"
            )
    return flags
