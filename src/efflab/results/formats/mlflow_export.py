"""`efflab results export --mlflow URI [EXP...]`: each run record as an MLflow run.

An efflab experiment is an MLflow experiment of the same name; each record (the
project's own in `results/<exp>/runs/`, and imported ones under `hosts/<host>/runs/`)
is one run named by its invocation key:

- the point's parameters are the run's params (values as JSON when not strings);
- each metric is a metric, its unit and direction the tags `efflab.unit.<m>` and
  `efflab.better.<m>`;
- provenance is tags: `mlflow.source.git.commit`, `efflab.git.dirty`, `efflab.host`,
  `efflab.cpu`, `efflab.runtime`, `efflab.python`, `efflab.energy_method`, `efflab.env`,
  `efflab.image`, `efflab.imported.format`, `efflab.record` (the record's JSON path);
- a failed record is a FAILED run with `efflab.error`.

Re-export is idempotent: a run whose `efflab.key` tag (key + host) is already in the
experiment is left as it is. The client is `mlflow-skinny` (the full `mlflow`
package pins pyarrow < 26, below this project's pin; the server runs from its own
environment, see docs/formats.md).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from efflab.core import layout
from efflab.core.errors import BadInput, RunFailed
from efflab.results.importer import record_host


@dataclass
class Exported:
    uri: str
    experiments: dict[str, dict[str, int]] = field(default_factory=dict)
    runs_created: int = 0
    runs_unchanged: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _records(repo: Path, exp: str) -> list[tuple[Path, dict[str, Any]]]:
    root = layout.experiment_dir(repo, exp)
    folders = [root / "runs"]
    hosts = layout.hosts_dir(repo, exp)
    if hosts.is_dir():
        folders += sorted(d / "runs" for d in hosts.iterdir() if (d / "runs").is_dir())
    out = []
    for d in folders:
        for f in sorted(d.glob("*.json")) if d.is_dir() else []:
            try:
                rec = json.loads(f.read_bytes())
            except (OSError, ValueError) as exc:
                raise BadInput(f, "$", "a run record", f"unreadable ({exc})",
                               f"run `efflab results check {exp} --repair`") from None  # fmt: skip
            if not isinstance(rec, dict) or not isinstance(rec.get("metrics"), dict):
                raise BadInput(f, "$.metrics", "a run record with metrics", type(rec).__name__)
            out.append((f, rec))
    return out


def experiments(repo: Path) -> list[str]:
    root = layout.results_dir(repo)
    if not root.is_dir():
        return []
    return sorted(
        d.name
        for d in root.iterdir()
        if d.is_dir() and ((d / "runs").is_dir() or (d / "hosts").is_dir())
    )


def _ms(iso: Any) -> int | None:
    if not isinstance(iso, str) or not iso:
        return None
    try:
        return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def _param(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    return text[:6000]  # MLflow's limit on a param value


def _tag(v: Any) -> str:
    text = (
        "" if v is None else v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    )
    return text[:8000]


def run_key(rec: dict[str, Any]) -> str:
    """What identifies a record across machines: its key and its host."""
    return f"{rec.get('key')}@{record_host(rec)}"


def tags_of(repo: Path, f: Path, rec: dict[str, Any]) -> dict[str, str]:
    prov = rec.get("provenance") or {}
    git = prov.get("git") or {}
    host = prov.get("host") or {}
    tags = {
        "efflab.key": run_key(rec),
        "efflab.invocation_key": str(rec.get("key")),
        "efflab.experiment": str(rec.get("experiment")),
        "efflab.alias": str(rec.get("alias") or ""),
        "efflab.repetition": str(rec.get("repetition")),
        "efflab.run_id": str(rec.get("run_id") or ""),
        "efflab.status": str(rec.get("status")),
        "efflab.record": str(f.relative_to(repo)),
        "mlflow.source.git.commit": str(git.get("commit") or ""),
        "efflab.git.dirty": _tag(git.get("dirty")),
        "efflab.host": record_host(rec),
        "efflab.cpu": str(host.get("cpu_model") or ""),
        "efflab.cores": _tag(host.get("cores")),
        "efflab.os": str(host.get("os") or ""),
        "efflab.runtime": str(prov.get("runtime") or ""),
        "efflab.python": str(prov.get("python") or ""),
        "efflab.energy_method": str(prov.get("energy_method") or ""),
        "efflab.env": str(prov.get("env") or ""),
        "efflab.image": str(prov.get("image") or ""),
        "efflab.contended": _tag(rec.get("contended")),
    }
    if prov.get("imported"):
        tags["efflab.imported.format"] = str(prov["imported"].get("format") or "")
        tags["efflab.imported.source"] = str(prov["imported"].get("source") or "")
    for m, v in rec["metrics"].items():
        tags[f"efflab.unit.{m}"] = str(v.get("unit", ""))
        tags[f"efflab.better.{m}"] = str(v.get("better", ""))
    if rec.get("status") == "failed":
        tags["efflab.error"] = _tag(rec.get("error"))
        tags["efflab.failure_kind"] = str(rec.get("failure_kind") or "")
    return {k: _tag(v) for k, v in tags.items()}


def export(repo: Path, uri: str, names: Iterable[str] | None = None,
           on_progress: Callable[[str], None] | None = None) -> Exported:  # fmt: skip
    try:
        os.environ.setdefault(
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"
        )  # fail in seconds, not minutes
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        # no "View run at ..." lines on stdout (and no get_run per run to print them)
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        from mlflow.entities import Metric, Param
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise RunFailed(
            f"MLflow's client is not installed ({exc}): pip install mlflow-skinny==3.17.2"
        ) from None
    known = experiments(repo)
    wanted = list(names or known)
    for n in wanted:
        if n not in known:
            raise BadInput(layout.results_dir(repo), "$.experiment",
                           f"an experiment with run records ({', '.join(known) or 'none'})", n)  # fmt: skip
    out = Exported(uri=uri)
    client = MlflowClient(tracking_uri=uri)
    try:
        for exp in wanted:
            recs = _records(repo, exp)
            mexp = client.get_experiment_by_name(exp)
            exp_id = mexp.experiment_id if mexp else client.create_experiment(
                exp, tags={"efflab.experiment": exp})  # fmt: skip
            have = set()
            page = None
            while True:
                runs = client.search_runs([exp_id], max_results=1000, page_token=page)
                have |= {r.data.tags.get("efflab.key") for r in runs}
                page = runs.token
                if not page:
                    break
            stats = {"records": len(recs), "created": 0, "unchanged": 0}
            for f, rec in recs:
                if run_key(rec) in have:
                    stats["unchanged"] += 1
                    continue
                start = _ms(rec.get("started")) or int(time.time() * 1000)
                run = client.create_run(exp_id, start_time=start, tags=tags_of(repo, f, rec),
                                        run_name=str(rec.get("key")))  # fmt: skip
                params = [Param(str(k), _param(v)) for k, v in (rec.get("point") or {}).items()]
                metrics = [
                    Metric(m, float(v["value"]), start, 0) for m, v in rec["metrics"].items()
                ]
                for i in range(0, max(len(metrics), len(params), 1), 100):  # MLflow's batch limit
                    client.log_batch(run.info.run_id, metrics=metrics[i : i + 100],
                                     params=params[i : i + 100])  # fmt: skip
                end = _ms(rec.get("ended")) or start
                client.set_terminated(run.info.run_id, "FINISHED" if rec.get("status") == "ok" else "FAILED",
                                      end_time=end)  # fmt: skip
                have.add(run_key(rec))
                stats["created"] += 1
                if on_progress and stats["created"] % 50 == 0:
                    on_progress(f"{exp}: {stats['created']} runs logged")
            out.experiments[exp] = stats
            out.runs_created += stats["created"]
            out.runs_unchanged += stats["unchanged"]
    except MlflowException as exc:
        raise RunFailed(f"MLflow at {uri} refused: {exc.message[:300]}") from None
    return out
