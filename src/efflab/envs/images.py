"""Env images: a locally bootstrapped base, host-built wheelhouses, content-addressed tags.

Why each piece exists:
- No registry is assumed, so the base image is made from Debian packages on this
  machine (debootstrap -> `docker import`) and kept as a `docker save` tarball in the
  user cache, so a cold Docker engine reloads it in seconds with the *same* image id
  (tags stay stable). Where a registry is reachable, EFFLAB_BASE_IMAGE names one instead.
- pip inside a build has no index, so each env's lock file is resolved on the host
  into `envs/<name>/wheels/` for the container's platform, then installed with
  `--no-index --find-links`: offline and reproducible, TLS checks left on.
- An image's tag is the digest of everything that goes into it (declared context,
  wheel hashes, base image id): an unchanged env is never rebuilt, a changed one always.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from efflab.core.envspec import context_digest, env_dir, known_envs
from efflab.core.errors import BadInput
from efflab.core.locks import FileLock
from efflab.envs.wheelhouse import Log, quiet, state_dir, wheelhouse, wheelhouse_current

BOOTSTRAP_REF = "efflab/debian-bookworm:bootstrap"
BOOTSTRAP_SUITE = "bookworm"
# python3 in the base: every env needs it to run efflab's runner; no apt at build time
BOOTSTRAP_INCLUDE = ("python3", "python3-venv", "ca-certificates")
IMAGE_REPO = "efflab-env"
TAG_LEN = 24


@dataclass
class EnvImage:
    """A built (or cached) env image."""

    name: str
    tag: str
    digest: str
    image_id: str
    context_digest: str
    base_ref: str
    cached: bool
    build_s: float = 0.0


def cache_dir() -> Path:
    root = os.environ.get("EFFLAB_CACHE") or os.environ.get("XDG_CACHE_HOME")
    d = (Path(root) if root else Path.home() / ".cache") / "efflab"
    d.mkdir(parents=True, exist_ok=True)
    return d


def connect(timeout: float = 600):
    """A docker client, or BadInput (exit 2) saying how to get an engine."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except Exception as exc:
        raise BadInput(
            "docker",
            "$",
            "a Docker engine answering on DOCKER_HOST or /var/run/docker.sock",
            f"{type(exc).__name__}: {exc}"[:200],
            "start one with tools/ensure-docker.sh, or run with --runtime host",
        ) from None


def check_env(repo: Path, name: str) -> Path:
    """The env's folder, after checking its Dockerfile has a FROM (BadInput otherwise)."""
    folder = env_dir(repo, name)
    dockerfile = folder / "Dockerfile"
    if not dockerfile.is_file():
        context_digest(repo, name)  # raises BadInput listing the known envs
    text = dockerfile.read_text(errors="replace")
    if not re.search(r"^\s*FROM\s+\S", text, re.M | re.I):
        raise BadInput(dockerfile, "$", "a Dockerfile with a FROM line", "none")
    return folder


# -- base image -----------------------------------------------------------------------


def base_ref() -> str:
    return os.environ.get("EFFLAB_BASE_IMAGE") or BOOTSTRAP_REF


def _saved_base() -> Path:
    return cache_dir() / f"{BOOTSTRAP_REF.replace('/', '_').replace(':', '_')}.image.tar"


def ensure_base(client, log: Log = quiet) -> tuple[str, str]:
    """(ref, image id) of the base image; bootstraps, reloads or pulls it when missing."""
    ref = base_ref()
    try:
        return ref, client.images.get(ref).id
    except docker.errors.ImageNotFound:
        pass
    if ref != BOOTSTRAP_REF:
        log(f"pulling base image {ref} (EFFLAB_BASE_IMAGE)")
        try:
            return ref, client.images.pull(ref).id
        except docker.errors.APIError as exc:
            raise BadInput(
                "EFFLAB_BASE_IMAGE",
                "$",
                "an image present locally or pullable from a registry",
                ref,
                f"{exc.explanation or exc}; unset it to use the local bootstrap image",
            ) from None
    saved = _saved_base()
    if saved.is_file():
        log(f"loading base image {ref} from {saved}")
        with open(saved, "rb") as f:
            client.images.load(f)
        try:
            return ref, client.images.get(ref).id
        except docker.errors.ImageNotFound:
            saved.unlink()
    return ref, bootstrap(client, log=log)


