"""Snakemake adapter: the only module that talks to Snakemake.

Snakemake's Python API changes between minor releases, so efflab drives the pinned
version through its command line, in its own session (process group): cancelling
signals the whole group, so no job — and no container a job started — outlives it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from efflab.core.invocation import Invocation
from efflab.core.specio import atomic_write_json, canonical_json
from efflab.workflow.profiles import preflight

PROGRESS = re.compile(r"(\d+) of (\d+) steps \((\d+)%\) done")
ERROR_JOB = re.compile(r"Error in rule \S+:")
CANCEL_GRACE_S = 10.0


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
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(repo / "Snakefile"),
        "--directory",
        str(repo),
        "--cores",
        str(cores),
        # keys already capture code/inputs/env; mtime alone decides staleness
        "--rerun-triggers",
        "mtime",
        "--keep-going",
        "--rerun-incomplete",
        # outputs are content-addressed and written atomically, so concurrent
        # efflab runs (tournament submissions) may share the working directory
        "--nolock",
        "--config",
        f"runtime={runtime}",
    ]
    # --profile, not --workflow-profile: executor settings are the user's (site) profile
    # kind, and a workflow profile would also drop default-resources of other profiles.
    # Without one, "none" keeps an ambient $SNAKEMAKE_PROFILE from applying silently.
    cmd += ["--profile", str(profile) if profile is not None else "none"]
    if dry_run:
        cmd.append("--dry-run")
    return cmd + (extra or []) + ["--"] + targets


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
) -> EngineResult:
    """Run Snakemake on the targets' outputs.json; returns when it exits or is cancelled.
    `runtime` is the runtime's name, handed to every job through `--config runtime=`;
    `on_cancel(run_id)` runs after a cancellation (the runtime's cleanup)."""
    log_dir = repo / ".efflab" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{run_id or int(time.time())}.snakemake.log"
    if profile is not None:  # bad input (exit 2) before anything is submitted
        preflight(repo, profile, targets)
    files = [f"{inv.folder}/outputs.json" for inv in targets]
    cmd = snakemake_cmd(repo, files, cores, dry_run, runtime, profile, extra)
    env = dict(os.environ, EFFLAB_RUN_ID=run_id)
    env.pop("EFFLAB_RUNTIME", None)  # one way only: --config runtime=
    result = EngineResult(returncode=0, log_file=log_file)
    with open(log_file, "a") as log:  # one log per run id, across waves
        proc = subprocess.Popen(
            cmd,
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            # Snakemake cancels cluster jobs on SIGINT; a background efflab inherits it
            # ignored, so give Snakemake the default back (it then raises KeyboardInterrupt)
            preexec_fn=_default_sigint if profile is not None else None,
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
        if cancelled:
            result.cancelled = True
            if on_cancel is not None:
                on_cancel(run_id)
    result.returncode = proc.returncode
    return result


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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
