"""An MLPerf inference submission tree, read: `<division>/<submitter>/`, with

    systems/<system>.json                                   the system description
    results/<system>/<benchmark>/<scenario>/performance/run_<n>/mlperf_log_{summary,detail}.txt
    results/<system>/<benchmark>/<scenario>/accuracy/accuracy.txt (+ its LoadGen logs)
    measurements/<system>/<benchmark>/<scenario>/<system>[_<implementation>].json, README.md,
                                                           user.conf, *_info.json, ...

PATH may be the tree's root (holding `closed/`, `open/`, `network/`), one division,
or one submitter's folder. Each (system, benchmark, scenario) becomes an `MLPerfResult`:
its performance runs (`efflab.results.formats.loadgen`), its accuracy numbers, the
system description and the measurement files. Nothing is written here; malformed
input is BadInput naming the file and the field.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from efflab.core.errors import BadInput
from efflab.results.formats import loadgen
from efflab.results.formats.foreign import SMALL, Tree

DIVISIONS = ("closed", "open", "network")
EXPECTED = (
    "an MLPerf inference submission tree (<division>/<submitter>/ with results/<system>/"
    "<benchmark>/<scenario>/performance/run_<n>/mlperf_log_summary.txt and systems/<system>.json)"
)
# system description fields that become point parameters (what the site filters by)
POINT_FIELDS = {
    "framework": "framework",
    "accelerator": "accelerator_model_name",
    "accelerators_per_node": "accelerators_per_node",
    "processor": "host_processor_model_name",
}
LOWER_ACCURACY = {"fid_score"}  # FID: lower is better; the others are scores or rates


@dataclass
class Accuracy:
    metrics: dict[str, loadgen.Metric] = field(default_factory=dict)
    file: str = ""


@dataclass
class MLPerfResult:
    division: str
    submitter: str
    system: str
    benchmark: str
    scenario: str  # as LoadGen names it (Offline, Server, ...)
    implementation: str
    runs: list[loadgen.LoadGenRun]
    system_desc: dict[str, Any]
    system_file: str
    measurements: dict[str, Any] = field(default_factory=dict)  # file name -> content
    accuracy: Accuracy | None = None
    folder: str = ""

    @property
    def experiment(self) -> str:
        return experiment_name(self.benchmark, self.scenario)

    def point(self) -> dict[str, Any]:
        p: dict[str, Any] = {"system": self.system, "implementation": self.implementation}
        for name, key in POINT_FIELDS.items():
            v = self.system_desc.get(key)
            p[name] = str(v) if v not in (None, "") else "unknown"
        p["submitter"] = self.submitter
        p["division"] = self.division
        return p


def experiment_name(benchmark: str, scenario: str) -> str:
    slug = re.sub(r"[^a-z0-9.-]+", "-", f"{benchmark}-{scenario}".lower()).strip("-.")
    return f"mlperf-{slug}"


def scenario_name(folder: str, file: Path) -> str:
    for s in loadgen.SCENARIOS:
        if folder.lower() == s.lower():
            return s
    raise BadInput(file, "$", f"a scenario folder ({', '.join(loadgen.SCENARIOS)})", folder)


def submitters(tree: Tree) -> list[tuple[str, str, Path]]:
    """(division, submitter, folder) for every submitter under the tree's root."""
    root = tree.root

    def is_sub(p: Path) -> bool:
        return tree.is_dir(p / "results")

    if is_sub(root):
        div = root.parent.name if root.parent.name in DIVISIONS else "open"
        return [(div, root.name, root)]
    if root.name in DIVISIONS:
        return [(root.name, s.name, s) for s in tree.dirs(root) if is_sub(s)]
    out = []
    for d in tree.dirs(root):
        if d.name in DIVISIONS:
            out += [(d.name, s.name, s) for s in tree.dirs(d) if is_sub(s)]
    return out


def read_tree(path: Path) -> list[MLPerfResult]:
    tree = Tree(path, EXPECTED)
    subs = submitters(tree)
    if not subs:
        found = sorted(p.name for p in tree.entries(tree.root))[:8]
        raise BadInput(tree.root, "$", EXPECTED, f"entries {found}" if found else "an empty folder")
    out: list[MLPerfResult] = []
    for division, submitter, folder in subs:
        out += _read_submitter(tree, division, submitter, folder)
    if not out:
        raise BadInput(tree.root, "$.results", EXPECTED, "no performance run")
    return out


