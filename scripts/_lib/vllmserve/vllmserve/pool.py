"""Engine pool, client side: send a point's job to a vLLM engine kept warm across points.

Runs in the script's process (stdlib only). vLLM's import and engine construction cost
~15 s per point (2-6x that beside other work); the quick serving experiments have ~36
points. An engine is keyed by a digest of everything that shapes it (model folder,
dtype, lengths, batch limit, scheduler policy, threads, KV cache size, seed, the
interpreter, the vllmserve code, vLLM/OpenMP environment variables): the first point of
a configuration starts a detached daemon (`pool_daemon`) that builds it once; later
points with the same key send their job to it over a Unix socket. A daemon runs one job
at a time (the key's lock file, held by the client for its whole job) and exits after
EFFLAB_VLLM_POOL_IDLE_S (default 600) seconds idle. EFFLAB_VLLM_POOL=0 (or an idle time
of 0) gives today's fresh process per point.

How points stay independent on a reused engine: see `VllmEngine.begin_job` and
docs/serving-vllm.md ("Engine pool").
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .pool_daemon import ENGINE_KEYS, idle_seconds, recv, send

POOLED = ("driver", "loadgen_driver")
ENV_PREFIXES = ("VLLM_", "OMP_", "KMP_", "MKL_", "OPENBLAS_", "TORCH", "HF_", "TRANSFORMERS_")
ACK_TIMEOUT_S = 60.0  # an idle daemon answers at once; one that does not is hung
MAX_ENV = "EFFLAB_VLLM_POOL_MAX"  # live engines per pool folder (~1.8 GB each), default 4
_spawned: list[subprocess.Popen] = []  # reaped by shutdown_all (tests) or at exit


def enabled(python: str) -> bool:
    """On unless EFFLAB_VLLM_POOL=0 or an idle time of 0. Off where vLLM runs in this
    very interpreter (the env image): a container lives as long as its job, a daemon
    would die with it."""
    if os.environ.get("EFFLAB_VLLM_POOL", "1").strip() in ("0", "", "off", "false"):
        return False
    return idle_seconds() > 0 and os.path.abspath(python) != os.path.abspath(sys.executable)


def pool_dir() -> Path:
    """Per-user folder (0700) for sockets, locks and daemon logs; short enough for
    AF_UNIX's 108-byte socket paths."""
    d = os.environ.get("EFFLAB_VLLM_POOL_DIR")
    base = Path(d) if d else Path(tempfile.gettempdir()) / f"efflab-vllm-{os.getuid()}"
    if len(str(base)) > 80:
        base = Path("/tmp") / f"efflab-vllm-{os.getuid()}"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = base.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise RuntimeError(f"{base} is not private to this user (owner/mode); remove it")
    return base


def engine_key(job: dict[str, Any], python: str, env: dict[str, str]) -> str:
    lib = Path(__file__).resolve().parent
    code = hashlib.sha256()
    for f in sorted(lib.glob("*.py")):
        code.update(f.name.encode() + f.read_bytes())
    model = Path(job["model"])
    stamps = [(f.name, f.stat().st_mtime_ns) for f in sorted(model.glob("*")) if f.is_file()]
    blob = {
        "engine": {k: job.get(k) for k in ENGINE_KEYS},
        "model_files": stamps,  # a rebuilt model at the same path is another engine
        "python": os.path.abspath(python),  # a venv: not resolved to its base
        "code": code.hexdigest(),
        "env": sorted((k, v) for k, v in env.items() if k.startswith(ENV_PREFIXES)),
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def _lock(f: Any, deadline: float) -> None:
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise RuntimeError("timed out waiting for a pooled vLLM engine") from None
            time.sleep(0.1)


def _connect(path: Path) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(str(path))
        return s
    except (FileNotFoundError, ConnectionRefusedError, TimeoutError, OSError):
        s.close()
        return None


def _daemon_pid(d: Path, key: str) -> int | None:
    """The key's daemon pid, if that process is alive and is that daemon."""
    try:
        pid = int(json.loads((d / f"{key}.pid").read_text())["pid"])
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, KeyError):
        return None
    return pid if b"vllmserve.pool_daemon" in cmd and key.encode() in cmd else None


def _kill(d: Path, key: str) -> None:
    """A hung or stale daemon of this key, and its socket, gone."""
    pid = _daemon_pid(d, key)
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        (d / f"{key}.sock").unlink()


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _shutdown(d: Path, key: str, timeout_s: float) -> None:
    """Ask the key's daemon to exit (it answers between jobs); kill it if it does not."""
    s = _connect(d / f"{key}.sock")
    try:
        if s is None:
            raise OSError
        s.settimeout(timeout_s)
        send(s, {"op": "shutdown"})
        recv(s)
    except (OSError, EOFError):
        _kill(d, key)
    finally:
        if s is not None:
            s.close()


def _live_keys(d: Path) -> list[str]:
    """Keys with a socket, least recently used first (a job touches its lock file)."""
    keys = [p.stem for p in d.glob("*.sock") if "." not in p.stem]  # not a bind temp
    lock_t = {k: (d / f"{k}.lock").stat().st_mtime if (d / f"{k}.lock").exists() else 0.0
              for k in keys}  # fmt: skip
    return sorted(keys, key=lock_t.__getitem__)


