"""Runner: executes one invocation (`python -m efflab.runner artifacts/<alias>/<key>`).

Snakemake calls this once per job. The script runs in a forked child in its own
process group (fresh process: its own peak memory; killable as a group on timeout).
Only the final `outputs.json` is the Snakemake output, written atomically last, so a
crash or cancellation never leaves a half-written result. A failure writes
`failure.json` (error + log tail) and exits 1.

Kept import-light on purpose: it starts once per job, and its start-up time is the
per-job overhead efflab adds on top of Snakemake.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import energy
from .outputs import (
    invocation_energy,
    last_error_line,
    log_tail,
    read_script_outputs,
)

DEFAULT_TIMEOUT_S = 3600.0


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _atomic_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def load_deps(repo: Path, inv: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Deps' outputs with file paths made absolute."""
    deps = {}
    for name, ref in inv["deps"].items():
        folder = repo / "artifacts" / ref["alias"] / ref["key"]
        out = json.loads((folder / "outputs.json").read_text())
        files = {k: str(folder / v) for k, v in out.get("files", {}).items()}
        deps[name] = {
            "metrics": out.get("metrics", {}),
            "files": files,
            "values": out.get("values", {}),
            "key": ref["key"],
            "alias": ref["alias"],
        }
    return deps


def child_env(inv: dict[str, Any], folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    cpus = str(inv["resources"].get("cpus", 1))
    # One thread unless the script declares more: timings on a shared box stay honest.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = cpus
    paths = [inv["script_dir"], *inv.get("include", [])]
    env["PYTHONPATH"] = os.pathsep.join(
        paths
        + [str(Path(__file__).resolve().parents[1])]
        + env.get("PYTHONPATH", "").split(os.pathsep)
    ).rstrip(os.pathsep)
    for name, value in inv["inputs"].items():
        sval = value if isinstance(value, str) else json.dumps(value)
        env["EFFLAB_IN_" + name.upper().replace("-", "_")] = sval
    env["EFFLAB_OUT_DIR"] = str(folder / "out")
    env["EFFLAB_OUTPUTS"] = str(folder / ".script-outputs.json")
    env["EFFLAB_DEPS"] = str(folder / ".deps.json")
    env["EFFLAB_REPETITION"] = str(inv.get("repetition", 0))
    return env


def _child(repo: Path, inv: dict[str, Any], folder: Path, deps: dict[str, Any]) -> None:
    """Runs in the forked child; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        env = child_env(inv, folder)
        fd_in = os.open(os.devnull, os.O_RDONLY)
        fd_out = os.open(folder / "stdout.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        fd_err = os.open(folder / "stderr.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for fd, target in ((fd_in, 0), (fd_out, 1), (fd_err, 2)):
            os.dup2(fd, target)
        os.chdir(folder / "out")
        if inv["run"] == "run.sh":
            os.execvpe("bash", ["bash", str(Path(inv["script_dir"]) / "run.sh")], env)
        os.environ.clear()
        os.environ.update(env)
        sys.path[:0] = [inv["script_dir"], *inv.get("include", [])]
        result = _run_py(inv, folder, deps)
        _atomic_json(folder / ".script-outputs.json", result)
        code = 0
    except BaseException:
        traceback.print_exc()
        try:
            sys.stderr.flush()
        except Exception:
            pass
    finally:
        os._exit(code)


def _run_py(inv: dict[str, Any], folder: Path, deps: dict[str, Any]) -> dict[str, Any]:
    import importlib.util
    import logging

    from .ctx import Context, DepOutputs

    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    spec = importlib.util.spec_from_file_location(
        f"efflab_script_{inv['alias'].replace('-', '_')}", Path(inv["script_dir"]) / "run.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses and pickling look the module up by name
    spec.loader.exec_module(mod)
    if not hasattr(mod, "run"):
        raise AttributeError(f"{inv['script_dir']}/run.py defines no run(ctx)")
    ctx = Context(
        inputs=dict(inv["inputs"]),
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
        repetition=inv.get("repetition", 0),
        script_dir=Path(inv["script_dir"]),
        log=logging.getLogger(inv["alias"]),
    )
    result = mod.run(ctx) or {}
    if not isinstance(result, dict):
        raise TypeError(f"run(ctx) must return a dict, returned {type(result).__name__}")
    result = dict(result)
    result["timings"] = {**ctx.timings, **result.get("timings", {})}
    result["energy_spans"] = [vars(m) for m in ctx.energy.spans]
    return result


def _wait(pid: int, timeout: float) -> tuple[int | None, Any]:
    """Wait for the child up to `timeout`; (status, rusage) or (None, None) on timeout."""
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


def execute_host(repo: Path, inv: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Run on the host; returns the outputs.json payload or raises RuntimeError."""
    deps = load_deps(repo, inv)
    (folder / ".deps.json").write_text(json.dumps(deps))
    timeout = float(inv["resources"].get("timeout_s", DEFAULT_TIMEOUT_S))
    meter = energy.EnergyMeter()
    e0, t0, started = meter._read_rapl(), time.perf_counter(), now_iso()
    pid = os.fork()
    if pid == 0:
        _child(repo, inv, folder, deps)
    try:  # also set here: no window in which a kill of the group would miss the child
        os.setpgid(pid, pid)
    except OSError:
        pass

    def _cancel(signum, _frame):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, _cancel) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        status, ru = _wait(pid, timeout)
        if status is None:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise RuntimeError(f"timeout: killed after {timeout:g} s (resources.timeout_s)")
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        try:  # anything the script left running in its group goes with it
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    wall = time.perf_counter() - t0
    if os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status)).name
        raise RuntimeError(f"script killed by {sig} (out of memory?)")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(
            f"script exited with code {os.waitstatus_to_exitcode(status)}" + last_error_line(folder)
        )
    out = read_script_outputs(inv, folder)
    cpu = ru.ru_utime + ru.ru_stime
    out.update(
        started=started,
        ended=now_iso(),
        duration_s=wall,
        cpu_s=cpu,
        max_rss_mb=ru.ru_maxrss / 1024.0,
        runtime="host",
        image=None,
        energy=invocation_energy(meter, e0, wall, cpu),
    )
    return out