def debian_mirror() -> str:
    """EFFLAB_DEBIAN_MIRROR, else the host's apt mirror, else deb.debian.org."""
    if os.environ.get("EFFLAB_DEBIAN_MIRROR"):
        return os.environ["EFFLAB_DEBIAN_MIRROR"]
    for f in [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]:
        text = f.read_text() if f.is_file() else ""
        m = re.search(r"^URIs:\s*(\S+/debian)/?\s*$", text, re.M) or re.search(
            r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+/debian)/?\s+\S+", text, re.M
        )
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


def bootstrap(client, force: bool = False, log: Log = quiet) -> str:
    """debootstrap a minimal Debian, `docker import` it, cache it; returns the image id."""
    if not force:
        try:
            return client.images.get(BOOTSTRAP_REF).id
        except Exception:
            pass
    exe = shutil.which("debootstrap") or next(
        (p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap") if os.path.exists(p)), None
    )
    hint = "run tools/ensure-docker.sh as root, or set EFFLAB_BASE_IMAGE to a registry image"
    if exe is None:
        raise BadInput("debootstrap", "$", "debootstrap installed (apt-get install debootstrap)",
                       "not found", hint)  # fmt: skip
    if os.geteuid() != 0:
        raise BadInput("debootstrap", "$", "to run as root", f"uid {os.geteuid()}", hint)
    mirror = debian_mirror()
    log(f"bootstrapping {BOOTSTRAP_REF}: debootstrap --variant=minbase {BOOTSTRAP_SUITE} "
        f"from {mirror} (a few minutes, once)")  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="efflab-bootstrap-", dir=cache_dir()))
    try:
        root, tar = work / "root", work / "rootfs.tar"
        cmd = [exe, "--variant=minbase", f"--include={','.join(BOOTSTRAP_INCLUDE)}"]
        proc = subprocess.run(
            cmd + [BOOTSTRAP_SUITE, str(root), mirror], capture_output=True, text=True
        )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise BadInput("debootstrap", "$", f"a {BOOTSTRAP_SUITE} root from {mirror}",
                           " | ".join(tail), "set EFFLAB_DEBIAN_MIRROR to a reachable mirror")  # fmt: skip
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for p in (root / junk).glob("*"):
                if p.is_file():
                    p.unlink()
        subprocess.run(["tar", "-C", str(root), "-cf", str(tar), "."], check=True)
        client.api.import_image_from_file(
            str(tar),
            repository=BOOTSTRAP_REF.split(":")[0],
            tag=BOOTSTRAP_REF.split(":")[1],
            changes=["ENV LANG=C.UTF-8", 'CMD ["bash"]'],
        )
        image = client.images.get(BOOTSTRAP_REF)
        saved = _saved_base()
        with open(saved.with_suffix(".tmp"), "wb") as f:
            for chunk in image.save(named=True):
                f.write(chunk)
        os.replace(saved.with_suffix(".tmp"), saved)
        log(f"bootstrapped {BOOTSTRAP_REF} ({image.short_id}); cached at {saved}")
        return image.id
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- build ----------------------------------------------------------------------------


def image_digest(repo: Path, name: str, wheels: dict[str, str], base_id: str) -> str:
    """The tag's digest: declared context + wheel hashes + base image id."""
    h = hashlib.sha256(b"efflab-image-v1\0")
    h.update(context_digest(repo, name).encode() + b"\0" + base_id.encode() + b"\0")
    for fname, sha in sorted(wheels.items()):
        h.update(f"{fname}\0{sha}\0".encode())
    return h.hexdigest()


def image_tag(name: str, digest: str) -> str:
    return f"{IMAGE_REPO}/{name}:{digest[:TAG_LEN]}"


