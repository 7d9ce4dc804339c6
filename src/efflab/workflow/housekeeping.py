"""Run hygiene around one experiment's run: its lock, and what killed runs left behind.

Why a module of its own: the pipeline must (1) let only one efflab run of an experiment
touch its results at a time — a second one waits (then finds everything cached) or,
asked not to wait, is refused with the holder's PID; and (2), holding that lock, clear
what a kill left: half-built table folders, temp record files, Snakemake's incomplete
markers, and a truncated outputs.json, which must be rebuilt (not blamed on the step
that reads it). None of this may touch an invocation another live run is executing.
"""

from __future__ import annotations

import shutil
import sys
import time
from base64 import urlsafe_b64encode
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from efflab.core import layout
from efflab.core.errors import BadInput
from efflab.core.invocation import Invocation
from efflab.core.locks import FileLock, Locked
from efflab.runtime.outputs import DONE_COPY, valid_outputs


@dataclass
class Swept:
    """What the sweep removed or set aside (paths relative to the repo)."""

    removed: list[str] = field(default_factory=list)
    set_aside: list[str] = field(default_factory=list)


def experiment_lock(repo: Path, experiment: str, run_id: str, wait: bool = True) -> FileLock:
    """The held lock on an experiment's results (release it when the run is done)."""
    lock = FileLock(layout.state_dir(repo, "locks") / f"{experiment}.lock",
                    f"experiment {experiment}", run_id)  # fmt: skip

    def tell(holder) -> None:
        print(f"efflab: {experiment}: waiting for {holder}, which is running it now",
              file=sys.stderr)  # fmt: skip

    try:
        return lock.acquire(wait=wait, on_wait=tell)
    except Locked as exc:
        raise BadInput(
            exc.path,
            "$",
            f"no other efflab run of experiment '{experiment}'",
            f"{exc.holder} running it",
            "wait for it, or run again without --no-wait to queue behind it",
        ) from None


def _busy(repo: Path, inv: Invocation) -> bool:
    return FileLock(repo / inv.folder / ".lock").held_elsewhere()


def sweep(repo: Path, experiment: str, invocations: Iterable[Invocation]) -> Swept:
    """Call with the experiment lock held. Removes stale temp folders/files and
    incomplete markers; sets a corrupt outputs.json aside so Snakemake rebuilds it."""
    out = Swept()
    tables = layout.tables_dir(repo, experiment)
    stale = [*tables.glob(".tmp-*")] if tables.is_dir() else []
    runs = layout.runs_dir(repo, experiment)
    stale += [*runs.glob(".*.tmp")] if runs.is_dir() else []
    for p in stale:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        out.removed.append(str(p.relative_to(repo)))
    markers = repo / ".snakemake" / "incomplete"
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for inv in invocations:
        folder = repo / inv.folder
        if not folder.is_dir() or _busy(repo, inv):
            continue
        target = f"{inv.folder}/outputs.json"
        marker = markers / urlsafe_b64encode(target.encode()).decode()
        if marker.is_file():  # the job was killed; its outputs.json (if any) is whole
            marker.unlink(missing_ok=True)
            out.removed.append(str(marker.relative_to(repo)))
        f = folder / "outputs.json"
        if f.exists() and valid_outputs(f, inv.key) is None:
            aside = folder / f"outputs.json.corrupt-{stamp}"
            f.rename(aside)
            (folder / DONE_COPY).unlink(missing_ok=True)  # the same (corrupt) file
            out.set_aside.append(str(aside.relative_to(repo)))
            print(f"efflab: warning: {f} was truncated or corrupt; kept as {aside.name}, "
                  "rebuilding it", file=sys.stderr)  # fmt: skip
    return out
