"""Snakemake profiles for `efflab run EXP --profile NAME`: find, validate, preflight.

Scale-out is Snakemake's (an executor plugin named in a profile); efflab only makes
sure that what it hands Snakemake can work, because a cluster tells you late and
badly: a misspelt profile or a missing plugin is a Snakemake traceback, and a job
asking for more memory than any node has sits pending forever or is rejected by
sbatch after its deps have already run. So all three are bad input (exit 2, naming
the file and field) before anything is submitted.

A profile is a folder with a Snakemake `config.yaml` (or `profile.yaml`, or a
versioned `config.v8+.yaml`), given by name or path. Parsing `sinfo` lives here only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from efflab.core.errors import BadInput
from efflab.core.invocation import Invocation
from efflab.core.specio import load_yaml

PROFILES_DIR = Path("workflows") / "profiles"
# executors that ship inside Snakemake itself; any other needs its plugin package
BUILTIN_EXECUTORS = {"local", "dryrun", "touch"}
# what efflab.smk asks for when meta.yaml leaves a resource out (keep in step with it)
DEFAULT_MEM_MB = 1000
DEFAULT_RUNTIME_MIN = 30
SINFO_FORMAT = "%P|%c|%m|%l|%G|%a"
SINFO_TIMEOUT_S = 30
_PROFILE_FILE = re.compile(r"(profile|config)(?:\.v(\d+)\+)?\.yaml")


@dataclass(frozen=True)
class Profile:
    """A parsed profile: its folder, the YAML file Snakemake will read, its options."""

    name: str
    folder: Path
    file: Path
    options: dict[str, Any]

    @property
    def executor(self) -> str:
        return str(self.options.get("executor") or "local")


@dataclass(frozen=True)
class NodeGroup:
    """One `sinfo` line: nodes of one partition that share a configuration."""

    partition: str
    default: bool
    cpus: int
    mem_mb: int
    max_runtime_min: float  # inf when the partition has no time limit
    gpus: int
    up: bool


def known(repo: Path) -> list[str]:
    """Profile names under workflows/profiles/, for error messages and --help."""
    base = repo / PROFILES_DIR
    return sorted(p.name for p in base.iterdir() if _profile_file(p)) if base.is_dir() else []


def resolve(repo: Path, name: str) -> Path:
    """The profile folder to hand Snakemake (`--profile DIR`); raises BadInput."""
    return load(repo, name).folder


def search_dirs(repo: Path) -> list[Path]:
    """Where a profile *name* is looked up: the project first, then Snakemake's own
    user and site folders (~/.config/snakemake, /etc/xdg/snakemake), where HPC sites
    install theirs."""
    user = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "snakemake"
    sites = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    return [repo / PROFILES_DIR, user, *(Path(d) / "snakemake" for d in sites.split(":") if d)]


def load(repo: Path, name: str | Path) -> Profile:
    """Find a profile by name or path, and validate it; BadInput when there is none."""
    text = str(name)
    by_path = os.sep in text or text.startswith(("~", ".")) or Path(text).is_absolute()
    if by_path:
        folder = Path(text).expanduser().resolve()
    else:
        found = [d / text for d in search_dirs(repo) if _profile_file(d / text)]
        folder = found[0] if found else repo / PROFILES_DIR / text
    file = _profile_file(folder)
    if file is None:
        names = ", ".join(known(repo)) or "none"
        raise BadInput(
            folder if by_path else repo / PROFILES_DIR,
            "$",
            f"a profile name ({names}) or a folder holding a Snakemake config.yaml",
            text,
        )
    options = load_yaml(file) or {}
    if not isinstance(options, dict):
        raise BadInput(file, "$", "a mapping of Snakemake options", type(options).__name__)
    profile = Profile(name=folder.name, folder=folder, file=file, options=options)
    _check_plugins(profile)
    return profile


def _profile_file(folder: Path) -> Path | None:
    """The file Snakemake would read: the highest `.vN+` version it accepts, else plain."""
    best: tuple[int, Path] | None = None
    for f in folder.iterdir() if folder.is_dir() else []:
        m = _PROFILE_FILE.fullmatch(f.name)
        if m and f.is_file():
            rank = int(m.group(2) or 0)
            if rank <= _snakemake_major() and (best is None or rank > best[0]):
                best = (rank, f)
    return best[1] if best else None


def _snakemake_major() -> int:
    return int(version("snakemake").split(".")[0])


def plugin_installed(kind: str, name: str) -> bool:
    """Is `snakemake-<kind>-plugin-<name>` importable in this environment?"""
    module = f"snakemake_{kind}_plugin_{name.replace('-', '_')}"
    return importlib.util.find_spec(module) is not None


def _check_plugins(profile: Profile) -> None:
    """The executor and default storage provider a profile names must be installed."""
    executor = profile.executor
    if executor not in BUILTIN_EXECUTORS and not plugin_installed("executor", executor):
        extra = " (pip install 'efflab[slurm]')" if executor == "slurm" else ""
        raise BadInput(
            profile.file,
            "$.executor",
            f"an installed Snakemake executor plugin: "
            f"snakemake-executor-plugin-{executor} is not installed{extra}",
            executor,
        )
    storage = profile.options.get("default-storage-provider")
    if storage and not plugin_installed("storage", str(storage)):
        raise BadInput(
            profile.file,
            "$.default-storage-provider",
            f"an installed Snakemake storage plugin: "
            f"snakemake-storage-plugin-{storage} is not installed",
            storage,
        )


# --- preflight: every job must fit the cluster before anything is submitted ---


def preflight(repo: Path, profile_dir: Path, targets: Iterable[Invocation]) -> None:
    """Raise BadInput when a job that would run cannot fit the profile's cluster.

    Checks SLURM profiles only (the one scheduler efflab knows how to ask); other
    executors pass through to Snakemake.
    """
    profile = load(repo, profile_dir)
    if profile.executor != "slurm":
        return
    pending = list(pending_invocations(repo, targets))
    if not pending:
        return
    groups = sinfo(profile)
    partition = requested_partition(profile)
    candidates = _partition_groups(profile, groups, partition)
    label = partition or (
        "any" if profile.options.get("slurm-partition-config") else candidates[0].partition
    )
    for inv in pending:
        check_fits(inv, candidates, label)


def pending_invocations(repo: Path, targets: Iterable[Invocation]) -> Iterator[dict[str, Any]]:
    """Targets and their deps (from invocation.json) that have no outputs.json yet."""
    stack = [t.to_json() for t in targets]
    seen: set[str] = set()
    while stack:
        inv = stack.pop()
        if inv["key"] in seen:
            continue
        seen.add(inv["key"])
        folder = repo / "artifacts" / inv["alias"]
        if (folder / inv["key"] / "outputs.json").exists():
            continue
        yield inv
        for dep in inv["deps"].values():
            f = repo / "artifacts" / dep["alias"] / dep["key"] / "invocation.json"
            if f.exists():
                stack.append(json.loads(f.read_text()))


def requested_partition(profile: Profile) -> str | None:
    """`slurm_partition` from the profile's default-resources or set-resources, if any."""
    found = None
    for entry in _resource_entries(profile.options.get("default-resources")):
        k, _, v = entry.partition("=")
        if k.strip() == "slurm_partition":
            found = v
    for entry in _resource_entries(profile.options.get("set-resources")):
        rule_key, _, v = entry.partition("=")
        rule, _, k = rule_key.partition(":")
        if k.strip() == "slurm_partition" and rule.strip() in ("efflab_invocation", "*"):
            found = v
    return found.strip().strip("'\"") if found else None


