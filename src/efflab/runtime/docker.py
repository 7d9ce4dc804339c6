"""Docker runtime: one invocation in a sealed container of its env's image.

Why it looks like this:
- Images are built before Snakemake starts (`prepare`, in the efflab process); a job
  only looks its image up and fails as `infrastructure` when it is missing.
- Paths are identical inside and out (the repo is mounted read-only at its own
  absolute path, the invocation folder read-write at its own), so invocation.json,
  deps' files and logs need no translation, and outputs land exactly as on the host.
- Inside, `python3 -m efflab.runtime.runner --inside FOLDER` forks the script the way
  execute_host does; efflab's package is mounted read-only on PYTHONPATH (the runner
  is pure stdlib), so images need no efflab install and never go stale with it.
- Sealed by default: no network unless the script declares `network: true`, CPU,
  memory and pids limits from `resources:`, read-only root, no capabilities, the
  invoking uid:gid. The timeout is enforced by killing the container.
- No container outlives its run: a SIGTERM/SIGINT to this process removes it, every
  container carries `efflab.run`/`efflab.key` labels, and `cleanup_run` (registered
  in efflab.workflow.snakemake_adapter.cancel_hooks) removes a cancelled run's containers by label.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import docker
import requests

from efflab.core.clock import now_iso
from efflab.core.envspec import context_digest
from efflab.core.errors import BadInput
from efflab.core.invocation import Invocation
from efflab.core.runtime_identity import RuntimeIdentity, device_class, gpu_models
from efflab.envs import cleanup as imagegc
from efflab.envs import images
from efflab.runtime import energy, inside_report, sealed, warm
from efflab.runtime.container_config import (
    LABEL_RUN,
    container_config,
    seal_config,
    writable_mount,
)
from efflab.runtime.failure import INFRASTRUCTURE, OOM, SCRIPT, TIMEOUT, InvocationFailed
from efflab.runtime.host import DEFAULT_TIMEOUT_S, HostRuntime, add_counts, load_deps
from efflab.runtime.outputs import invocation_energy, last_error_line, read_script_outputs

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def engine_available(timeout: float = 3.0) -> bool:
    """True when a Docker engine answers a ping (used by --runtime auto)."""
    try:
        docker.from_env(timeout=timeout).ping()
        return True
    except Exception:
        return False


def prepare_images(repo: Path, invocations: Iterable[Any]) -> dict[str, images.EnvImage]:
    """Build every env the plan needs before Snakemake starts (BadInput -> exit 2)."""
    invocations = list(invocations)

    def log(msg: str) -> None:  # one line per env built, not per Dockerfile step
        if ": Step " not in msg:
            print(f"efflab: {msg}", file=sys.stderr)

    bare = sorted({i.alias for i in invocations if not getattr(i, "env", None)})
    if bare:
        log(f"warning: {', '.join(bare)} declare no env: they run on the host (runtime: host)")
    names = images.env_names_for(invocations)
    client = images.connect() if names else None
    if client is not None:  # what a run that lost its engine left behind
        imagegc.sweep_containers(client, older_than_s=600)
        imagegc.sweep_dead_runs(client)  # whatever their age: their run is gone
    return {n: images.ensure_built(repo, n, client, log) for n in names}


def cleanup_run(run_id: str) -> list[str]:
    """Remove every container of a run (by label); the safety net after a cancel."""
    if not run_id:
        return []
    try:
        client = docker.from_env(timeout=30)
        found = client.containers.list(
            all=True, filters={"label": f"{LABEL_RUN}={run_id}"}, ignore_removed=True
        )
        for c in found:
            try:
                c.remove(force=True)
            except docker.errors.APIError as exc:  # gone meanwhile (a warm one auto-removes)
                if exc.status_code not in (404, 409):
                    raise
        return [c.name for c in found]
    except Exception as exc:  # a hook must never mask the cancellation itself
        print(f"efflab: warning: container cleanup for run {run_id} failed: {exc}", file=sys.stderr)
        return []


class Sandbox:
    """Owns one container: created with signals blocked, removed on every way out."""

    def __init__(self, client, config: dict[str, Any]):
        self.client, self.config, self.container = client, config, None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> Sandbox:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:  # no window in which a cancel could leave an untracked container behind
            self.container = self.client.containers.create(**self.config)
            self._old = {s: signal.signal(s, self._cancel) for s in SIGNALS}
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        try:
            self.container.start()
        except BaseException:  # a container that never started is removed all the same
            self.__exit__()
            raise
        return self

    def _cancel(self, signum: int, _frame: Any) -> None:
        self.remove()
        raise SystemExit(128 + signum)

    def remove(self) -> None:
        if self.container is None:
            return
        try:
            docker.from_env(timeout=30).api.remove_container(self.container.id, force=True)
        except Exception as exc:
            if "No such container" not in str(exc):
                print(f"efflab: warning: could not remove {self.container.name}: {exc}",
                      file=sys.stderr)  # fmt: skip
        self.container = None

    def __exit__(self, *exc: Any) -> None:
        try:
            self.remove()
        finally:
            for s, h in self._old.items():
                signal.signal(s, h)


def _engine_lost(exc: BaseException) -> InvocationFailed:
    return InvocationFailed(
        INFRASTRUCTURE,
        f"the Docker engine stopped answering mid-run ({type(exc).__name__}); start it "
        "again (tools/ensure-docker.sh) and rerun: this invocation will run again",
    )


def _image(repo: Path, name: str, inv: Invocation) -> tuple[Any, str, str]:
    """The prepared image of the env (client, image id, tag); never builds in a job."""
    if inv.env_digest and inv.env_digest != context_digest(repo, name):
        raise InvocationFailed(SCRIPT, f"env '{name}' changed after planning; run efflab again")
    try:
        client = images.connect()
        tag = images.current_tag(repo, name, client)
        if tag is None:
            raise docker.errors.ImageNotFound(name)
        return client, client.images.get(tag).id, tag
    except BadInput as exc:
        raise InvocationFailed(INFRASTRUCTURE, str(exc)) from None
    except docker.errors.ImageNotFound:
        raise InvocationFailed(
            INFRASTRUCTURE,
            f"env '{name}' has no built image; `efflab run` builds it first, or run "
            f"`efflab env build {name}`",
        ) from None


def execute_docker(repo: Path, inv: Invocation, folder: Path) -> dict[str, Any]:
    """Run in the env's image; returns the outputs.json payload or raises InvocationFailed."""
    inv = sealed.tighten(inv)  # $EFFLAB_SEALED: caller-imposed limits (efflab.runtime.sealed)
    name = inv.env
    if not name:  # no image to run in: the record says runtime host
        return HostRuntime().execute(repo, inv, folder)
    before = set(os.listdir(folder))
    try:
        return _execute(repo, inv, folder, name)
    except InvocationFailed:
        if sealed.settings() is not None:  # a failed entry keeps nothing it wrote but its logs
            sealed.discard_written(folder, before)
        raise


