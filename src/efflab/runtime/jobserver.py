"""Job server: one warm runner process per local run, forking a child per job.

A trivial job costs plain Snakemake one `bash -c`. Through `python -m
efflab.runtime.runner` it also costs a Python start-up and the runner's imports
(~50-150 ms, most of efflab's per-job overhead). So for local runs the adapter binds a
localhost socket, starts this server on it, and the generic rule's shell (the bash
Snakemake spawns anyway) sends `TOKEN RUNTIME FOLDER` over bash's /dev/tcp instead of
starting Python. The server answers `EFFLAB-RC <code>` when the job is done.

- A host job runs *in* the server: the runner's steps (`runner.Attempt`, the invocation
  lock, `HostRuntime.launch` / `HostJob.result`), with the script forked from here and
  reaped through its pidfd in the same select loop. Forking a Python runner per job
  cost ~9 ms of CPU (copy-on-write faults on the interpreter's heap, then tearing the
  copy down, twice per job: runner and script) against plain Snakemake's ~2 ms.
- Any other job (docker, an invocation another run holds, anything unexpected before
  the script starts) runs in a forked child that runs exactly `runner.run_invocation`,
  with the child's stdout/stderr on the connection. `EFFLAB_JOBSERVER_INPROCESS=off`
  sends every job that way. Everything an invocation does and records is the runner's.

- The client going away (Snakemake cancels or kills the job's shell) closes the
  connection: the server kills an in-process job's script group, or sends a runner
  child SIGTERM, which takes its script's group down as under the plain runner.
- The server stops when its stdin (a pipe from the efflab process) closes, so it
  cannot outlive the run; it ends every job still running. Scripts it forks die with
  it even under SIGKILL (parent-death signal).
- Only a client that knows the run's random token is served (the token travels in
  the environment, readable only by the same user).
- Where bash or the variable is missing (other executors, SLURM jobs, plain
  `snakemake`), the rule starts the runner as before.

Stdlib only (the job-process contract): the forked child must not inherit threads.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from efflab.core.invocation import Invocation
from efflab.core.locks import FileLock
from efflab.runtime import base, host
from efflab.runtime.outputs import completed_outputs
from efflab.runtime.runner import Attempt, invocation_lock, prepare, repo_of, run_invocation

ENV = "EFFLAB_JOBSERVER"  # "PORT:TOKEN", set by the adapter for the Snakemake process
INPROCESS_ENV = "EFFLAB_JOBSERVER_INPROCESS"  # "off": every job in a forked runner child
RC_PREFIX = b"EFFLAB-RC "
REQUEST_TIMEOUT_S = 10.0


@dataclass
class Served:
    """A host job run by the server itself: the runner's bookkeeping done here."""

    job: host.HostJob
    attempt: Attempt
    lock: FileLock
    cancelled: bool = False
    timed_out: bool = False

    @property
    def deadline(self) -> float:
        return self.job.t0 + self.job.timeout


@dataclass
class Job:
    pid: int  # the script (in-process job) or the runner child
    conn: socket.socket
    served: Served | None = None


def serve(listener: socket.socket, token: str, control_fd: int = 0) -> None:
    """Accept jobs on `listener` until `control_fd` reaches EOF."""
    inprocess = os.environ.get(INPROCESS_ENV, "").lower() not in ("0", "off", "no", "false")
    running: dict[int, Job] = {}  # pidfd -> job
    by_conn: dict[int, int] = {}  # connection fd -> pidfd
    try:
        while True:
            watched = [listener.fileno(), control_fd, *running, *by_conn]
            ready, _, _ = select.select(watched, [], [], _next_deadline(running))
            # accept last: a descriptor closed in this round may be reused by accept
            for fd in sorted(ready, key=lambda f: f == listener.fileno()):
                if fd == control_fd:
                    if not os.read(control_fd, 4096):
                        return
                elif fd == listener.fileno():
                    job = _accept(listener, token, inprocess)
                    if job is not None:
                        pidfd = os.pidfd_open(job.pid)
                        running[pidfd] = job
                        by_conn[job.conn.fileno()] = pidfd
                elif fd in running:
                    job = running.pop(fd)
                    by_conn.pop(job.conn.fileno(), None)
                    _, status, ru = os.wait4(job.pid, 0)
                    os.close(fd)
                    if job.served is None:
                        _answer(job.conn, os.waitstatus_to_exitcode(status))
                    else:
                        _answer(job.conn, _finish(job, status, ru))
                elif fd in by_conn:
                    # the client closed its end: Snakemake cancelled or killed the job
                    job = running[by_conn.pop(fd)]
                    if job.served is None:
                        _signal(job.pid, signal.SIGTERM)
                    else:
                        job.served.cancelled = True
                        host.kill_group(job.pid)
            _enforce_timeouts(running)
    finally:
        for pidfd, job in running.items():
            if job.served is None:
                _signal(job.pid, signal.SIGTERM)
            else:
                host.kill_group(job.pid)
            _, status = os.waitpid(job.pid, 0)
            os.close(pidfd)
            job.conn.close()
            if job.served is not None:
                job.served.job.reaped(status)
                job.served.lock.release()