def _read_submitter(tree: Tree, division: str, submitter: str, folder: Path) -> list[MLPerfResult]:
    out = []
    for sysdir in tree.dirs(folder / "results"):
        system = sysdir.name
        sys_file = folder / "systems" / f"{system}.json"
        desc = tree.read_json(sys_file) if tree.exists(sys_file) else None
        if desc is None:
            raise BadInput(sys_file, "$", f"the system description of {system}", "no such file")
        if not isinstance(desc, dict):
            raise BadInput(sys_file, "$", "a JSON object", type(desc).__name__)
        for k, v in desc.items():
            if not isinstance(v, str | int | float | bool | None):
                raise BadInput(sys_file, f"$.{k}", "a string, number or boolean", type(v).__name__)
        for bench in tree.dirs(sysdir):
            for scen in tree.dirs(bench):
                out.append(_read_result(tree, division, submitter, folder, system, desc, sys_file,
                                        bench.name, scen))  # fmt: skip
    return out


def _read_result(tree: Tree, division: str, submitter: str, folder: Path, system: str,
                 desc: dict[str, Any], sys_file: Path, benchmark: str, scen: Path) -> MLPerfResult:  # fmt: skip
    scenario = scenario_name(scen.name, scen)
    perf = scen / "performance"
    run_dirs = [d for d in tree.dirs(perf) if re.fullmatch(r"run_\d+", d.name)]
    if not run_dirs:
        raise BadInput(perf, "$", "performance/run_<n>/ with LoadGen's logs", "no run folder")
    runs = []
    for d in sorted(run_dirs, key=lambda p: int(p.name[4:])):
        run = loadgen.read_run(d, tree.read_text)
        if run.scenario != scenario:
            raise BadInput(
                d / loadgen.SUMMARY, "$.Scenario", f"{scenario} (its folder)", run.scenario
            )
        runs.append(run)
    meas_dir = folder / "measurements" / system / benchmark / scen.name
    measurements: dict[str, Any] = {}
    impl = "default"
    for f in tree.files(meas_dir):
        if f.suffix == ".json":
            measurements[f.name] = tree.read_json(f, SMALL)
            if f.name == f"{system}.json":
                impl = "default"
            elif f.name.startswith(f"{system}_"):
                impl = f.name[len(system) + 1 : -5] or "default"
        elif f.name in ("user.conf", "mlperf.conf", "README.md"):
            measurements[f.name] = tree.read_text(f, SMALL)
    acc = _accuracy(tree, scen / "accuracy")
    return MLPerfResult(division, submitter, system, benchmark, scenario, impl, runs, desc,
                        str(sys_file), measurements, acc, str(scen))  # fmt: skip


def _num_metric(name: str, value: Any, file: Path) -> loadgen.Metric | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if v != v or v in (float("inf"), float("-inf")):
        raise BadInput(file, f"$.{name}", "a finite number", value)
    key = "acc_" + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    better = "lower" if key.removeprefix("acc_") in LOWER_ACCURACY else "higher"
    return loadgen.Metric(v, "%" if name.endswith("%") else "score", better)


def parse_accuracy(text: str, file: Path) -> dict[str, loadgen.Metric]:
    """accuracy.txt as the reference implementations write it: `accuracy=76.0%, ...`,
    `mAP=49.593%`, a JSON object, or a Python dict literal (parsed with
    ast.literal_eval: data, never code)."""
    out: dict[str, loadgen.Metric] = {}
    for line in text.splitlines():
        s = line.strip()
        for m in re.finditer(r"\b([A-Za-z][A-Za-z0-9_]*)=([-+]?\d+(?:\.\d+)?)(%)", s):
            met = _num_metric(m.group(1), m.group(2), file)
            if met:
                met.unit = "%" if m.group(3) else "score"
                out[f"acc_{m.group(1).lower()}"] = met
        brace = s.find("{")
        if brace < 0 or not s.endswith("}"):
            continue
        blob = s[brace:]
        # one line may hold several dicts; the reference scripts print one per line
        try:
            data = json.loads(blob)
        except ValueError:
            try:
                data = ast.literal_eval(blob)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
        if isinstance(data, dict):
            for k, v in data.items():
                met = _num_metric(str(k), v, file)
                if met:
                    out["acc_" + re.sub(r"[^a-z0-9]+", "_", str(k).lower()).strip("_")] = met
    return out


def _accuracy(tree: Tree, folder: Path) -> Accuracy | None:
    f = folder / "accuracy.txt"
    if not tree.exists(f):
        return None
    return Accuracy(parse_accuracy(tree.read_text(f, SMALL), f), str(f))


# --- into efflab records ------------------------------------------------------------

PARAMS = ["system", "implementation", *POINT_FIELDS, "submitter", "division"]
ALIAS = "mlperf-loadgen"


