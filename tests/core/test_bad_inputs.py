"""Every bad input, table-driven, through the real CLI (`efflab.cli.main` in-process:
what is checked is its exit code and output, not an interpreter's start): input -> exit code -> one line
on stderr naming the file and the JSON path -> no traceback -> the project's files
unchanged (nothing half-written). Cases that corrupt results run against a copy of a
project that has run `demo` once, so the corrupt file is met on the real code path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import efflab_main as efflab
from conftest import make_tiny_repo

QUICK = ("--quick", "--runtime", "host", "-q")


@dataclass
class Case:
    id: str
    args: tuple[str, ...]
    mutate: Callable[[Path], None] | None
    expect: tuple[str, ...]  # substrings of the one line: file, JSON path, what
    code: int = 2
    env: dict[str, str] | None = None


def put(rel: str, text: str) -> Callable[[Path], None]:
    def f(repo: Path) -> None:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)

    return f


def edit(rel: str, old: str, new: str) -> Callable[[Path], None]:
    def f(repo: Path) -> None:
        p = repo / rel
        assert old in p.read_text(), (rel, old)
        p.write_text(p.read_text().replace(old, new))

    return f


def fifo(repo: Path) -> None:
    os.mkfifo(repo / "workflows/experiments/pipe.yaml")


def first_record(repo: Path) -> Path:
    return sorted((repo / "results/demo/runs").glob("*.json"))[0]


def truncate_record(repo: Path) -> None:
    f = first_record(repo)
    f.write_bytes(f.read_bytes()[:40])


def record_without_key(repo: Path) -> None:
    f = first_record(repo)
    rec = json.loads(f.read_text())
    del rec["key"]
    f.write_text(json.dumps(rec))


def truncate_manifest(repo: Path) -> None:
    f = repo / "results/demo/tables/v1/manifest.json"
    f.write_bytes(f.read_bytes()[:30])


def remove_manifest(repo: Path) -> None:
    (repo / "results/demo/tables/v1/manifest.json").unlink()


def truncate_parquet(repo: Path) -> None:
    f = repo / "results/demo/tables/v1/table.parquet"
    f.write_bytes(f.read_bytes()[:100])


SQ = "scripts/square/meta.yaml"
N_LINE = "n: {type: integer, default: 3, minimum: 1}\n  scale"
BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)
DEEP = "name: deep\nscript: demo,square\ninputs: {x: " + "[" * 3000 + "]" * 3000 + "}\n"
BIG_GRID = (
    "name: big\nscript: demo,square\ngrid:\n"
    f"  n: {list(range(1, 1001))}\n  scale: {[float(i) for i in range(1000)]}\n"
    f"  sleep_s: {[i / 100 for i in range(100)]}\n"
)
CASES = [
    Case("cores-0", ("run", "demo", "--cores", "0"), None, ("--cores", ">= 1", "0")),
    Case("cores-neg", ("run", "demo", "--cores", "-1"), None, ("--cores", "-1")),
    Case("cores-text", ("run", "demo", "--cores", "two"), None, ("--cores", "'two'")),
    Case("runtime", ("run", "demo", "--runtime", "vm"), None, ("--runtime", "'vm'")),
    Case("fifo", ("run", "pipe", *QUICK), fifo, ("pipe.yaml", "FIFO")),
    Case(
        "alias-bomb",
        ("plan", "bomb"),
        put("workflows/experiments/bomb.yaml", BOMB),
        ("bomb.yaml", "aliases", "EFFLAB_MAX_SPEC_NODES"),
    ),  # fmt: skip
    Case(
        "deep",
        ("plan", "deep"),
        put("workflows/experiments/deep.yaml", DEEP),
        ("deep.yaml", "nesting", "EFFLAB_MAX_SPEC_DEPTH"),
    ),  # fmt: skip
    Case(
        "too-big-file",
        ("plan", "demo"),
        None,
        ("demo.yaml", "bytes", "EFFLAB_MAX_SPEC_BYTES"),
        env={"EFFLAB_MAX_SPEC_BYTES": "50"},
    ),  # fmt: skip
    Case(
        "grid-1e8",
        ("plan", "big"),
        put("workflows/experiments/big.yaml", BIG_GRID),
        ("big.yaml", "$.grid", "100000000", "EFFLAB_MAX_POINTS"),
    ),  # fmt: skip
    Case(
        "name-mismatch",
        ("run", "other", *QUICK),
        put("workflows/experiments/other.yaml", "name: demo\nscript: demo,square\n"),
        ("other.yaml", "$.name", "'other'", "'demo'"),
    ),  # fmt: skip
    Case(
        "unknown-axis",
        ("plan", "demo"),
        edit("workflows/experiments/demo.yaml", "n: [2, 3]", "m: [2, 3]"),
        ("demo.yaml", "$.grid.m:", "unknown input"),
    ),  # fmt: skip
    Case(
        "duplicate-key",
        ("plan", "demo"),
        edit("workflows/experiments/demo.yaml", "  scale: [1.0, 2.0]", "  scale: [1.0]\n  n: [4]"),
        ("demo.yaml", "$.grid.n", "duplicate key 'n'", "line 7"),
    ),  # fmt: skip
    Case(
        "list-key",
        ("plan", "demo"),
        edit("workflows/experiments/demo.yaml", "  n: [2, 3]", "  ? [a, b]\n  : 1"),
        ("demo.yaml", "$.grid", "list used as a key"),
    ),  # fmt: skip
    Case(
        "yaml-syntax",
        ("plan", "demo"),
        edit("workflows/experiments/demo.yaml", "n: [2, 3]", "n: [2, 3"),
        ("demo.yaml", "valid YAML", "line"),
    ),  # fmt: skip
    Case(
        "repetitions-0",
        ("plan", "demo"),
        edit("workflows/experiments/demo.yaml", "repetitions: 2", "repetitions: 0"),
        ("demo.yaml", "$.repetitions", ">= 1"),
    ),  # fmt: skip
    Case(
        "grid-type",
        ("plan", "demo"),
        edit("workflows/experiments/demo.yaml", "n: [2, 3]", "n: [2, x]"),
        ("demo.yaml", "$.grid.n[1]", "integer"),
    ),  # fmt: skip
    Case(
        "minimum-one",
        ("plan", "demo"),
        edit(SQ, N_LINE, N_LINE.replace("minimum: 1", "minimum: one")),
        ("square/meta.yaml", "$.inputs.n.minimum", "'one'"),
    ),  # fmt: skip
    Case(
        "enum-true",
        ("plan", "demo"),
        edit(SQ, N_LINE, N_LINE.replace("minimum: 1", "enum: true")),
        ("square/meta.yaml", "$.inputs.n.enum", "True"),
    ),  # fmt: skip
    Case(
        "pattern-bracket",
        ("plan", "demo"),
        edit(SQ, "  fail:", "  tag: {type: string, default: a, pattern: '['}\n  fail:"),
        ("square/meta.yaml", "$.inputs.tag.pattern", "'['"),
    ),  # fmt: skip
    Case(
        "template-brace",
        ("plan", "demo"),
        edit(SQ, 'inputs: {n: "{n}"}', 'inputs: {n: "{n"}'),
        ("square/meta.yaml", "$.deps[0].inputs.n", "'{n'"),
    ),  # fmt: skip
    Case(
        "check-syntax",
        ("plan", "demo"),
        put("scripts/square/check.py", "def check(inputs)\n    return []\n"),
        ("square/check.py", "line 1", "SyntaxError"),
    ),  # fmt: skip
    Case(
        "check-raises",
        ("plan", "demo"),
        put("scripts/square/check.py", "def check(inputs):\n    return [1 / 0]\n"),
        ("square/check.py", "line 2", "ZeroDivisionError"),
    ),  # fmt: skip
    Case(
        "check-garbage",
        ("plan", "demo"),
        put("scripts/square/check.py", "def check(inputs):\n    return ['x']\n"),
        ("square/check.py", "$.check", "triples"),
    ),  # fmt: skip
    Case(
        "set-no-equals",
        ("run", "demo", "--set", "n", *QUICK),
        None,
        ("--set", "$[0]", "name=value"),
    ),
    Case(
        "set-unknown",
        ("run", "demo", "--set", "zz=1", *QUICK),
        None,
        ("demo.yaml", "--set zz", "unknown input"),
    ),
    Case("no-experiment", ("run", "nosuch", *QUICK), None, ("nosuch.yaml", "newest first: demo")),
    Case(
        "no-repo",
        ("--repo", "/nonexistent/x", "plan", "demo"),
        None,
        ("/nonexistent/x", "Snakefile"),
    ),
    Case(
        "record-truncated",
        ("run", "demo", *QUICK),
        truncate_record,
        (
            "results/demo/runs/",
            ".json: expected",
            "corrupt JSON",
            "efflab results check demo --repair",
        ),
    ),  # fmt: skip
    Case(
        "record-no-key",
        ("run", "demo", *QUICK),
        record_without_key,
        ("results/demo/runs/", "$.key", "results check"),
    ),  # fmt: skip
    Case(
        "manifest-truncated",
        ("results", "versions", "demo"),
        truncate_manifest,
        ("tables/v1/manifest.json", "corrupt"),
    ),  # fmt: skip
    Case(
        "manifest-missing",
        ("results", "versions", "demo"),
        remove_manifest,
        ("tables/v1/manifest.json", "no such file"),
    ),  # fmt: skip
    Case(
        "manifest-missing-run",
        ("run", "demo", "--set", "scale=3.0", *QUICK),
        remove_manifest,
        ("tables/v1/manifest.json", "results check"),
    ),  # fmt: skip
    Case(
        "parquet-truncated",
        ("results", "table", "demo"),
        truncate_parquet,
        ("tables/v1/table.parquet", "Parquet", "results check"),
    ),  # fmt: skip
    Case(
        "versions-nosuch",
        ("results", "versions", "nosuch"),
        None,
        ("nosuch.yaml", "newest first: demo"),
    ),
    Case(
        "table-nosuch-version",
        ("results", "table", "demo", "--version", "9"),
        None,
        ("tables", "$.version", "9"),
    ),
    Case(
        "diff-nosuch", ("results", "diff", "demo", "1", "99"), None, ("tables", "$.version", "99")
    ),
    Case(
        "check-nosuch", ("results", "check", "nosuch"), None, ("nosuch.yaml", "newest first: demo")
    ),
]


def copy_project(src: Path, dst: Path) -> Path:
    """A copy whose invocation.json files name the copy's scripts (as a plan of it would)."""
    shutil.copytree(src, dst, symlinks=True)
    for f in dst.glob("artifacts/*/*/invocation.json"):
        f.write_text(f.read_text().replace(str(src), str(dst)))
    return dst


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project that has run demo --quick once (records, table v1)."""
    repo = make_tiny_repo(tmp_path_factory.mktemp("bad") / "proj")
    efflab(repo, "run", "demo", *QUICK, check=True)
    return repo


def tree(repo: Path) -> dict[str, tuple]:
    """Every file but efflab's own state (logs, locks) and Git's: path -> (size, mtime, mode)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(repo):
        dirnames[:] = [d for d in dirnames if d not in (".efflab", ".git", ".snakemake")]
        for name in filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            out[str(p.relative_to(repo))] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, ran: Path, tmp_path: Path) -> None:
    repo = copy_project(ran, tmp_path / "proj")
    if case.mutate:
        case.mutate(repo)
    before = tree(repo)
    r = efflab(repo, *case.args, timeout=120, env=case.env)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == case.code, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert len(lines) == 1, r.stderr
    for part in case.expect:
        assert part in lines[0], (part, lines[0])
    assert ": $: " not in lines[0]  # a whole-file error names the file, not a bare "$"
    after = tree(repo)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert not changed, changed


