"""Warm containers: a local run reuses one container per sandbox class, one job at a time.

A fresh container per invocation costs ~0.45 s (create, start, wait, remove) and the
script's imports again (`import torch` alone ~1.9 s here): on a 200-job reproduction
that is minutes of overhead on the critical path, since timing jobs run one at a time.
So, for local, unsealed docker runs, the runner hands an invocation to a warm server:

- A *class* is everything that makes two sandboxes differ (image, CPU quota, memory
  and pids limits, network, threads, environment, extra mounts, preloaded modules).
  Each class has slots `K-0`, `K-1`...; a runner holds a slot's flock for its job, so
  a container serves one invocation at a time and its limits stay the invocation's.
- The server (efflab.runtime.warm_server, inside the container)
  imports, before its first job, the modules of the env's `efflab.warm-imports` image
  label that the script's run.py itself imports (so preloading never adds memory a
  fresh run would not use), then forks a job per request; the job is exactly
  `runner.run_inside`, the fresh container's code. After each job it kills whatever the
  job left running and empties /tmp.
- What differs from a fresh container, on purpose: the artifacts tree is mounted
  writable (not only the invocation's folder), as on the host runtime. Sealed runs
  (tournaments) never use warm containers; EFFLAB_WARM_CONTAINERS=0 turns them off.
- A timeout or a cancel removes the container, as for a fresh one; the run's end
  removes the rest (the runtime's cleanup, by label); an idle server exits by itself.

The server is efflab.runtime.warm_server (stdlib only: it runs in the env's image).
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from efflab.runtime import base, warm_server
from efflab.runtime.host import THREAD_VARS

DIR_ENV = "EFFLAB_WARM_DIR"  # set by the adapter for local docker runs
OFF_ENV = "EFFLAB_WARM_CONTAINERS"  # "0": a fresh container per invocation
LABEL_IMPORTS = "efflab.warm-imports"  # image label: modules worth importing once
LABEL_WARM = "efflab.warm"
MOUNT = "/efflab-warm"  # the slot's folder inside the container (holds the socket)
SOCKET = warm_server.SOCKET
SLOTS = 8
START_TIMEOUT_S = 120.0


class ServerDied(Exception):
    """The warm server went away mid-job (its container was killed)."""


def dir_for(run_id: str) -> Path:
    """The run's slots folder; short, because a unix socket path is at most 107 bytes."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / "efflab-warm" / digest


def wanted(run_id: str, runtime: str, executor: str, dry_run: bool) -> bool:
    """Keep sandboxes warm for this run? Only where the runtime says it can
    (`Runtime.supports_warm`), on the local executor, and unless switched off."""
    return (
        bool(run_id)
        and runtime in base.RUNTIMES
        and base.get(runtime).supports_warm
        and executor == "local"
        and not dry_run
        and (os.environ.get(OFF_ENV, "1") != "0")
    )


def forget(run_id: str) -> None:
    shutil.rmtree(dir_for(run_id), ignore_errors=True)


