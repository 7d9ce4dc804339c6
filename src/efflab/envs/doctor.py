"""`efflab doctor`: is every external tool the scripts need present, and which version?

What is checked comes from the scripts (`requires:` in meta.yaml, collected by the
registry and handed in as `Requirements`); the doctor itself names no family's tool.
Only the Docker engine is the framework's own requirement (the docker runtime).

Why: scripts fail at run time with a clear message when a tool is missing, but only
after planning and possibly minutes of other work; the doctor answers up front, with
the install command for each missing piece.  Each check is isolated (subprocess with
a timeout, Python imports in a child interpreter) so one broken tool - a hanging
daemon, a segfaulting native wheel - cannot take the report down.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from efflab.core.requirements import Requirements

TIMEOUT_S = 60


def _row(tool: str, ok: bool, version: str | None, hint: str, detail: str) -> dict:
    return {"tool": tool, "ok": ok, "version": version, "hint": hint, "detail": detail}


def _first_line(text: str) -> str | None:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else None


def _dpkg_version(package: str) -> str | None:
    """Debian package version, for tools without a ``--version`` flag (icepack)."""
    if not shutil.which("dpkg-query"):
        return None
    try:
        proc = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def _exe(
    tool: str, args: list[str], hint: str, package: str | None = None, pattern: str | None = None
) -> Callable:
    """Check factory: ``tool`` on PATH, version from ``tool *args`` (or dpkg as a fallback)."""

    def check() -> dict:
        path = shutil.which(tool)
        if path is None:
            return _row(tool, False, None, hint, "not on PATH")
        version = None
        if args:
            try:
                proc = subprocess.run(
                    [path, *args], capture_output=True, text=True, timeout=TIMEOUT_S
                )
                text = proc.stdout + "\n" + proc.stderr
                if pattern and (m := re.search(pattern, text)):
                    version = (m.group(1) if m.groups() else m.group(0)).strip()
                else:
                    version = _first_line(text)
            except (OSError, subprocess.SubprocessError) as e:
                return _row(tool, False, None, hint, f"{path}: {e}")
        version = version or (_dpkg_version(package) if package else None)
        return _row(tool, True, version, hint, path)

    return check


def _module(module: str, dist: str, hint: str) -> Callable:
    """Check factory: ``import module`` in a child interpreter, version from its metadata."""

    def check() -> dict:
        code = (
            "import importlib, importlib.metadata as md\n"
            f"m = importlib.import_module({module!r})\n"
            f"try:\n    v = md.version({dist!r})\nexcept md.PackageNotFoundError:\n"
            "    v = getattr(m, '__version__', None)\n"
            "print(v or '')\n"
        )
        try:
            proc = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            return _row(module, False, None, hint, "import timed out")
        if proc.returncode:
            err = (
                _first_line(proc.stderr.splitlines()[-1] if proc.stderr.strip() else "")
                or f"rc={proc.returncode}"
            )
            return _row(module, False, None, hint, err)
        return _row(module, True, proc.stdout.strip() or None, hint, sys.executable)

    return check


def _docker() -> dict:
    """Docker engine reachable through the docker SDK (what the docker runtime uses)."""
    hint = (
        "install Docker Engine (apt-get install -y docker.io), start the daemon, pip install docker"
    )
    try:
        import docker  # type: ignore[import-untyped]
    except ImportError:
        return _row("docker", False, None, hint, "python package 'docker' missing")
    try:
        client = docker.from_env(timeout=10)
        client.ping()
        version = client.version().get("Version")
    except Exception as e:  # noqa: BLE001 - any SDK/daemon failure means "not usable"
        return _row("docker", False, None, hint, f"engine unreachable: {e}")
    return _row("docker", True, version, hint, "engine ping ok")


def checks(req: Requirements) -> list[Callable[[], dict]]:
    """The engine, then one check per declared tool and package."""
    out: list[Callable[[], dict]] = [_docker]
    out += [_exe(t.name, list(t.version_args), t.install, t.deb, t.pattern) for t in req.tools]
    out += [_module(p.module, p.dist, p.install or f"pip install {p.dist}") for p in req.packages]
    return out


def collect(req: Requirements) -> list[dict]:
    """One dict per tool: ``tool``, ``ok``, ``version`` (or None), ``hint``, ``detail``."""
    todo = checks(req)
    with ThreadPoolExecutor(max_workers=len(todo)) as pool:
        return list(pool.map(lambda check: check(), todo))


def _table(rows: list[dict]) -> str:
    head = ("tool", "status", "version", "install / detail")
    body = [
        (
            r["tool"],
            "ok" if r["ok"] else "MISSING",
            r["version"] or "-",
            r["detail"] if r["ok"] else r["hint"],
        )
        for r in rows
    ]
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(3)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row[:3], widths, strict=True))
        + "  "
        + str(row[3])
        for row in [head, *body]
    ]
    return "\n".join(lines)


def main(argv: list[str], req: Requirements) -> int:
    """Print the table (or JSON with ``--json``); exit 1 when any tool is missing."""
    if any(a not in ("--json",) for a in argv):
        print(f"usage: efflab doctor [--json] (unknown: {' '.join(argv)})", file=sys.stderr)
        return 2
    rows = collect(req)
    if "--json" in argv:
        print(json.dumps(rows, indent=2))
    else:
        print(_table(rows))
        missing = [r["tool"] for r in rows if not r["ok"]]
        print(
            f"\n{len(rows) - len(missing)}/{len(rows)} ok"
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
    return 0 if all(r["ok"] for r in rows) else 1