def _execute(repo: Path, inv: Invocation, folder: Path, name: str) -> dict[str, Any]:
    client, image_id, image_tag = _image(repo, name, inv)
    deps = load_deps(repo, inv)
    (folder / ".deps.json").write_text(json.dumps(deps))
    inside_report.clear(folder)
    timeout = float(inv.resources.get("timeout_s", DEFAULT_TIMEOUT_S))
    config = container_config(repo, inv, folder, image_id)
    config = seal_config(config, repo, inv, folder)  # own-files mounts, tmpfs/file caps
    settings = sealed.settings()
    quota: contextlib.AbstractContextManager[Path] = contextlib.nullcontext(folder)
    if settings is not None:
        uid, gid = sealed.sandbox_user(settings)
        if settings.get("disk_mb"):
            quota = sealed.QuotaFolder(folder, settings["disk_mb"], uid, gid)
        else:
            sealed.chown_tree(folder, uid, gid)
    meter = energy.EnergyMeter()
    e0, t0, started = meter.read_rapl(), time.perf_counter(), now_iso()
    try:
        ran = None
        if settings is None and os.environ.get(warm.DIR_ENV):
            ran = _run_warm(client, repo, inv, folder, config, timeout)
        if ran is None:
            with quota as writable:
                ran = _run_fresh(client, writable_mount(config, folder, writable), timeout, t0)
        code, state, logs = ran
    except (requests.exceptions.ConnectionError, docker.errors.APIError) as exc:
        if isinstance(exc, docker.errors.APIError) and engine_available():
            raise InvocationFailed(
                INFRASTRUCTURE, f"docker refused the container: {exc.explanation or exc}"
            ) from None
        raise _engine_lost(exc) from None
    overhead_t = time.perf_counter() - t0
    if logs.strip():
        (folder / "container.log").write_text(logs)
    else:
        (folder / "container.log").unlink(missing_ok=True)
    inside = inside_report.read(folder, code)
    oom = bool(state.get("State", {}).get("OOMKilled"))
    mem = inv.resources.get("mem_mb")
    if oom or (inside and inside["signal"] == "SIGKILL" and mem):
        raise InvocationFailed(
            OOM,
            f"out of memory: killed at the container's limit of {mem} MB "
            "(resources.mem_mb in meta.yaml)",
        )
    if inside is None:
        last = (logs.strip().splitlines() or ["no output"])[-1]
        # the runner inside never reported: the entry may have killed it or filled its
        # disk quota (no room for the report), so not ours
        raise InvocationFailed(
            SCRIPT, f"container exited with code {code} without its runner's report: {last}"
        )
    if inside["signal"]:
        raise InvocationFailed(SCRIPT, f"script killed by {inside['signal']}")
    if inside["exit_code"] != 0:
        raise InvocationFailed(
            SCRIPT, f"script exited with code {inside['exit_code']}" + last_error_line(folder)
        )
    try:
        out = read_script_outputs(inv, folder)
    except OSError as exc:  # what the script left where its outputs should be
        raise InvocationFailed(SCRIPT, f"script outputs could not be read: {exc}") from None
    add_counts(inv, folder, out)  # the image must hold the tool (valgrind, perf)
    wall, cpu = inside["wall_s"], inside["cpu_s"]
    out.update(
        started=started,
        ended=now_iso(),
        duration_s=wall,
        cpu_s=cpu,
        max_rss_mb=inside["max_rss_mb"],
        runtime="docker",
        image=image_id,
        image_tag=image_tag,
        container_s=overhead_t,
        energy=invocation_energy(meter, e0, wall, cpu),
        # measured inside, around the script (runner.run_inside), same rule as the host
        contention=inside.get("contention"),
        pinning=inside.get("pinning"),
    )
    return out


