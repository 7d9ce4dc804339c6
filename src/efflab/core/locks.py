"""Locks between efflab processes (the one lock implementation of efflab): one per
experiment's results, one per invocation, the nightly history, a tournament's ledger
and verification queue, env builds, publishing.

Why not Snakemake's own lock: it locks the whole working directory, refuses instead
of waiting, and a `kill -9` leaves it stale until someone runs `--unlock`. A kernel
`flock` is released the moment its holder dies, however it dies, so a lock here can
never go stale; the file also names its holder (pid, run id) for a clear message.
Stdlib only: the job runner takes the invocation lock.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its holder wrote it."""

    pid: int | None
    run_id: str
    what: str

    def __str__(self) -> str:
        run = f", run {self.run_id}" if self.run_id else ""
        return f"PID {self.pid if self.pid is not None else '?'}{run}"


class Locked(Exception):
    """The lock is held by another live process and we were told not to wait."""

    def __init__(self, path: Path, holder: Holder):
        super().__init__(f"{path} is held by {holder}")
        self.path, self.holder = path, holder


class FileLock:
    """An exclusive flock on `path` (created 0644), released on close or on death."""

    def __init__(
        self, path: str | Path, what: str = "", run_id: str = "", timeout: float | None = None
    ):
        """`timeout`: how long `with lock:` waits before raising Locked (None: for
        as long as it takes)."""
        self.path = Path(path)
        self.what, self.run_id, self.timeout = what, run_id, timeout
        self.fd: int | None = None
        self.waited_s = 0.0

    def holder(self) -> Holder:
        try:
            text = self.path.read_text(errors="replace").split("\n", 1)[0].split("\t")
        except OSError:
            text = []
        pid = int(text[0]) if text and text[0].isdigit() else None
        return Holder(pid, text[1] if len(text) > 1 else "", text[2] if len(text) > 2 else "")

    def acquire(
        self,
        wait: bool = True,
        timeout: float | None = None,
        on_wait: Callable[[Holder], None] | None = None,
    ) -> FileLock:
        """Take the lock; when held: raise Locked (wait=False), or wait (telling
        `on_wait` once who holds it) up to `timeout` seconds (None: for as long as it takes)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        t0 = time.monotonic()
        told = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise
                holder = self.holder()
                waited = time.monotonic() - t0
                if not wait or (timeout is not None and waited >= timeout):
                    raise Locked(self.path, holder)
                if not told and on_wait is not None:
                    on_wait(holder)
                    told = True
                time.sleep(0.1)
        except BaseException:
            os.close(fd)
            raise
        self.waited_s = time.monotonic() - t0
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\t{self.run_id}\t{self.what}\n".encode(), 0)
        self.fd = fd
        return self

    def held_elsewhere(self) -> bool:
        """True when another process holds the lock now (does not take it)."""
        if not self.path.exists():
            return False
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        except OSError:
            return True
        finally:
            os.close(fd)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self) -> FileLock:
        return self.acquire(timeout=self.timeout) if self.fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()
