"""Every path efflab writes under a project: one place, so no layer needs another's
module just to find a folder.

    artifacts/<alias>/<key>/          one invocation (invocation.json, outputs.json, out/)
    results/<exp>/runs/<key>.json     run records; tables/v<N>/ versioned tables
    results/<exp>/hosts/<host>/       another machine's records and tables (`results import`)
    results/reproductions/<paper>/<n> reproduction reports
    results/tournaments/<id>/         ledger, submissions, leaderboard
    results/nightly/                  history.jsonl and one folder per night
    .efflab/                          logs, locks and state (never results)
"""

from __future__ import annotations

from pathlib import Path


def artifacts_dir(repo: Path) -> Path:
    return repo / "artifacts"


def invocation_dir(repo: Path, alias: str, key: str) -> Path:
    return repo / "artifacts" / alias / key


def results_dir(repo: Path) -> Path:
    return repo / "results"


# results/ folders that hold views, not an experiment's records (one definition: `results
# check`, `results import` and the site all ask here which folders are experiments)
NOT_EXPERIMENTS = frozenset({"reproductions", "tournaments", "nightly", "site", "site-screenshots"})
EXPERIMENT_PARTS = ("runs", "tables", "hosts")  # any one makes a results/ folder an experiment


def is_experiment_name(name: str) -> bool:
    return name not in NOT_EXPERIMENTS and not name.startswith(".")


def experiment_names(repo: Path) -> list[str]:
    """The experiments with results: folders of results/ holding runs/, tables/ or hosts/."""
    root = results_dir(repo)
    if not root.is_dir():
        return []
    return sorted(
        d.name
        for d in root.iterdir()
        if d.is_dir()
        and is_experiment_name(d.name)
        and any((d / part).is_dir() for part in EXPERIMENT_PARTS)
    )


def experiment_dir(repo: Path, experiment: str) -> Path:
    return repo / "results" / experiment


def runs_dir(repo: Path, experiment: str) -> Path:
    return experiment_dir(repo, experiment) / "runs"


def tables_dir(repo: Path, experiment: str) -> Path:
    return experiment_dir(repo, experiment) / "tables"


def hosts_dir(repo: Path, experiment: str) -> Path:
    """Imported machines of an experiment: `hosts/<host>/runs/`, `hosts/<host>/tables/`."""
    return experiment_dir(repo, experiment) / "hosts"


def site_dir(repo: Path) -> Path:
    """Default output of `efflab site build`."""
    return repo / "results" / "site"


def reports_dir(repo: Path, paper_id: str) -> Path:
    return repo / "results" / "reproductions" / paper_id


def tournament_dir(repo: Path, tid: str) -> Path:
    return repo / "results" / "tournaments" / tid


def nightly_dir(repo: Path) -> Path:
    return repo / "results" / "nightly"


def history_file(repo: Path) -> Path:
    return nightly_dir(repo) / "history.jsonl"


def state_dir(repo: Path, kind: str = "") -> Path:
    """`.efflab/<kind>`: logs, locks, caches; created on demand."""
    d = repo / ".efflab" / kind if kind else repo / ".efflab"
    d.mkdir(parents=True, exist_ok=True)
    return d
