"""Job server: one warm runner process per local run, forking a child per job.

A trivial job costs plain Snakemake one `bash -c`. Through `python -m
efflab.runtime.runner` it also costs a Python start-up and the runner's imports
(~50-150 ms, most of efflab's per-job overhead). So for local runs the adapter binds a
localhost socket, starts this server on it, and the generic rule's shell (the bash
Snakemake spawns anyway) sends `TOKEN RUNTIME FOLDER` over bash's /dev/tcp instead of
starting Python. The server forks a child that runs exactly `runner.run_invocation`
with the child's stdout/stderr on the connection, and answers `EFFLAB-RC <code>`
when the child exits. Everything an invocation does and records is the runner's.

- The client going away (Snakemake cancels or kills the job's shell) closes the
  connection: the server sends the child SIGTERM, which takes the script's process
  group down as it does under the plain runner.
- The server stops when its stdin (a pipe from the efflab process) closes, so it
  cannot outlive the run; it SIGTERMs children still running.
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
import traceback
from pathlib import Path

from efflab.runtime import base
from efflab.runtime.runner import run_invocation

ENV = "EFFLAB_JOBSERVER"  # "PORT:TOKEN", set by the adapter for the Snakemake process
RC_PREFIX = b"EFFLAB-RC "
REQUEST_TIMEOUT_S = 10.0


def serve(listener: socket.socket, token: str, control_fd: int = 0) -> None:
    """Accept jobs on `listener` until `control_fd` reaches EOF."""
    running: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (pid, connection)
    by_conn: dict[int, int] = {}  # connection fd -> pidfd
    try:
        while True:
            watched = [listener.fileno(), control_fd, *running, *by_conn]
            ready, _, _ = select.select(watched, [], [])
            # accept last: a descriptor closed in this round may be reused by accept
            for fd in sorted(ready, key=lambda f: f == listener.fileno()):
                if fd == control_fd:
                    if not os.read(control_fd, 4096):
                        return
                elif fd == listener.fileno():
                    _accept(listener, token, running, by_conn)
                elif fd in running:
                    pid, conn = running.pop(fd)
                    by_conn.pop(conn.fileno(), None)
                    _, status = os.waitpid(pid, 0)
                    os.close(fd)
                    _answer(conn, os.waitstatus_to_exitcode(status))
                elif fd in by_conn:
                    # the client closed its end: Snakemake cancelled or killed the job
                    pid, _ = running[by_conn.pop(fd)]
                    _signal(pid, signal.SIGTERM)
    finally:
        for pidfd, (pid, conn) in running.items():
            _signal(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
            os.close(pidfd)
            conn.close()


def _accept(listener, token, running, by_conn) -> None:
    conn, _ = listener.accept()
    conn.settimeout(REQUEST_TIMEOUT_S)
    try:
        line = conn.makefile("rb").readline().decode()
        got_token, runtime, folder = line.split()
    except (OSError, ValueError, UnicodeDecodeError):
        conn.close()
        return
    if got_token != token or runtime not in base.RUNTIMES:
        conn.close()
        return
    conn.settimeout(None)
    pid = os.fork()
    if pid == 0:
        _child(conn, listener, runtime, folder)
    pidfd = os.pidfd_open(pid)
    running[pidfd] = (pid, conn)
    by_conn[conn.fileno()] = pidfd


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
    token = os.environ.pop(ENV).partition(":")[2]  # scripts need not see it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if len(argv) == 2 and argv[1] in base.RUNTIMES:
        base.get(argv[1])  # jobs connecting meanwhile wait in the backlog
    serve(listener, token)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
