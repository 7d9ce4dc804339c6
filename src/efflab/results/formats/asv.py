"""An airspeed-velocity (asv) results folder, read: `benchmarks.json` (each benchmark's
type, unit, parameter names) and `<machine>/machine.json` beside one result file per
(commit, environment): `{"commit_hash", "date", "params", "result_columns",
"results": {benchmark: [result, params, version, started_at, duration, ...]}}` (asv's
version 2 format). A parameterised benchmark's `result` is a list over the cartesian
product of its parameter values; a failed or skipped combination is null or NaN and
is left out (asv draws no point for it either).

PATH may be the asv project (its `asv.conf.json` names `results_dir` and `project`)
or the results folder itself. Each measurement becomes an `AsvMeasurement` of
experiment `asv-<project>`, point (benchmark, its parameters, machine, environment).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from efflab.core.errors import BadInput
from efflab.results.formats.foreign import SMALL, Tree

EXPECTED = (
    "an asv results folder (benchmarks.json, <machine>/machine.json and "
    "<machine>/<commit>-<env>.json result files) or an asv project with asv.conf.json"
)
RESULT_CAP = 64 << 20
METRIC = {"time": ("time", "s"), "peakmemory": ("peakmem", "bytes"), "memory": ("mem", "bytes"),
          "track": ("track", "")}  # fmt: skip


@dataclass
class AsvMeasurement:
    experiment: str
    point: dict[str, Any]
    metric: str
    unit: str
    value: float
    commit: str
    date: str  # the commit's date, ISO 8601 UTC
    started: str | None
    file: str
    host: dict[str, Any]
    python: str = ""
    packages: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class AsvResults:
    root: Path
    project: str
    machine: str
    measurements: list[AsvMeasurement]


def _iso(ms: Any, file: Path, where: str) -> str:
    if not isinstance(ms, int | float) or isinstance(ms, bool) or not math.isfinite(ms) or ms < 0:
        raise BadInput(file, where, "a time in milliseconds since 1970", ms)
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _load_conf(tree: Tree, f: Path) -> dict[str, Any]:
    text = tree.read_text(f, SMALL)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # asv.conf.json allows // comments and trailing commas (asv reads it as JSON5)
        stripped = re.sub(r"(?m)^\s*//.*$", "", text)
        stripped = re.sub(r",(\s*[}\]])", r"\1", stripped)
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise BadInput(
                f, "$", "asv's JSON configuration", f"invalid at line {exc.lineno} ({exc.msg})"
            ) from None
    if not isinstance(data, dict):
        raise BadInput(f, "$", "a JSON object", type(data).__name__)
    return data


def read_results(path: Path) -> AsvResults:
    tree = Tree(path, EXPECTED)
    root, project = tree.root, tree.root.name
    conf = root / "asv.conf.json"
    if tree.exists(conf):
        data = _load_conf(tree, conf)
        project = str(data.get("project") or project)
        rel = data.get("results_dir", "results")
        if not isinstance(rel, str):
            raise BadInput(conf, "$.results_dir", "a folder name", rel)
        root = Path(str(root / rel))
        if not tree.is_dir(root):
            raise BadInput(
                conf, "$.results_dir", "a results folder asv wrote (run `asv run` first)", rel
            )
    elif tree.root.name == "results":
        project = tree.root.parent.name
    bench_file = root / "benchmarks.json"
    benchmarks: dict[str, Any] = {}
    if tree.exists(bench_file):
        benchmarks = tree.read_json(bench_file, RESULT_CAP)
        if not isinstance(benchmarks, dict):
            raise BadInput(bench_file, "$", "a JSON object", type(benchmarks).__name__)
    exp = "asv-" + (re.sub(r"[^a-z0-9.-]+", "-", project.lower()).strip("-.") or "project")
    out: list[AsvMeasurement] = []
    machines = []
    for mdir in tree.dirs(root):
        mfile = mdir / "machine.json"
        if not tree.exists(mfile):
            continue
        machine = tree.read_json(mfile)
        if not isinstance(machine, dict):
            raise BadInput(mfile, "$", "a JSON object", type(machine).__name__)
        name = str(machine.get("machine") or mdir.name)
        machines.append(name)
        host = {"hostname": f"asv/{name}", "cpu_model": str(machine.get("cpu") or ""),
                "cores": _int(machine.get("num_cpu")), "os": str(machine.get("os") or ""),
                "memory_gb": round(_int(machine.get("ram")) / 1024**3, 2)}  # fmt: skip
        for f in tree.files(mdir):
            if f.suffix != ".json" or f.name == "machine.json":
                continue
            out += _read_result_file(tree, f, exp, name, host, benchmarks)
    if not machines:
        raise BadInput(root, "$", EXPECTED, "no <machine>/machine.json")
    if not out:
        raise BadInput(root, "$", EXPECTED, "no benchmark result")
    return AsvResults(root, project, "+".join(sorted(set(machines))), out)


def _int(v: Any) -> int:
    try:
        return int(str(v).strip())
    except ValueError:
        return 0


def _read_result_file(tree: Tree, f: Path, exp: str, machine: str, host: dict[str, Any],
                      benchmarks: dict[str, Any]) -> list[AsvMeasurement]:  # fmt: skip
    data = tree.read_json(f, RESULT_CAP)
    if not isinstance(data, dict):
        raise BadInput(f, "$", "an asv result file (a JSON object)", type(data).__name__)
    commit = data.get("commit_hash")
    if not isinstance(commit, str) or not re.fullmatch(r"[0-9a-f]{7,64}", commit):
        raise BadInput(f, "$.commit_hash", "a commit hash", commit)
    date = _iso(data.get("date"), f, "$.date")
    cols = data.get("result_columns")
    if data.get("version") != 2 or not isinstance(cols, list) or "result" not in cols:
        raise BadInput(f, "$.result_columns", "asv's version 2 result format (result_columns with 'result')",
                       cols if data.get("version") == 2 else f"version {data.get('version')!r}")  # fmt: skip
    results = data.get("results")
    if not isinstance(results, dict):
        raise BadInput(f, "$.results", "an object of benchmark results", type(results).__name__)
    env = str(data.get("env_name") or "")
    params = data.get("params") if isinstance(data.get("params"), dict) else {}
    reqs = data.get("requirements") if isinstance(data.get("requirements"), dict) else {}
    out = []
    for name, row in results.items():
        where = f"$.results.{name}"
        if not isinstance(row, list) or len(row) > len(cols):
            raise BadInput(f, where, f"a list of at most {len(cols)} columns", row)
        col = dict(zip(cols, row, strict=False))
        meta = benchmarks.get(name) if isinstance(benchmarks.get(name), dict) else {}
        kind = str(meta.get("type") or name.rsplit(".", 1)[-1].split("_", 1)[0])
        kind = {"peakmem": "peakmemory", "mem": "memory"}.get(kind, kind)
        metric, unit = METRIC.get(kind, ("value", ""))
        unit = str(meta.get("unit") or unit)
        value = col.get("result")
        if value is None:
            continue  # a failed benchmark: asv stores null
        pvals = col.get("params") or []
        if not isinstance(pvals, list) or not all(isinstance(p, list) for p in pvals):
            raise BadInput(f, f"{where}[1]", "a list of parameter value lists", pvals)
        names = list(meta.get("param_names") or [f"param{i + 1}" for i in range(len(pvals))])
        combos = list(itertools.product(*pvals)) if pvals else [()]
        values = value if isinstance(value, list) else [value]
        if len(values) != len(combos):
            raise BadInput(f, f"{where}[0]", f"{len(combos)} results (one per parameter combination)",
                           f"{len(values)}")  # fmt: skip
        started = col.get("started_at")
        for i, (combo, v) in enumerate(zip(combos, values, strict=True)):
            if v is None or (isinstance(v, float) and not math.isfinite(v)):
                continue  # a failed combination
            if not isinstance(v, int | float) or isinstance(v, bool):
                raise BadInput(f, f"{where}[0][{i}]", "a number", v)
            point = {"benchmark": name, **{str(n): str(c) for n, c in zip(names, combo, strict=False)},
                     "machine": machine, "env": env}  # fmt: skip
            extra = {c: (col[c][i] if isinstance(col.get(c), list) and i < len(col[c]) else None)
                     for c in cols if c.startswith("stats_")}  # fmt: skip
            out.append(AsvMeasurement(
                experiment=exp, point=point, metric=metric, unit=unit, value=float(v),
                commit=commit, date=date,
                started=_iso(started, f, f"{where}[3]") if started is not None else None,
                file=str(f), host=host, python=str(params.get("python") or data.get("python") or ""),
                packages={str(k): str(x) for k, x in reqs.items()},
                values={"version": col.get("version"), "duration_s": col.get("duration"),
                        **{k: (x if isinstance(x, int | float) and math.isfinite(x) else None)
                           for k, x in extra.items()}},
            ))  # fmt: skip
    return out
