"""Verifying a tournament submission: sealed re-run, scoring, and the ledger entry.

The flow of `submit`: store the submission's files (digests go in the ledger) →
check the window and validate the file → unpack its script archive safely → plan the
base experiment for its inputs (a per-submission salt makes the measured step a fresh
invocation, so nothing is served from cache) → run it through the shared pipeline
with runtime=docker under the tournament's sealed limits ($EFFLAB_SEALED, see
efflab.runtime.sealed) → aggregate the measured repetitions → check constraints and claims →
append the verdict to the ledger. Any Rejected on the way becomes a rejected entry.

Verifications take a project-wide lock: two measurements on one machine would disturb
each other's timings, and shared dependencies are then never built twice at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from efflab.core.clock import now_iso
from efflab.core.errors import BadInput, RunFailed
from efflab.core.specio import atomic_write_json
from efflab.plan.planner import Experiment, Plan, Planner, load_experiment
from efflab.plan.registry import Registry
from efflab.runtime import base, sealed
from efflab.runtime.base import Runtime
from efflab.runtime.failure import INFRASTRUCTURE
from efflab.tournaments.ledger import Ledger
from efflab.tournaments.spec import Tournament, load_tournament
from efflab.tournaments.submission import (
    Rejected,
    check_script_folder,
    load_submission,
    pack_folder,
    peek,
    safe_extract,
    sha256_file,
)
from efflab.workflow.options import RunOptions
from efflab.workflow.pipeline import run_experiment


@dataclass
class Verdict:
    """What `submit` decided, and the ledger entry that records it."""

    accepted: bool
    entry: dict[str, Any]
    folder: Path
    reason: str = ""
    stage: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)


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


def plan_submission(
    repo: Path,
    t: Tournament,
    inputs: dict[str, Any],
    salt: str,
    file: Path,
    replaced: dict[str, Path] | None = None,
) -> Plan:
    """One point (the submission's inputs over the fixed ones), `t.repetitions` times."""
    base = load_experiment(repo, t.experiment, t.quick)
    exp = Experiment(
        name=f"tournaments/{t.id}",
        file=file,
        script=base.script,
        description=f"verification runs of tournament {t.id}",
        inputs={**base.inputs, **t.fixed_inputs},
        grid={k: [v] for k, v in inputs.items()},  # one point (params = the inputs)
        points=[],
        repetitions=t.repetitions,
        metrics=None,
        raw={},
    )
    try:
        plan = Planner(repo, registry_with(repo, replaced or {}), salt=salt).plan(exp)
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


def check_sandbox(runtime: Runtime) -> None:
    """Fail closed: never verify where the runtime can't seal a container."""
    if not runtime.seals:
        raise RunFailed(
            f"runtime '{runtime.name}' cannot seal a sandbox: submissions are verified only "
            "in sealed containers; nothing was recorded"
        )
    if not runtime.available():
        raise RunFailed(
            "no Docker engine answers: submissions are verified only in sealed containers "
            "(start one with tools/ensure-docker.sh); nothing was recorded"
        )


def _infrastructure(kind: str | None, error: str, runtime: Runtime) -> None:
    """RunFailed (nothing recorded) when a failure is the verifier's, not the entry's.

    Decided from the failure kind the runtime set (never from error text, which an
    entry's stderr can write) and from whether the engine still answers.
    """
    if kind == INFRASTRUCTURE or not runtime.available():
        raise RunFailed(
            f"verification could not run ({error.strip().splitlines()[0][:300] if error.strip() else kind}); "
            "nothing was recorded: submit again once the Docker engine answers"
        )


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
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Run the plan sealed; (aggregated metrics, per-repetition values). Fills `details`."""
    runtime = runtime or base.get("docker")

    settings = sealed.encode({**t.limits, "own_files_only": True})
    lock_dir = repo / "results" / "tournaments"
    lock_dir.mkdir(parents=True, exist_ok=True)
    lock, t0 = FileLock(str(lock_dir / ".verify.lock")), time.monotonic()
    with lock, _environ({sealed.ENV_VAR: settings}):
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
        except BadInput as exc:  # e.g. images could not be prepared: whose fault?
            _infrastructure(None, str(exc), runtime)
            raise
    recs = res.collected.ok if res.collected else []
    failed = res.collected.failed if res.collected else []
    details.update(
        keys=sorted({p.key for p in plan.points}),
        records=[f"runs/{r['key']}.json" for r in recs],
        images=sorted({r["provenance"]["image"] for r in recs if r["provenance"]["image"]}),
        runtimes=sorted({r["provenance"]["runtime"] for r in recs}),
        jobs_run=res.jobs_run,
    )
    if failed:
        f = failed[0]
        details["log_tail"] = f.get("log_tail")
        _infrastructure(f.get("failure_kind"), f["error"] or "", runtime)
        raise Rejected("run", f"{f['failed_step']} failed: {f['error']}")
    if len(recs) != t.repetitions:
        raise Rejected("run", f"{len(recs)} of {t.repetitions} repetitions produced results")
    per_rep: dict[str, list[float]] = {}
    for r in sorted(recs, key=lambda r: r["repetition"]):
        for m, v in r["metrics"].items():
            per_rep.setdefault(m, []).append(float(v["value"]))
    metrics = {m: aggregate(vs, t.aggregate, t.better(m)) for m, vs in per_rep.items()}
    return metrics, per_rep


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


def _store(file: Path, archive: Path | None, folder: Path) -> tuple[Path, Path | None]:
    """Copies of what was submitted (the ledger holds their digests)."""
    folder.mkdir(parents=True)
    stored = folder / f"submission{file.suffix if file.suffix in ('.json', '.yml') else '.yaml'}"
    shutil.copyfile(file, stored)
    if archive is None:
        return stored, None
    packed = folder / "script.tar.gz"
    if archive.is_dir():
        pack_folder(archive, packed)
    else:
        shutil.copyfile(archive, packed)
    return stored, packed


def submit(
    repo: Path,
    tid: str,
    file: Path,
    archive: Path | None = None,
    now: datetime | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Verdict:
    """Validate, verify sealed and record one submission; the verdict is in the ledger.

    Raises BadInput (exit 2) for a missing file or a broken tournament spec and
    RunFailed (exit 1) when no sealed sandbox is available: neither is recorded.
    """
    t = load_tournament(repo, tid)
    file = file.resolve()
    if not file.is_file():
        raise BadInput(file, "$", "an existing submission file", "no such file")
    if archive is not None and not archive.exists():
        raise BadInput(archive, "$", "an existing .tar.gz or folder (--archive)", "no such path")
    known, missing = peek(file), None
    if archive is None and known.get("archive"):
        archive = file.parent / known["archive"]
        if not archive.exists():
            archive, missing = None, f"{file}: $.archive: no such file or folder {archive}"
    runtime = base.get("docker")
    check_sandbox(runtime)
    sid = new_submission_id()
    folder = t.root(repo) / "submissions" / sid
    try:
        stored, packed = _store(file, archive, folder)
        return _verify_and_record(
            repo, t, sid, folder, stored, packed, missing, now, on_progress, runtime
        )
    except BaseException:
        if not (folder / "verification.json").exists():  # not recorded: leave nothing behind
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _verify_and_record(
    repo: Path,
    t: Tournament,
    sid: str,
    folder: Path,
    stored: Path,
    packed: Path | None,
    missing: str | None,
    now: datetime | None,
    on_progress: Callable[[int, int], None] | None,
    runtime: Runtime,
) -> Verdict:
    known = peek(stored)
    root = t.root(repo)
    sub_info: dict[str, Any] = {
        "id": sid,
        "participant": known.get("participant"),
        "entry": known.get("entry"),
        "file": str(stored.relative_to(root)),
        "sha256": sha256_file(stored),
        "archive": str(packed.relative_to(root)) if packed else None,
        "archive_sha256": sha256_file(packed) if packed else None,
    }
    details: dict[str, Any] = {}
    metrics: dict[str, float] = {}
    per_rep: dict[str, list[float]] = {}
    flags: list[str] = []
    verdict, reason, stage = "accepted", "", ""
    t0 = time.monotonic()
    try:
        status = t.status(now)
        if status != "open":
            when = t.open if status == "upcoming" else t.close
            raise Rejected("window", f"the tournament is {status} ({when:%Y-%m-%d %H:%M} UTC)")
        if missing:
            raise Rejected("archive", missing)
        sub = load_submission(stored, t.id, t.inputs_schema, t.metrics)
        sub_info.update(inputs=sub.inputs, claimed=sub.claimed)
        replaced: dict[str, Path] = {}
        if packed is not None and t.script is None:
            raise Rejected("archive", "this tournament takes inputs only, no script archive")
        if t.script is not None and packed is None and t.script.required:
            raise Rejected("archive", f"a script archive for step '{t.script.step}' is required")
        if t.script is not None and packed is not None:
            dest = folder / "scripts" / t.script.step
            files = safe_extract(packed, dest, t.script.max_files, t.script.max_bytes)
            original = Registry.for_repo(repo).scripts[t.script.step]
            check_script_folder(dest, original.path, original.run)
            sub_info["script"] = {"step": t.script.step, "files": files}
            replaced[t.script.step] = dest
        plan = plan_submission(repo, t, sub.inputs, sid, stored, replaced)
        metrics, per_rep = run_sealed(repo, t, plan, sid, details, on_progress, runtime)
        flags = claim_flags(t, sub.claimed, metrics)  # also on record when rejected below
        broken = [c for c in t.constraints if not c.holds(metrics[c.metric])]
        if broken:
            raise Rejected(
                "constraint",
                "; ".join(
                    f"{c.metric} = {metrics[c.metric]:.4g}, needs {c.text()}" for c in broken
                ),
            )
    except Rejected as r:
        verdict, reason, stage = "rejected", r.reason, r.stage
    body = {
        "time": now_iso(),
        "tournament": t.id,
        "tournament_sha256": t.spec_sha256,
        "submission": sub_info,
        "verdict": verdict,
        "stage": stage or None,
        "reason": reason or None,
        "metrics": metrics,
        "repetitions": per_rep,
        "flags": flags,
        "verification": {
            "runtime": "docker",
            "repetitions": t.repetitions,
            "aggregate": t.aggregate,
            "limits": t.limits,
            "images": details.get("images", []),
            "keys": details.get("keys", []),
            "queued_s": details.get("queued_s", 0.0),
            "duration_s": round(time.monotonic() - t0 - details.get("queued_s", 0.0), 3),
        },
    }
    entry = Ledger(root / "ledger.jsonl").append(body)
    atomic_write_json(folder / "verification.json", {**details, "ledger_entry": entry})
    return Verdict(verdict == "accepted", entry, folder, reason, stage, metrics, flags)
