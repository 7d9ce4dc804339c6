"""Lifelines: no process efflab starts may outlive the efflab run that started it.

Why one module: the CLI process, Snakemake, the job runner and the script child all
need the same two facts — "who owns me" (an owner token: pid + kernel start time, so a
recycled pid is never mistaken for the owner) and "end me when my owner dies" (the
kernel's parent-death signal for direct children, a pidfd watchdog thread for the
runner, whose owner is several generations up). Stdlib only: the job process imports it.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

PR_SET_PDEATHSIG = 1
OWNER_ENV = "EFFLAB_OWNER"  # "pid:starttime" of the efflab process that owns this run


@dataclass(frozen=True)
class Owner:
    """A process identity that survives pid reuse: pid plus its start time in ticks."""

    pid: int
    start: int

    def __str__(self) -> str:
        return f"{self.pid}:{self.start}"

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        pid, _, start = (text or "").partition(":")
        if not (pid.isdigit() and start.isdigit()):
            return None
        return cls(int(pid), int(start))

    @classmethod
    def of(cls, pid: int | None = None) -> Owner:
        pid = os.getpid() if pid is None else pid
        return cls(pid, start_time(pid) or 0)

    def alive(self) -> bool:
        return start_time(self.pid) == self.start


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time since boot), None when no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    rest = stat[stat.rfind(b")") + 2 :].split()
    if len(rest) < 20 or rest[0] == b"Z":  # a zombie has died already
        return None
    return int(rest[19])


def set_parent_death_signal(sig: int = signal.SIGTERM, parent: int | None = None) -> None:
    """Ask the kernel to send `sig` to this process when its parent ends (Linux).
    With `parent`, exit at once if that parent already died before the call."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:
        os._exit(128 + int(sig))


def owner_from_env() -> Owner | None:
    return Owner.parse(os.environ.get(OWNER_ENV, ""))


def watch(owner: Owner, on_death: Callable[[], None], poll_s: float = 1.0) -> threading.Thread:
    """Daemon thread that calls `on_death` once the owner is gone (at once if it already
    is). Uses a pidfd where the kernel has one, else polls /proc."""
    try:
        fd = os.pidfd_open(owner.pid) if owner.alive() else None
    except (AttributeError, OSError):
        fd = -1

    def loop() -> None:
        if fd is None:
            on_death()
            return
        while True:
            if fd >= 0:
                select.select([fd], [], [], poll_s)
            else:
                threading.Event().wait(poll_s)
            if not owner.alive():
                on_death()
                return

    t = threading.Thread(target=loop, name="efflab-lifeline", daemon=True)
    t.start()
    return t
