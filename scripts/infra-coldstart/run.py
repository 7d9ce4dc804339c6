"""infra-coldstart: where a container cold start's time goes, with the local Docker engine.

Serverless Cold Starts and Where to Find Them (Joosen et al., 2025) splits cold starts
into pod allocation, code and dependency deployment and scheduling, and finds them
seconds long against milliseconds for warm requests. Ours measures the analogous parts
on one machine: `cold-bare` = create + start a container and answer from a bare
interpreter (allocation + runtime start), `cold-deps` = the same but importing the
function's dependencies first (dependency loading), `warm` = a request to a container
that is already running its handler. The docker CLI's own overhead is part of every
cold number, as a platform's orchestration is part of a real cold start.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from typing import Any

HANDLER = "import sys\nfor line in sys.stdin:\n    print(line.strip(), flush=True)\n"


def docker(*args: str, timeout: float = 120) -> str:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"docker {args[0]} failed: {out.stderr.strip()[:300]}")
    return out.stdout


def default_image() -> str:
    rows = docker("images", "efflab-env/ml-cpu", "--format", "{{.Repository}}:{{.Tag}}")
    tags = [r for r in rows.split() if not r.endswith(":<none>")]
    if not tags:
        raise RuntimeError(
            "no local efflab-env/ml-cpu image: build it with `efflab env build ml-cpu`"
        )
    return tags[0]  # docker lists the newest first


def cold(image: str, imports: str) -> float:
    code = (f"import {imports}\n" if imports else "") + "print('ok', flush=True)"
    t0 = time.perf_counter()
    out = docker("run", "--rm", "--network", "none", image, "python", "-c", code)
    dt = time.perf_counter() - t0
    if out.strip() != "ok":
        raise RuntimeError(f"unexpected reply {out!r}")
    return dt


def warm(image: str, imports: str, samples: int) -> list[float]:
    code = (f"import {imports}\n" if imports else "") + "print('ready', flush=True)\n" + HANDLER
    proc = subprocess.Popen(
        ["docker", "run", "--rm", "-i", "--network", "none", image, "python", "-u", "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("warm container did not start")
        out = []
        for i in range(samples + 1):
            t0 = time.perf_counter()
            proc.stdin.write(f"req-{i}\n")
            proc.stdin.flush()
            reply = proc.stdout.readline().strip()
            dt = time.perf_counter() - t0
            if reply != f"req-{i}":
                raise RuntimeError(f"unexpected reply {reply!r}")
            if i:  # the first request warms the pipe; not timed
                out.append(dt)
        return out
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=60)


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    image = inp["image"] or default_image()
    imports = ",".join(m for m in inp["deps"].split(",") if m)
    n = int(inp["samples"])
    if inp["start"] == "warm":
        secs = warm(image, imports, n)
    else:
        cold(image, "")  # the image's layers into the page cache, as on a busy host
        secs = [cold(image, imports if inp["start"] == "cold-deps" else "") for _ in range(n)]
    size = int(docker("image", "inspect", "--format", "{{.Size}}", image).strip())
    ctx.log.info(f"{inp['start']}: {statistics.median(secs) * 1e3:.1f} ms ({image})")
    return {
        "metrics": {
            "start_latency_ms": statistics.median(secs) * 1e3,
            "start_latency_min_ms": min(secs) * 1e3,
            "image_size_mb": size / 1e6,
        },
        "values": {"image": image, "samples_ms": [s * 1e3 for s in secs]},
    }
