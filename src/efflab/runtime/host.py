"""Host runtime: one invocation in a forked child on this machine.

The script runs in its own process group (fresh process: its own peak memory;
killable as a group on timeout). The same fork/exec path runs inside containers
(`runner --inside`), so host and docker judge a script identically. Stdlib only.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from efflab.core import lifeline
from efflab.core.clock import now_iso
from efflab.core.invocation import Invocation
from efflab.core.runtime_identity import RuntimeIdentity, device_class, gpu_models, host_identity
from efflab.runtime import contention, energy, instrument, pinning, sealed
from efflab.runtime.failure import OOM, SCRIPT, TIMEOUT, InvocationFailed
from efflab.runtime.outputs import (
    atomic_json,
    delegated_cpu_s,
    invocation_energy,
    last_error_line,
    read_script_outputs,
)

DEFAULT_TIMEOUT_S = 3600.0
CANCEL_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PKG_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the efflab package
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def load_deps(repo: Path, inv: Invocation) -> dict[str, dict[str, Any]]:
    """Deps' outputs with file paths made absolute."""
    deps = {}
    for name, ref in inv.deps.items():
        folder = repo / "artifacts" / ref["alias"] / ref["key"]
        try:
            out = json.loads((folder / "outputs.json").read_text())
        except (OSError, ValueError) as exc:
            raise InvocationFailed(
                "infrastructure",
                f"dependency {ref['alias']} {ref['key']}: unreadable {folder / 'outputs.json'} "
                f"({exc}); remove that folder and rerun",
            ) from None
        files = {k: str(folder / v) for k, v in out.get("files", {}).items()}
        deps[name] = {
            "metrics": out.get("metrics", {}),
            "files": files,
            "values": out.get("values", {}),
            "key": ref["key"],
            "alias": ref["alias"],
        }
    return deps


def child_env(inv: Invocation, folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    cpus = str(inv.resources.get("cpus", 1))
    # One thread unless the script declares more: timings on a shared box stay honest.
    for var in THREAD_VARS:
        env[var] = cpus
    paths = [inv.script_dir, *inv.include]
    env["PYTHONPATH"] = os.pathsep.join(
        paths + [str(PKG_ROOT)] + env.get("PYTHONPATH", "").split(os.pathsep)
    ).rstrip(os.pathsep)
    for name, value in inv.inputs.items():
        sval = value if isinstance(value, str) else json.dumps(value)
        env["EFFLAB_IN_" + name.upper().replace("-", "_")] = sval
    env["EFFLAB_OUT_DIR"] = str(folder / "out")
    env["EFFLAB_OUTPUTS"] = str(folder / ".script-outputs.json")
    env["EFFLAB_DEPS"] = str(folder / ".deps.json")
    env["EFFLAB_REPETITION"] = str(inv.repetition)
    return env


def _open_log(folder: Path, name: str) -> int:
    """A fresh log for the script's stdout or stderr (a rerun's log replaces the last)."""
    return os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)


def child(inv: Invocation, folder: Path, deps: dict[str, Any], parent: int | None = None) -> None:
    """Runs in the forked child; never returns. Dies with its runner (`parent`), even
    when the runner is killed with SIGKILL and cannot take the group down itself."""
    code = 1
    try:
        os.setpgid(0, 0)
        pinning.apply(0, pinning.cpus_for(inv.resources))  # before any of the script runs
        lifeline.set_parent_death_signal(signal.SIGKILL, parent)
        env = child_env(inv, folder)
        tool = instrument.tool_of(inv.resources)
        pre = instrument.prefix(tool, folder) if tool else []
        if tool:
            instrument.prepare(folder, env)
        fd_in = os.open(os.devnull, os.O_RDONLY)
        fd_out, fd_err = _open_log(folder, "stdout.log"), _open_log(folder, "stderr.log")
        for fd, target in ((fd_in, 0), (fd_out, 1), (fd_err, 2)):
            os.dup2(fd, target)
        os.chdir(folder / "out")
        if inv.run == "run.sh":
            argv = [*pre, "bash", str(Path(inv.script_dir) / "run.sh")]
            os.execvpe(argv[0], argv, env)
        if tool:  # counted from outside: the script in a process of its own
            argv = [*pre, *instrument.python_command(folder)]
            os.execvpe(argv[0], argv, env)
        os.environ.clear()
        os.environ.update(env)
        sys.path[:0] = [inv.script_dir, *inv.include]
        atomic_json(folder / ".script-outputs.json", _run_py(inv, folder, deps))
        code = 0
    except BaseException:
        traceback.print_exc()
        try:
            sys.stderr.flush()
        except Exception:
            pass
    finally:
        os._exit(code)


