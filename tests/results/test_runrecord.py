"""RunRecord: the typed record at the JSON edge — round trip, migration, bad input."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from efflab.core.errors import BadInput
from efflab.core.specio import validate
from efflab.results import records
from efflab.results.runrecord import SCHEMA_VERSION, Metric, RunRecord, migrate

V1 = {
    "schema_version": 1,
    "run_id": "20260101-000000-abcd",
    "experiment": "demo",
    "key": "0123456789abcdef0123",
    "alias": "square",
    "point": {"n": 2},
    "repetition": 1,
    "status": "ok",
    "metrics": {"sumsq": {"value": 5.0, "unit": "1", "better": "lower"}},
    "inputs": {"n": 2, "seed": 3},
    "values": {"note": "x"},
    "started": "2026-01-01T00:00:00+00:00",
    "ended": "2026-01-01T00:00:01+00:00",
    "duration_s": 1.0,
    "contended": False,
    "contention": {"contended": False, "others_cores": 0.1},
    "provenance": {
        "git": {"commit": "abc", "dirty": False},
        "host": {"cpu_model": "x", "cores": 2, "memory_gb": 1.0, "os": "linux"},
        "python": "3.11.2",
        "packages": {},
        "runtime": "docker",
        "image": "sha256:feed",
        "energy_method": "estimated:none",
    },
}


def test_version_1_is_migrated_on_read_and_written_as_current() -> None:
    rec = RunRecord.from_json(copy.deepcopy(V1))
    assert rec.schema_version == SCHEMA_VERSION == 2
    # the device it ran on was not recorded then: said so, not guessed
    assert rec.provenance["identity"] == {
        "kind": "docker",
        "device": "unknown",
        "image": "sha256:feed",
    }
    assert rec.identity.kind == "docker" and rec.runtime == "docker"
    out = rec.to_json()
    validate(out, "run-record", "migrated")
    assert out["pinning"] is None  # not recorded then
    assert {
        k: v for k, v in out.items() if k not in ("schema_version", "provenance", "pinning")
    } == {k: v for k, v in V1.items() if k not in ("schema_version", "provenance")}
    assert migrate(out) == out  # the current version migrates to itself


def test_round_trip_is_exact_for_ok_and_failed() -> None:
    ok = RunRecord.from_json(migrate(copy.deepcopy(V1)))
    assert RunRecord.from_json(json.loads(json.dumps(ok.to_json()))) == ok
    failed = dict(
        migrate(copy.deepcopy(V1)),
        status="failed",
        metrics={},
        pinning=None,
        error="boom",
        failure_kind="timeout",
        log_tail="...",
        failed_step="square (0123456789abcdef0123)",
    )
    rec = RunRecord.from_json(failed)
    assert not rec.ok and rec.failure_kind == "timeout" and rec.file_name.endswith(".failed.json")
    assert rec.to_json() == failed
    validate(rec.to_json(), "run-record", "failed")


def test_readers_get_typed_fields() -> None:
    rec = RunRecord.from_json(copy.deepcopy(V1))
    assert rec.metrics["sumsq"] == Metric(5.0, "1", "lower")
    assert rec.value("sumsq") == 5.0 and rec.value("missing") is None
    assert rec.metric_values() == {"sumsq": 5.0} and rec.commit == "abc"
    moved = rec.at_point({"n": 2, "scale": 1.0})
    assert moved.point == {"n": 2, "scale": 1.0} and rec.point == {"n": 2}  # frozen original
    with pytest.raises(AttributeError):
        rec.status = "failed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"metrics": [1]}, "$.metrics"),
        ({"point": "n=2"}, "$.point"),
        ({"key": None}, "$.key"),
        ({"metrics": {"sumsq": {"value": "fast"}}}, "$.metrics.sumsq"),
    ],
)
def test_bad_records_name_the_file_and_field(tmp_path: Path, change: dict, path: str) -> None:
    f = tmp_path / f"{V1['key']}.json"
    f.write_text(json.dumps({**V1, **change}))
    with pytest.raises(BadInput) as info:
        records.read_record(f, "demo")
    assert info.value.path == path and str(f) in str(info.value)
    assert "efflab results check demo --repair" in str(info.value)


def test_read_record_checks_the_key_against_the_file_name(tmp_path: Path) -> None:
    f = tmp_path / "ffffffffffffffffffff.json"
    f.write_text(json.dumps(V1))
    with pytest.raises(BadInput, match=r"the file's key"):
        records.read_record(f, "demo")
    good = tmp_path / f"{V1['key']}.json"
    good.write_text(json.dumps(V1))
    assert records.read_record(good, "demo").identity.device == "unknown"