def prepare(folder: Path) -> None:
    """Fresh private output folder; stale partial results of a killed run are dropped."""
    shutil.rmtree(folder / "out", ignore_errors=True)
    (folder / "out").mkdir(parents=True)
    for name in (".script-outputs.json", "failure.json"):
        (folder / name).unlink(missing_ok=True)


def run_invocation(folder: Path, runtime: str = "host") -> int:
    folder = folder.resolve()
    repo = folder.parents[2]
    inv = json.loads((folder / "invocation.json").read_text())
    prepare(folder)
    started, t0 = now_iso(), time.perf_counter()
    try:
        if runtime == "docker":
            from .docker_runtime import execute_docker

            out = execute_docker(repo, inv, folder)
        else:
            out = execute_host(repo, inv, folder)
    except Exception as exc:  # a failed script is data (a failed record), not a crash
        _atomic_json(
            folder / "failure.json",
            {
                "status": "failed",
                "alias": inv["alias"],
                "key": inv["key"],
                "error": str(exc),
                "log_tail": log_tail(folder),
                "started": started,
                "ended": now_iso(),
                "duration_s": time.perf_counter() - t0,
                "runtime": runtime,
            },
        )
        print(f"efflab: {inv['alias']} {inv['key']} failed: {exc}", file=sys.stderr)
        return 1
    out.update(
        status="ok",
        alias=inv["alias"],
        key=inv["key"],
        inputs=inv["inputs"],
        repetition=inv.get("repetition", 0),
        env=inv.get("env"),
        env_digest=inv.get("env_digest"),
    )
    (folder / ".script-outputs.json").unlink(missing_ok=True)
    _atomic_json(folder / "outputs.json", out)
    return 0


def run_inside(folder: Path) -> int:
    """Container side of the docker runtime: fork/exec the script exactly as
    execute_host does and report exit status and rusage in `.inside.json`. The timeout
    is the host's job (it kills the container); SIGTERM here takes the script down."""
    inv = json.loads((folder / "invocation.json").read_text())
    deps = json.loads((folder / ".deps.json").read_text())
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        _child(folder.parents[2], inv, folder, deps)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass

    def _cancel(signum, _frame):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        raise SystemExit(128 + signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _cancel)
    _, status, ru = os.wait4(pid, 0)
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    code = 128 + sig if sig else os.waitstatus_to_exitcode(status)
    _atomic_json(
        folder / ".inside.json",
        {
            "exit_code": code,
            "signal": signal.Signals(sig).name if sig else None,
            "wall_s": time.perf_counter() - t0,
            "cpu_s": ru.ru_utime + ru.ru_stime,
            "max_rss_mb": ru.ru_maxrss / 1024.0,
        },
    )
    return code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "--inside":
        return run_inside(Path(argv[1]))
    if not argv or argv[0] in ("-h", "--help"):
        print(
            "usage: python -m efflab.runner ARTIFACT_FOLDER  (runs one planned invocation;"
            " runtime from EFFLAB_RUNTIME=host|docker)"
        )
        return 0 if argv else 2
    return run_invocation(Path(argv[0]), os.environ.get("EFFLAB_RUNTIME", "host"))


if __name__ == "__main__":
    sys.exit(main())
