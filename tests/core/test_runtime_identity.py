"""The runtime's identity enters every invocation key: a point measured on one
runtime (or device class) is never a cache hit for another."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import efflab

from efflab.core import runtime_identity as ri
from efflab.core.runtime_identity import RuntimeIdentity
from efflab.plan.planner import plan_experiment
from efflab.runtime import base

XEON = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 avx512f avx512bw\nmodel name\t: Xeon\n"
ZEN2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 sha_ni\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes\n"


def test_cpu_class_from_cpuinfo_flags() -> None:
    assert ri.cpu_class(XEON) == "cpu-avx512"
    assert ri.cpu_class(ZEN2) == "cpu-avx2"
    assert ri.cpu_class(ARM) == "cpu"
    assert ri.cpu_class("") == "cpu"


def test_gpu_models_read_from_the_driver_listing(tmp_path: Path) -> None:
    for i, model in enumerate(["NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3", "NVIDIA L4"]):
        d = tmp_path / f"0000:0{i}:00.0"
        d.mkdir()
        (d / "information").write_text(f"Model: \t\t {model}\nIRQ:   42\n")
    assert ri.gpu_models(tmp_path) == ["NVIDIA-H100-80GB-HBM3", "NVIDIA-L4"]
    assert ri.gpu_models(tmp_path / "missing") == []


def test_device_class_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ri.DEVICE_ENV, "cpu-avx512+gpu:NVIDIA-H100")
    ri.device_class.cache_clear()
    try:
        assert ri.host_identity() == RuntimeIdentity("host", "cpu-avx512+gpu:NVIDIA-H100")
    finally:
        ri.device_class.cache_clear()


def test_identity_json_round_trip() -> None:
    ident = RuntimeIdentity("docker", "cpu-avx2", "efflab/debian-bookworm:bootstrap")
    assert RuntimeIdentity.from_json(json.loads(json.dumps(ident.to_json()))) == ident


@pytest.mark.parametrize("name", base.names())
def test_every_registered_runtime_has_an_identity(name: str) -> None:
    rt = base.get(name)
    ident = rt.identity()
    assert ident.kind == name and ident.device == ri.device_class()
    assert isinstance(rt.supports_warm, bool) and isinstance(rt.seals, bool)
    json.dumps(rt.provenance())  # JSON-ready, and it never raises


def test_keys_differ_by_runtime_and_device(tiny_repo: Path) -> None:
    host = plan_experiment(tiny_repo, "demo", runtime=RuntimeIdentity("host", "cpu"))
    again = plan_experiment(tiny_repo, "demo", runtime=RuntimeIdentity("host", "cpu"))
    docker = plan_experiment(tiny_repo, "demo", runtime=RuntimeIdentity("docker", "cpu", "img"))
    gpu = plan_experiment(tiny_repo, "demo", runtime=RuntimeIdentity("host", "cpu+gpu:L4"))
    keys = [{p.key for p in plan.points} for plan in (host, again, docker, gpu)]
    assert keys[0] == keys[1]
    assert not keys[0] & keys[2] and not keys[0] & keys[3] and not keys[2] & keys[3]
    # shared deps too: their outputs came from that runtime
    assert not set(host.invocations) & set(docker.invocations)
    inv = next(iter(docker.invocations.values()))
    assert inv.key_parts["runtime"] == {"kind": "docker", "device": "cpu", "image": "img"}


def test_measured_on_host_is_no_cache_hit_for_docker(tiny_repo: Path) -> None:
    """The issue's case: `--runtime host`, then the same point asked for with
    `--runtime docker` used to return the host's numbers silently."""
    r = efflab(tiny_repo, "run", "demo", "--quick", "--runtime", "host", "--json", check=True)
    assert json.loads(r.stdout)["demo"]["jobs_run"] == 6
    rec = json.loads(next((tiny_repo / "results/demo/runs").glob("*.json")).read_text())
    assert rec["schema_version"] == 2
    assert rec["provenance"]["identity"] == ri.host_identity().to_json()
    again = efflab(tiny_repo, "run", "demo", "--quick", "--runtime", "host", "--dry-run")
    assert "nothing to do (all cached)" in again.stdout, again.stdout + again.stderr
    other = efflab(tiny_repo, "run", "demo", "--quick", "--runtime", "docker", "--dry-run")
    assert other.returncode == 0, other.stderr
    assert "would run 4 points" in other.stdout, other.stdout + other.stderr
