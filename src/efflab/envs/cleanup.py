"""Cleaning up after env images: stale images of this project, old build stages, and
containers left behind when a runner lost its engine. Kept apart from building
(`efflab.envs.images`): removal rules are their own concern and must never touch what a
running build or container still uses.
"""

from __future__ import annotations

import re
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import docker

from efflab.core.envspec import context_digest, known_envs
from efflab.core.lifeline import Owner
from efflab.envs.images import current_tag
from efflab.envs.wheelhouse import Log, quiet

BUILD_STAGE_KEEP_S = 3600.0
LABEL_OWNER, LABEL_HOST = "efflab.owner", "efflab.host"  # "pid:start" of the efflab run


def _created(img: Any) -> float:
    """An image's (or a dict's) RFC 3339 'Created' time as a Unix timestamp."""
    text = (img if isinstance(img, dict) else img.attrs).get("Created", "")
    try:  # RFC 3339 with nanoseconds: keep microseconds for fromisoformat
        return datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", text)).timestamp()
    except ValueError:
        return time.time()


def sweep_containers(client, older_than_s: float) -> list[str]:
    """Remove efflab containers that exited a while ago: left behind only when a runner
    lost its engine mid-run (a live runner removes its own within a second of exit)."""
    cutoff, names = time.time() - older_than_s, []
    for c in client.containers.list(all=True, filters={"label": "efflab.key"}, ignore_removed=True):
        finished = _created({"Created": c.attrs.get("State", {}).get("FinishedAt", "")})
        if c.status in ("exited", "dead") and finished < cutoff:
            try:
                c.remove(force=True)
                names.append(c.name)
            except docker.errors.APIError:
                pass
    return names


def sweep_dead_runs(client) -> list[str]:
    """Remove every efflab container, running or not, whose run's efflab process (on this
    machine) has ended: a run killed with -9 could not remove its own."""
    names, here = [], socket.gethostname()
    for c in client.containers.list(all=True, filters={"label": LABEL_OWNER}, ignore_removed=True):
        labels = c.labels or {}
        owner = Owner.parse(labels.get(LABEL_OWNER, ""))
        if owner is None or labels.get(LABEL_HOST) != here or owner.alive():
            continue
        try:
            c.remove(force=True)
            names.append(c.name)
        except docker.errors.APIError:
            pass
    return names


def prune(repo: Path, client, log: Log = quiet) -> list[str]:
    """Remove this project's stale env images (not the current tag of one of its envs),
    leftover build stages and stopped efflab containers; returns what was removed.

    Images are shared by digest between projects on one engine, so only images labelled
    as built by this project are candidates; a running container keeps its image."""
    removed: list[str] = []
    removed += [f"container {n}" for n in sweep_containers(client, older_than_s=60)]
    envs = set(known_envs(repo))
    current = {n: current_tag(repo, n, client) for n in envs}
    for img in client.images.list(filters={"label": f"efflab.repo={repo}"}):
        name = img.labels.get("efflab.env", "")
        keep = name in envs and (
            current[name] in img.tags
            if current[name]
            else img.labels.get("efflab.env.context") == context_digest(repo, name)
        )
        if not keep:
            try:
                for t in img.tags or [img.id]:
                    client.images.remove(t, force=False, noprune=False)
                removed.append(f"image {', '.join(img.tags) or img.short_id}")
            except docker.errors.APIError as exc:  # in use by a container: keep it
                log(f"kept {img.short_id}: {exc.explanation or exc}")
    # Finished builds leave their wheel-holding build stage behind (the layer cache of the
    # next build). A running build's stage looks the same, so only old ones go.
    cutoff = time.time() - BUILD_STAGE_KEEP_S
    for img in client.images.list(filters={"label": "efflab.stage=build", "dangling": True}):
        if _created(img) < cutoff:
            try:
                client.images.remove(img.id)
                removed.append(f"build-stage image {img.short_id}")
            except docker.errors.APIError:
                pass
    for r in removed:
        log(f"removed {r}")
    return removed
