"""What a script returned: its outputs checked against meta.yaml, its logs' tail, and
the invocation's energy. Shared by the host runner and the Docker runtime, so both
judge a script's results identically. Stdlib only: it also runs inside containers.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from efflab.core.invocation import Invocation
from efflab.runtime import energy
from efflab.runtime.failure import SCRIPT, InvocationFailed

LOG_TAIL_LINES = 30
DONE_COPY = ".outputs.done.json"  # hard link to outputs.json, made by the runner


def valid_outputs(path: Path, key: str) -> dict[str, Any] | None:
    """The outputs.json payload when the file is complete and belongs to `key`."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and data.get("status") == "ok" and data.get("key") == key
    return data if ok and isinstance(data.get("metrics", {}), dict) else None


def completed_outputs(folder: Path, key: str) -> dict[str, Any] | None:
    """outputs.json of a finished invocation; brought back from the runner's second
    name for it when Snakemake deleted outputs.json to schedule the job again."""
    out = valid_outputs(folder / "outputs.json", key)
    if out is not None:
        return out
    out = valid_outputs(folder / DONE_COPY, key)
    if out is None:
        return None
    tmp = folder / f".outputs.json.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.link(folder / DONE_COPY, tmp)
    os.replace(tmp, folder / "outputs.json")
    os.utime(folder / "outputs.json")  # newer than its inputs again, for Snakemake
    return out


def atomic_json(path: Path, data: Any) -> None:
    """Job-side atomic write (temp file + rename); stdlib, unlike efflab.core.specio."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def log_tail(folder: Path, lines: int = LOG_TAIL_LINES) -> str:
    out = []
    for name in ("stderr.log", "stdout.log"):
        f = folder / name
        if f.exists():
            text = f.read_text(errors="replace").splitlines()[-lines:]
            if text:
                out.append(f"--- {name} ---\n" + "\n".join(text))
    return "\n".join(out)


def last_error_line(folder: Path) -> str:
    f = folder / "stderr.log"
    lines = (
        [ln for ln in f.read_text(errors="replace").splitlines() if ln.strip()]
        if f.exists()
        else []
    )
    return f": {lines[-1].strip()}" if lines else ""


def check_outputs(declared: dict[str, Any], result: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Declared outputs (meta.yaml `outputs:`) only; numbers finite; files present.
    Returns the clean outputs."""
    declared = declared or {}
    dmetrics, dfiles = declared.get("metrics", {}), declared.get("files", {})
    for part, kind in (("metrics", dict), ("files", dict), ("values", dict), ("timings", dict), ("energy_spans", list)):  # fmt: skip
        if result.get(part) is not None and not isinstance(result[part], kind):
            raise ValueError(f"outputs '{part}' must be a JSON {'object' if kind is dict else 'array'}, got {type(result[part]).__name__}")  # fmt: skip
    metrics = result.get("metrics") or {}
    for name in metrics:
        if name not in dmetrics:
            raise ValueError(f"metric '{name}' is not declared in meta.yaml outputs.metrics")
    clean: dict[str, float | None] = {}
    for name, meta in dmetrics.items():
        v = metrics.get(name)
        if v is None:
            if not meta.get("optional"):
                raise ValueError(f"declared metric '{name}' was not returned")
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"metric '{name}' must be a number, got {v!r}")
        if not math.isfinite(v):
            raise ValueError(f"metric '{name}' is not finite: {v!r}")
        clean[name] = float(v)
    files = {}
    for name, rel in (result.get("files") or {}).items():
        if name not in dfiles:
            raise ValueError(f"file output '{name}' is not declared in meta.yaml outputs.files")
        if not isinstance(rel, str):
            raise ValueError(
                f"file output '{name}' must be a path string, got {type(rel).__name__}"
            )
        p = (folder / "out" / rel).resolve()
        if not p.is_relative_to((folder / "out").resolve()) or not p.exists():
            raise ValueError(
                f"file output '{name}' -> '{rel}' does not exist inside the output folder"
            )
        files[name] = str(p.relative_to(folder.resolve()))
    for name, meta in dfiles.items():
        if name not in files and not meta.get("optional"):
            raise ValueError(f"declared file output '{name}' was not returned")
    return {
        "metrics": clean,
        "files": files,
        "values": result.get("values") or {},
        "timings": result.get("timings") or {},
        "energy_spans": result.get("energy_spans", []),
    }


def read_script_outputs(inv: Invocation, folder: Path) -> dict[str, Any]:
    """The script's outputs file, parsed and checked against its declared outputs."""
    res_file = folder / ".script-outputs.json"
    if not res_file.exists():
        raise InvocationFailed(
            SCRIPT, "script wrote no outputs ($EFFLAB_OUTPUTS / run(ctx) return)"
        )
    try:
        result = json.loads(res_file.read_text())
    except json.JSONDecodeError as exc:
        raise InvocationFailed(SCRIPT, f"script outputs are not valid JSON: {exc}") from None
    if not isinstance(result, dict):
        raise InvocationFailed(SCRIPT, "script outputs must be a JSON object")
    declared = inv.outputs
    tool = inv.resources.get("instrument")
    if tool:  # the instrument's counts are added after the script, not returned by it
        from efflab.core.instruments import METRICS

        counted = METRICS.get(tool, {})
        declared = {**declared, "metrics": {k: v for k, v in declared.get("metrics", {}).items() if k not in counted}}  # fmt: skip
    try:
        return check_outputs(declared, result, folder)
    except ValueError as exc:
        raise InvocationFailed(SCRIPT, str(exc)) from None


def invocation_energy(
    meter: energy.EnergyMeter, e0: int | None, wall: float, cpu: float
) -> dict[str, Any]:
    """RAPL over the whole invocation when readable, else the labelled estimate."""
    e1 = meter.read_rapl()
    if e0 is not None and e1 is not None and e1 >= e0:
        joules, method = (e1 - e0) / 1e6, energy.MEASURED
    else:
        joules, method = energy.estimate_joules(wall, cpu), energy.ESTIMATED
    return {"joules": joules, "method": method, "model": energy.MODEL_PARAMS}


def delegated_cpu_s(out: dict[str, Any]) -> float:
    """`values.delegated_cpu_s`: CPU seconds a process outside the script's own tree
    spent on this invocation (a pooled engine daemon), reported by the script. Counted
    with the script's own CPU time for contention and the energy estimate."""
    v = (out.get("values") or {}).get("delegated_cpu_s")
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and v > 0 else 0.0
