"""RunOptions: how to run (cores, runtime, size, profile, freshness), decided once.

The CLI's shared option group builds one RunOptions from the command line; `run`,
`reproduce`, `nightly` and tournament verification all receive it, so a default
can no longer drift between commands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from efflab.runtime import base
from efflab.runtime.base import Runtime


def _host() -> Runtime:
    return base.get("host")


@dataclass(frozen=True)
class RunOptions:
    cores: int = 1
    runtime: Runtime = field(default_factory=_host)
    quick: bool = False
    profile: Path | None = None  # a resolved Snakemake profile folder
    fresh: bool = False  # salt the experiment's own steps with the run id: measure anew
    batch_seconds: float | None = None  # cluster profiles: batch short jobs (job groups)
    dry_run: bool = False
    quiet: bool = False
    wait: bool = True  # another run holds the experiment: wait for it (False: exit 2)
    # the command's one quiet-machine waiter (workflow.remeasure.QuietWaiter): called
    # before exclusive timing jobs run and before contended ones are measured again;
    # None: never wait before a run (a view that re-measures makes its own)
    waiter: Callable[[], bool] | None = None

    def but(self, **changes) -> RunOptions:
        return replace(self, **changes)

    @property
    def runtime_name(self) -> str:
        return self.runtime.name
