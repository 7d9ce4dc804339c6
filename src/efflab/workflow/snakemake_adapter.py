"""Snakemake adapter: the only module that talks to Snakemake.

Snakemake's Python API changes between minor releases, so efflab drives the pinned
version through its command line, in its own session (process group): cancelling
signals the whole group, so no job — and no container a job started — outlives it.
When efflab dies without a chance to cancel (kill -9), Snakemake gets SIGTERM from the
kernel (parent-death signal) and every runner ends itself (its lifeline watches the
efflab process named in $EFFLAB_OWNER).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from efflab.core import lifeline
from efflab.core.invocation import Invocation
from efflab.core.specio import atomic_write_json, canonical_json
from efflab.runtime import pinning, warm
from efflab.workflow import batching
from efflab.workflow.profiles import load as load_profile
from efflab.workflow.profiles import pending_invocations, preflight

PROGRESS = re.compile(r"(\d+) of (\d+) steps \((\d+)%\) done")
ERROR_JOB = re.compile(r"Error in rule \S+:")
CANCEL_GRACE_S = 10.0
JOBSERVER_ENV = "EFFLAB_JOBSERVER"  # read by efflab.smk and efflab.runtime.jobserver


@dataclass
class EngineResult:
    returncode: int
    jobs_total: int = 0
    jobs_done: int = 0
    log_file: Path | None = None
    cancelled: bool = False
    failed_outputs: list[str] = field(default_factory=list)


def write_invocations(repo: Path, invocations: Iterable[Invocation]) -> None:
    """Write each invocation.json once; an existing identical file is left untouched."""
    for inv in invocations:
        f = repo / inv.folder / "invocation.json"
        data = inv.to_json()
        if f.exists():
            try:
                if canonical_json(json_load(f)) == canonical_json(data):
                    continue
            except ValueError:
                pass
        atomic_write_json(f, data)


def json_load(path: Path):
    return json.loads(path.read_text())


def is_done(repo: Path, inv: Invocation) -> bool:
    return (repo / inv.folder / "outputs.json").exists()


def snakemake_cmd(
    repo: Path,
    targets: list[str],
    cores: int,
    dry_run: bool = False,
    runtime: str = "host",
    profile: Path | None = None,
    extra: list[str] | None = None,
    executor: str = "local",
    batches: Path | None = None,
) -> list[str]:
    cmd = [
        sys.executable,
        # Snakemake's CLI with only this run's executor plugin discoverable: a local
        # run neither imports the SLURM plugin nor waits on its controller probe
        "-m",
        "efflab.workflow.snakemake_main",
        "--executors",
        executor,
        "--",
        "--snakefile",
        str(repo / "Snakefile"),
        "--directory",
        str(repo),
        "--cores",
        str(cores),
        # keys already capture code/inputs/env; mtime alone decides staleness
        "--rerun-triggers",
        "mtime",
        # ...so Snakemake's per-job metadata (code and params hashes, input checksums,
        # one file per output under .snakemake/metadata) is never read: not written
        "--drop-metadata",
        "--keep-going",
        "--rerun-incomplete",
        # Snakemake's directory lock refuses (never waits) and goes stale after a
        # kill -9; efflab coordinates instead with flocks that die with their holder:
        # one per experiment (pipeline) and one per invocation (runner), and the
        # runner keeps a second name of outputs.json for a run that deleted it
        "--nolock",
        "--config",
        f"runtime={runtime}",
        *([f"batches={batches}"] if batches else []),
    ]
    # --profile, not --workflow-profile: executor settings are the user's (site) profile
    # kind, and a workflow profile would also drop default-resources of other profiles.
    # Without one, "none" keeps an ambient $SNAKEMAKE_PROFILE from applying silently.
    cmd += ["--profile", str(profile) if profile is not None else "none"]
    if dry_run:
        cmd.append("--dry-run")
    return cmd + (extra or []) + ["--"] + targets


# Snakemake's default job selector solves an ILP over every ready job at each
# selection: with hundreds of ready jobs that is most of its per-job cost (300 trivial
# jobs: 23 s with ilp, 11.5 s with greedy, bench/bench_scale.py). efflab's rule uses
# no temp() files, which the ILP optimises, and greedy honours its priorities (the
# repetition order) first, as the ILP does, so greedy loses nothing. A profile's
# `scheduler:` or EFFLAB_SCHEDULER=ilp keeps Snakemake's own choice.
SCHEDULER_ENV = "EFFLAB_SCHEDULER"


def scheduler_args() -> list[str]:
    name = os.environ.get(SCHEDULER_ENV, "greedy").strip()
    return ["--scheduler", name] if name else []


def run(
    repo: Path,
    targets: list[Invocation],
    cores: int = 1,
    dry_run: bool = False,
    runtime: str = "host",
    run_id: str = "",
    profile: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    extra: list[str] | None = None,
    on_cancel: Callable[[str], object] | None = None,
    batch_seconds: float | None = None,
) -> EngineResult:
    """Run Snakemake on the targets' outputs.json; returns when it exits or is cancelled.
    `runtime` is the runtime's name, handed to every job through `--config runtime=`;
    `on_cancel(run_id)` runs after a cancellation (the runtime's cleanup); on a cluster
    executor, short jobs are batched into job groups (efflab.workflow.batching)."""
    log_dir = repo / ".efflab" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{run_id or int(time.time())}.snakemake.log"
    executor = "local"
    scheduler_set = False
    if profile is not None:  # bad input (exit 2) before anything is submitted
        preflight(repo, profile, targets)
        loaded = load_profile(repo, profile)
        executor = loaded.executor
        scheduler_set = "scheduler" in loaded.options
    extra = list(extra or [])
    if not scheduler_set and not any(a.startswith("--scheduler") for a in extra):
        extra += scheduler_args()
    batch_of: dict[str, str] = {}
    batch_map, pending = None, []
    # short jobs share a job (efflab.workflow.batching): on a cluster always (a script's
    # `resources.group`, or --batch-seconds), locally only when --batch-seconds asks
    if executor != "local" or batch_seconds:
        pending = list(pending_invocations(repo, targets))
        batch_of, batch_map = write_batches(repo, run_id, pending, batch_seconds)
    files = list(
        dict.fromkeys(
            f"{batching.FOLDER}/{batch_of[inv.key]}.done"
            if inv.key in batch_of
            else f"{inv.folder}/outputs.json"
            for inv in targets
        )
    )
    # a local run splits its CPUs: exclusive jobs on measured cores, the rest for the
    # run's machinery and every other job (efflab.runtime.pinning)
    # (only when the run has an exclusive job to pin: a run without one keeps every core)
    pin = None
    if executor == "local" and not dry_run:
        timed = any(t.resources.get("exclusive") for t in targets) or any(
            inv["resources"].get("exclusive") for inv in pending_invocations(repo, targets)
        )
        pin = pinning.plan() if timed else None
    if pin is not None:  # one exclusive job at a time; others within the rest's cores
        extra += ["--resources", f"{pinning.RESOURCE}=1", f"{pinning.REST}={len(pin.rest)}"]
    cmd = snakemake_cmd(repo, files, cores, dry_run, runtime, profile, extra, executor, batch_map)
    env = dict(os.environ, EFFLAB_RUN_ID=run_id)
    env.pop(pinning.ENV, None)
    if pin is not None:
        env[pinning.ENV] = pin.encode()
    env[lifeline.OWNER_ENV] = str(lifeline.Owner.of())  # runners end when we do
    env.pop("EFFLAB_RUNTIME", None)  # one way only: --config runtime=
    env.pop(warm.DIR_ENV, None)
    if warm.wanted(run_id, runtime, executor, dry_run):  # docker jobs reuse containers
        env[warm.DIR_ENV] = str(warm.dir_for(run_id))
    result = EngineResult(returncode=0, log_file=log_file)
    with pinning.inherited(pin.rest if pin else None):  # server and Snakemake on the rest
        server = None if dry_run or executor != "local" else start_jobserver(repo, env, runtime)
    with (
        open(log_file, "a") as log,
        _stopping(server),
        pinning.inherited(pin.rest if pin else None),
    ):
        proc = subprocess.Popen(
            cmd,
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=_child_setup(os.getpid(), profile is not None),
        )
        cancelled: list[int] = []

        def _cancel(signum, _frame):
            cancelled.append(signum)
            # SIGINT makes Snakemake cancel what it submitted (scancel) before it exits;
            # on SIGTERM it waits for cluster jobs, and the SIGKILL after it orphans them
            _kill_group(proc, signal.SIGINT if profile is not None else signal.SIGTERM)

        old = {s: signal.signal(s, _cancel) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                m = PROGRESS.search(line)
                if m:
                    result.jobs_done, result.jobs_total = int(m.group(1)), int(m.group(2))
                    if on_progress:
                        on_progress(result.jobs_done, result.jobs_total)
            proc.wait()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            _end_stragglers(proc)
        if cancelled:
            result.cancelled = True
            if on_cancel is not None:
                on_cancel(run_id)
    result.returncode = proc.returncode
    if batch_of:  # Snakemake counted batches; a run reports invocations
        result.jobs_total = len(pending)
        result.jobs_done = len(pending) - len(list(pending_invocations(repo, targets)))
        if not dry_run:
            remove_batches(repo, batch_of, batch_map)
    return result


def write_batches(
    repo: Path, run_id: str, pending: list[dict[str, Any]], batch_seconds: float | None
) -> tuple[dict[str, str], Path | None]:
    """Plan the batches of this run's pending invocations and write what the rule file
    reads: each batch's member list (its stale `.done` removed) and the key -> batch map."""
    batches = batching.plan(pending, batch_seconds)
    if not batches:
        return {}, None
    folder = repo / batching.FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    batch_of = {}
    run_id = run_id or str(time.time_ns())
    for b in batches:
        name = b.name(run_id)
        (folder / f"{name}.done").unlink(missing_ok=True)
        atomic_write_json(folder / f"{name}.json", b.spec())
        batch_of.update({m["key"]: name for m in b.members})
    batch_map = folder / f"run-{hashlib.sha256(run_id.encode()).hexdigest()[:16]}.map.json"
    atomic_write_json(batch_map, batch_of)
    return batch_of, batch_map


def remove_batches(repo: Path, batch_of: dict[str, str], batch_map: Path | None) -> None:
    """A run's batch files go when its Snakemake ends: members keep their own outputs."""
    folder = repo / batching.FOLDER
    for name in set(batch_of.values()):
        for suffix in (".json", ".done"):
            (folder / f"{name}{suffix}").unlink(missing_ok=True)
    if batch_map is not None:
        batch_map.unlink(missing_ok=True)


def start_jobserver(
    repo: Path, env: dict[str, str], runtime: str = "host"
) -> subprocess.Popen | None:
    """Start efflab.runtime.jobserver for a local run and put its address in `env`.

    The socket is bound here, so its port is known at once and the server's start-up
    overlaps Snakemake's; jobs connecting early wait in the backlog. Returns None (jobs
    start the runner themselves) where pidfds are missing or $EFFLAB_JOBSERVER=off.
    """
    if env.get(JOBSERVER_ENV) == "off" or not hasattr(os, "pidfd_open"):
        env.pop(JOBSERVER_ENV, None)
        return None
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    env[JOBSERVER_ENV] = f"{listener.getsockname()[1]}:{secrets.token_hex(16)}"
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "efflab.runtime.jobserver", str(listener.fileno()), runtime],
            cwd=repo,
            env=env,
            stdin=subprocess.PIPE,  # closed by the adapter: the server then stops
            pass_fds=(listener.fileno(),),
            # out of efflab's process group: a kill -9 of the group spares the server,
            # which then sees its stdin close and ends the scripts it started (run.sh
            # scripts have no parent-death signal: the server starts them with vfork)
            start_new_session=True,
        )
    finally:
        listener.close()


@contextlib.contextmanager
def _stopping(server: subprocess.Popen | None):
    try:
        yield
    finally:
        if server is not None:
            assert server.stdin is not None
            server.stdin.close()
            try:
                server.wait(timeout=CANCEL_GRACE_S)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _child_setup(parent: int, default_sigint: bool) -> Callable[[], None]:
    """Snakemake's preexec: SIGTERM when efflab dies; for a cluster profile, SIGINT back
    to its default (Snakemake cancels cluster jobs on SIGINT, and a background efflab
    inherits it ignored)."""

    def setup() -> None:
        if default_sigint:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        lifeline.set_parent_death_signal(signal.SIGTERM, parent)

    return setup


def _end_stragglers(proc: subprocess.Popen) -> None:
    """Snakemake has exited (or was cancelled): a job still in its group is an orphan."""
    if proc.poll() is None:
        _kill_group(proc, signal.SIGTERM)
        proc.wait()
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_group(proc: subprocess.Popen, first: signal.Signals = signal.SIGTERM) -> None:
    """Signal the group (SIGTERM), then SIGKILL whatever is left after a grace period."""
    try:
        os.killpg(proc.pid, first)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + CANCEL_GRACE_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
