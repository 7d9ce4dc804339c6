"""Scripts as first-class citizens: `efflab script list|show|run|new`, `experiment new`,
`repo add|list|remove` and `efflab explain`, on the tiny project, through the real CLI
(real planner, real Snakemake, real runner; `efflab.cli.main` in-process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import efflab_main as efflab
from conftest import write


def _json(proc: subprocess.CompletedProcess):
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _one_line_error(proc: subprocess.CompletedProcess, *parts: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for p in parts:
        assert p in err, (p, err)


def test_list_filters_exactly_as_the_planner_resolves(tiny_repo: Path) -> None:
    rows = _json(efflab(tiny_repo, "script", "list", "--json"))
    assert [r["alias"] for r in rows] == ["gen", "square"]
    assert rows[0]["tags"] == ["demo", "gen"] and rows[0]["env"] is None
    assert [
        r["alias"] for r in _json(efflab(tiny_repo, "script", "list", "demo,-gen", "--json"))
    ] == ["square"]
    # no match is an empty list (exit 0), with one line on stderr saying why
    none = efflab(tiny_repo, "script", "list", "nosuch")
    assert none.returncode == 0 and none.stdout.strip() == "", none
    assert "no script has tag 'nosuch'" in none.stderr and "Traceback" not in none.stderr


def test_show_has_every_field(tiny_repo: Path) -> None:
    d = _json(efflab(tiny_repo, "script", "show", "demo,square", "--json"))
    assert d["alias"] == "square" and d["uid"] == "00000000000000a2"
    assert d["inputs"]["n"] == {"type": "integer", "default": 3, "minimum": 1}
    assert d["deps"] == [
        {"name": "src", "tags": "demo,gen", "inputs": {"n": "{n}"}, "resolves_to": "gen"}
    ]
    assert d["outputs"]["metrics"]["sumsq"] == {"unit": "1", "better": "lower"}
    assert d["resources"] == {"timeout_s": 60} and d["experiments"] == ["demo"]
    plan = _json(efflab(tiny_repo, "plan", "demo", "--json"))
    by_inputs = {  # repetition 0, as `script show` keys it (plan order follows the keys)
        json.dumps(i["inputs"], sort_keys=True): i["key"]
        for i in plan["invocations"]
        if i["repetition"] == 0
    }
    defaults = {"fail": False, "n": 3, "scale": 1.0, "sleep_s": 0.0}
    assert (
        by_inputs.get(json.dumps(defaults, sort_keys=True), d["key_for_defaults"])
        == d["key_for_defaults"]
    )
    text = efflab(tiny_repo, "script", "show", "square").stdout
    for word in ("inputs:", "deps:", "outputs:", "resources:", "requires:", "used by experiments: demo", d["key_for_defaults"]):  # fmt: skip
        assert word in text


@pytest.mark.slow  # over a minute on a shared 2-core machine
def test_run_is_recorded_and_cached(tiny_repo: Path) -> None:
    first = _json(
        efflab(
            tiny_repo, "script", "run", "demo,square", "--set", "n=4", "--runtime", "host", "--json"
        )
    )
    assert first["status"] == "ok" and first["metrics"]["sumsq"] == 30.0 and not first["cached"]
    assert (tiny_repo / first["record"]).is_file()
    stamp = tiny_repo / "artifacts" / "square" / first["key"] / "outputs.json"
    before = stamp.stat().st_mtime_ns
    again = _json(
        efflab(tiny_repo, "script", "run", "square", "--set", "n=4", "--runtime", "host", "--json")
    )
    assert again["cached"] and again["key"] == first["key"]
    assert stamp.stat().st_mtime_ns == before  # not re-run: the output was not rewritten
    _one_line_error(
        efflab(tiny_repo, "script", "run", "square", "--set", "nope=1"), "--set", "nope"
    )
    _one_line_error(efflab(tiny_repo, "script", "run", "square", "--set", "n=zero"), "--set", "n")
    _one_line_error(efflab(tiny_repo, "script", "run", "no,such,tags"), "no,such,tags")


@pytest.mark.slow  # over a minute on a shared 2-core machine
@pytest.mark.parametrize("shell", [False, True])
def test_new_scaffold_validates_and_its_test_passes(tiny_repo: Path, shell: bool) -> None:
    alias = "my-probe-sh" if shell else "my-probe"
    args = ["script", "new", alias, "--tags", "probe,local"] + (["--shell"] if shell else [])
    proc = efflab(tiny_repo, *args)
    assert proc.returncode == 0, proc.stderr
    test = tiny_repo / "tests" / "families" / "probe" / f"test_{alias.replace('-', '_')}.py"
    assert test.is_file() and (tiny_repo / "scripts" / alias / "meta.yaml").is_file()
    assert _json(efflab(tiny_repo, "script", "show", alias, "--json"))["alias"] == alias
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
                         cwd=tiny_repo, capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    _one_line_error(efflab(tiny_repo, *args), alias)  # exists now
    exp = efflab(tiny_repo, "experiment", "new", f"{alias}-sweep", "--script", alias)
    assert exp.returncode == 0, exp.stderr
    plan = _json(efflab(tiny_repo, "plan", f"{alias}-sweep", "--json"))
    assert len(plan["points"]) == 2 * 3  # n and 2n, three repetitions


def _collection(tmp: Path, alias: str, tags: str) -> Path:
    src = tmp / "labscripts"
    write(
        src / "scripts" / alias / "meta.yaml",
        f"""\
        alias: {alias}
        uid: 00000000000000c1
        tags: [{tags}]
        description: from another lab's collection
        version: "1"
        run: run.py
        inputs:
          k: {{type: integer, default: 2}}
        outputs:
          metrics:
            twice: {{unit: "1", better: higher}}
        """,
    )
    write(
        src / "scripts" / alias / "run.py",
        "def run(ctx):\n    return {'metrics': {'twice': 2 * ctx.inputs['k']}}\n",
    )
    for cmd in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one"]):  # fmt: skip
        subprocess.run(["git", *cmd], cwd=src, check=True)
    return src


def test_repo_add_a_local_git_collection(tiny_repo: Path, tmp_path: Path) -> None:
    src = _collection(tmp_path, "doubler", "lab,double")
    proc = efflab(tiny_repo, "repo", "add", str(src), "--trust")  # runs on the host below
    assert proc.returncode == 0, proc.stderr
    (row,) = _json(efflab(tiny_repo, "repo", "list", "--json"))
    assert row["trusted"] is True
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True
    ).stdout.strip()
    assert row["commit"] == head and row["scripts"] == ["doubler"]
    out = _json(
        efflab(
            tiny_repo, "script", "run", "lab,double", "--set", "k=5", "--runtime", "host", "--json"
        )
    )
    assert out["metrics"]["twice"] == 10.0
    shown = _json(efflab(tiny_repo, "script", "show", "doubler", "--json"))
    assert shown["collection"] == f"labscripts@{head[:12]}"
    # a new commit upstream does not move the pin; the key includes the pinned commit
    (src / "scripts/doubler/run.py").write_text(
        "def run(ctx):\n    return {'metrics': {'twice': 0}}\n"
    )
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two"],
        cwd=src,
        check=True,
    )
    again = _json(
        efflab(tiny_repo, "script", "run", "doubler", "--set", "k=5", "--runtime", "host", "--json")
    )
    assert again["key"] == out["key"] and again["metrics"]["twice"] == 10.0
    assert efflab(tiny_repo, "repo", "remove", "labscripts").returncode == 0
    assert _json(efflab(tiny_repo, "repo", "list", "--json")) == []


def test_repo_add_errors(tiny_repo: Path, tmp_path: Path) -> None:
    clash = _collection(tmp_path, "square", "demo,other")  # alias already in the project
    proc = efflab(tiny_repo, "repo", "add", str(clash))
    _one_line_error(proc, "$.alias", "square", "scripts/square/meta.yaml")
    assert _json(efflab(tiny_repo, "repo", "list", "--json")) == []  # nothing registered
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error(efflab(tiny_repo, "repo", "add", str(empty)), str(empty), "scripts")
    _one_line_error(efflab(tiny_repo, "repo", "remove", "nosuch"), "collections.yaml", "nosuch")


def _reasons(repo: Path) -> list[str]:
    rows = _json(
        efflab(repo, "explain", "demo", "--point", "n=2", "--point", "scale=1.0", "--json")
    )
    assert len(rows) == 2  # two repetitions of the point
    return rows[0]["reasons"]


@pytest.mark.slow  # over a minute on a shared 2-core machine
def test_explain_names_what_changed(tiny_repo: Path) -> None:
    assert efflab(tiny_repo, "run", "demo", "--runtime", "host", "-q").returncode == 0
    assert _reasons(tiny_repo) == ["same key as the last run; outputs present"]
    # a script file
    py = tiny_repo / "scripts/square/run.py"
    py.write_text(py.read_text() + "\n# edited\n")
    assert _reasons(tiny_repo) == ["script file run.py changed"]
    dry = efflab(tiny_repo, "run", "demo", "--dry-run", "--runtime", "host")
    assert "will run: script file run.py changed" in dry.stdout
    assert efflab(tiny_repo, "run", "demo", "--runtime", "host", "-q").returncode == 0
    # an input (the experiment's)
    exp = tiny_repo / "workflows/experiments/demo.yaml"
    exp.write_text(
        exp.read_text().replace("repetitions: 2", "inputs: {sleep_s: 0.01}\nrepetitions: 2")
    )
    assert _reasons(tiny_repo) == ["input sleep_s: 0.0 -> 0.01"]
    assert efflab(tiny_repo, "run", "demo", "--runtime", "host", "-q").returncode == 0
    # a dep's input (its default), found recursively
    gen = tiny_repo / "scripts/gen/meta.yaml"
    gen.write_text(gen.read_text().replace("n: {type: integer, default: 3, minimum: 1}",
                                           "n: {type: integer, default: 3, minimum: 1}\n  pad: {type: integer, default: 1}"))  # fmt: skip
    (why,) = _reasons(tiny_repo)
    assert (
        why.startswith("dep src (gen): ")
        and "input pad: null -> 1" in why
        and "meta.yaml changed" in why
    )
    assert efflab(tiny_repo, "run", "demo", "--runtime", "host", "-q").returncode == 0
    # the env (an env digest enters the key)
    write(tiny_repo / "envs/base/Dockerfile", "FROM scratch\n")
    sq = tiny_repo / "scripts/square/meta.yaml"
    sq.write_text(sq.read_text().replace("run: run.py", "env: base\nrun: run.py"))
    assert efflab(tiny_repo, "run", "demo", "--runtime", "host", "-q").returncode == 0
    write(tiny_repo / "envs/base/Dockerfile", "FROM scratch\nLABEL x=1\n")
    (why,) = _reasons(tiny_repo)
    assert why.startswith("env image digest ")
    # against a table version: version 1 was before every edit
    rows = _json(efflab(tiny_repo, "explain", "demo", "--against", "1", "--json"))
    assert any("script file run.py changed" in r for r in rows[0]["reasons"])
    _one_line_error(efflab(tiny_repo, "explain", "demo", "--against", "99"), "--against", "99")
    _one_line_error(efflab(tiny_repo, "explain", "demo", "--point", "bogus=1"), "--point", "bogus")
