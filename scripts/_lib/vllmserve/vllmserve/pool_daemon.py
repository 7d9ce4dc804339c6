"""One pooled vLLM engine: built once, then serving jobs one at a time on a Unix socket.

Runs under vLLM's interpreter, detached from the script that started it (its own
session, stdio to a log file, cwd its pool folder): `python -m vllmserve.pool_daemon
POOL_DIR KEY`. The engine configuration is POOL_DIR/KEY.json; the socket POOL_DIR/KEY.sock.
It exits after EFFLAB_VLLM_POOL_IDLE_S seconds without a job (removing its socket first,
so a client that comes later starts a fresh one), on a `shutdown` message, or at once
when the client of a running job goes away (a killed script leaves no job half-run and
no engine in an unknown state). Why a pool at all: vLLM's import and engine construction
cost ~15 s per point, more than many quick points' serving.

Wire format (both ways): 4-byte big-endian length + JSON. The folder is 0700 and the
peer's uid is checked (SO_PEERCRED), so only this user's scripts can send jobs.
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

ENGINE_KEYS = ("model", "dtype", "max_model_len", "max_num_seqs", "policy", "threads",
               "kv_cache_gib", "vocab", "seed")  # fmt: skip
DEFAULT_IDLE_S = 600.0  # points of one key come interleaved with other keys (see docs)


def send(sock: socket.socket, obj: Any) -> None:
    data = json.dumps(obj).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def recv(sock: socket.socket) -> Any:
    """One message; EOFError when the peer closed first."""

    def exactly(n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("peer closed the connection")
            buf += chunk
        return bytes(buf)

    (n,) = struct.unpack(">I", exactly(4))
    return json.loads(exactly(n))


def idle_seconds() -> float:
    return float(os.environ.get("EFFLAB_VLLM_POOL_IDLE_S", DEFAULT_IDLE_S))


def _log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} pid {os.getpid()}: {msg}", flush=True)


def _watch_client(conn: socket.socket, done: threading.Event) -> None:
    """The job's client went away (killed script, client timeout): end this process now.

    The client sends nothing while its job runs, so the socket turning readable means
    EOF. Exiting (rather than aborting the requests) leaves no doubt about the engine's
    state; the next point starts a fresh engine.
    """
    while not done.is_set():
        r, _, _ = select.select([conn], [], [], 0.2)
        if r and not done.is_set():
            try:
                gone = conn.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                gone = True
            if gone:
                _log("client went away mid-job: exiting, the job is dropped")
                os._exit(3)


def _set_affinity(cpus: list[int] | None) -> list[int] | None:
    """Every thread of this process onto the client's cores (efflab pins timing jobs to a
    measured core; the engine must run where the job was placed, not where the first
    job that started it was)."""
    if not cpus:
        return None
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), set(cpus))
        except OSError:  # a thread that ended meanwhile
            pass
    return sorted(os.sched_getaffinity(0))


def run_job(eng: Any, msg: dict[str, Any]) -> dict[str, Any]:
    from . import driver, loadgen_driver

    job = msg["job"]
    for k in ENGINE_KEYS:  # the key is a digest: a collision must not serve a wrong engine
        if job.get(k) != eng.job.get(k):
            raise RuntimeError(f"job's {k}={job.get(k)!r} differs from the engine's")
    if msg["module"] == "driver":  # each begins the job: VllmEngine.begin_job
        return driver.serve(job, eng)
    if msg["module"] == "loadgen_driver":
        return loadgen_driver.run(job, eng)
    raise ValueError(f"unknown module {msg['module']!r}")


def main(argv: list[str]) -> int:
    pool_dir, key = Path(argv[0]), argv[1]
    sock_path = pool_dir / f"{key}.sock"
    config = json.loads((pool_dir / f"{key}.json").read_text())
    t0 = time.perf_counter()
    from .driver import VllmEngine

    eng = VllmEngine(config)  # builds the engine (start-up measured inside)
    _log(f"engine up in {time.perf_counter() - t0:.1f} s: {config}")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = pool_dir / f"{key}.{os.getpid()}.sock"
    srv.bind(str(tmp))
    srv.listen(4)
    ino = os.stat(tmp).st_ino
    os.replace(tmp, sock_path)  # atomic: a client sees no socket or a listening one
    idle = idle_seconds()
    srv.settimeout(idle if idle > 0 else None)
    jobs = 0
    while True:
        try:
            conn, _ = srv.accept()
        except TimeoutError:
            _log(f"idle {idle:g} s: exiting after {jobs} jobs")
            break
        conn.settimeout(None)
        uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
        if uid != os.getuid():
            conn.close()
            continue
        try:
            msg = recv(conn)
        except (EOFError, OSError, ValueError):
            conn.close()
            continue
        if msg.get("op") == "shutdown":
            send(conn, {"ok": True, "pid": os.getpid(), "jobs": jobs})
            conn.close()
            _log("shutdown asked")
            break
        send(conn, {"accepted": True, "engine_pid": os.getpid(), "engine_reused": jobs > 0})
        done = threading.Event()
        threading.Thread(target=_watch_client, args=(conn, done), daemon=True).start()
        cpus = _set_affinity(msg.get("affinity"))
        _log(f"job {jobs + 1} started ({msg.get('module')}, cpus {cpus})")
        # the first job's client started this daemon and waited for the engine: its
        # import and build CPU is that job's too (process_time counts from our start)
        cpu0 = time.process_time() if jobs > 0 else 0.0
        try:
            res = run_job(eng, msg)
            if jobs > 0:  # start-up was paid by the engine's first job, not by this one
                res["startup"] = {"import_s": 0.0, "engine_s": 0.0}
            # the engine's CPU is not in the script's own rusage (the run record's cpu_s,
            # max_rss_mb and energy estimate see only the client): said here
            cpu = time.process_time() - cpu0
            res["engine_pool"].update(pooled=True, affinity=cpus, job_cpu_s=cpu)
            reply = {"ok": True, "result": res}
        except Exception:
            reply = {"ok": False, "error": traceback.format_exc()}
        done.set()
        jobs += 1
        _log(f"job {jobs} {'done' if reply['ok'] else 'failed'}")
        try:
            send(conn, reply)
        except OSError:
            pass
        conn.close()
        if not reply["ok"]:  # an engine that failed a job is not trusted with the next
            break
    try:  # first the path (a later client starts a fresh engine), only if still ours
        if os.stat(sock_path).st_ino == ino:
            sock_path.unlink()
    except OSError:
        pass
    srv.close()
    _log("exit")
    # no interpreter teardown: vLLM's engine shutdown and garbage collection spun a core
    # for 25-35 s here, possibly the measured core a timing job is now running on
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