def ensure_built(
    repo: Path, name: str, client=None, log: Log = quiet, fresh: bool = False
) -> EnvImage:
    """The env's image, built only when no image has its digest yet (under a file lock).
    `fresh` rebuilds every layer anyway (a suspect image, or timing a cold build)."""
    folder = check_env(repo, name)
    client = client or connect()
    ref, base_id = ensure_base(client, log)
    with FileLock(str(state_dir(repo, "locks") / f"env-{name}.lock")):
        wheels = wheelhouse(repo, name, log)
        digest = image_digest(repo, name, wheels, base_id)
        tag = image_tag(name, digest)
        found = EnvImage(name, tag, digest, "", context_digest(repo, name), ref, cached=True)
        try:
            found.image_id = client.images.get(tag).id
            if not fresh:
                return found
        except docker.errors.ImageNotFound:
            pass
        (folder / "wheels").mkdir(exist_ok=True)
        log(f"env {name}: building {tag}")
        t0 = time.perf_counter()
        _build(client, repo, folder, name, tag, ref, base_id, found, log, fresh)
        found.build_s, found.cached = time.perf_counter() - t0, False
        found.image_id = client.images.get(tag).id
        log(f"env {name}: built {tag} in {found.build_s:.1f} s")
        return found


def _build(client, repo, folder, name, tag, ref, base_id, img: EnvImage, log: Log, fresh=False):
    log_file = state_dir(repo, "logs") / f"env-{name}.build.log"
    labels = {
        "efflab.env": name,
        "efflab.env.digest": img.digest,
        "efflab.env.context": img.context_digest,
        "efflab.env.base": base_id,
        "efflab.repo": str(repo),  # prune only ever removes what this project built
    }
    step, tail, error = "", [], None
    t0 = time.perf_counter()
    with open(log_file, "w", buffering=1) as out:
        try:
            stream = client.api.build(
                path=str(folder), tag=tag, buildargs={"BASE_IMAGE": ref}, labels=labels,
                rm=True, forcerm=True, pull=False, decode=True, nocache=fresh,
            )  # fmt: skip
            for chunk in stream:
                text = chunk.get("stream", "")
                if text.startswith("Step "):
                    step, tail = text.strip(), []
                    out.write(f"[{time.perf_counter() - t0:7.1f} s] ")
                    log(f"env {name}: {step[:120]}")
                elif not text.lstrip().startswith(("--->", "Removing intermediate")):
                    tail = (tail + text.strip().splitlines())[-4:]
                out.write(text)
                if "error" in chunk:
                    error = chunk["error"].strip()
                    out.write(f"\nERROR: {error}\n")
        except docker.errors.APIError as exc:
            error = str(exc.explanation or exc)
    if error:
        m = re.search(r"non-zero code: (\d+)", error)
        found = f"exit code {m.group(1)} at {step.split(' : ')[0]}" if m and step else error
        hint = f"full log: {log_file}"
        if step:
            output = " | ".join(tail)[-300:] or "none"
            hint = f"fix the failing step '{step[:160]}' (its last output: {output}); {hint}"
        raise BadInput(folder / "Dockerfile", "$", "a Dockerfile that builds", found, hint)


def current_tag(repo: Path, name: str, client) -> str | None:
    """The tag the env would build to now, without resolving anything (None: unknown)."""
    wheels = wheelhouse_current(repo, name)
    if wheels is None:
        return None
    try:
        base_id = client.images.get(base_ref()).id
    except Exception:
        return None
    return image_tag(name, image_digest(repo, name, wheels, base_id))


@dataclass
class EnvStatus:
    """One row of `efflab env list`."""

    name: str
    context_digest: str
    tag: str | None
    built: bool
    image_id: str | None
    size_mb: float | None
    note: str = ""


def status(repo: Path, client) -> list[EnvStatus]:
    rows = []
    for name in known_envs(repo):
        ctx = context_digest(repo, name)
        tag = current_tag(repo, name, client)
        row = EnvStatus(name, ctx, tag, False, None, None)
        if tag is None:
            row.note = "wheelhouse not resolved or base image missing; `efflab env build`"
        else:
            try:
                img = client.images.get(tag)
                row.built, row.image_id = True, img.id
                row.size_mb = round(img.attrs.get("Size", 0) / 2**20, 1)
            except Exception:
                row.note = "not built"
        rows.append(row)
    return rows


def env_names_for(invocations: Any) -> list[str]:
    """Envs a set of invocations runs in (scripts without `env:` run on the host)."""
    return sorted({i.env for i in invocations if getattr(i, "env", None)})
