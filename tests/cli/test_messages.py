"""Near misses get answers: "did you mean" for tag queries and experiment, paper and
tournament names (the user's newest scripts first); an empty list is exit 0; a broken
spec is named and skipped by listing commands, exit 2 only where it is needed; a
whole-file error has no `$:` path."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.conftest import efflab


def test_tag_queries_say_what_was_meant_and_list_the_newest_scripts(tiny_repo: Path) -> None:
    efflab(tiny_repo, "script", "new", "my-probe", "--tags", "probe,cpu", check=True)
    old = time.time() - 3600
    for s in ("gen", "square"):  # the shipped scripts are older than the user's own
        os.utime(tiny_repo / "scripts" / s / "meta.yaml", (old, old))
    r = efflab(tiny_repo, "script", "run", "probe,squre", "--runtime", "host")
    assert r.returncode == 2
    assert "no script has tag 'squre' (did you mean 'square'?)" in r.stderr
    assert "newest scripts: my-probe, gen, square" in r.stderr
    both = efflab(tiny_repo, "script", "run", "probe,square", "--runtime", "host")
    assert both.returncode == 2
    assert "no script has all of probe, square; scripts with some: my-probe" in both.stderr


def test_an_empty_list_is_an_answer(tiny_repo: Path) -> None:
    r = efflab(tiny_repo, "script", "list", "squre")
    assert r.returncode == 0 and r.stdout == ""
    assert "did you mean 'square'?" in r.stderr
    j = efflab(tiny_repo, "script", "list", "squre", "--json")
    assert j.returncode == 0 and j.stdout.strip() == "[]"


def test_experiment_paper_and_tournament_names(tiny_repo: Path) -> None:
    r = efflab(tiny_repo, "plan", "dmeo")
    assert r.returncode == 2 and "did you mean 'demo'?" in r.stderr
    assert (
        "$:" not in r.stderr
        and "workflows/experiments/dmeo.yaml: expected an experiment name" in r.stderr
    )
    (tiny_repo / "workflows/papers").mkdir(parents=True)
    (tiny_repo / "workflows/papers/tiny-paper.yaml").write_text("id: tiny-paper\n")
    p = efflab(tiny_repo, "papers", "show", "tiny-papr")
    assert p.returncode == 2 and "did you mean 'tiny-paper'?" in p.stderr
    (tiny_repo / "workflows/tournaments").mkdir(parents=True)
    (tiny_repo / "workflows/tournaments/speedrun.yaml").write_text("id: speedrun\n")
    t = efflab(tiny_repo, "tournament", "show", "speedrn")
    assert t.returncode == 2 and "did you mean 'speedrun'?" in t.stderr


def test_one_broken_spec_is_skipped_by_lists_and_fatal_where_needed(tiny_repo: Path) -> None:
    (tiny_repo / "workflows/papers").mkdir(parents=True)
    broken = tiny_repo / "workflows/papers/broken.yaml"
    broken.write_text("id: broken\ntitle: [unclosed\n")
    r = efflab(tiny_repo, "papers", "list")
    assert r.returncode == 0 and "efflab: skipped: " in r.stderr and str(broken) in r.stderr
    assert efflab(tiny_repo, "papers", "show", "broken").returncode == 2
    (tiny_repo / "workflows/tournaments").mkdir(parents=True)
    (tiny_repo / "workflows/tournaments/bad.yaml").write_text("id: bad\n")
    t = efflab(tiny_repo, "tournament", "list")
    assert t.returncode == 0 and "skipped: " in t.stderr and "bad.yaml" in t.stderr
    meta = tiny_repo / "scripts/gen/meta.yaml"
    meta.write_text(meta.read_text().replace("alias: gen", "alias: gen2"))
    s = efflab(tiny_repo, "script", "list")
    assert s.returncode == 0 and "skipped: " in s.stderr and "$.alias" in s.stderr
    assert "square" in s.stdout  # the rest is listed (square's dep is what broke)
    assert efflab(tiny_repo, "script", "show", "square").returncode == 2
