"""Runner: the job entry point (`python -m efflab.runtime.runner --runtime NAME FOLDER`).

Snakemake calls this once per job. It only dispatches: it reads the invocation,
asks the named runtime to execute it, and writes `outputs.json` (atomically, last:
it is the Snakemake output) or `failure.json` (error, failure kind, log tail) and
exits 1. Kept import-light on purpose: it starts once per job, and its start-up time
is the per-job overhead efflab adds on top of Snakemake.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from efflab.core import lifeline
from efflab.core.clock import now_iso
from efflab.core.invocation import Invocation
from efflab.core.locks import FileLock
from efflab.runtime import base, contention, inside_report, pinning
from efflab.runtime.failure import INFRASTRUCTURE, SCRIPT, InvocationFailed
from efflab.runtime.host import Pin, fork_script, wait_child
from efflab.runtime.outputs import DONE_COPY, atomic_json, completed_outputs, log_tail

USAGE = (
    "usage: python -m efflab.runtime.runner [--runtime {names}] ARTIFACT_FOLDER\n"
    "       python -m efflab.runtime.runner [--runtime {names}] --batch BATCH.json\n"
    "       (runs one planned invocation, or a batch of them in order: what Snakemake\n"
    "       runs per job)"
)


def prepare(folder: Path) -> None:
    """Fresh private output folder; stale partial results of a killed run are dropped."""
    shutil.rmtree(folder / "out", ignore_errors=True)
    (folder / "out").mkdir(parents=True)
    for name in (".script-outputs.json", "failure.json"):
        (folder / name).unlink(missing_ok=True)


def _end_with_owner() -> None:
    """The efflab run that owns this job died (even by kill -9): end as if cancelled,
    so the runtime's handlers take the script's group and its container with it."""
    owner = lifeline.owner_from_env()
    if owner is not None:
        lifeline.watch(owner, lambda: os.kill(os.getpid(), signal.SIGTERM))


def invocation_lock(folder: Path, inv: Invocation) -> FileLock:
    return FileLock(folder / ".lock", f"invocation {inv.alias} {inv.key}",
                    os.environ.get("EFFLAB_RUN_ID", ""))  # fmt: skip


def repo_of(folder: Path) -> Path:
    """The repository of an invocation: the tree its `artifacts/<alias>/<key>` path was
    given in, with symlinks kept (a bisect or compare worktree links `artifacts/` to a
    shared cache; the cache's parent is not the repository, the worktree is)."""
    return Path(os.path.abspath(folder)).parents[2]


def run_invocation(folder: Path, runtime: str = "host", watch_owner: bool = True) -> int:
    repo = repo_of(folder)
    folder = folder.resolve()
    inv = Invocation.load(folder)
    if watch_owner:
        _end_with_owner()
    # one runner per invocation at a time: a second (another run, or the rerun after a
    # kill that found the orphan still going) waits, then finds the outputs and stops
    lock = invocation_lock(folder, inv)
    lock.acquire(on_wait=lambda h: print(
        f"efflab: {inv.alias} {inv.key}: waiting for {h}, which runs it now", file=sys.stderr))  # fmt: skip
    try:
        if completed_outputs(folder, inv.key) is not None:
            return 0  # done by the run we waited for (or restored from its copy)
        return _execute(repo, inv, folder, runtime)
    finally:
        lock.release()


def _execute(repo: Path, inv: Invocation, folder: Path, runtime: str) -> int:
    prepare(folder)
    attempt = Attempt(inv, folder, runtime)
    try:
        out = base.get(runtime).execute(repo, inv, folder)
    except Exception as exc:  # a failed script is data (a failed record), not a crash
        return attempt.failed(exc)
    return attempt.succeeded(out)


class Attempt:
    """One execution of an invocation, from its start to the file that ends it:
    `outputs.json` (and its second name) or `failure.json`. The runner and the job
    server's in-process jobs end an execution through this, so both write the same."""

    def __init__(self, inv: Invocation, folder: Path, runtime: str):
        self.inv, self.folder, self.runtime = inv, folder, runtime
        self.started, self.t0 = now_iso(), time.perf_counter()

    def failed(self, exc: Exception, say=None) -> int:
        inv = self.inv
        kind = (
            exc.kind
            if isinstance(exc, InvocationFailed)
            else (SCRIPT if isinstance(exc, ValueError) else INFRASTRUCTURE)
        )
        atomic_json(
            self.folder / "failure.json",
            {
                "status": "failed",
                "alias": inv.alias,
                "key": inv.key,
                "error": str(exc),
                "failure_kind": kind,
                "log_tail": log_tail(self.folder),
                "started": self.started,
                "ended": now_iso(),
                "duration_s": time.perf_counter() - self.t0,
                "runtime": self.runtime,
            },
        )
        message = f"efflab: {inv.alias} {inv.key} failed ({kind}): {exc}"
        (say or (lambda m: print(m, file=sys.stderr)))(message)
        return 1

    def succeeded(self, out: dict) -> int:
        inv, folder = self.inv, self.folder
        out.update(
            status="ok",
            alias=inv.alias,
            key=inv.key,
            inputs=inv.inputs,
            repetition=inv.repetition,
            env=inv.env,
            env_digest=inv.env_digest,
        )
        (folder / ".script-outputs.json").unlink(missing_ok=True)
        atomic_json(folder / "outputs.json", out)
        # a second name for the same file: Snakemake deletes a job's output before running
        # it, so a concurrent run that scheduled this job finds the result here instead
        (folder / DONE_COPY).unlink(missing_ok=True)
        os.link(folder / "outputs.json", folder / DONE_COPY)
        return 0


def run_batch(spec_file: Path, runtime: str = "host") -> int:
    """A batch (efflab.workflow.batching): its members in order, each exactly as its
    own job would run; a member whose dep in the batch failed is not started. The
    batch's `.done` (its Snakemake output) is written only when every member is done."""
    spec = json.loads(spec_file.read_text())
    root = repo_of(spec_file)  # artifacts/.batches/NAME.json
    _end_with_owner()
    failed: set[str] = set()
    for rel in spec["members"]:
        folder = root / rel
        deps = {d["key"] for d in Invocation.load(folder).deps.values()}
        if deps & failed:
            print(f"efflab: {rel}: not run (a dependency in its batch failed)", file=sys.stderr)
            failed.add(folder.name)
            continue
        if run_invocation(folder, runtime, watch_owner=False) != 0:
            failed.add(folder.name)
    if failed:
        return 1
    atomic_json(spec_file.with_suffix(".done"), {"members": len(spec["members"])})
    return 0


def run_inside(folder: Path) -> int:
    """Container side of the docker runtime: fork/exec the script exactly as the host
    runtime does and report exit status, rusage and contention in `.inside.json`. The
    timeout is the host's job (it kills the container); SIGTERM here takes the script
    down. Contention is measured here, around the script alone, as the host runtime
    does: a container sees the machine's /proc/stat and load, and container start-up
    (dockerd, runc) stays out of the window."""
    inv = Invocation.load(folder)
    deps = json.loads((folder / ".deps.json").read_text())
    cpus = pinning.cpus_for(inv.resources)
    busy0, busy0_pin = contention.busy_seconds(), contention.busy_seconds(cpus) if cpus else None
    t0 = time.perf_counter()
    pid = fork_script(inv, folder, deps)
    pin = Pin(cpus, pinning.read_back(pid) if cpus else None, busy0_pin)
    status, ru = wait_child(pid, None)
    wall, cpu = time.perf_counter() - t0, ru.ru_utime + ru.ru_stime
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    code = 128 + sig if sig else os.waitstatus_to_exitcode(status)
    cont, pinned = pin.blocks(busy0, wall, cpu, float(inv.resources.get("cpus", 1)))
    inside_report.write(
        folder,
        {
            "exit_code": code,
            "signal": signal.Signals(sig).name if sig else None,
            "wall_s": wall,
            "cpu_s": cpu,
            "max_rss_mb": ru.ru_maxrss / 1024.0,
            "contention": cont,
            "pinning": pinned,
        },
    )
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 2 and argv[0] == "--inside":
        return run_inside(Path(argv[1]))
    runtime = "host"
    if len(argv) >= 2 and argv[0] == "--runtime":
        runtime, argv = argv[1], argv[2:]
    if len(argv) == 2 and argv[0] == "--batch" and runtime in base.RUNTIMES:
        return run_batch(Path(argv[1]), runtime)
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(USAGE.format(names="|".join(base.names())))
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    if runtime not in base.RUNTIMES:
        print(f"efflab: --runtime: expected one of {sorted(base.RUNTIMES)}, found {runtime!r}",
              file=sys.stderr)  # fmt: skip
        return 2
    return run_invocation(Path(argv[0]), runtime)


if __name__ == "__main__":
    sys.exit(main())
