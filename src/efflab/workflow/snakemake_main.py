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

On a cluster, the status poll wakes early: when the executor stops waiting (shutdown)
and, after a backoff, when a submitted job's outputs exist (`wake_status_poll`). And
the Snakemake a cluster job starts (the sbatch script's, then the jobstep's srun) comes
through this launcher too, keeping only the local and jobstep plugins
(`launch_nested_through_launcher`): ~1.5 s less per nested start.

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
WAKE_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # after a job's outputs appear
USAGE = "usage: python -m efflab.workflow.snakemake_main --executors A,B -- SNAKEMAKE_ARGS..."


def _off(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("off", "0", "no")


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
    if _off("EFFLAB_SNAKEMAKE_MEMO"):
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


def outputs_exist(job) -> bool:
    """Has this submitted job (single or group) written every output? Not yet proof that
    it ended: the job's own Snakemake still finishes after its last output."""
    try:
        outputs = list(job.output)
    except Exception:  # a job object without outputs: leave it to the schedule
        return False
    return bool(outputs) and all(os.path.exists(o) for o in outputs)


class WakeSchedule:
    """When to check a cluster job whose outputs exist, before the plugin's own schedule:
    WAKE_BACKOFF_S after first seeing them, then each later step, so a job that is still
    finishing is not queried in a tight loop; after the last step the plugin's schedule
    alone decides."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[int, float]] = {}  # external job id -> (step, due)

    def due(self, jobs: list, now: float) -> bool:
        live = {str(j.external_jobid) for j in jobs}
        self.seen = {k: v for k, v in self.seen.items() if k in live}
        wake = False
        for info in jobs:
            jid = str(info.external_jobid)
            step, due = self.seen.get(jid, (-1, 0.0))
            if step >= len(WAKE_BACKOFF_S):
                continue
            if step < 0:
                if outputs_exist(info.job):
                    self.seen[jid] = (0, now + WAKE_BACKOFF_S[0])
                continue
            if now >= due:
                wake = True
                nxt = step + 1
                later = now + WAKE_BACKOFF_S[nxt] if nxt < len(WAKE_BACKOFF_S) else now
                self.seen[jid] = (nxt, later)
        return wake


def wake_status_poll(executors: set[str]) -> None:
    """A cluster executor polls job status from a thread that sleeps between checks
    (SLURM: 10 s, growing by 10 s while nothing finishes, so a job that ended just after
    a check waits up to 20 s to be seen), and Snakemake's shutdown joins that thread.
    The sleep is cut into 0.2 s steps that end when the executor stops waiting, or when
    a submitted job's outputs exist (then on a backoff: WakeSchedule). The plugin's
    schedule stays the upper bound; status still comes from the scheduler, never from
    the files. EFFLAB_SNAKEMAKE_WAKE=off skips it."""
    if executors == {"local"} or _off("EFFLAB_SNAKEMAKE_WAKE"):
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
        schedule = self.__dict__.setdefault("_efflab_wake", WakeSchedule())
        loop = asyncio.get_running_loop()
        end = loop.time() + duration
        while self.wait and (left := end - loop.time()) > 0:
            await asyncio.sleep(min(0.2, left))
            if schedule.due(list(self.active_jobs), loop.time()):
                return

    sleep.__efflab_wake__ = True  # type: ignore[attr-defined]
    remote.RemoteExecutor.sleep = sleep


NESTED_EXECUTORS = "local,slurm_jobstep"


def launch_nested_through_launcher(executors: set[str]) -> None:
    """The command a cluster job runs is `python -m snakemake ...`, which imports every
    executor plugin again (the SLURM plugin: pandas, `scontrol`) in the sbatch script
    and once more in the jobstep's srun. Both run only the jobstep and local
    executors, so they start through this launcher with those alone.
    EFFLAB_SNAKEMAKE_NESTED=off skips it."""
    # SLURM only: what another executor's remote job needs is that plugin's business
    if not executors & {"slurm", "slurm_jobstep"} or _off("EFFLAB_SNAKEMAKE_NESTED"):
        return
    from snakemake_interface_executor_plugins.executors import real

    original = real.RealExecutor.format_job_exec
    if getattr(original, "__efflab_nested__", False):
        return
    launcher = f" -m efflab.workflow.snakemake_main --executors {NESTED_EXECUTORS} -- "

    def format_job_exec(self, job) -> str:
        return original(self, job).replace(" -m snakemake ", launcher, 1)

    format_job_exec.__efflab_nested__ = True  # type: ignore[attr-defined]
    real.RealExecutor.format_job_exec = format_job_exec


def daemon_reevaluation_timers() -> None:
    """While jobs run, each pass of Snakemake's scheduler starts a `threading.Timer` of
    the job rate limiter's timespan (1 s by default) that wakes the scheduler again; the
    timer is not a daemon, so the interpreter's exit joins the last one: every Snakemake
    process ended up to 1 s after its work (a local run, a cluster run's submitter, and
    both Snakemakes inside each cluster job). The timers become daemons; all a late one
    would do is release a semaphore nobody waits on. EFFLAB_SNAKEMAKE_TIMERS=off skips it."""
    if _off("EFFLAB_SNAKEMAKE_TIMERS"):
        return
    from snakemake.scheduling import job_scheduler

    cls = job_scheduler.JobScheduler
    if getattr(cls._schedule_reevalutation, "__efflab_daemon__", False):
        return

    def schedule(self, delay) -> None:
        timer = threading.Timer(delay, self._open_jobs.release)
        timer.daemon = True
        timer.start()

    schedule.__efflab_daemon__ = True  # type: ignore[attr-defined]
    cls._schedule_reevalutation = schedule


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
    wake_status_poll(executors)
    launch_nested_through_launcher(executors)
    daemon_reevaluation_timers()
    end_with_owner(executors)
    sys.argv = ["snakemake", *argv[3:]]
    runpy.run_module("snakemake", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
