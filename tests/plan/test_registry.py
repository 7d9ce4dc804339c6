"""Registry: discovery, tag queries, validation errors naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_tiny_repo, write

from efflab.core.errors import BadInput
from efflab.plan.registry import Registry


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_tiny_repo(tmp_path / "p")


def test_discovery_and_queries(repo: Path) -> None:
    reg = Registry.for_repo(repo)
    assert set(reg.scripts) == {"gen", "square"}
    assert reg.find("demo,square").alias == "square"
    assert reg.find("demo,-square").alias == "gen"
    assert reg.find("gen").alias == "gen"  # an alias is a query too
    assert reg.scripts["gen"].run == "run.sh"


def test_ambiguous_and_unknown_queries_list_candidates(repo: Path) -> None:
    reg = Registry.for_repo(repo)
    with pytest.raises(BadInput) as e:
        reg.find("demo")
    assert "ambiguous" in str(e.value) and "gen" in str(e.value) and "square" in str(e.value)
    with pytest.raises(BadInput) as e:
        reg.find("nothing,here")
    assert "no script has tag 'nothing'" in str(e.value) and "newest scripts: " in str(e.value)


def test_extra_script_folders_from_env(repo: Path, tmp_path: Path, monkeypatch) -> None:
    extra = tmp_path / "extra"
    write(
        extra / "other/meta.yaml",
        """\
        alias: other
        uid: 00000000000000b1
        tags: [other]
        description: x
        version: "1"
        run: run.py
        """,
    )
    write(extra / "other/run.py", "def run(ctx):\n    return {}\n")
    monkeypatch.setenv("EFFLAB_SCRIPTS_PATH", str(extra))
    assert "other" in Registry.for_repo(repo).scripts


def test_files_digest_changes_with_content(repo: Path) -> None:
    d1 = Registry.for_repo(repo).scripts["square"].files_digest
    (repo / "scripts/square/run.py").write_text("def run(ctx):\n    return {}\n")
    assert Registry.for_repo(repo).scripts["square"].files_digest != d1


@pytest.mark.parametrize(
    ("mutate", "path", "expected"),
    [
        (lambda t: t.replace("uid: 00000000000000a2", "uid: XYZ"), "$.uid", "matching"),
        (lambda t: t.replace("run: run.py", "run: run.rb"), "$.run", "one of"),
        (lambda t: t + "bogus: 1\n", "$.bogus", "one of the fields"),
        (lambda t: t + "tag: [x]\n", "$.tag", "a known field (did you mean 'tags'?)"),
        (lambda t: t.replace("default: 1.0", "default: 'x'"), "$.inputs.scale.default", "number"),
        (lambda t: t.replace("tags: demo,gen", "tags: demo,nope"), "$.deps[0].tags", "exactly one"),
        (lambda t: t.replace('{n: "{n}"}', '{n: "{zzz}"}'), "$.deps[0].inputs", "templates"),
        (
            lambda t: t.replace("better: lower", "better: smaller", 1),
            "$.outputs.metrics.sumsq.better",
            "one of",
        ),
    ],
)
def test_bad_meta_names_file_and_path(repo: Path, mutate, path: str, expected: str) -> None:
    meta = repo / "scripts/square/meta.yaml"
    meta.write_text(mutate(meta.read_text()))
    with pytest.raises(BadInput) as e:
        Registry.for_repo(repo)
    assert str(e.value.file).endswith("square/meta.yaml")
    assert e.value.path == path
    assert expected in str(e.value)


def test_missing_run_py(repo: Path) -> None:
    (repo / "scripts/square/run.py").unlink()
    with pytest.raises(BadInput) as e:
        Registry.for_repo(repo)
    assert e.value.path == "$.run" and "run.py" in str(e.value)


def test_malformed_yaml_reports_line(repo: Path) -> None:
    (repo / "scripts/gen/meta.yaml").write_text("alias: gen\n  tags: [oops\n")
    with pytest.raises(BadInput) as e:
        Registry.for_repo(repo)
    assert "valid YAML" in str(e.value) and "line" in str(e.value)


def test_dependency_cycle_is_an_error(repo: Path) -> None:
    meta = repo / "scripts/gen/meta.yaml"
    meta.write_text(
        meta.read_text().replace("outputs:", "deps:\n  - {name: back, tags: demo,square}\noutputs:")
    )
    with pytest.raises(BadInput) as e:
        Registry.for_repo(repo)
    assert "cycle" in str(e.value)


def test_a_dependency_an_input_switches_off_is_not_planned(repo: Path) -> None:
    from efflab.plan.planner import Planner

    meta = repo / "scripts/square/meta.yaml"
    meta.write_text(meta.read_text().replace('inputs: {n: "{n}"}', 'inputs: {n: "{n}"}\n    when: {fail: false}'))  # fmt: skip
    sq = Registry.for_repo(repo).scripts["square"]
    planner = Planner(repo)
    on = planner.invocation(sq, {"n": 2}, meta, {})
    off = planner.invocation(sq, {"n": 2, "fail": True}, meta, {})
    assert set(on.deps) == {"src"} and off.deps == {}
    # a condition on an input the script does not have is a bad meta, named
    meta.write_text(meta.read_text().replace("when: {fail: false}", "when: {nope: 1}"))
    with pytest.raises(BadInput) as e:
        Registry.for_repo(repo)
    assert e.value.path == "$.deps[0].when.nope"
