"""Snakemake's own command line, with only the executor plugins a run will use.

At start-up Snakemake imports every installed executor plugin (plugin discovery with
`pkgutil.iter_modules`). The SLURM plugin's import alone costs ~1.5 s here (it pulls
in pandas) and runs `scontrol show config` to word a help text; with a SLURM client
configured and no controller answering (a login node whose controller is down, or
this machine after the test cluster is stopped) that call retries for ~9 s. A local
run would pay both on every `efflab run`. So the adapter starts Snakemake as

    python -m efflab.workflow.snakemake_main --executors local -- SNAKEMAKE ARGS...

which hides every other executor plugin from discovery and then runs Snakemake's
`__main__` exactly as `python -m snakemake` does. This drives the pinned CLI, not
Snakemake's Python API: only `snakemake.common` is imported here before its own main.
Plugin modules imported directly by a kept plugin still import normally.

Per job, Snakemake asks `inspect.signature` of every input, threads, group and resource
function several times (23 calls per trivial efflab job, ~1/6 of a 1,000-job DAG
build): `memoize_function_params` caches the answer per function object, which is the
same answer (a function's parameters do not change). EFFLAB_SNAKEMAKE_MEMO=off skips it.

On a cluster, Snakemake's shutdown no longer waits out the status poll's sleep
(`wake_status_poll_on_shutdown`).

It also bounds Snakemake's life after its owner's: the kernel sends it SIGTERM when
efflab dies (parent-death signal), and a local Snakemake then shuts down gracefully —
which under load can take many seconds. If it is still alive ORPHAN_GRACE_S after the
owner died, it gets SIGKILL; its jobs end by their own lifelines (a runner removes
its container first, so the session is not killed with it). Cluster runs are left to
SIGTERM/SIGINT alone: a SIGKILL would orphan the submitted jobs.
"""

from __future__ import annotations

import os
import pkgutil
import runpy
import signal
import sys
import threading

from efflab.core import lifeline

EXECUTOR_PREFIX = "snakemake_executor_plugin_"
ORPHAN_GRACE_S = 3.0
USAGE = "usage: python -m efflab.workflow.snakemake_main --executors A,B -- SNAKEMAKE_ARGS..."


def keeps(module_name: str, executors: set[str]) -> bool:
    """Is this module visible to plugin discovery? Non-executor modules always are; an
    executor plugin is when the run uses it or it belongs to one (slurm -> slurm_jobstep)."""
    if not module_name.startswith(EXECUTOR_PREFIX):
        return True
    name = module_name[len(EXECUTOR_PREFIX) :]
    return any(name == e or name.startswith(e + "_") for e in executors)


def hide_executor_plugins(executors: set[str]) -> None:
    original = pkgutil.iter_modules

    def iter_modules(path=None, prefix=""):
        for info in original(path, prefix):
            if keeps(info.name[len(prefix) :], executors):
                yield info

    pkgutil.iter_modules = iter_modules


def memoize_function_params() -> None:
    """Cache `snakemake.common.get_function_params` per callable, before the modules that
    import it by name (rules, jobs) are loaded. Unhashable callables are not cached."""
    if os.environ.get("EFFLAB_SNAKEMAKE_MEMO", "").lower() in ("off", "0", "no"):
        return
    import functools

    import snakemake.common as common

    original = common.get_function_params
    if getattr(original, "__efflab_memo__", False):
        return
    cached = functools.lru_cache(maxsize=4096)(original)

    def get_function_params(func):
        if hasattr(func, common.FUNC_OVERWRITE_PARAMS_ATTR):  # set later by Snakemake: as-is
            return getattr(func, common.FUNC_OVERWRITE_PARAMS_ATTR)
        try:
            return cached(func)
        except TypeError:  # unhashable callable
            return original(func)

    get_function_params.__efflab_memo__ = True  # type: ignore[attr-defined]
    common.get_function_params = get_function_params


def wake_status_poll_on_shutdown(executors: set[str]) -> None:
    """A cluster executor polls job status from a thread that sleeps between checks
    (10 s, growing by 10 s while nothing finishes), and Snakemake's shutdown joins that
    thread: every cluster run ended up to one whole sleep after its last job (10 s of a
    22 s SLURM run of 50 batched trivial invocations). The sleep is cut into 0.2 s
    steps that stop once the executor stops waiting; the schedule is unchanged.
    EFFLAB_SNAKEMAKE_WAKE=off skips it."""
    if executors == {"local"} or os.environ.get("EFFLAB_SNAKEMAKE_WAKE", "").lower() in ("off", "0", "no"):  # fmt: skip
        return
    import asyncio

    from snakemake_interface_executor_plugins.executors import remote

    original = remote.RemoteExecutor.sleep
    if getattr(original, "__efflab_wake__", False):
        return

    async def sleep(self) -> None:
        duration = (
            self.workflow.remote_execution_settings.seconds_between_status_checks
            if self.next_seconds_between_status_checks is None
            else self.next_seconds_between_status_checks
        )
        loop = asyncio.get_running_loop()
        end = loop.time() + duration
        while self.wait and (left := end - loop.time()) > 0:
            await asyncio.sleep(min(0.2, left))

    sleep.__efflab_wake__ = True  # type: ignore[attr-defined]
    remote.RemoteExecutor.sleep = sleep


def end_with_owner(executors: set[str]) -> None:
    """A local run's Snakemake ends at most ORPHAN_GRACE_S after its owner: gracefully
    on the kernel's SIGTERM, forced after that."""
    owner = lifeline.owner_from_env()
    if owner is None or executors != {"local"} or os.getsid(0) != os.getpid():
        return  # no owner, a cluster run, or not our own session: never kill others

    def force() -> None:
        threading.Event().wait(ORPHAN_GRACE_S)
        os.kill(os.getpid(), signal.SIGKILL)

    lifeline.watch(owner, lambda: threading.Thread(target=force, daemon=True).start())


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[0] != "--executors" or argv[2] != "--":
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    executors = {e.strip().replace("-", "_") for e in argv[1].split(",") if e.strip()}
    hide_executor_plugins(executors)
    memoize_function_params()
    wake_status_poll_on_shutdown(executors)
    end_with_owner(executors)
    sys.argv = ["snakemake", *argv[3:]]
    runpy.run_module("snakemake", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
