"""Run records: one JSON file per (experiment, point, repetition), schema-checked on write.

`results/<exp>/runs/<key>.json` for a successful invocation (written once: the key
already pins code, inputs, deps and env), `<key>.failed.json` for the latest failed
attempt (error + log tail, naming the step that failed when a dependency broke).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from efflab.core import layout
from efflab.core.errors import BadInput
from efflab.core.invocation import Invocation
from efflab.core.specio import atomic_write_json, read_capped, validate
from efflab.plan.planner import Plan, Point
from efflab.results.provenance import invocation_git
from efflab.results.runrecord import FAILED, OK, Metric, RunRecord


@dataclass
class Collected:
    ok: list[RunRecord] = field(default_factory=list)
    failed: list[RunRecord] = field(default_factory=list)
    written: int = 0


def runs_dir(repo: Path, experiment: str) -> Path:
    return layout.runs_dir(repo, experiment)


REPAIR_HINT = "run `efflab results check {exp} --repair` to set bad files aside"


def read_record(file: Path, experiment: str) -> RunRecord:
    """One run record, whole, migrated to the current schema, or BadInput naming the
    file (with the repair hint)."""
    hint = REPAIR_HINT.format(exp=experiment)
    try:
        rec = json.loads(read_capped(file, "a run record"))  # capped; a FIFO never blocks
    except BadInput as exc:
        exc.hint = exc.hint or hint
        raise
    except RecursionError:
        raise BadInput(file, "$", "a run record nested less deeply", "too deep", hint) from None
    except ValueError as exc:
        raise BadInput(
            file, "$", "a complete JSON run record", f"corrupt JSON ({exc})", hint
        ) from None
    except OSError as exc:
        raise BadInput(file, "$", "a readable run record", exc.strerror, hint) from None
    try:  # the fields every reader uses (the full schema check is `efflab results check`)
        typed = RunRecord.from_json(rec, file)
    except BadInput as exc:
        raise BadInput(exc.file, exc.path, exc.expected, exc.found, hint) from None
    key = file.name.removesuffix(".failed.json").removesuffix(".json")
    if typed.key != key:
        raise BadInput(file, "$.key", f"the file's key '{key}'", typed.key, hint)
    return typed


def read_outputs(file: Path) -> dict[str, Any]:
    """A finished invocation's outputs.json (the sweep before each run sets a corrupt one
    aside; this only meets one written since)."""
    try:
        out = json.loads(file.read_bytes())
        if isinstance(out, dict) and isinstance(out.get("metrics"), dict):
            return out
        found = "no metrics"
    except (OSError, ValueError) as exc:
        found = str(exc)
    raise BadInput(
        file, "$", "a complete outputs.json", found, "run the experiment again to rebuild it"
    )


def _first_failure(repo: Path, plan: Plan, inv: Invocation) -> tuple[Invocation, dict[str, Any]]:
    """The invocation that actually failed: itself, or the deepest failed dependency."""
    for ref in inv.deps.values():
        dep = plan.invocations[ref["key"]]
        if not (repo / dep.folder / "outputs.json").exists():
            return _first_failure(repo, plan, dep)
    f = repo / inv.folder / "failure.json"
    if f.exists():
        try:
            return inv, json.loads(f.read_text())
        except (OSError, ValueError):
            pass  # a killed runner's half a failure: reported as not run
    return inv, {
        "error": "not run (cancelled, or Snakemake stopped before this job)",
        "failure_kind": "infrastructure",
        "log_tail": None,
        "started": None,
        "ended": None,
        "duration_s": None,
    }


def _record(
    plan: Plan,
    point: Point,
    inv: Invocation,
    run_id: str,
    prov: dict[str, Any],
    out: dict[str, Any] | None,
    failure: dict[str, Any] | None = None,
    failed_step: str | None = None,
) -> RunRecord:
    """The record of one point: from the outputs.json payload (`out`), or, failed,
    from the failure.json of the step that failed (`failure`)."""
    declared = inv.outputs.get("metrics", {})
    metrics = {}
    if out is not None:
        for name, value in out["metrics"].items():
            meta = declared.get(name, {"unit": "", "better": "lower"})
            metrics[name] = Metric(value, meta["unit"], meta["better"])
    energy = (out or {}).get("energy") or {}
    times = out if out is not None else (failure or {})
    return RunRecord(
        run_id=run_id,
        experiment=plan.experiment.name,
        key=inv.key,
        alias=inv.alias,
        point=point.params,
        repetition=point.repetition,
        status=OK if out else FAILED,
        metrics=metrics,
        inputs=inv.inputs,
        values=(out or {}).get("values", {}),
        started=times.get("started"),
        ended=times.get("ended"),
        duration_s=times.get("duration_s"),
        # other work needed the invocation's own cores (efflab.runtime.contention)
        contended=((out or {}).get("contention") or {}).get("contended"),
        contention=(out or {}).get("contention"),
        # the cores an exclusive job had to itself, read back (efflab.runtime.pinning)
        pinning=(out or {}).get("pinning"),
        error=None if failure is None else failure.get("error"),
        failure_kind=None if failure is None else failure.get("failure_kind", "script"),
        log_tail=None if failure is None else failure.get("log_tail"),
        failed_step=failed_step,
        provenance={
            **prov,
            "runtime": (out or failure or {}).get("runtime", plan.runtime.kind),
            # what the key was computed for (efflab.core.runtime_identity)
            "identity": plan.runtime.to_json(),
            "image": (out or {}).get("image"),
            "env": inv.env,
            "env_digest": inv.env_digest,
            "energy_method": energy.get("method", "estimated:none"),
            "energy_joules": energy.get("joules"),
            # cpu_s / wall_s of the invocation: well below the cores it asked for means
            # the machine was contended and timings are suspect
            "cpu_share": _share(out),
            "seeds": {k: v for k, v in inv.inputs.items() if "seed" in k},
            "script": {"alias": inv.alias, "dir": inv.script_dir},
        },
    )


def _share(out: dict[str, Any] | None) -> float | None:
    if not out or not out.get("duration_s") or out.get("cpu_s") is None:
        return None
    return round(out["cpu_s"] / out["duration_s"], 3)


def collect(repo: Path, plan: Plan, run_id: str, prov: dict[str, Any]) -> Collected:
    """Write records for every point of the plan; returns ok and failed records."""
    out_dir = runs_dir(repo, plan.experiment.name)
    res = Collected()
    for point in plan.points:
        inv = plan.invocations[point.key]
        rec_file = out_dir / f"{inv.key}.json"
        outputs = repo / inv.folder / "outputs.json"
        if outputs.exists():
            if rec_file.exists():
                rec = read_record(rec_file, plan.experiment.name)
                if rec.point != point.params:
                    # one invocation planned under another grid (a paper's override
                    # collapsed an axis): the record is the same run, at this plan's point
                    rec = rec.at_point(point.params)
                res.ok.append(rec)
                continue
            prov_i = {**prov, "git": invocation_git(repo, prov["git"], inv, plan.invocations)}
            rec = _record(plan, point, inv, run_id, prov_i, read_outputs(outputs))
            _write(rec_file, rec)
            (out_dir / f"{inv.key}.failed.json").unlink(missing_ok=True)
            res.ok.append(rec)
            res.written += 1
            continue
        failed_inv, failure = _first_failure(repo, plan, inv)
        step = f"{failed_inv.alias} ({failed_inv.key})"
        rec = _record(plan, point, inv, run_id, prov, None, failure, step)
        _write(out_dir / rec.file_name, rec)
        res.failed.append(rec)
        res.written += 1
    return res


def _write(file: Path, rec: RunRecord) -> None:
    data = rec.to_json()
    validate(data, "run-record", file)
    atomic_write_json(file, data)


def load(repo: Path, experiment: str, keys: set[str] | None = None) -> list[RunRecord]:
    """Successful records of an experiment (only `keys` when given)."""
    d = runs_dir(repo, experiment)
    if not d.is_dir():
        return []
    recs = []
    for f in d.glob("*.json"):
        if f.name.endswith(".failed.json"):
            continue
        if keys is not None and f.stem not in keys:
            continue
        recs.append(read_record(f, experiment))
    return recs