def _next_deadline(running: dict[int, Job]) -> float | None:
    deadlines = [j.served.deadline for j in running.values() if j.served and not j.served.timed_out]
    return max(0.0, min(deadlines) - time.perf_counter()) if deadlines else None


def _enforce_timeouts(running: dict[int, Job]) -> None:
    now = time.perf_counter()
    for job in running.values():
        s = job.served
        if s is not None and not s.timed_out and not s.cancelled and now >= s.deadline:
            s.timed_out = True
            host.kill_group(job.pid)  # reaped (and recorded as a timeout) in the loop


def _accept(listener: socket.socket, token: str, inprocess: bool) -> Job | None:
    conn, _ = listener.accept()
    conn.settimeout(REQUEST_TIMEOUT_S)
    try:
        line = conn.makefile("rb").readline().decode()
        got_token, runtime, folder = line.split()
    except (OSError, ValueError, UnicodeDecodeError):
        conn.close()
        return None
    if got_token != token or runtime not in base.RUNTIMES:
        conn.close()
        return None
    conn.settimeout(None)
    if inprocess and runtime == "host":
        started = _start_served(conn, Path(folder))
        if isinstance(started, int):
            _answer(conn, started)
            return None
        if started is not None:
            return Job(started.job.pid, conn, started)
    pid = os.fork()
    if pid == 0:
        _child(conn, listener, runtime, folder)
    return Job(pid, conn)


def _say(conn: socket.socket):
    def say(message: str) -> None:
        try:
            conn.sendall(message.encode(errors="replace") + b"\n")
        except OSError:
            pass

    return say


def _start_served(conn: socket.socket, folder: Path) -> Served | int | None:
    """Start a host job here: its Served state, its exit code when it ended before its
    script started, or None when a runner child should take it (another run holds the
    invocation, so the child waits as the runner does; or the invocation is unreadable,
    and the child reports it as the runner does)."""
    try:
        repo, folder = repo_of(folder), folder.resolve()
        inv = Invocation.load(folder)
        lock = invocation_lock(folder, inv)
        lock.acquire(wait=False)
    except Exception:
        return None
    try:
        if completed_outputs(folder, inv.key) is not None:
            lock.release()
            return 0  # done by a run that held it before (or restored from its copy)
        prepare(folder)
        attempt = Attempt(inv, folder, "host")
        try:
            job = host.HostRuntime().launch(repo, inv, folder, vfork=True)
        except Exception as exc:
            lock.release()
            return attempt.failed(exc, _say(conn))
        return Served(job, attempt, lock)
    except Exception:
        lock.release()
        _say(conn)(traceback.format_exc().rstrip())
        return 1


def _finish(job: Job, status: int, ru) -> int:
    """The reaped script's record: what `HostRuntime.execute` and the runner do after
    the wait, here in the server."""
    s = job.served
    s.job.reaped(status)
    try:
        host.kill_group(job.pid)  # anything the script left running in its group goes too
        if s.cancelled:
            return 128 + signal.SIGTERM
        if s.timed_out:
            return s.attempt.failed(s.job.timed_out(), _say(job.conn))
        try:
            out = s.job.result(status, ru)
        except Exception as exc:  # a failed script is data (a failed record), not a crash
            return s.attempt.failed(exc, _say(job.conn))
        return s.attempt.succeeded(out)
    except Exception:
        _say(job.conn)(traceback.format_exc().rstrip())
        return 1
    finally:
        s.lock.release()


def _child(conn: socket.socket, listener: socket.socket, runtime: str, folder: str) -> None:
    """The forked job: the runner's own code, output on the connection. Never returns."""
    code = 1
    try:
        listener.close()
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_DFL)
        fd_null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd_null, 0)
        os.dup2(conn.fileno(), 1)
        os.dup2(conn.fileno(), 2)
        code = run_invocation(Path(folder), runtime)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(code)


def _answer(conn: socket.socket, code: int) -> None:
    try:
        conn.sendall(RC_PREFIX + str(code).encode() + b"\n")
    except OSError:
        pass
    conn.close()


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def main(argv: list[str]) -> int:
    """`python -m efflab.runtime.jobserver LISTEN_FD [RUNTIME]`; the token comes in
    $EFFLAB_JOBSERVER. RUNTIME's module is imported once here, before any fork, so a
    docker job does not pay the docker SDK's import (~0.3 s) each time."""
    if not 1 <= len(argv) <= 2 or not argv[0].isdigit() or ENV not in os.environ:
        print("usage: EFFLAB_JOBSERVER=PORT:TOKEN python -m efflab.runtime.jobserver FD [RUNTIME]",
              file=sys.stderr)  # fmt: skip
        return 2
    listener = socket.socket(fileno=int(argv[0]))
    os.set_inheritable(listener.fileno(), False)  # inherited from the adapter; scripts must not
    token = os.environ.pop(ENV).partition(":")[2]  # scripts need not see it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if len(argv) == 2 and argv[1] in base.RUNTIMES:
        base.get(argv[1])  # jobs connecting meanwhile wait in the backlog
    serve(listener, token)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