def test_truncated_dep_outputs_are_rebuilt_not_blamed(ran: Path, tmp_path: Path) -> None:
    """A dep's truncated outputs.json: the dep runs again; its dependents are not failed."""
    repo = copy_project(ran, tmp_path / "proj")
    dep = sorted((repo / "artifacts/gen").glob("*/outputs.json"))[0]
    dep.write_bytes(dep.read_bytes()[:20])
    r = efflab(repo, "run", "demo", *QUICK, "--set", "scale=5.0", "--json")  # new squares, old gens
    assert r.returncode == 0, r.stderr
    assert json.loads(dep.read_text())["status"] == "ok"
    assert list(dep.parent.glob("outputs.json.corrupt-*"))  # kept, not deleted
    assert json.loads(r.stdout)["demo"]["jobs_run"] == 3  # 2 squares (n=2,3) + the rebuilt gen


def test_results_check_repairs_by_quarantine(ran: Path, tmp_path: Path) -> None:
    repo = copy_project(ran, tmp_path / "proj")
    truncate_record(repo)
    truncate_parquet(repo)
    bad = first_record(repo)
    r = efflab(repo, "results", "check", "demo", "--json")
    assert r.returncode == 1
    found = json.loads(r.stdout)["problems"]
    assert {p["file"] for p in found} == {
        str(bad.relative_to(repo)),
        "results/demo/tables/v1/table.parquet",
    }
    r = efflab(repo, "results", "check", "--repair")
    assert r.returncode == 0, r.stdout
    moved = sorted((repo / "results/demo/quarantine").rglob("*"))
    assert any(p.name == bad.name for p in moved) and any(p.name == "v1" for p in moved)
    assert efflab(repo, "results", "check").returncode == 0
    r = efflab(repo, "run", "demo", *QUICK, "--json")  # rebuilt from the invocations' outputs
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["demo"]["jobs_run"] == 0 and bad.exists()


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                       capture_output=True)  # fmt: skip
    return r.returncode == 0


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_full_or_read_only_results_exit_1_one_line(tmp_path: Path, fault: str) -> None:
    repo = make_tiny_repo(tmp_path / "proj")
    results = repo / "results"
    if not _mount_tmpfs(results, "64k"):
        pytest.skip("cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        if fault == "full":
            with open(results / "filler", "wb") as fh:
                try:
                    fh.write(b"x" * (1 << 20))
                except OSError:
                    pass
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(results)], check=True)
        before = sorted(p.name for p in results.rglob("*") if not p.is_dir())
        r = efflab(repo, "run", "demo", *QUICK)
        assert r.returncode == 1, r.stderr
        assert "Traceback" not in r.stderr
        line = r.stderr.strip().splitlines()[-1]
        want = "no space left writing" if fault == "full" else "Read-only file system"
        assert want in line and "results/demo" in line, r.stderr
        assert sorted(p.name for p in results.rglob("*") if not p.is_dir()) == before
    finally:
        subprocess.run(["umount", "-l", str(results)], capture_output=True)


def test_records_and_table_folders_have_the_modes_of_the_rest(ran: Path) -> None:
    """Not 0600/0700 (mkstemp/mkdtemp defaults): as readable as every other results file."""
    from efflab.core.specio import file_mode

    for f in (ran / "results/demo/runs").glob("*.json"):
        assert f.stat().st_mode & 0o777 == file_mode(0o666), f
    v1 = ran / "results/demo/tables/v1"
    assert v1.stat().st_mode & 0o777 == file_mode(0o777)
    assert (v1 / "table.csv").stat().st_mode & 0o777 == file_mode(0o666)
