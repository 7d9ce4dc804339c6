"""Tournaments without Docker: Pareto ranking, archive safety, specs, sealed settings.

The sealed runs themselves are in test_tournament_docker.py; here everything that is
pure logic or pure validation, including the two shipped tournaments and their
example submissions (validated and planned, not run).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from tournament_tiny import TOURNAMENT, add_tiny_tournament

from efflab.core.invocation import Invocation
from efflab.runtime import sealed
from efflab.tournaments.leaderboard import Row, pareto_fronts, rank, weighted_scores
from efflab.tournaments.spec import Objective, load_tournament, tournament_ids
from efflab.tournaments.submission import (
    Rejected,
    check_script_folder,
    load_submission,
    pack_folder,
)
from efflab.tournaments.submission import safe_extract as extract
from efflab.tournaments.verification import claim_flags, plan_submission

REPO = Path(__file__).resolve().parents[2]
MIN, MAX = "minimize", "maximize"


# ---------------------------------------------------------------- Pareto ranking


def pts(*pairs: tuple[float, float]) -> list[dict[str, float]]:
    return [{"lat": a, "acc": b} for a, b in pairs]


def test_pareto_fronts_peel_in_layers() -> None:
    objs = [Objective("lat", MIN), Objective("acc", MAX)]
    p = pts((10, 0.90), (20, 0.95), (30, 0.99), (25, 0.94), (40, 0.98), (10, 0.90), (50, 0.5))
    # (25, .94) is dominated by (20, .95); (40, .98) by (30, .99); the duplicate of
    # (10, .90) does not dominate its twin (not strictly better anywhere)
    assert pareto_fronts(p, objs) == [1, 1, 1, 2, 2, 1, 3]
    assert pareto_fronts([], objs) == []


def test_direction_matters() -> None:
    p = pts((10, 0.9), (20, 0.95))
    assert pareto_fronts(p, [Objective("lat", MIN), Objective("acc", MAX)]) == [1, 1]
    assert pareto_fronts(p, [Objective("lat", MIN), Objective("acc", MIN)]) == [1, 2]
    assert pareto_fronts(p, [Objective("lat", MAX), Objective("acc", MAX)]) == [2, 1]


def _t(ranking: str = "pareto", tie: list[str] | None = None, weights=None):
    class T:  # the ranking reads only these fields of a Tournament
        objectives = [Objective("lat", MIN), Objective("acc", MAX)]
        tie_break = tie or ["lat", "acc"]

    T.ranking = ranking
    T.weights = weights or {"lat": 1.0, "acc": 1.0}
    return T


def _rows(p: list[dict[str, float]]) -> list[Row]:
    return [Row(i, f"s{i}", f"p{i}", "e", "", m, {}, [], False) for i, m in enumerate(p)]


def test_rank_front_then_tie_break_then_seq() -> None:
    p = pts((30, 0.99), (20, 0.95), (25, 0.94), (10, 0.90), (10, 0.90))
    order = [(r.participant, r.front) for r in rank(_t(), _rows(p))]
    # front 1 by latency (the documented tie-break), equal rows by earlier seq; then front 2
    assert order == [("p3", 1), ("p4", 1), ("p1", 1), ("p0", 1), ("p2", 2)]
    acc_first = [r.participant for r in rank(_t(tie=["acc", "lat"]), _rows(p))]
    assert acc_first == ["p0", "p1", "p3", "p4", "p2"]
    assert [r.position for r in rank(_t(), _rows(p))] == [1, 2, 3, 4, 5]


def test_weighted_scores_and_rank() -> None:
    objs = [Objective("lat", MIN), Objective("acc", MAX)]
    p = pts((10, 0.90), (20, 1.00), (30, 0.95))
    s = weighted_scores(p, objs, {"lat": 1.0, "acc": 1.0})
    assert s == pytest.approx([0.5, 0.75, 0.25])
    s = weighted_scores(p, objs, {"lat": 3.0, "acc": 1.0})
    assert s == pytest.approx([0.75, 0.625, 0.125])
    ranked = rank(_t("weighted", weights={"lat": 3.0, "acc": 1.0}), _rows(p))
    assert [r.participant for r in ranked] == ["p0", "p1", "p2"]
    assert weighted_scores(pts((5, 0.5)), objs, {"lat": 1, "acc": 1}) == [1.0]


# ---------------------------------------------------------------- archive safety


def tar_with(path: Path, *members: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


UNSAFE = {
    "dotdot": (member("../evil.py"), b"x"),
    "nested-dotdot": (member("pkg/../../evil.py"), b"x"),
    "absolute": (member("/tmp/evil.py"), b"x"),
    "symlink-out": (member("run.py", tarfile.SYMTYPE, "/etc/passwd"), None),
    "symlink-in": (member("link.py", tarfile.SYMTYPE, "run.py"), None),
    "hardlink": (member("hard.py", tarfile.LNKTYPE, "/etc/passwd"), None),
    "chardev": (member("null", tarfile.CHRTYPE), None),
    "fifo": (member("pipe", tarfile.FIFOTYPE), None),
}


@pytest.mark.parametrize("kind", list(UNSAFE))
def test_unsafe_members_refuse_the_whole_archive(tmp_path: Path, kind: str) -> None:
    arc = tar_with(tmp_path / "a.tar.gz", (member("run.py"), b"def run(ctx): pass\n"), UNSAFE[kind])
    with pytest.raises(Rejected) as exc:
        extract(arc, tmp_path / "out")
    assert exc.value.stage == "archive"
    assert not (tmp_path / "out").exists()  # all or nothing: not even run.py
    assert not (tmp_path / "evil.py").exists() and not Path("/tmp/evil.py").exists()


def test_limits_and_garbage(tmp_path: Path) -> None:
    many = [(member(f"f{i}.py"), b"x") for i in range(11)]
    with pytest.raises(Rejected, match="more than 10 members"):
        extract(tar_with(tmp_path / "many.tar.gz", *many), tmp_path / "o1", max_files=10)
    big = tar_with(tmp_path / "big.tar.gz", (member("run.py"), b"\0" * 200_000))
    assert big.stat().st_size < 2000  # compresses well: the unpacked size is what counts
    with pytest.raises(Rejected, match="bytes unpacked"):
        extract(big, tmp_path / "o2", max_bytes=100_000)
    dup = tar_with(tmp_path / "dup.tar.gz", (member("run.py"), b"a"), (member("./run.py"), b"b"))
    with pytest.raises(Rejected, match="twice"):
        extract(dup, tmp_path / "o3")
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not an archive")
    with pytest.raises(Rejected, match="not a .tar.gz"):
        extract(junk, tmp_path / "o4")
    empty = tar_with(tmp_path / "empty.tar.gz", (member("d", tarfile.DIRTYPE), None))
    with pytest.raises(Rejected, match="no files"):
        extract(empty, tmp_path / "o5")


def test_safe_archive_unpacks_and_strips_one_top_folder(tmp_path: Path) -> None:
    arc = tar_with(
        tmp_path / "ok.tar.gz",
        (member("mine", tarfile.DIRTYPE), None),
        (member("mine/run.py"), b"def run(ctx):\n    return {}\n"),
        (member("mine/lib/helpers.py"), b"X = 1\n"),
    )
    files = extract(arc, tmp_path / "out")
    assert files == ["lib/helpers.py", "run.py"]
    assert (tmp_path / "out/run.py").read_text().startswith("def run")
    assert not (tmp_path / "out/run.py").stat().st_mode & 0o111


def test_packed_folder_keeps_links_so_they_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "run.py").write_text("def run(ctx): pass\n")
    pack_folder(src, tmp_path / "ok.tar.gz")
    again = tmp_path / "again.tar.gz"
    pack_folder(src, again)
    assert (tmp_path / "ok.tar.gz").read_bytes() == again.read_bytes()  # deterministic
    assert extract(tmp_path / "ok.tar.gz", tmp_path / "o1") == ["run.py"]
    os.symlink("/etc/passwd", src / "passwd")
    pack_folder(src, tmp_path / "bad.tar.gz")
    with pytest.raises(Rejected, match="symlink"):
        extract(tmp_path / "bad.tar.gz", tmp_path / "o2")


def test_script_folder_must_keep_the_organisers_files(tmp_path: Path) -> None:
    orig, mine = tmp_path / "orig", tmp_path / "mine"
    for d in (orig, mine):
        d.mkdir()
        (d / "meta.yaml").write_text("alias: x\n")
    with pytest.raises(Rejected, match="no run.py"):
        check_script_folder(mine, orig, "run.py")
    (mine / "run.py").write_text("def run(ctx): pass\n")
    check_script_folder(mine, orig, "run.py")  # an identical meta.yaml is fine
    (mine / "meta.yaml").write_text("alias: x\nresources: {timeout_s: 99999}\n")
    with pytest.raises(Rejected, match="meta.yaml differs"):
        check_script_folder(mine, orig, "run.py")
    (mine / "meta.yaml").unlink()
    (mine / "check.py").write_text("import os  # would run on the host at plan time\n")
    with pytest.raises(Rejected, match="check.py differs"):
        check_script_folder(mine, orig, "run.py")


# ---------------------------------------------------------------- specs and submissions


def test_tiny_spec_loads(tiny_repo: Path, run_efflab) -> None:
    add_tiny_tournament(tiny_repo)
    t = load_tournament(tiny_repo, "tiny")
    assert t.measured == "tiny-score" and t.script.step == "tiny-fit"
    assert t.inputs_schema["additionalProperties"] is False  # not allowed = can't be set
    assert t.limits["timeout_s"] == TOURNAMENT["verification"]["limits"]["timeout_s"]
    assert t.status() == "open"
    listed = json.loads(run_efflab(tiny_repo, "tournament", "list", "--json", check=True).stdout)
    assert listed[0]["id"] == "tiny" and listed[0]["ranked"] == 0
    shown = json.loads(run_efflab(tiny_repo, "tournament", "show", "tiny", "--json").stdout)
    assert shown["measured_step"] == "tiny-score"
    assert shown["example_submission"]["inputs"] == {"degree": 3}  # the script's default


BAD_SPECS = [
    ({"objectives": [{"metric": "nope", "direction": "minimize"}]}, "$.objectives[0].metric"),
    ({"constraints": [{"metric": "error", "op": "=<", "value": 1}]}, "$.constraints[0].op"),
    ({"submission": {"inputs": {"properties": {"degree": {"type": "integer"}}},
                     "script": {"step": "tiny-score"}}}, "$.submission.script.step"),
    ({"submission": {"inputs": {"properties": {"calls": {"type": "integer"}}}}},
     "$.submission.inputs.properties.calls"),
    ({"submission": {"inputs": {"properties": {"wat": {"type": "integer"}}}}},
     "$.submission.inputs.properties.wat"),
    ({"submission": {"inputs": {"type": "object", "minProperties": -1}}},
     "$.submission.inputs.minProperties"),
    ({"ranking": {"method": "pareto", "tie_break": ["calls"]}}, "$.ranking.tie_break[0]"),
    ({"verification": {"env": "ml-cpu"}}, "$.verification.env"),
    ({"verification": {"limits": {"mem_mb": 1}}}, "$.verification.limits.mem_mb"),
    ({"close": "2019-01-01"}, "$.close"),
    ({"base": {"experiment": "nope"}}, "$.base.experiment"),
    ({"id": "other"}, "$.id"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "path"), BAD_SPECS, ids=[p for _, p in BAD_SPECS])
def test_bad_spec_exits_2_naming_file_and_path(tiny_repo: Path, run_efflab, change, path) -> None:
    add_tiny_tournament(tiny_repo, **change)
    r = run_efflab(tiny_repo, "tournament", "show", "tiny")
    assert r.returncode == 2, r.stderr
    assert "workflows/tournaments/tiny.yaml" in r.stderr and f"{path}:" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_missing_things_exit_2(tiny_repo: Path, run_efflab) -> None:
    add_tiny_tournament(tiny_repo)
    r = run_efflab(tiny_repo, "tournament", "show", "nope")
    assert r.returncode == 2 and "newest first: tiny" in r.stderr
    r = run_efflab(tiny_repo, "tournament", "submit", "tiny", str(tiny_repo / "none.yaml"))
    assert r.returncode == 2 and "none.yaml" in r.stderr
    assert not (tiny_repo / "results/tournaments/tiny/ledger.jsonl").exists()


def test_submission_validation(tiny_repo: Path, tmp_path: Path) -> None:
    add_tiny_tournament(tiny_repo)
    t = load_tournament(tiny_repo, "tiny")

    def load(data) -> object:
        f = tmp_path / "s.yaml"
        f.write_text(data if isinstance(data, str) else json.dumps(data))
        return load_submission(f, "tiny", t.inputs_schema, t.metrics)

    ok = {"participant": "ana", "entry": "e1", "inputs": {"degree": 3}, "claimed": {"error": 0.1}}
    assert load(ok).claimed == {"error": 0.1}
    cases = [
        ({**ok, "inputs": {"degree": 30}}, "$.inputs.degree"),
        ({**ok, "inputs": {"degree": 3, "calls": 1}}, "$.inputs.calls"),  # fixed: not settable
        ({**ok, "inputs": {}}, "$.inputs"),
        ({**ok, "claimed": {"speed": 1}}, "$.claimed.speed"),
        ({**ok, "participant": "../x"}, "$.participant"),
        ({**ok, "tournament": "other"}, "$.tournament"),
        ({**ok, "extra": 1}, "$.extra"),
        ("participant: [unclosed", "s.yaml"),  # the whole file: no "$" path
    ]
    for data, path in cases:
        with pytest.raises(Rejected) as exc:
            load(data)
        assert exc.value.stage == "schema" and f"{path}:" in exc.value.reason, exc.value.reason


def test_claim_flags(tiny_repo: Path) -> None:
    add_tiny_tournament(tiny_repo)
    t = load_tournament(tiny_repo, "tiny")  # tolerance 50 %
    measured = {"error": 0.01, "eval_us": 2.0}
    assert claim_flags(t, {"error": 0.012, "eval_us": 1.5}, measured) == []
    (flag,) = claim_flags(t, {"error": 0.0001}, measured)
    assert "better than measured" in flag and "-99%" in flag
    (flag,) = claim_flags(t, {"eval_us": 9.0}, measured)
    assert "worse than measured" in flag


# ---------------------------------------------------------------- sealed settings


def _inv(tmp_path: Path, **over) -> Invocation:
    data = {"alias": "x", "key": "k" * 20, "env": "base", "script_dir": str(tmp_path / "s"),
            "run": "run.py", "inputs": {}, "include": [], "deps": {}, "env_digest": None,
            "resources": {"cpus": 2, "mem_mb": 4000, "timeout_s": 10, "network": True}}  # fmt: skip
    return Invocation.from_json({**data, **over})


def test_sealed_settings_only_tighten(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    inv = _inv(tmp_path)
    assert sealed.tighten(inv) is inv  # not sealed: untouched
    monkeypatch.setenv(sealed.ENV_VAR, sealed.encode({"cpus": 1, "mem_mb": 500, "timeout_s": 60}))
    res = sealed.tighten(inv).resources
    assert res == {"cpus": 1, "mem_mb": 500, "timeout_s": 10, "network": False}
    excl = sealed.tighten(_inv(tmp_path, resources={"exclusive": True})).resources
    assert excl["cpus"] == min(os.cpu_count() or 1, 1) and "exclusive" not in excl
    with pytest.raises(RuntimeError, match="never falls back to the host"):
        sealed.tighten(_inv(tmp_path, env=None))
    monkeypatch.setenv(sealed.ENV_VAR, '{"cpus": 1, "network": true}')
    with pytest.raises(RuntimeError, match="keys from"):
        sealed.tighten(inv)
    with pytest.raises(ValueError):
        sealed.encode({"network": True})


def test_sealed_mounts_only_own_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from docker.types import Mount

    from efflab.runtime.container_config import seal_config

    repo = tmp_path / "repo"
    for alias, key, deps in (("a", "1" * 20, {}), ("b", "2" * 20, {"x": {"alias": "a", "key": "1" * 20}})):  # fmt: skip
        (repo / "artifacts" / alias / key).mkdir(parents=True)
        (repo / "artifacts" / alias / key / "invocation.json").write_text(json.dumps({"deps": deps}))  # fmt: skip
    folder = repo / "artifacts/c" / ("3" * 20)
    inv = _inv(tmp_path, alias="c", script_dir=str(repo / "scripts/c"), include=[str(repo / "scripts/_lib")],
               deps={"y": {"alias": "b", "key": "2" * 20}})  # fmt: skip
    cfg = {"mounts": [Mount(str(repo), str(repo), type="bind", read_only=True),
                      Mount(str(folder), str(folder), type="bind")], "network_mode": "none",
           "environment": {"EFFLAB_SEALED": "x", "EFFLAB_RUN_ID": "r", "EFFLAB_RUNTIME": "docker", "HOME": "/tmp"},
           "user": "0:0"}  # fmt: skip
    private = {"dir": str(tmp_path / "secret"), "steps": ["other"]}
    monkeypatch.setenv(sealed.ENV_VAR, sealed.encode({"own_files_only": True, "tmp_mb": 8, "file_mb": 1, "private": private}))  # fmt: skip
    out = seal_config(cfg, repo, inv, folder)
    targets = {m["Target"]: m["ReadOnly"] for m in out["mounts"]}
    assert str(repo) not in targets
    assert targets == {
        str(folder): False,
        str(repo / "scripts/c"): True,
        str(repo / "scripts/_lib"): True,
        str(repo / "artifacts/a" / ("1" * 20)): True,  # transitive dep
        str(repo / "artifacts/b" / ("2" * 20)): True,
    }  # the private folder is mounted only into the steps it names
    assert "size=8m" in out["tmpfs"]["/tmp"] and out["ulimits"][0]["Hard"] == 1 << 20
    assert out["environment"] == {"EFFLAB_RUNTIME": "docker", "HOME": "/tmp"}  # no sealed settings
    uid = int(out["user"].split(":")[0])
    assert uid != 0 and (uid == os.getuid() or os.getuid() == 0)
    inv2 = _inv(tmp_path, alias="other", script_dir=str(repo / "scripts/o"))
    priv = [
        m
        for m in seal_config(cfg, repo, inv2, folder)["mounts"]
        if m["Target"] == sealed.PRIVATE_MOUNT
    ]
    assert priv and priv[0]["ReadOnly"] and priv[0]["Source"] == private["dir"]


# ---------------------------------------------------------------- shipped tournaments


@pytest.mark.parametrize("tid", ["edge-digits", "serving-slo"])
def test_shipped_tournaments_and_examples_validate(tid: str) -> None:
    assert tid in tournament_ids(REPO)
    t = load_tournament(REPO, tid)
    examples = sorted((REPO / "workflows/tournaments/examples" / tid).glob("*.yaml"))
    assert len(examples) >= 2
    for f in examples:
        sub = load_submission(f, tid, t.inputs_schema, t.metrics)
        digest = "0" * 64 if t.private else None  # the secret's sha256 (no secret needed)
        plan = plan_submission(REPO, t, sub.inputs, "unit-test", f, private_digest=digest)
        assert len(plan.points) == t.repetitions
        assert all(inv.env == t.env for inv in plan.invocations.values())


# ---------------------------------------------------------------- rejections on record


def test_rejections_before_running_are_recorded(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Window, schema and archive rejections never reach a container (so: no Docker here).

    `attempt` is the flow after the sandbox preflight (which needs an engine)."""
    from efflab.tournaments import submit as flow
    from efflab.tournaments.ledger import attempts_only, verify
    from efflab.tournaments.submission import sha256_file

    add_tiny_tournament(tiny_repo, close="2021-01-01")
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"participant": "ana", "entry": "e", "inputs": {"degree": 3}}))
    v = flow.attempt(tiny_repo, load_tournament(tiny_repo, "tiny"), f)
    assert not v.accepted and v.stage == "window" and "closed" in v.reason
    add_tiny_tournament(tiny_repo)
    f.write_text(json.dumps({"participant": "ana", "entry": "e", "inputs": {"degree": "3"}}))
    v = flow.attempt(tiny_repo, load_tournament(tiny_repo, "tiny"), f)
    assert v.stage == "schema" and "$.inputs.degree" in v.reason
    f.write_text(json.dumps({"participant": "ana", "entry": "e", "inputs": {"degree": 3}}))
    arc = tar_with(tmp_path / "a.tar.gz", (member("run.py"), b"x"), UNSAFE["dotdot"])
    v = flow.attempt(tiny_repo, load_tournament(tiny_repo, "tiny"), f, arc)
    assert v.stage == "archive" and not (v.folder / "scripts").exists()
    f.write_text(json.dumps({"participant": "ana", "entry": "e", "inputs": {"degree": 3},
                             "archive": "missing.tar.gz"}))  # fmt: skip
    v = flow.attempt(tiny_repo, load_tournament(tiny_repo, "tiny"), f)
    assert v.stage == "archive" and "missing.tar.gz" in v.reason
    ledger = verify(tiny_repo / "results/tournaments/tiny/ledger.jsonl")
    es = attempts_only(ledger.entries)  # after the organiser's genesis
    assert ledger.ok and [e["stage"] for e in es] == [
        "window", "schema", "archive", "archive"
    ]  # fmt: skip
    assert all(e["verdict"] == "rejected" and e["metrics"] == {} for e in es)
    assert es[2]["submission"]["archive_sha256"] == sha256_file(arc)