def _gb(text: Any) -> float:
    m = re.match(r"^\s*([\d.]+)\s*([KMGT]?)i?B?", str(text or ""), re.I)
    if not m:
        return 0.0
    scale = {"": 1 / 1024**3, "K": 1 / 1024**2, "M": 1 / 1024, "G": 1, "T": 1024}[
        m.group(2).upper()
    ]
    try:
        return round(float(m.group(1)) * scale, 2)
    except ValueError:
        return 0.0


def _int(text: Any) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        return 0


def host_of(r: MLPerfResult) -> dict[str, Any]:
    d = r.system_desc
    return {
        "hostname": f"{r.submitter}/{r.system}",
        "cpu_model": str(d.get("host_processor_model_name") or ""),
        "cores": _int(d.get("host_processor_core_count"))
        * max(_int(d.get("host_processors_per_node")), 1),
        "memory_gb": _gb(d.get("host_memory_capacity")),
        "os": str(d.get("operating_system") or ""),
        "accelerator": str(d.get("accelerator_model_name") or ""),
        "accelerators_per_node": _int(d.get("accelerators_per_node")),
    }


def _python(r: MLPerfResult) -> str:
    m = re.search(r"Python version:\s*([0-9][^\s]*)", str(r.measurements.get("README.md") or ""))
    return m.group(1) if m else ""


def _packages(r: MLPerfResult) -> dict[str, str]:
    for name, data in r.measurements.items():
        if name == "pip_freeze.json" and isinstance(data, dict):
            inner = data.get("pip_freeze", data)
            if isinstance(inner, dict):
                return {str(k): str(v) for k, v in inner.items()}
    return {}


def run_metrics(run: loadgen.LoadGenRun, acc: Accuracy | None) -> dict[str, dict[str, Any]]:
    out = {
        k: {"value": m.value, "unit": m.unit, "better": m.better} for k, m in run.metrics.items()
    }
    for k, m in (acc.metrics if acc else {}).items():
        out[k] = {"value": m.value, "unit": m.unit, "better": m.better}
    return out


def run_values(run: loadgen.LoadGenRun) -> dict[str, Any]:
    return {
        "mlperf": {
            "scenario": run.scenario,
            "mode": run.mode,
            "validity": run.validity,
            "invalid_reason": run.invalid_reason,
            "early_stopping": run.early_stopping,
            "result_metric": run.headline,
            "sut_name": run.sut_name,
            "loadgen_version": run.loadgen_version,
            "test_settings": run.test_settings,
            "errors": run.errors,
            "warnings": run.warnings,
        }
    }


def to_records(results: list[MLPerfResult], source: str) -> dict[str, list[dict[str, Any]]]:
    from efflab.results.formats.ingest import content_key, record

    by_exp: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        point = r.point()
        for i, run in enumerate(r.runs):
            metrics = run_metrics(run, r.accuracy)
            values = run_values(run)
            key = content_key({"format": "mlperf", "point": point, "benchmark": r.benchmark,
                               "scenario": r.scenario, "run": i, "metrics": metrics,
                               "values": values, "started": run.test_datetime})  # fmt: skip
            imported = {
                "format": "mlperf",
                "source": source,
                "files": {
                    **run.files,
                    **({"accuracy": r.accuracy.file} if r.accuracy else {}),
                    "system": r.system_file,
                },  # fmt: skip
                "benchmark": r.benchmark,
                "scenario": r.scenario,
                "system_description": r.system_desc,
                "measurements": {k: v for k, v in r.measurements.items() if k != "pip_freeze.json"},
            }
            by_exp.setdefault(r.experiment, []).append(
                record(
                    experiment=r.experiment,
                    key=key,
                    alias=ALIAS,
                    point=point,
                    repetition=i,
                    metrics=metrics,
                    run_id=f"import-mlperf-{r.division}-{r.submitter}",
                    started=run.test_datetime,
                    host=host_of(r),
                    imported=imported,
                    values=values,
                    python=_python(r),
                    packages=_packages(r),
                )  # fmt: skip
            )
    return by_exp


def import_tree(repo: Path, path: Path, on_progress=None):
    """`efflab results import --format mlperf PATH` for a submission tree."""
    from efflab.results.formats.ingest import Ingested, write_source

    results = read_tree(path)
    subs = sorted({(r.division, r.submitter) for r in results})
    host = "mlperf-" + "+".join(s for _, s in subs)
    res = Ingested(source=str(Path(path).resolve()), format="mlperf", host=host)
    by_exp = to_records(results, res.source)
    for r in results:
        for i, run in enumerate(r.runs):
            if not run.valid:
                res.invalid.append({"experiment": r.experiment, "system": r.system,
                                    "implementation": r.implementation, "run": i + 1,
                                    "reason": run.invalid_reason or run.early_stopping or "INVALID"})  # fmt: skip
    return write_source(repo, host, by_exp, {e: PARAMS for e in by_exp}, res)
