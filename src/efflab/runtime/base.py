"""The Runtime protocol and the lookup of runtimes by name.

A runtime is chosen once (by the CLI, from `--runtime`) and passed down as a value;
the job side receives its name on the runner's command line. The lookup imports a
runtime's module only when it is asked for, so the host job path never loads the
docker SDK.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from efflab.core.errors import BadInput
from efflab.core.invocation import Invocation

# name -> "module:class"; a new runtime is one entry here and one module
RUNTIMES = {
    "host": "efflab.runtime.host:HostRuntime",
    "docker": "efflab.runtime.docker:DockerRuntime",
}


class Runtime(Protocol):
    name: str
    seals: bool  # can it enforce a sealed sandbox (no network, read-only root, caps dropped)?

    def available(self) -> bool: ...

    def prepare(self, repo: Path, invocations: Iterable[Invocation]) -> None:
        """Efflab-process side, before Snakemake starts (e.g. build images)."""

    def execute(self, repo: Path, inv: Invocation, folder: Path) -> dict[str, Any]:
        """Job side: run one invocation, return the outputs.json payload or raise
        efflab.runtime.failure.InvocationFailed."""

    def cleanup(self, run_id: str) -> list[str]:
        """After a cancellation: remove what the run left behind (containers...)."""


def get(name: str) -> Runtime:
    if name not in RUNTIMES:
        raise BadInput("--runtime", "$", f"one of {', '.join(sorted(RUNTIMES))}", name)
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
