"""`efflab mlperf export EXP --submitter NAME --division open OUT`: an MLPerf inference
submission tree from an experiment whose script ran LoadGen.

A LoadGen experiment (`scripts/serve-loadgen`) keeps LoadGen's own logs as declared
file outputs (`summary`, `detail`; `mlperf_log_accuracy.json` beside them when
LoadGen wrote one). The tree:

    OUT/<division>/<submitter>/systems/<system>.json          (this machine, sysdesc)
    .../results/<system>/<EXP>/<Scenario>/performance/run_<r>/mlperf_log_{summary,detail}.txt
    .../measurements/<system>/<EXP>/<Scenario>/<system>_<implementation>.json, README.md

One system per implementation (MLPerf ties a result folder to one system
description): the implementation is the point's parameters other than `scenario`;
`run_<r>` is repetition r. Logs are copied byte for byte and parsed first with the
same parser `efflab results import --format mlperf` uses, so a log that the importer
would refuse is refused here. The measurement JSON carries an `efflab` block (the
record keys, point and provenance) so the round trip export -> import loses nothing.
The tree is built aside and renamed into place; an existing submitter folder is never
overwritten.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from efflab.core import layout
from efflab.core.errors import BadInput
from efflab.results import records
from efflab.results.formats import loadgen, sysdesc
from efflab.results.importer import host_slug
from efflab.results.provenance import host_info
from efflab.results.runrecord import RunRecord


@dataclass
class Exported:
    out: str
    submitter: str
    division: str
    systems: dict[str, dict[str, str]] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    unfilled: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", s).strip("-.") or "default"


def implementation(point: dict[str, Any]) -> str:
    rest = [f"{k}-{v}" for k, v in sorted(point.items()) if k != "scenario"]
    return _slug("_".join(rest)) if rest else "default"


def _logs(repo: Path, rec: RunRecord) -> tuple[Path, Path, Path]:
    folder = layout.invocation_dir(repo, rec.alias, rec.key)
    out_file = folder / "outputs.json"
    try:
        outputs = json.loads(out_file.read_bytes())
    except FileNotFoundError:
        raise BadInput(out_file, "$", "the invocation's outputs (its artifacts folder)", "no such file",
                       "the record's artifacts were removed: run the experiment again") from None  # fmt: skip
    except (OSError, ValueError) as exc:
        raise BadInput(out_file, "$", "a complete outputs.json", str(exc)) from None
    files = outputs.get("files") or {}
    for role in ("summary", "detail"):
        if not isinstance(files.get(role), str):
            raise BadInput(out_file, f"$.files.{role}",
                           "LoadGen's log as a declared file output (a LoadGen experiment's script)",
                           files.get(role))  # fmt: skip
    s, d = folder / files["summary"], folder / files["detail"]
    return s, d, s.parent / "mlperf_log_accuracy.json"


def export(repo: Path, experiment: str, submitter: str, division: str, out: Path,
           system: str | None = None) -> Exported:  # fmt: skip
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", submitter):
        raise BadInput(None, "--submitter", "a name of letters, digits, '_', '.', '-'", submitter)
    recs = sorted(
        records.load(repo, experiment),
        key=lambda r: (json.dumps(r.point, sort_keys=True), r.repetition),
    )
    if not recs:
        raise BadInput(
            layout.runs_dir(repo, experiment),
            "$",
            f"run records of '{experiment}' (run it first)",
            "none",
        )
    base = _slug(system or host_slug(host_info()["hostname"]))
    target = Path(out) / division / submitter
    if target.exists():
        raise BadInput(target, "$", "a submitter folder that does not exist yet", "an existing folder",
                       "export into a fresh OUT (a submission is never overwritten)")  # fmt: skip
    plan: list[dict[str, Any]] = []
    runs: dict[tuple[str, str], int] = {}
    for rec in recs:
        s, d, acc = _logs(repo, rec)
        run = loadgen.parse_run(s.read_text(), s, d.read_text(), d)  # the importer's parser
        impl = implementation(rec.point)
        sysname = f"{base}-{impl}" if impl != "default" else base
        n = runs[(sysname, run.scenario)] = runs.get((sysname, run.scenario), 0) + 1
        plan.append({"rec": rec, "run": run, "system": sysname, "impl": impl, "n": n,
                     "files": [s, d] + ([acc] if acc.is_file() else [])})  # fmt: skip
    res = Exported(out=str(target), submitter=submitter, division=division)
    pk = recs[0].provenance.get("packages") or {}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-export-"))
    try:
        for p in plan:
            sysname, scen, rec = p["system"], p["run"].scenario, p["rec"]
            if sysname not in res.systems:
                desc = sysdesc.describe(submitter, division, sysname, repo, pk)
                res.systems[sysname] = desc
                _write(tmp / "systems" / f"{sysname}.json", json.dumps(desc, indent=2) + "\n")
            rdir = tmp / "results" / sysname / experiment / scen / "performance" / f"run_{p['n']}"
            rdir.mkdir(parents=True)
            for f in p["files"]:
                shutil.copyfile(f, rdir / f.name)
            mdir = tmp / "measurements" / sysname / experiment / scen
            mfile = mdir / f"{sysname}_{p['impl']}.json"
            meta = json.loads(mfile.read_text()) if mfile.exists() else {
                "input_data_types": "N/A", "retraining": "no",
                "starting_weights_filename": "N/A (efflab script; see the efflab block)",
                "weight_data_types": "N/A", "weight_transformations": "no",
                "efflab": {"experiment": experiment, "implementation": p["impl"],
                           "point": rec.point, "alias": rec.alias, "runs": {}},
            }  # fmt: skip
            prov = rec.provenance
            meta["efflab"]["runs"][f"run_{p['n']}"] = {
                "key": rec.key, "repetition": rec.repetition, "run_id": rec.run_id,
                "git": prov.get("git"), "env_digest": prov.get("env_digest"), "inputs": rec.inputs,
            }  # fmt: skip
            _write(mfile, json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
            readme = mdir / "README.md"
            if not readme.exists():
                _write(readme, f"# {experiment} ({scen}), {p['impl']}\n\nMeasured with efflab: "
                               f"`efflab run {experiment}`; exported with `efflab mlperf export "
                               f"{experiment} --submitter {submitter} --division {division}`.\n"
                               f"Python version: {prov.get('python', '')}\n")  # fmt: skip
            res.results.append({"system": sysname, "benchmark": experiment, "scenario": scen,
                                "run": p["n"], "key": rec.key, "validity": p["run"].validity})  # fmt: skip
        tmp.chmod(0o755)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res.unfilled = sysdesc.unfilled(next(iter(res.systems.values())))
    return res


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