def script_imports(script_dir: str, include: list[str] | tuple[str, ...] = ()) -> set[str]:
    """Top-level names of the third-party modules run.py imports (anywhere in the
    file), followed through the helper modules it imports from its folder and
    `include:` paths (only those modules, not their whole packages)."""
    roots = [Path(script_dir), *map(Path, include)]
    names: set[str] = set()
    todo, seen = [(Path(script_dir) / "run.py", "")], set()
    while todo and len(seen) < 200:
        f, package = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        try:
            tree = ast.parse(f.read_bytes())
        except (OSError, SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            dotted = []
            if isinstance(node, ast.Import):
                dotted = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: within the helper's own package
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                dotted = [f"{base}.{a.name}" for a in node.names] + [base]
            for name in filter(None, dotted):
                files = _local_files(roots, name.split("."))
                if files is None:
                    names.add(name.split(".")[0])
                todo.extend(files or [])
    return names


def _local_files(roots: list[Path], parts: list[str]) -> list[tuple[Path, str]] | None:
    """The helper files `import a.b.c` executes (packages' __init__ and the module),
    with each file's package; None when `a` is not a helper module."""
    for root in roots:
        if (root / parts[0]).is_dir() or (root / f"{parts[0]}.py").is_file():
            break
    else:
        return None
    out, path = [], root
    for i, part in enumerate(parts):
        path = path / part
        pkg = ".".join(parts[: i + 1])
        if path.is_dir():
            out.append((path / "__init__.py", pkg))
        elif path.with_suffix(".py").is_file():
            out.append((path.with_suffix(".py"), ".".join(parts[:i])))
            break
        else:
            break  # `from pkg import name`: a name, not a module
    return out


# ---------------------------------------------------------------- host side (runner)


class Slot:
    """One locked slot of a class; `run` hands it an invocation folder."""

    def __init__(self, client: Any, config: dict[str, Any], key: str, folder: Path, timeout: float):  # fmt: skip
        self.client, self.folder, self.timeout = client, folder, timeout
        self.config, self.key = config, key
        self.path: Path | None = None
        self._lock_fd: int | None = None

    def acquire(self) -> bool:
        base = Path(os.environ[DIR_ENV])
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        for i in range(SLOTS):
            path = base / f"{self.key}-{i}"
            path.mkdir(exist_ok=True, mode=0o700)
            fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.path, self._lock_fd = path, fd
            return True
        return False

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _container_id(self) -> str:
        f = self.path / "container"
        return f.read_text().strip() if f.exists() else ""

    def remove(self) -> None:
        cid = self._container_id()
        if cid:
            with contextlib.suppress(Exception):
                self.client.api.remove_container(cid, force=True)
        (self.path / "container").unlink(missing_ok=True)
        (self.path / SOCKET).unlink(missing_ok=True)

    def _connect(self) -> socket.socket | None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(self.path / SOCKET))
            return s
        except OSError:
            s.close()
            return None

    def _start(self) -> socket.socket:
        """A new container for this slot; returns a connection once its server listens."""
        from efflab.runtime.failure import INFRASTRUCTURE, InvocationFailed

        self.remove()
        container = self.client.containers.create(**mount_slot(self.config, self.path))
        (self.path / "container").write_text(container.id)
        container.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        next_check = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            conn = self._connect()
            if conn is not None:
                return conn
            time.sleep(0.01)
            if time.monotonic() >= next_check:  # now and then: did it die?
                next_check += 0.5
                with contextlib.suppress(Exception):
                    container.reload()
                    if container.status in ("exited", "dead"):
                        break
        logs = ""
        with contextlib.suppress(Exception):
            logs = container.logs().decode(errors="replace").strip()
        self.remove()
        raise InvocationFailed(
            INFRASTRUCTURE,
            "the warm container's server did not start"
            + (f": {logs.splitlines()[-1]}" if logs else "")
            + f" (set {OFF_ENV}=0 for a fresh container per invocation)",
        )

    def run(self) -> int:
        """Exit code of the in-container runner; the job's output is in container.log.
        TimeoutError after `timeout`, ServerDied when the server went away (the
        container is removed either way)."""
        conn = self._connect() or self._start()
        old = {s: signal.signal(s, self._cancel) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}  # fmt: skip
        try:
            conn.sendall(f"RUN {self.folder}\n".encode())
            conn.settimeout(self.timeout)
            try:
                reply = conn.makefile("rb").readline().decode()
            except TimeoutError:
                self.remove()
                raise
            if not reply.startswith("RC "):  # the server died (its container was killed)
                self.remove()
                raise ServerDied
            return int(reply.split()[1])
        finally:
            conn.close()
            for s, h in old.items():
                signal.signal(s, h)

    def _cancel(self, signum: int, _frame: Any) -> None:
        self.remove()
        raise SystemExit(128 + signum)


def slot_config(
    fresh: dict[str, Any], repo: Path, folder: Path, preload: list[str], threads: str
) -> tuple[dict[str, Any], str]:
    """The warm container's create kwargs from the fresh one's (same sandbox, the
    artifacts tree writable instead of one folder, the server) and its class key:
    what makes two sandboxes differ."""
    from docker.types import Mount

    from efflab.runtime.container_config import shared_artifacts

    # a worktree's shared cache is mounted writable at its own path (the link in the
    # read-only repository mount resolves to it), in place of its read-only mount
    art = shared_artifacts(repo) or repo / "artifacts"
    mounts = [m for m in fresh["mounts"] if Path(m["Target"]) not in (folder, art)]
    mounts.append(Mount(str(art), str(art), type="bind"))
    env = {k: v for k, v in fresh["environment"].items() if k != DIR_ENV}
    env.update({v: threads for v in THREAD_VARS})  # before the preload reads them
    sandbox = ("image", "nano_cpus", "cpuset_cpus", "mem_limit", "pids_limit", "network_mode",
               "user", "tmpfs")  # fmt: skip
    cls = {k: fresh.get(k) for k in sandbox}
    cls.update(env=env, mounts=sorted(str(m["Source"]) for m in mounts), preload=preload)
    key = hashlib.sha256(json.dumps(cls, sort_keys=True).encode()).hexdigest()[:12]
    cfg = dict(fresh, mounts=mounts, environment=env, working_dir="/tmp", auto_remove=True)
    cfg["command"] = ["python3", "-m", "efflab.runtime.warm_server", "--serve", MOUNT, *preload]
    cfg["labels"] = dict(fresh["labels"], **{"efflab.key": "warm", LABEL_WARM: "1"})
    cfg["name"] = f"efflab-warm-{key}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    return cfg, key


def mount_slot(cfg: dict[str, Any], slot: Path) -> dict[str, Any]:
    from docker.types import Mount

    return dict(cfg, mounts=[*cfg["mounts"], Mount(MOUNT, str(slot), type="bind")])


def run(client: Any, repo: Path, inv: Any, folder: Path, config: dict[str, Any], timeout: float) -> int | None:  # fmt: skip
    """The invocation in a warm container of its class: the in-container runner's exit
    code, or None when every slot is busy (the caller starts a fresh one)."""
    labels = client.api.inspect_image(config["image"])["Config"].get("Labels") or {}
    candidates = set((labels.get(LABEL_IMPORTS) or "").split())
    preload = sorted(candidates & script_imports(inv.script_dir, inv.include))
    threads = str(inv.resources.get("cpus", 1))
    slot = Slot(client, *slot_config(config, repo, folder, preload, threads), folder, timeout)
    if not slot.acquire():
        return None
    try:
        return slot.run()
    finally:
        slot.release()