def _run_py(inv: Invocation, folder: Path, deps: dict[str, Any]) -> dict[str, Any]:
    # imported here, in the forked child only: logging and the script loader are not
    # part of every job's start-up (run.sh scripts never need them)
    import importlib.util
    import logging

    from efflab.runtime.ctx import Context, DepOutputs

    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    spec = importlib.util.spec_from_file_location(
        f"efflab_script_{inv.alias.replace('-', '_')}", Path(inv.script_dir) / "run.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses and pickling look the module up by name
    spec.loader.exec_module(mod)
    if not hasattr(mod, "run"):
        raise AttributeError(f"{inv.script_dir}/run.py defines no run(ctx)")
    ctx = Context(
        inputs=dict(inv.inputs),
        out_dir=folder / "out",
        deps={
            n: DepOutputs(
                metrics=d["metrics"],
                values=d["values"],
                key=d["key"],
                alias=d["alias"],
                files={k: Path(v) for k, v in d["files"].items()},
            )
            for n, d in deps.items()
        },
        repetition=inv.repetition,
        script_dir=Path(inv.script_dir),
        log=logging.getLogger(inv.alias),
    )
    result = mod.run(ctx) or {}
    if not isinstance(result, dict):
        raise TypeError(f"run(ctx) must return a dict, returned {type(result).__name__}")
    result = dict(result)
    result["timings"] = {**ctx.timings, **result.get("timings", {})}
    result["energy_spans"] = [vars(m) for m in ctx.energy.spans]
    return result


def wait_child(pid: int, timeout: float | None) -> tuple[int | None, Any]:
    """Wait for the child up to `timeout`; (status, rusage) or (None, None) on timeout."""
    if timeout is None:
        _, status, ru = os.wait4(pid, 0)
        return status, ru
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is not None:
        ready, _, _ = select.select([pidfd], [], [], timeout)
        os.close(pidfd)
        if not ready:
            return None, None
        _, status, ru = os.wait4(pid, 0)
        return status, ru
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got, status, ru = os.wait4(pid, os.WNOHANG)
        if got:
            return status, ru
        time.sleep(0.01)
    return None, None


def spawn_script(inv: Invocation, folder: Path, deps: dict[str, Any]) -> int:
    """Fork the script's child in its own process group; its pid."""
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        child(inv, folder, deps, parent)
    try:  # also set here: no window in which a kill of the group would miss the child
        os.setpgid(pid, pid)
    except OSError:
        pass
    pinning.apply(pid, pinning.cpus_for(inv.resources))  # and no unpinned instant either
    return pid


def spawn_shell(inv: Invocation, folder: Path) -> subprocess.Popen:
    """Start a run.sh script as `child` does, without copying this process: vfork+exec
    (~1 ms here, against ~4.5 ms for fork+exec of a 16 MB Python, which pays for the
    copy-on-write faults and for tearing the copy down). There is no parent-death
    signal on this path: its caller ends the script's group itself (the job server)."""
    fds: list[int] = []
    try:
        for n in ("stdout.log", "stderr.log"):
            fds.append(_open_log(folder, n))
        with pinning.inherited(pinning.cpus_for(inv.resources)):  # vfork: nothing runs
            return _popen_shell(inv, folder, fds)  # in the child before exec
    finally:
        for fd in fds:  # the server lives for the whole run: a leaked log fd per job adds up
            os.close(fd)


def _popen_shell(inv: Invocation, folder: Path, fds: list[int]) -> subprocess.Popen:
    env = child_env(inv, folder)
    tool = instrument.tool_of(inv.resources)
    pre = instrument.prefix(tool, folder) if tool else []
    if tool:
        instrument.prepare(folder, env)
    return subprocess.Popen(
        [*pre, "bash", str(Path(inv.script_dir) / "run.sh")],
        cwd=folder / "out",
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=fds[0],
        stderr=fds[1],
        process_group=0,
    )


def cancel_with(pid: int) -> None:
    """From now on, SIGTERM/SIGINT/SIGHUP to this process take the script's group down."""

    def _cancel(signum, _frame):
        kill_group(pid)
        raise SystemExit(128 + signum)

    for s in CANCEL_SIGNALS:
        signal.signal(s, _cancel)


def fork_script(inv: Invocation, folder: Path, deps: dict[str, Any]) -> int:
    """Fork the script's child in its own group; signals to us take the group down."""
    pid = spawn_script(inv, folder, deps)
    cancel_with(pid)
    return pid


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def add_counts(inv: Invocation, folder: Path, out: dict[str, Any]) -> None:
    """An instrumented invocation's counts join its metrics (efflab.runtime.instrument)."""
    tool = instrument.tool_of(inv.resources)
    if tool:
        out.setdefault("metrics", {}).update(instrument.collect(tool, folder))
        out["instrument"] = tool


class HostRuntime:
    name = "host"
    seals = False  # the host has no sandbox: sealed runs refuse it
    supports_warm = False  # a host job is a fork (or runs in the job server): nothing to keep warm

    def available(self) -> bool:
        return True

    def identity(self) -> RuntimeIdentity:
        return host_identity()

    def provenance(self) -> dict[str, Any]:
        return {"device": device_class(), "accelerators": gpu_models()}

    def prepare(self, repo: Path, invocations: Iterable[Invocation]) -> None:
        return None

    def cleanup(self, run_id: str) -> list[str]:
        return []

    def launch(self, repo: Path, inv: Invocation, folder: Path, vfork: bool = False) -> HostJob:
        """Start the script and return at once; `HostJob.result` judges it once reaped.
        The job server waits for many such jobs in one process (no fork per job) and
        starts run.sh scripts with `vfork` (`spawn_shell`)."""
        if sealed.settings() is not None:
            raise InvocationFailed(
                "infrastructure",
                "sealed run on the host runtime: a sealed step runs only in a container",
            )
        tool = instrument.tool_of(inv.resources)
        need = {"perf": "perf", "cachegrind": "valgrind"}.get(tool or "")
        if need and not shutil.which(need):
            raise InvocationFailed(
                "infrastructure",
                f"resources.instrument {tool} needs `{need}` on PATH "
                f"(Debian: apt-get install {'linux-perf' if need == 'perf' else need})",
            )
        if tool:
            instrument.precompile([inv.script_dir, *inv.include])
        deps = load_deps(repo, inv)
        (folder / ".deps.json").write_text(json.dumps(deps))
        meter = energy.EnergyMeter()
        e0, t0, started = meter.read_rapl(), time.perf_counter(), now_iso()
        cpus = pinning.cpus_for(inv.resources)
        busy0, busy0_pin = (
            contention.busy_seconds(),
            contention.busy_seconds(cpus) if cpus else None,
        )
        proc = spawn_shell(inv, folder) if vfork and inv.run == "run.sh" else None
        pid = proc.pid if proc is not None else spawn_script(inv, folder, deps)
        timeout = float(inv.resources.get("timeout_s", DEFAULT_TIMEOUT_S))
        pin = Pin(cpus, pinning.read_back(pid) if cpus else None, busy0_pin)
        return HostJob(inv, folder, pid, timeout, started, t0, meter, e0, busy0, proc, pin)

    def execute(self, repo: Path, inv: Invocation, folder: Path) -> dict[str, Any]:
        old = {s: signal.getsignal(s) for s in CANCEL_SIGNALS}
        job = self.launch(repo, inv, folder)
        try:
            cancel_with(job.pid)
            status, ru = wait_child(job.pid, job.timeout)
            if status is None:
                kill_group(job.pid)
                os.waitpid(job.pid, 0)
                raise job.timed_out()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            kill_group(job.pid)  # anything the script left running in its group goes with it
        return job.result(status, ru)


@dataclass
class Pin:
    """Where a started script was pinned: the CPUs asked for, the affinity read back
    from it once started, those CPUs' busy seconds at its start."""

    cpus: tuple[int, ...] | None = None
    affinity: list[int] | None = None
    busy0: float | None = None

    def blocks(
        self, busy0: float | None, wall: float, cpu: float, cpus_given: float
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(contention, pinning) blocks of outputs.json for the finished script."""
        c = contention.measure(busy0, wall, cpu, cpus_given, self.cpus, self.busy0)
        return c, pinning.report(self.cpus, self.affinity, c.get("others_on_pinned"))


@dataclass
class HostJob:
    """A started host script: what judging it needs once it has been reaped."""

    inv: Invocation
    folder: Path
    pid: int
    timeout: float
    started: str
    t0: float
    meter: energy.EnergyMeter
    e0: int | None
    busy0: float | None
    proc: subprocess.Popen | None = None  # held so that subprocess never reaps it itself
    pin: Pin = field(default_factory=Pin)

    def reaped(self, status: int) -> None:
        """Tell subprocess that our wait4 reaped the script: it must never poll the pid
        again (by then another process may have it)."""
        if self.proc is not None:
            self.proc.returncode = os.waitstatus_to_exitcode(status)

    def timed_out(self) -> InvocationFailed:
        return InvocationFailed(
            TIMEOUT, f"timeout: killed after {self.timeout:g} s (resources.timeout_s)"
        )

    def result(self, status: int, ru: Any) -> dict[str, Any]:
        """The outputs.json payload from the reaped child's status and rusage, or raise
        InvocationFailed."""
        wall = time.perf_counter() - self.t0
        self.reaped(status)
        if os.WIFSIGNALED(status):
            sig = signal.Signals(os.WTERMSIG(status)).name
            kind = OOM if sig == "SIGKILL" else SCRIPT
            raise InvocationFailed(kind, f"script killed by {sig} (out of memory?)")
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise InvocationFailed(
                SCRIPT, f"script exited with code {code}" + last_error_line(self.folder)
            )
        out = read_script_outputs(self.inv, self.folder)
        add_counts(self.inv, self.folder, out)
        # CPU a helper outside the script's process tree spent for it (a pooled engine
        # serving its job) is its own work: counted as someone else's, the job would be
        # judged contended by its own measured process
        cpu = ru.ru_utime + ru.ru_stime + delegated_cpu_s(out)
        cpus = float(self.inv.resources.get("cpus", 1))
        cont, pin = self.pin.blocks(self.busy0, wall, cpu, cpus)
        out.update(
            started=self.started,
            ended=now_iso(),
            duration_s=wall,
            cpu_s=cpu,
            max_rss_mb=ru.ru_maxrss / 1024.0,
            runtime="host",
            image=None,
            energy=invocation_energy(self.meter, self.e0, wall, cpu),
            contention=cont,
            pinning=pin,
        )
        return out