def _evict(d: Path, starting: str) -> None:
    """Before a new engine starts: idle engines beyond EFFLAB_VLLM_POOL_MAX - 1 exit,
    least recently used first, so a reproduction touching many configurations holds a
    few GB, not one engine per configuration until their idle timeouts. A busy engine
    (its lock held by a client) is left alone."""
    live = [k for k in _live_keys(d) if k != starting]
    excess = len(live) - (max(int(os.environ.get(MAX_ENV, "4")), 1) - 1)
    for k in live:
        if excess <= 0:
            break
        with open(d / f"{k}.lock", "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            _shutdown(d, k, 10.0)
            excess -= 1


def _spawn(d: Path, key: str, job: dict[str, Any], python: str, env: dict[str, str],
           deadline: float) -> socket.socket:  # fmt: skip
    """Start the key's daemon, detached (new session, stdio to its log, cwd the pool
    folder: the script's process group, pipes and folder are not held), and connect."""
    _evict(d, key)
    (d / f"{key}.json").write_text(json.dumps({k: job[k] for k in ENGINE_KEYS if k in job}))
    log = d / f"{key}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [python, "-m", "vllmserve.pool_daemon", str(d), key],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=env, cwd=d, start_new_session=True, close_fds=True,
        )  # fmt: skip
    _spawned.append(proc)
    (d / f"{key}.pid").write_text(json.dumps({"pid": proc.pid}))
    while True:
        s = _connect(d / f"{key}.sock")
        if s is not None:
            return s
        if proc.poll() is not None:
            raise RuntimeError(
                f"pooled vLLM engine exited {proc.returncode} while starting; "
                f"last lines of {log}:\n{_tail(log)}"
            )
        if time.monotonic() > deadline:
            _kill(d, key)
            raise RuntimeError(f"pooled vLLM engine not up before the timeout; see {log}")
        time.sleep(0.1)


def call(module: str, job: dict[str, Any], out_dir: Path, timeout_s: float, name: str,
         python: str, env: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    """Run `module`'s job on the pooled engine of its configuration; the driver's result
    with `engine_pool` (reused or not, jobs before, pid, start time, attach_s) added."""
    deadline = time.monotonic() + timeout_s
    d = pool_dir()
    key = engine_key(job, python, env)
    (out_dir / f"{name}.job.json").write_text(json.dumps(job))
    log = d / f"{key}.log"
    with open(d / f"{key}.lock", "a") as lockf:
        _lock(lockf, deadline)  # one job per engine: a second point of this key waits here
        os.utime(d / f"{key}.lock")  # recently used: evicted last
        t0 = time.perf_counter()
        for _attempt in range(3):
            s = _connect(d / f"{key}.sock")
            if s is None:  # none, exited, or not answering: a fresh one
                _kill(d, key)
                s = _spawn(d, key, job, python, env, deadline)
            log_from = log.stat().st_size if log.exists() else 0
            try:
                s.settimeout(ACK_TIMEOUT_S)
                aff = sorted(os.sched_getaffinity(0))
                send(s, {"op": "job", "module": module, "job": job, "affinity": aff})
                ack = recv(s)
                break
            except (EOFError, OSError):  # left (idle exit) before taking it, or hung
                s.close()
                _kill(d, key)
        else:
            raise RuntimeError(f"no pooled vLLM engine would take the job; see {log}")
        attach_s = time.perf_counter() - t0
        try:
            s.settimeout(max(deadline - time.monotonic(), 1.0))
            reply = recv(s)
        except TimeoutError:
            _kill(d, key)
            raise RuntimeError(f"vllmserve.{module} ran past {timeout_s:.0f} s") from None
        except (EOFError, OSError):
            raise RuntimeError(
                f"pooled vLLM engine (pid {ack.get('engine_pid')}) died mid-job; "
                f"last lines of {log}:\n{_tail(log)}"
            ) from None
        finally:
            s.close()
            _copy_log(log, log_from, out_dir / f"{name}.log", ack)
    if not reply.get("ok"):
        raise RuntimeError(f"vllmserve.{module} failed on the pooled engine:\n{reply['error']}")
    res = reply["result"]
    # a reused engine's start-up was paid by an earlier point: this point's is the attach
    res["startup"]["attach_s"] = attach_s if ack.get("engine_reused") else 0.0
    res["engine_pool"]["attach_s"] = attach_s
    res["engine_pool"]["key"] = key
    (out_dir / f"{name}.result.json").write_text(json.dumps(res))
    return res


def _copy_log(log: Path, start: int, dest: Path, ack: dict[str, Any]) -> None:
    """The daemon's log lines of this job into the point's own log, as a fresh process's
    whole output would be."""
    with contextlib.suppress(OSError), open(dest, "ab") as out:
        out.write(f"[engine pool] {json.dumps(ack)}; engine log {log}\n".encode())
        with open(log, "rb") as f:
            f.seek(start)
            out.write(f.read())


def shutdown_all(d: Path | None = None, timeout_s: float = 30.0) -> int:
    """Ask every daemon in the pool folder to exit (between jobs), kill any that does
    not answer; returns how many there were. For tests and `tools/`; idle daemons also
    exit by themselves."""
    d = d or pool_dir()
    keys = _live_keys(d)
    for key in keys:
        _shutdown(d, key, timeout_s)
    for proc in _spawned:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _spawned.clear()
    return len(keys)
