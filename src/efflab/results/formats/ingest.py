"""Foreign results (MLPerf, asv) as efflab run records and table versions.

An imported record is a run record like any other (schema-checked), with
`provenance.imported` saying where it came from (format, source, files) and the key
a content hash of what it says (identity and numbers), so importing the same files
twice adds nothing and a changed result is a new record, never an overwrite. A
submission's records land where another machine's would (`efflab.results.importer`):
`results/<exp>/hosts/<source>/runs/`, with one table version per import of changed
content under `.../tables/`; the site shows them beside the project's own runs.
Everything is built and checked before the first write.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from efflab.core import layout
from efflab.core.errors import BadInput
from efflab.core.specio import atomic_write_json, canonical_json, validate
from efflab.results import tables
from efflab.results.importer import host_slug


def content_key(identity: dict[str, Any]) -> str:
    """A record key (20 hex digits) from what the record says."""
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:20]


def record(
    *,
    experiment: str,
    key: str,
    alias: str,
    point: dict[str, Any],
    repetition: int,
    metrics: dict[str, dict[str, Any]],
    run_id: str,
    started: str | None,
    host: dict[str, Any],
    imported: dict[str, Any],
    values: dict[str, Any] | None = None,
    inputs: dict[str, Any] | None = None,
    git: dict[str, Any] | None = None,
    python: str = "",
    packages: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A schema-valid run record for a foreign measurement (see the module doc)."""
    return {
        "schema_version": 1,
        "run_id": run_id,
        "experiment": experiment,
        "key": key,
        "alias": alias,
        "point": point,
        "repetition": repetition,
        "status": "ok",
        "metrics": metrics,
        "inputs": inputs if inputs is not None else dict(point),
        "values": values or {},
        "started": started,
        "ended": None,
        "duration_s": None,
        "contended": None,
        "contention": None,
        "provenance": {
            "git": git or {"commit": None, "dirty": None},
            "host": host,
            "python": python,
            "packages": packages or {},
            "runtime": "host",
            "image": None,
            "env": None,
            "env_digest": None,
            "energy_method": "estimated:none",
            "energy_joules": None,
            "seeds": {},
            "script": {"alias": alias, "dir": None},
            "imported": imported,
        },
    }


@dataclass
class Ingested:
    """What one import wrote, per experiment."""

    source: str
    format: str
    host: str
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    records_added: int = 0
    records_unchanged: int = 0
    tables_added: int = 0
    invalid: list[dict[str, Any]] = field(default_factory=list)
    nights: list[dict[str, Any]] = field(default_factory=list)
    change_points: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def source_root(repo: Path, experiment: str, host: str) -> Path:
    """Where an imported source's runs/ and tables/ live."""
    return layout.hosts_dir(repo, experiment) / host_slug(host)


def _read(f: Path) -> dict[str, Any] | None:
    try:
        return json.loads(f.read_bytes())
    except (OSError, ValueError):
        return None


def _check(rec: dict[str, Any], target: Path) -> None:
    """The parts of a record that vary between records of one import: finite numbers,
    a unit, a direction (the rest is built by `record` and schema-checked once)."""
    for m, v in rec["metrics"].items():
        x = v.get("value")
        if not isinstance(x, int | float) or isinstance(x, bool) or not math.isfinite(x):
            raise BadInput(target, f"$.metrics.{m}.value", "a finite number", x)
        if v.get("better") not in ("lower", "higher") or not isinstance(v.get("unit"), str):
            raise BadInput(target, f"$.metrics.{m}", "a unit and better: lower|higher", v)


def plan_records(
    by_exp: dict[str, list[dict[str, Any]]], runs_of: dict[str, Path]
) -> tuple[list[tuple[Path, dict[str, Any]]], int]:
    """(files to write, records already there); a same-key record with other content
    is BadInput (records are never overwritten). The first new record of each
    experiment is schema-checked in full, every one's metrics are checked."""
    todo, same = [], 0
    for exp, recs in by_exp.items():
        schema_checked = False
        for rec in recs:
            target = runs_of[exp] / f"{rec['key']}.json"
            if target.exists():
                if _read(target) == json.loads(json.dumps(rec)):
                    same += 1
                    continue
                raise BadInput(target, "$", "the same record as the import makes (same content key)",
                               "a different record", "records are never overwritten: remove it")  # fmt: skip
            if not schema_checked:
                validate(rec, "run-record", target)
                schema_checked = True
            _check(rec, target)
            todo.append((target, rec))
    return todo, same


def write_source(
    repo: Path,
    host: str,
    by_exp: dict[str, list[dict[str, Any]]],
    params: dict[str, list[str]],
    res: Ingested,
) -> Ingested:
    """Records into `hosts/<host>/runs/`, and per experiment a table version of this
    import's records (a new version only when the content changed)."""
    runs_of = {e: source_root(repo, e, host) / "runs" for e in by_exp}
    todo, res.records_unchanged = plan_records(by_exp, runs_of)
    frames = {e: tables.aggregate(recs, params[e]) for e, recs in by_exp.items()}
    for target, rec in todo:
        atomic_write_json(target, rec)
        res.records_added += 1
    for exp, df in frames.items():
        keys = sorted({r["key"] for r in by_exp[exp]})
        v, new = tables.save(repo, exp, df, None, {"keys": keys, "source": res.source,
                                                   "format": res.format},
                             root=source_root(repo, exp, host) / "tables")  # fmt: skip
        res.tables_added += int(new)
        res.experiments[exp] = {"records": len(by_exp[exp]), "points": int(df[params[exp]].drop_duplicates().shape[0]) if len(df) else 0,
                                "table_version": v, "new_version": new}  # fmt: skip
    return res
