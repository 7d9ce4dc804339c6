"""The warm container's server (`python3 -m efflab.runtime.warm_server --serve DIR
[MODULE...]`), run inside the env's image: imports MODULE... once, then per request
on DIR/s forks a job that is exactly `runner.run_inside` (a fresh container's code),
answers its exit code, and clears what the job left (processes, /tmp). The host side
and the reasons are in efflab.runtime.warm. Stdlib only.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import select
import signal
import socket
import sys
from pathlib import Path

SOCKET = "s"
IDLE_S = 300.0


def serve(sock_dir: Path, preload: list[str], idle_s: float = IDLE_S) -> int:
    for name in preload:  # a failing import is the script's to report, not ours
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    from efflab.runtime import runner  # noqa: F401  (imported once, before any fork)

    path = sock_dir / SOCKET
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(4)
    while True:
        ready, _, _ = select.select([listener], [], [], idle_s)
        if not ready:
            return 0  # idle: the container ends (auto-removed)
        conn, _ = listener.accept()
        conn.settimeout(10.0)
        try:
            line = conn.makefile("rb").readline().decode()
        except (OSError, UnicodeDecodeError):
            conn.close()
            continue
        if not line.startswith("RUN "):
            conn.close()
            continue
        conn.settimeout(None)
        code = _serve_one(conn, Path(line[4:].strip()), listener)
        _reset()
        with contextlib.suppress(OSError):
            conn.sendall(f"RC {code}\n".encode())
        conn.close()


def _serve_one(conn: socket.socket, folder: Path, listener: socket.socket) -> int:
    pid = os.fork()
    if pid == 0:
        _job(folder, conn, listener)
    pidfd = os.pidfd_open(pid)
    try:
        while True:
            ready, _, _ = select.select([pidfd, conn], [], [])
            if pidfd in ready:
                break
            if not conn.recv(1):  # the runner went away: the job goes too
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                break
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(pidfd)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _job(folder: Path, conn: socket.socket, listener: socket.socket) -> None:
    code = 1
    try:
        conn.close()
        listener.close()
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_DFL)
        with contextlib.suppress(OSError):  # under the memory limit, the script goes first
            Path("/proc/self/oom_score_adj").write_text("1000")
        fd = os.open(folder / "container.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.chdir(folder)
        from efflab.runtime.runner import run_inside

        code = run_inside(folder)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _reset() -> None:
    """What a job left behind goes: its processes (all but init and us) and /tmp."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in (1, me):
            with contextlib.suppress(OSError):
                os.kill(int(entry), signal.SIGKILL)
    _wipe("/tmp", os.lstat("/tmp").st_dev)


def _wipe(path: str, dev: int) -> None:
    """Empty `path` on its own file system only: the repo and artifacts are mounted
    at their own paths, which may lie under /tmp, and must never be touched."""
    with contextlib.suppress(OSError), os.scandir(path) as entries:
        for e in entries:
            with contextlib.suppress(OSError):
                if e.stat(follow_symlinks=False).st_dev != dev:
                    continue  # a mount point: not ours
                if e.is_dir(follow_symlinks=False):
                    _wipe(e.path, dev)
                    os.rmdir(e.path)  # fails where a mount point lies below: kept
                else:
                    os.unlink(e.path)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "--serve":
        print(
            "usage: python3 -m efflab.runtime.warm_server --serve DIR [MODULE...]", file=sys.stderr
        )
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return serve(Path(argv[1]), argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
