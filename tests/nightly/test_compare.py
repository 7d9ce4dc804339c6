"""`efflab compare BASE HEAD` on a tiny real git repository, with a webhook receiver.

Real git worktrees, Snakemake, runner and records: an unchanged pair of commits must
flag nothing, a commit that makes the measured script sleep four times longer must be
reported slower (exit 1) with links to both arms' kept records, and the summary must
reach a local Slack-compatible receiver. Bad arguments exit 2 naming the argument.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from conftest import efflab, write
from test_nightly_bisect import commit

SUITE = """\
name: tiny-nightly
defaults: {repetitions: 4}
policy:
  default: {alpha: 0.05, min_effect: 0.5}
experiments:
  - name: demo
    overrides: {sleep_s: 0.05, n: 2, scale: 1.0}
    metrics: [wall_s, sumsq]
"""


@pytest.fixture
def pr_repo(tiny_repo: Path) -> tuple[Path, list[str]]:
    write(tiny_repo / "workflows/nightly.yaml", SUITE)
    write(tiny_repo / ".gitignore", "artifacts/\nresults/\n.efflab/\n.snakemake/\n")
    shas = [commit(tiny_repo, "base")]
    write(tiny_repo / "NOTES.md", "a note\n")
    shas.append(commit(tiny_repo, "notes only"))
    run_py = tiny_repo / "scripts/square/run.py"
    run_py.write_text(
        run_py.read_text().replace('(ctx.inputs["sleep_s"])', '(ctx.inputs["sleep_s"] * 4)')
    )
    shas.append(commit(tiny_repo, "square: sleep longer"))
    return tiny_repo, shas


class _Hook(BaseHTTPRequestHandler):
    got: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.got.append(
            {"type": self.headers["Content-Type"], "json": json.loads(body), "path": self.path}
        )
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver():
    _Hook.got = []
    srv = HTTPServer(("127.0.0.1", 0), _Hook)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook", _Hook.got
    srv.shutdown()
    srv.server_close()


@pytest.mark.slow  # over a minute on a shared 2-core machine
def test_injected_slowdown_is_slower_and_the_webhook_hears_it(pr_repo, receiver) -> None:
    repo, shas = pr_repo
    url, got = receiver
    r = efflab(repo, "compare", shas[1], shas[2], "--runtime", "host", "--format", "json",
               "--notify", url, "--output", str(repo / "report.json"))  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert json.loads((repo / "report.json").read_text()) == rep
    rows = {x["metric"]: x for x in rep["rows"]}
    wall, sumsq = rows["wall_s"], rows["sumsq"]
    assert wall["verdict"] == "slower" and wall["change"] > 1.5, wall
    assert wall["low"] <= wall["change"] <= wall["high"] and wall["low"] > 0.5
    assert len(wall["base_values"]) == len(wall["head_values"]) == 4
    assert sumsq["verdict"] == "unchanged" and sumsq["method"] == "deterministic"
    for arm in ("base", "head"):  # the worktrees are gone, the records stay, linked
        assert wall[f"{arm}_records"] and all((repo / p).is_file() for p in wall[f"{arm}_records"])
    assert rep["base"]["sha"] == shas[1] and rep["head"]["sha"] == shas[2]
    assert rep["machine"]["cpu_model"] and "load" in rep["machine"]
    assert rep["summary"]["slower"] == 1 and rep["exit_code"] == 1
    (hook,) = got
    assert hook["type"] == "application/json" and hook["path"] == "/hook"
    assert "1 slower" in hook["json"]["text"] and "wall_s" in hook["json"]["text"]


@pytest.mark.slow  # over a minute on a shared 2-core machine
def test_unchanged_pair_flags_nothing_and_prints_markdown(pr_repo) -> None:
    repo, shas = pr_repo
    r = efflab(repo, "compare", shas[0], shas[1], "demo", "--runtime", "host", "--repetitions", "2")  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    md = r.stdout
    assert md.startswith(f"### efflab compare: `{shas[0][:10]}` (base) -> `{shas[1][:10]}` (head)")
    assert "**0 slower**" in md and "| verdict | experiment |" in md
    assert "[base](results/compare/" in md and "[head](results/compare/" in md


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["nope", "HEAD"], "BASE"),
        (["HEAD", "nope"], "HEAD"),
        (["HEAD~1", "HEAD", "nosuch"], "EXP[0]"),
        (["HEAD~1", "HEAD", "demo", "--set", "n=0"], "--set n"),
        (["HEAD~1", "HEAD", "--repetitions", "1"], "--repetitions"),
        (["HEAD~1", "HEAD", "--notify", "ftp://example.org/x"], "--notify"),
    ],
)
def test_bad_arguments_exit_2_naming_them(pr_repo, args: list[str], name: str) -> None:
    repo, _ = pr_repo
    r = efflab(repo, "compare", *args, "--runtime", "host")
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("efflab: error: "), r.stderr
    assert f" {name}: expected" in lines[0] or lines[0].startswith(f"efflab: error: {name}:")
