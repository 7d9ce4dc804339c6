"""RunRecord: one run record as a typed, versioned value — the dict stays at the JSON edge.

A record crosses six layers (records -> tables, index, papers, tournaments, nightly,
site); as a raw dict every reader re-implemented its defaults
(`(out or {}).get("runtime", "host")`). Here the record is read once, migrated to the
current schema once (as asv's `Results` migrates old result files on load), and
handed on frozen. `to_json` gives back exactly the JSON the schema
(core/schemas/run-record.schema.json) describes; `from_json` accepts every schema
version ever written.

Versions:
    1  the first record
    2  provenance.identity: what the invocation key was computed for (runtime kind,
       device class, image; efflab.core.runtime_identity). A version-1 record is read
       with identity {kind: its provenance.runtime, device: "unknown", image: its
       provenance.image} — the device it ran on was not recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from efflab.core.errors import BadInput
from efflab.core.runtime_identity import RuntimeIdentity

SCHEMA_VERSION = 2
OK, FAILED = "ok", "failed"


@dataclass(frozen=True)
class Metric:
    value: float
    unit: str
    better: str  # "lower" | "higher"

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, "better": self.better}


def _migrate_1(data: dict[str, Any]) -> dict[str, Any]:
    prov = dict(data.get("provenance") or {})
    prov.setdefault(
        "identity",
        {"kind": prov.get("runtime", "host"), "device": "unknown", "image": prov.get("image")},
    )
    return {**data, "provenance": prov, "schema_version": 2}


MIGRATIONS = {1: _migrate_1}  # version -> the step to version + 1


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """A record of any written version, as the current version (a new dict)."""
    version = data.get("schema_version", 1)
    while version in MIGRATIONS:
        data = MIGRATIONS[version](data)
        version = data["schema_version"]
    return data


@dataclass(frozen=True)
class RunRecord:
    """One (experiment, point, repetition) run: measured metrics and where they came from."""

    key: str
    experiment: str
    alias: str
    point: dict[str, Any]
    repetition: int
    status: str  # OK | FAILED
    metrics: dict[str, Metric]
    run_id: str
    started: str | None
    ended: str | None
    duration_s: float | None
    provenance: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    contended: bool | None = None
    contention: dict[str, Any] | None = None
    pinning: dict[str, Any] | None = None  # cores an exclusive job had (efflab.runtime.pinning)
    error: str | None = None
    failure_kind: str | None = None
    log_tail: str | None = None
    failed_step: str | None = None
    schema_version: int = SCHEMA_VERSION

    # -- what readers ask of a record --------------------------------------------------

    @property
    def ok(self) -> bool:
        return self.status == OK

    def value(self, metric: str) -> float | None:
        m = self.metrics.get(metric)
        return None if m is None else m.value

    def metric_values(self) -> dict[str, float]:
        return {name: m.value for name, m in self.metrics.items()}

    @property
    def runtime(self) -> str:
        return str(self.provenance.get("runtime", "host"))

    @property
    def identity(self) -> RuntimeIdentity:
        return RuntimeIdentity.from_json(self.provenance["identity"])

    @property
    def commit(self) -> str | None:
        return (self.provenance.get("git") or {}).get("commit")

    @property
    def file_name(self) -> str:
        """Its file under results/<exp>/runs/."""
        return f"{self.key}.json" if self.ok else f"{self.key}.failed.json"

    def at_point(self, params: dict[str, Any]) -> RunRecord:
        """The same run seen at another plan's point (a collapsed grid axis)."""
        return replace(self, point=dict(params))

    # -- the JSON edge -----------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": self.schema_version,
            "run_id": self.run_id,
            "experiment": self.experiment,
            "key": self.key,
            "alias": self.alias,
            "point": self.point,
            "repetition": self.repetition,
            "status": self.status,
            "metrics": {name: m.to_json() for name, m in self.metrics.items()},
            "inputs": self.inputs,
            "values": self.values,
            "started": self.started,
            "ended": self.ended,
            "duration_s": self.duration_s,
            "contended": self.contended,
            "contention": self.contention,
            "pinning": self.pinning,
            "provenance": self.provenance,
        }
        if not self.ok:
            out.update(
                error=self.error,
                failure_kind=self.failure_kind,
                log_tail=self.log_tail,
                failed_step=self.failed_step,
            )
        return out

    @classmethod
    def from_json(cls, data: Any, file: Path | str = "run record") -> RunRecord:
        """A record of any schema version; BadInput naming the file and field when a
        field every reader relies on is missing or of the wrong type (the full schema
        check is `efflab results check`)."""
        if not isinstance(data, dict):
            raise BadInput(file, "$", "a JSON object (a run record)", type(data).__name__)
        for name, kind in (("key", str), ("point", dict), ("status", str), ("metrics", dict)):
            if not isinstance(data.get(name), kind):
                raise BadInput(file, f"$.{name}", f"a {kind.__name__}", data.get(name))
        data = migrate(data)
        metrics = {}
        for name, m in data["metrics"].items():
            if not isinstance(m, dict) or not isinstance(m.get("value"), int | float):
                raise BadInput(file, f"$.metrics.{name}", "{value, unit, better}", m)
            metrics[name] = Metric(m["value"], str(m.get("unit", "")), m.get("better", "lower"))
        prov = data.get("provenance")
        return cls(
            key=data["key"],
            experiment=str(data.get("experiment", "")),
            alias=str(data.get("alias", "")),
            point=data["point"],
            repetition=int(data.get("repetition", 0)),
            status=data["status"],
            metrics=metrics,
            run_id=str(data.get("run_id", "")),
            started=data.get("started"),
            ended=data.get("ended"),
            duration_s=data.get("duration_s"),
            provenance=prov if isinstance(prov, dict) else {},
            inputs=data.get("inputs") or {},
            values=data.get("values") or {},
            contended=data.get("contended"),
            contention=data.get("contention"),
            pinning=data.get("pinning"),
            error=data.get("error"),
            failure_kind=data.get("failure_kind"),
            log_tail=data.get("log_tail"),
            failed_step=data.get("failed_step"),
            schema_version=data["schema_version"],
        )