def _resource_entries(value: Any) -> list[str]:
    """Both profile spellings: a list of 'k=v' strings or a (two-level) mapping."""
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            if isinstance(v, dict):
                out += [f"{k}:{k2}={v2}" for k2, v2 in v.items()]
            else:
                out.append(f"{k}={v}")
        return out
    return []


def sinfo(profile: Profile) -> list[NodeGroup]:
    """Ask the cluster for its partitions' node configurations."""
    exe = shutil.which("sinfo")
    if exe is None:
        raise BadInput(
            profile.file,
            "$.executor",
            "a SLURM cluster reachable from this machine (no `sinfo` on PATH; "
            "tools/slurm-cluster.sh start gives a local one)",
            profile.executor,
        )
    try:
        proc = subprocess.run(
            [exe, "--noheader", "--exact", "--format", SINFO_FORMAT],
            capture_output=True,
            text=True,
            timeout=SINFO_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        proc = None
    if proc is None or proc.returncode != 0:
        why = "timed out" if proc is None else (proc.stderr.strip() or f"exit {proc.returncode}")
        raise BadInput(profile.file, "$.executor", "a SLURM controller that answers sinfo", why)
    return parse_sinfo(proc.stdout)


def parse_sinfo(text: str) -> list[NodeGroup]:
    """Parse `sinfo --noheader --exact --format '%P|%c|%m|%l|%G|%a'` output."""
    groups = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 6:
            continue
        part, cpus, mem, limit, gres, avail = parts
        groups.append(
            NodeGroup(
                partition=part.rstrip("*"),
                default=part.endswith("*"),
                cpus=_leading_int(cpus),
                mem_mb=_leading_int(mem),
                max_runtime_min=parse_slurm_time(limit),
                gpus=gres_gpus(gres),
                up=avail.strip() == "up",
            )
        )
    return groups


def _leading_int(text: str) -> int:
    """'64' -> 64; '64+' (sinfo's 'at least') -> 64; anything else -> 0."""
    m = re.match(r"\s*(\d+)", text)
    return int(m.group(1)) if m else 0


def parse_slurm_time(text: str) -> float:
    """SLURM time limit -> minutes: 'infinite', 'D-HH:MM:SS', 'HH:MM:SS', 'MM:SS', 'M'."""
    text = text.strip().lower()
    if text in ("infinite", "unlimited", "n/a", ""):
        return float("inf")
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
    nums = [int(x) for x in text.split(":")]
    if len(nums) == 1:
        h, m, s = 0, nums[0], 0  # a bare number is minutes
    elif len(nums) == 2:
        h, m, s = 0, nums[0], nums[1]
    else:
        h, m, s = nums[-3], nums[-2], nums[-1]
    return days * 1440 + h * 60 + m + s / 60


def gres_gpus(text: str) -> int:
    """GPUs per node from a GRES string such as 'gpu:a100:4(S:0-1),gpu:2' or '(null)'."""
    total = 0
    for item in re.split(r",(?![^()]*\))", text):
        item = re.sub(r"\(.*\)$", "", item.strip())
        if item.startswith("gpu"):
            last = item.split(":")[-1]
            total += int(last) if last.isdigit() else 1
    return total


def _partition_groups(
    profile: Profile, groups: list[NodeGroup], partition: str | None
) -> list[NodeGroup]:
    """Node groups of the partition jobs will go to (the named one, else the default)."""
    names = sorted({g.partition for g in groups})
    if partition is None and profile.options.get("slurm-partition-config"):
        return groups  # the plugin picks the best-fitting partition per job
    if partition is None:
        default = [g for g in groups if g.default]
        if not default:
            raise BadInput(
                profile.file,
                "$.default-resources",
                f"slurm_partition=NAME: the cluster has no default partition ({', '.join(names)})",
                None,
            )
        return default
    chosen = [g for g in groups if g.partition == partition]
    if not chosen:
        raise BadInput(
            profile.file,
            "$.default-resources",
            f"a partition of this cluster ({', '.join(names) or 'none'})",
            partition,
        )
    return chosen


def requested(inv: dict[str, Any]) -> dict[str, float]:
    """What the job will ask SLURM for, exactly as efflab.smk derives it."""
    res = inv.get("resources") or {}
    cpus = (os.cpu_count() or 1) if res.get("exclusive") else res.get("cpus", 1)
    return {
        "cpus": cpus,
        "mem_mb": res.get("mem_mb", DEFAULT_MEM_MB),
        "runtime_min": res.get("runtime_min", DEFAULT_RUNTIME_MIN),
        "gpus": res.get("gpus", 0),
    }


# resource -> (NodeGroup attribute, how the limit reads in an error message)
_LIMITS = {
    "cpus": ("cpus", "CPUs of the largest node"),
    "mem_mb": ("mem_mb", "MB of memory of the largest node"),
    "runtime_min": ("max_runtime_min", "minutes (the partition's time limit)"),
    "gpus": ("gpus", "GPUs of the best-equipped node"),
}


def check_fits(inv: dict[str, Any], groups: list[NodeGroup], partition: str) -> None:
    """Some node group of the partition must hold the whole job; else name what's short."""
    want = requested(inv)
    if any(all(want[k] <= getattr(g, a) for k, (a, _) in _LIMITS.items()) for g in groups):
        return
    meta = Path(inv["script_dir"]) / "meta.yaml"
    for k, (attr, what) in _LIMITS.items():
        best = max(getattr(g, attr) for g in groups)
        if want[k] > best:
            field = "exclusive" if k == "cpus" and inv["resources"].get("exclusive") else k
            hint = (
                f"exclusive asks for all {want[k]:g} cores of the submitting machine"
                if field == "exclusive"
                else "lower it in meta.yaml, or choose a partition with "
                "default-resources: {slurm_partition: NAME} in the profile"
            )
            where, found = f"$.resources.{field}", inv["resources"].get(field, want[k])
            limit = f"at most {best:g} {what} in SLURM partition '{partition}'"
            raise BadInput(meta, where, limit, found, hint)
    # each resource fits some node, but no single node holds them all at once
    raise BadInput(
        meta,
        "$.resources",
        f"a job one node of SLURM partition '{partition}' can hold",
        want,
        "no node has enough CPUs, memory and GPUs at once",
    )
