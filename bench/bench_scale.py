"""Scale benchmarks (printed figures, not tests): efflab and plain Snakemake side by side.

    .venv/bin/python bench/bench_scale.py [startup] [overhead] [large] [index] [slurm]
        [--sizes 1000,10000] [--slope-sizes 10,40] [--reps N] [--no-plain]

startup   `import snakemake.cli`, `snakemake --version` with a SLURM client configured
          and no controller (the ~9 s probe), and through efflab's launcher; `efflab run`
          of a one-invocation experiment end to end                       goal <= 3 s
overhead  per-job marginal cost (slope between 10 and 40 trivial jobs, or --slope-sizes:
          plain Snakemake's 0-1 s end wait makes a slope over 30 jobs good to ~+-17 ms), efflab with
          and without the job server, and batched (--batch-seconds 600), vs plain
          Snakemake                                                      goal <= 1.2x
large     N trivial invocations vs plain Snakemake on the same DAG (one shell rule per
          folder): plan, DAG build (dry run), whole run, no-op rerun, peak RSS
          goals: whole run <= 1.2x plain, no-op of 10,000 <= 5 s, memory <= 1 GB
index     aggregate 1,000,000 records from the columnar index        goal <= 30 s
          add one night's records (1,000) to it                      goal <= 1 s
slurm     50 trivial invocations batched on the test's SLURM cluster (`--profile slurm
          --batch-seconds 600`) vs the same run local (needs tools/slurm-cluster.sh
          start)                                                      goal <= 3x local
Every figure: median (min-max) of >= 3 repetitions, arms interleaved. Print `uptime`
with the figures: on a shared machine they are only as good as its load.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import make_tiny_repo, write  # noqa: E402

from efflab.plan.planner import Planner, load_experiment  # noqa: E402
from efflab.results import index  # noqa: E402

REPS = 3
PY = sys.executable
PARKED_CONF = Path("/root/slurm-conf-parked/slurm.conf")


def show(name: str, xs: list[float], goal: str = "-", unit: str = "s") -> float:
    med = statistics.median(xs)
    print(f"{name:<64} median {med:9.3f} {unit} (min {min(xs):.3f}, max {max(xs):.3f}, "
          f"n={len(xs)})  goal {goal}", flush=True)  # fmt: skip
    return med


def wall(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - t0


def interleaved(arms: dict[str, Callable[[], float]], reps: int = REPS) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in arms}
    for _ in range(reps):
        for k, fn in arms.items():
            out[k].append(fn())
    return out


def gen_repo(root: Path, n: int) -> Path:
    repo = make_tiny_repo(root)
    write(repo / "workflows/experiments/many.yaml",
          "name: many\nscript: demo,gen\ngrid:\n  n: [" + ", ".join(map(str, range(1, n + 1))) + "]\n")  # fmt: skip
    return repo


def plain_dir(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    (root / "Snakefile").write_text(
        f"rule all:\n    input: expand('out/{{i}}/outputs.json', i=range({n}))\n\n"
        "rule job:\n    output: 'out/{i}/outputs.json'\n"
        '    shell: "seq 1 3 > out/{wildcards.i}/numbers.txt; '
        'echo \'{{\\"metrics\\": {{\\"count\\": 3}}}}\' > {output}"\n'
    )
    return root


def clean(*paths: Path) -> None:
    subprocess.run(["rm", "-rf", *map(str, paths)], check=True)


def efflab_cmd(repo: Path, *args: str) -> list[str]:
    return [PY, "-m", "efflab", "--repo", str(repo), *args]


def bench_startup(tmp: Path) -> None:
    dead = {"SLURM_CONF": str(PARKED_CONF)} if PARKED_CONF.exists() else None
    arms: dict[str, Callable[[], float]] = {
        "import snakemake.cli (no slurm.conf)": lambda: wall([PY, "-c", "import snakemake.cli"]),
        "snakemake --version (no slurm.conf)": lambda: wall([PY, "-m", "snakemake", "--version"]),
        "efflab launcher --version (local executors only)": lambda: wall(
            [PY, "-m", "efflab.workflow.snakemake_main", "--executors", "local", "--", "--version"]
        ),
    }
    if dead:
        arms["import snakemake.cli (slurm.conf, controller down)"] = lambda: wall(
            [PY, "-c", "import snakemake.cli"], env=dead
        )
        arms["snakemake --version (slurm.conf, controller down)"] = lambda: wall(
            [PY, "-m", "snakemake", "--version"], env=dead
        )
        arms["efflab launcher --version (slurm.conf, controller down)"] = lambda: wall(
            [PY, "-m", "efflab.workflow.snakemake_main", "--executors", "local", "--", "--version"],
            env=dead,
        )
    repo = gen_repo(tmp / "one", 1)

    def one(env: dict | None = None) -> float:
        clean(repo / "artifacts", repo / "results", repo / ".snakemake")
        return wall(efflab_cmd(repo, "run", "many", "-q", "--runtime", "host"), env=env)

    arms["efflab run, 1 invocation, end to end (cluster stopped)"] = one
    if dead:
        arms["efflab run, 1 invocation (slurm.conf, controller down)"] = lambda: one(dead)
    for name, xs in interleaved(arms).items():
        show(name, xs, "<= 3 s" if name.startswith("efflab run") else "-")


def bench_overhead(tmp: Path, sizes: tuple[int, int] = (10, 40), reps: int = REPS) -> None:
    arms: dict[str, Callable[[], float]] = {}
    for n in sizes:
        plain, repo = plain_dir(tmp / f"p{n}", n), gen_repo(tmp / f"e{n}", n)

        def run_plain(plain: Path = plain) -> float:
            clean(plain / "out", plain / ".snakemake")
            return wall([PY, "-m", "snakemake", "--cores", "1", "-q", "all"], cwd=plain)

        def run_eff(repo: Path = repo, env: dict | None = None, *extra: str) -> float:
            clean(repo / "artifacts", repo / "results", repo / ".snakemake")
            cmd = efflab_cmd(repo, "run", "many", "-q", "--cores", "1", "--runtime", "host", *extra)
            return wall(cmd, env=env)

        arms[f"plain {n}"] = run_plain
        arms[f"efflab {n}"] = run_eff
        arms[f"efflab-no-server {n}"] = lambda r=repo: run_eff(r, {"EFFLAB_JOBSERVER": "off"})
        # short jobs batched (one Snakemake job runs a batch's members in one runner)
        arms[f"efflab-batched {n}"] = lambda r=repo: run_eff(r, None, "--batch-seconds", "600")
    res = interleaved(arms, reps)
    lo, hi = sizes
    med = {k: show(f"{k} trivial jobs, whole run", v) for k, v in res.items()}
    kinds = ("plain", "efflab", "efflab-no-server", "efflab-batched")
    slope = {a: (med[f"{a} {hi}"] - med[f"{a} {lo}"]) / (hi - lo) for a in kinds}
    for a in kinds[1:]:
        print(f"{'per-job marginal cost ' + a + ' vs plain':<64} {slope[a] * 1e3:9.1f} ms vs "
              f"{slope['plain'] * 1e3:.1f} ms  ratio {slope[a] / slope['plain']:.2f}x  goal <= 1.2x")  # fmt: skip


SELF_RSS = (
    "import atexit, resource, runpy, sys\n"
    "out = sys.argv.pop(1)\n"
    "atexit.register(lambda: open(out, 'w').write("
    "str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))\n"
    "sys.argv[0] = 'efflab'\n"
    "runpy.run_module('efflab', run_name='__main__', alter_sys=True)\n"
)


def rss_mb(repo: Path, *args: str) -> tuple[float, float, float]:
    """Wall seconds of `efflab ARGS`, peak RSS (MB) of the efflab process itself, and of
    the largest process of its tree (its Snakemake, a job) as GNU time reports it."""
    with tempfile.TemporaryDirectory() as t:
        own, tree = Path(t) / "own", Path(t) / "tree"
        cmd = ["/usr/bin/time", "-f", "%M", "-o", str(tree), PY, "-c", SELF_RSS, str(own),
               "--repo", str(repo), *args]  # fmt: skip
        s = wall(cmd)
        return s, int(own.read_text()) / 1024.0, int(tree.read_text().split()[-1]) / 1024.0


def bench_large(
    tmp: Path, sizes: list[int], reps: int = REPS, ilp_max: int = 1000, plain_arms: bool = True
) -> None:
    """Plain Snakemake runs with its default job selector (ILP) up to `ilp_max` jobs and
    with `--scheduler greedy` (what efflab passes) at every size; `--no-plain` skips the
    plain arms (efflab's figures alone, when the time at hand allows no more)."""
    for n in sizes:
        repo, plain = gen_repo(tmp / f"L{n}", n), plain_dir(tmp / f"LP{n}", n)
        xs = []
        for _ in range(reps):
            t0 = time.perf_counter()
            Planner(repo).plan(load_experiment(repo, "many"))
            xs.append(time.perf_counter() - t0)
        show(f"[{n}] plan (in-process)", xs)
        dag = interleaved({
            "plain": lambda plain=plain: wall([PY, "-m", "snakemake", "-n", "-q", "--cores", "1", "all"], cwd=plain),
            "efflab": lambda repo=repo: wall(efflab_cmd(repo, "run", "many", "--dry-run", "-q", "--runtime", "host")),
        } if plain_arms else {
            "efflab": lambda repo=repo: wall(efflab_cmd(repo, "run", "many", "--dry-run", "-q", "--runtime", "host")),
        }, reps)  # fmt: skip
        if plain_arms:
            show(f"[{n}] DAG build: plain snakemake --dry-run", dag["plain"])
        show(f"[{n}] DAG build: efflab run --dry-run (plan + Snakemake dry run)", dag["efflab"])
        own: list[float] = []
        tree: list[float] = []

        def run_plain(plain: Path = plain, *sched: str) -> float:
            clean(plain / "out", plain / ".snakemake")
            return wall([PY, "-m", "snakemake", "--cores", "2", "-q", *sched, "all"], cwd=plain)

        def run_eff(repo: Path = repo, own: list = own, tree: list = tree) -> float:
            clean(repo / "artifacts", repo / "results", repo / ".snakemake")
            t, a, b = rss_mb(repo, "run", "many", "-q", "--cores", "2", "--runtime", "host")
            own.append(a)
            tree.append(b)
            return t

        def run_batched(repo: Path = repo) -> float:
            clean(repo / "artifacts", repo / "results", repo / ".snakemake")
            return wall(efflab_cmd(repo, "run", "many", "-q", "--cores", "2", "--runtime", "host",
                                   "--batch-seconds", "600"))  # fmt: skip

        arms = {"greedy": lambda p=plain: run_plain(p, "--scheduler", "greedy"), "efflab": run_eff,
                "batched": run_batched}  # fmt: skip
        if n <= ilp_max:
            arms = {"ilp": run_plain, **arms}
        if not plain_arms:
            arms = {"efflab": run_eff, "batched": run_batched}
        whole = interleaved(arms, reps)
        d = show(
            f"[{n}] whole run: efflab run --batch-seconds 600 (batches of 60)", whole["batched"]
        )
        if "ilp" in whole:
            show(
                f"[{n}] whole run: plain Snakemake (--cores 2, default ILP selector)", whole["ilp"]
            )
        b = show(f"[{n}] whole run: efflab run (greedy; +records, index, table)", whole["efflab"])
        if "greedy" in whole:
            a = show(
                f"[{n}] whole run: plain Snakemake (--cores 2 --scheduler greedy)", whole["greedy"]
            )
            print(
                f"{f'[{n}] whole run ratio efflab / plain greedy':<64} {b / a:9.2f}x  goal <= 1.2x"
            )
            print(f"{f'[{n}] whole run ratio efflab batched / plain greedy':<64} {d / a:9.2f}x")
        if "ilp" in whole:
            c = statistics.median(whole["ilp"])
            print(f"{f'[{n}] whole run ratio efflab / plain default (ILP)':<64} {b / c:9.2f}x")
        noop = interleaved({
            "plain": lambda plain=plain: wall([PY, "-m", "snakemake", "--cores", "2", "-q", "all"], cwd=plain),
            "efflab": lambda repo=repo: wall(efflab_cmd(repo, "run", "many", "-q", "--runtime", "host")),
        } if plain_arms else {
            "efflab": lambda repo=repo: wall(efflab_cmd(repo, "run", "many", "-q", "--runtime", "host")),
        }, reps)  # fmt: skip
        if plain_arms:
            show(f"[{n}] no-op rerun: plain Snakemake", noop["plain"])
        show(f"[{n}] no-op rerun: efflab run", noop["efflab"], "<= 5 s at 10,000")
        show(f"[{n}] peak RSS of the efflab process", own, "<= 1024", "MB")
        show(f"[{n}] peak RSS of the largest process of its tree (Snakemake)", tree, "-", "MB")


def synth(n: int, start: int = 0) -> list[dict]:
    rnd = random.Random(start)
    return [
        {
            "key": f"{i:020x}",
            "run_id": "r",
            "status": "ok",
            "point": {"model": f"m{i % 10}", "size": (i // 10) % 100},
            "repetition": i // 1000,
            "metrics": {
                "latency_us": {"value": rnd.gauss(100, 5), "unit": "us", "better": "lower"},
                "acc": {"value": rnd.random(), "unit": "ratio", "better": "higher"},
            },
        }
        for i in range(start, start + n)
    ]


def bench_index(tmp: Path, n: int = 1_000_000, night: int = 1_000) -> None:
    repo = tmp / "idx"
    t0 = time.perf_counter()
    for start in range(0, n, 100_000):  # indexed as runs would add them, in parts
        index.append(repo, "synth", synth(100_000, start))
    print(f"{'index ' + format(n, ',') + ' synthetic records (10 parts, once)':<64} "
          f"{time.perf_counter() - t0:9.1f} s")  # fmt: skip
    xs = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        df = index.aggregate(repo, "synth", ["model", "size"])
        xs.append(time.perf_counter() - t0)
        assert len(df) == 2000
    show(f"aggregate {n:,} records from the index", xs, "<= 30 s")
    xs = []
    for k in range(REPS):
        recs = synth(night, n + k * night)
        t0 = time.perf_counter()
        update = index.append(repo, "synth", recs)
        xs.append(time.perf_counter() - t0)
        assert update.added == night
    show(f"add one night ({night:,} records) to the {n:,}-record index", xs, "<= 1 s")


def bench_slurm(tmp: Path, n: int = 50, reps: int = REPS) -> None:
    """Whole `efflab run` of n trivial invocations, on SLURM (batched) and locally, with
    every artifact removed between repetitions; the arms alternate."""
    repos = {arm: gen_repo(tmp / arm, n) for arm in ("slurm", "local")}
    base = ["run", "many", "-q", "--runtime", "host", "--cores", "2"]
    extra = {
        "slurm": ["--profile", "slurm", "--batch-seconds", "600"],
        "local": ["--profile", "local"],
    }

    def arm(name: str) -> Callable[[], float]:
        def one() -> float:
            clean(repos[name] / "artifacts", repos[name] / "results", repos[name] / ".snakemake")
            return wall(efflab_cmd(repos[name], *base, *extra[name]))

        return one

    got = interleaved({k: arm(k) for k in repos}, reps)
    s = show(f"slurm: efflab run of {n} trivial, batched on SLURM", got["slurm"])
    loc = show(f"slurm: efflab run of {n} trivial, local", got["local"])
    ratios = sorted(a / b for a, b in zip(got["slurm"], got["local"], strict=True))
    print(f"{'slurm: SLURM / local (per repetition pair)':<64} median {s / loc:9.2f} x "
          f"(min {ratios[0]:.2f}, max {ratios[-1]:.2f}, n={len(ratios)})  goal <= 3x", flush=True)  # fmt: skip


def _sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def main() -> None:
    benches = ("startup", "overhead", "large", "index", "slurm")
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # no `choices=`: Python 3.11's argparse rejects an empty `nargs="*"` against them
    ap.add_argument("which", nargs="*", metavar="BENCH",
                    help="some of: " + ", ".join(benches) + " (default: all but slurm)")  # fmt: skip
    ap.add_argument("--sizes", type=_sizes, default=[1000])
    ap.add_argument("--slope-sizes", type=_sizes, default=[10, 40])
    ap.add_argument("--reps", type=int, default=REPS)
    ap.add_argument("--no-plain", action="store_true")
    a = ap.parse_args()
    if unknown := sorted(set(a.which) - set(benches)):
        ap.error(f"unknown bench(es) {unknown}; expected some of {', '.join(benches)}")
    if len(a.slope_sizes) != 2:
        ap.error(f"--slope-sizes: expected two sizes LO,HI, found {a.slope_sizes}")
    which = set(a.which) or set(benches) - {"slurm"}
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}  load: {os.getloadavg()}  cpus: {os.cpu_count()}  "
          f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for name, fn in (("startup", bench_startup), ("index", bench_index)):
            if name in which:
                fn(tmp / name)
        if "overhead" in which:
            bench_overhead(tmp / "overhead", tuple(a.slope_sizes), a.reps)
        if "large" in which:
            bench_large(tmp / "large", a.sizes, a.reps, plain_arms=not a.no_plain)
        if "slurm" in which:
            bench_slurm(tmp / "slurm", reps=a.reps)
    print(f"# done; load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
