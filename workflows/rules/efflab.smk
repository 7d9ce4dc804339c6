# One generic rule: an invocation folder's outputs.json from its deps' outputs.json.
# The plan (efflab.plan.planner) writes artifacts/<alias>/<key>/invocation.json first; this
# file only reads it, so `snakemake <target>` and `efflab run` build the same DAG.
import json
import os
import sys
from functools import cache
from pathlib import Path

EFFLAB_PY = sys.executable
# the runtime's name comes one way only: --config runtime=NAME (efflab passes it)
EFFLAB_RUNTIME = config.get("runtime", "host")
# Local runs: efflab serves jobs from one warm process (efflab.runtime.jobserver) and
# this bash, which Snakemake spawns anyway, hands it the folder over /dev/tcp, so a job
# starts no Python. Without a server (plain snakemake, SLURM jobs, no bash) or when it
# cannot be reached, the job starts the runner itself. The runner's code runs either way.
EFFLAB_JOB = (
    'if [ -n "${{BASH_VERSION:-}}" ] && [ -n "${{EFFLAB_JOBSERVER:-}}" ] '
    '&& exec 3<>"/dev/tcp/127.0.0.1/${{EFFLAB_JOBSERVER%%:*}}"; then '
    'printf "%s %s %s\\n" "${{EFFLAB_JOBSERVER#*:}}" {EFFLAB_RUNTIME} '
    "artifacts/{wildcards.alias}/{wildcards.key} >&3; "
    'while IFS= read -r efflab_line <&3; do case "$efflab_line" in '
    '"EFFLAB-RC "*) exit "${{efflab_line#EFFLAB-RC }}";; '
    '*) printf "%s\\n" "$efflab_line" >&2;; esac; done; '
    'echo "efflab: the job server went away" >&2; exit 1; fi; '
    "{EFFLAB_PY} -m efflab.runtime.runner --runtime {EFFLAB_RUNTIME} "
    "artifacts/{wildcards.alias}/{wildcards.key}"
)

wildcard_constraints:
    alias="[a-z0-9][a-z0-9-]*",
    key="[0-9a-f]{20}",


@cache
def _efflab_inv(alias, key):
    return json.loads(Path(f"artifacts/{alias}/{key}/invocation.json").read_text())


# cluster runs batch short invocations (efflab.workflow.batching): key -> batch name,
# written by efflab for this run; a dep in a batch is waited for as its batch's .done
EFFLAB_BATCH_OF = (
    json.loads(Path(config["batches"]).read_text()) if config.get("batches") else {}
)


def _efflab_dep_file(d):
    b = EFFLAB_BATCH_OF.get(d["key"])
    return f"artifacts/.batches/{b}.done" if b else f"artifacts/{d['alias']}/{d['key']}/outputs.json"


def _efflab_deps(wc):
    inv = _efflab_inv(wc.alias, wc.key)
    return [_efflab_dep_file(d) for d in inv["deps"].values()]


# a local run's CPU split (efflab.runtime.pinning): "MEASURED|REST", or unset
EFFLAB_PIN = os.environ.get("EFFLAB_PIN", "").partition("|")


def _efflab_threads(wc):
    res = _efflab_inv(wc.alias, wc.key)["resources"]
    if res.get("exclusive") and EFFLAB_PIN[1]:
        # pinned: the measured cores are its own (one exclusive job at a time, resource
        # efflab_measure); other jobs run beside it on the rest
        return len(EFFLAB_PIN[0].split(","))
    # exclusive, unpinned: ask for every core, so a timing-sensitive job runs alone
    return (os.cpu_count() or 1) if res.get("exclusive") else res.get("cpus", 1)


def _efflab_measure(wc):
    return 1 if _efflab_inv(wc.alias, wc.key)["resources"].get("exclusive") else 0


def _efflab_rest(wc):
    # pinned: other jobs share the rest's cores; a job asking for more gets all of them
    res = _efflab_inv(wc.alias, wc.key)["resources"]
    if not EFFLAB_PIN[1] or res.get("exclusive"):
        return 0
    return min(int(res.get("cpus", 1)), len(EFFLAB_PIN[2].split(",")))


def _efflab_priority(wc):
    # repetition r of every point before r+1 of any (slow drift in the machine's load
    # then hits every arm of a comparison alike): Snakemake's selectors, greedy and ILP,
    # start the ready job of highest priority first, and a pending dependency of
    # repetition r has the priority of r, so it runs before any job of r+1
    return max(0, EFFLAB_PRIORITY_TOP - int(_efflab_inv(wc.alias, wc.key).get("repetition", 0)))


EFFLAB_PRIORITY_TOP = 1000


def _efflab_res(name, default):
    return lambda wc: _efflab_inv(wc.alias, wc.key)["resources"].get(name, default)


def efflab_experiment_targets(experiment, quick=False):
    """Plan an experiment (pure Python), write its invocation files, return its targets."""
    from efflab.workflow.snakemake_adapter import write_invocations
    from efflab.plan.planner import plan_experiment
    from efflab.runtime import base

    # keyed for the runtime the jobs will run on, as `efflab run --runtime` keys them
    identity = base.get(EFFLAB_RUNTIME).identity()
    plan = plan_experiment(Path.cwd(), experiment, quick=quick, runtime=identity)
    write_invocations(Path.cwd(), plan.invocations.values())
    return [f"{inv.folder}/outputs.json" for inv in plan.targets]


rule efflab_invocation:
    input:
        _efflab_deps,
    output:
        "artifacts/{alias}/{key}/outputs.json",
    threads: _efflab_threads
    priority: _efflab_priority
    resources:
        mem_mb=_efflab_res("mem_mb", 1000),
        runtime=_efflab_res("runtime_min", 30),
        gpu=_efflab_res("gpus", 0),  # the SLURM plugin reads "gpu" (-> --gpus)
        efflab_measure=_efflab_measure,
        efflab_rest=_efflab_rest,
    shell:
        EFFLAB_JOB


@cache
def _efflab_batch(name):
    return json.loads(Path(f"artifacts/.batches/{name}.json").read_text())


def _efflab_batch_deps(wc):
    batch = _efflab_batch(wc.batch)
    inside = set(batch["keys"])
    deps = {}
    for folder in batch["members"]:
        alias, key = folder.split("/")[1:3]
        for d in _efflab_inv(alias, key)["deps"].values():
            if d["key"] not in inside:
                deps[_efflab_dep_file(d)] = None
    return list(deps)


def _efflab_batch_threads(wc):
    b = _efflab_batch(wc.batch)
    return (os.cpu_count() or 1) if b["exclusive"] else b["threads"]


rule efflab_batch:
    input:
        _efflab_batch_deps,
    output:
        "artifacts/.batches/{batch}.done",
    wildcard_constraints:
        batch="[0-9a-f]{16}",
    threads: _efflab_batch_threads
    resources:
        mem_mb=lambda wc: _efflab_batch(wc.batch)["mem_mb"],
        runtime=lambda wc: _efflab_batch(wc.batch)["runtime_min"],
    shell:
        "{EFFLAB_PY} -m efflab.runtime.runner --runtime {EFFLAB_RUNTIME} "
        "--batch artifacts/.batches/{wildcards.batch}.json"
