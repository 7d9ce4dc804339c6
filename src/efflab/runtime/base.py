"""The Runtime contract and the registry of runtimes by name.

A runtime is chosen once (by the CLI, from `--runtime`) and passed down as a value;
the job side receives its name on the runner's command line. The registry imports a
runtime's module only when it is asked for, so the host job path never loads the
docker SDK.

Adding a runtime is one module (a class with the members of `Runtime`) and one
`register(...)` line below; every registered runtime runs the shared conformance
suite (tests/runtime/test_runtime_conformance.py). Nothing else names a runtime:
the CLI's `--runtime` choices, the runner's usage text, warm containers
(`supports_warm`), the invocation key (`identity()`) and the run record's
provenance (`provenance()`) all ask the runtime itself.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from efflab.core.errors import BadInput
from efflab.core.invocation import Invocation
from efflab.core.runtime_identity import RuntimeIdentity

# name -> "module:class", filled by register() below
RUNTIMES: dict[str, str] = {}


class Runtime(Protocol):
    name: str
    seals: bool  # can it enforce a sealed sandbox (no network, read-only root, caps dropped)?
    supports_warm: bool  # can jobs reuse a started sandbox (efflab.runtime.warm)?

    def available(self) -> bool: ...

    def identity(self) -> RuntimeIdentity:
        """What enters every invocation key: kind, device class, image (where one).
        Cheap and available before `prepare` (the planner asks for it)."""

    def provenance(self) -> dict[str, Any]:
        """What a run record says of this runtime beyond its identity (engine
        version, accelerators...); JSON-ready, never raises."""

    def prepare(self, repo: Path, invocations: Iterable[Invocation]) -> None:
        """Efflab-process side, before Snakemake starts (e.g. build images)."""

    def execute(self, repo: Path, inv: Invocation, folder: Path) -> dict[str, Any]:
        """Job side: run one invocation, return the outputs.json payload or raise
        efflab.runtime.failure.InvocationFailed."""

    def cleanup(self, run_id: str) -> list[str]:
        """After a run or a cancellation: remove what it left behind (containers...)."""


def register(name: str, target: str) -> None:
    """Make a runtime known by name: `target` is "module:Class" (imported on use)."""
    RUNTIMES[name] = target


def names() -> list[str]:
    return sorted(RUNTIMES)


def get(name: str) -> Runtime:
    if name not in RUNTIMES:
        raise BadInput("--runtime", "$", f"one of {', '.join(names())}", name)
    module, _, cls = RUNTIMES[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


def resolve(requested: str, warn: Callable[[str], None] | None = None) -> Runtime:
    """`auto` -> docker when an engine answers, else host (with a visible warning)."""
    if requested != "auto":
        return get(requested)
    docker = get("docker")
    if docker.available():
        return docker
    (warn or (lambda m: print(m, file=sys.stderr)))(
        "efflab: warning: no Docker engine answers; running on the host (runtime: host)"
    )
    return get("host")


register("host", "efflab.runtime.host:HostRuntime")
register("docker", "efflab.runtime.docker:DockerRuntime")