def _timed_out(timeout: float) -> InvocationFailed:
    return InvocationFailed(TIMEOUT, f"timeout: killed after {timeout:g} s (resources.timeout_s)")


def _run_fresh(client, config: dict[str, Any], timeout: float, t0: float) -> tuple[int, dict, str]:
    """One new container for this invocation: (exit code, its state, its logs)."""
    with Sandbox(client, config) as box:
        try:
            code = box.container.wait(timeout=timeout)["StatusCode"]
        except requests.exceptions.RequestException as exc:
            if time.perf_counter() - t0 < timeout or not engine_available():
                raise _engine_lost(exc) from None
            box.remove()
            raise _timed_out(timeout) from None
        box.container.reload()
        return code, box.container.attrs, box.container.logs().decode(errors="replace")


def _run_warm(
    client, repo: Path, inv: Invocation, folder: Path, config: dict[str, Any], timeout: float
) -> tuple[int, dict, str] | None:
    """In a warm container (efflab.runtime.warm); None when every slot is busy."""
    try:
        code = warm.run(client, repo, inv, folder, config, timeout)
    except TimeoutError:
        raise _timed_out(timeout) from None
    except warm.ServerDied:
        if not engine_available():
            raise _engine_lost(ConnectionError("warm container gone")) from None
        raise InvocationFailed(
            SCRIPT, "the warm container's server died during the job (killed from inside?)"
        ) from None
    if code is None:
        return None
    log = folder / "container.log"
    return code, {}, log.read_text(errors="replace") if log.exists() else ""


class DockerRuntime:
    name = "docker"
    seals = True  # no network, read-only root, caps dropped, limits (see container_config)
    supports_warm = True  # jobs reuse one container per sandbox class (efflab.runtime.warm)

    def available(self) -> bool:
        return engine_available()

    def identity(self) -> RuntimeIdentity:
        """The env's build context is in the key already (env_digest); the base image
        every env image is built on is named here (its id is known only once built)."""
        return RuntimeIdentity(kind=self.name, device=device_class(), image=images.base_ref())

    def provenance(self) -> dict[str, Any]:
        info: dict[str, Any] = {"device": device_class(), "accelerators": gpu_models()}
        try:
            info["engine"] = docker.from_env(timeout=5).version().get("Version")
        except Exception as exc:  # provenance never fails a run
            info["engine"] = None
            info["engine_error"] = type(exc).__name__
        return info

    def prepare(self, repo: Path, invocations: Iterable[Invocation]) -> None:
        prepare_images(repo, invocations)

    def execute(self, repo: Path, inv: Invocation, folder: Path) -> dict[str, Any]:
        return execute_docker(repo, inv, folder)

    def cleanup(self, run_id: str) -> list[str]:
        warm.forget(run_id)
        return cleanup_run(run_id)
