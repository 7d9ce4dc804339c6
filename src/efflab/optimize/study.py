"""Where a study lives and how it is opened: an Optuna RDB study on SQLite, stored with
the experiment's results, so that `--resume` after a kill repeats no finished trial.

    results/<exp>/optimize/studies/<n>/study.db        Optuna storage (every trial)
    results/<exp>/optimize/studies/<n>/request.json    what was asked (signature)
    results/<exp>/optimize/studies/<n>/trials.json|csv, summary.json, trials.png
    results/<exp>/optimize/tables/v<N>/                the front, a versioned table

Optuna writes each told trial to SQLite in its own transaction, so a study killed
at any point holds every finished trial; trials asked but not told (running when
the process died) are closed as interrupted and their parameters queued again:
their invocations that did finish are cache hits, the rest run.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

from efflab.core import layout
from efflab.core.errors import BadInput
from efflab.core.specio import atomic_write_json
from efflab.optimize.request import Request

OUTCOME = "efflab_outcome"  # user attr every trial efflab finishes gets (ok | failed);
# a failed trial without it was running when the process died (closed by --resume)


def optimize_dir(repo: Path, experiment: str) -> Path:
    return layout.experiment_dir(repo, experiment) / "optimize"


def table_name(experiment: str) -> str:
    """The front's table lineage: `efflab results table <exp>/optimize`."""
    return f"{experiment}/optimize"


def studies(repo: Path, experiment: str) -> list[int]:
    d = optimize_dir(repo, experiment) / "studies"
    if not d.is_dir():
        return []
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit())


@dataclass
class Opened:
    number: int
    folder: Path
    study: optuna.Study
    resumed: bool
    interrupted: int  # trials found running (killed) and queued again


def _sampler(req: Request, batch: int, offset: int) -> optuna.samplers.BaseSampler:
    # a resumed session starts its random stream past the trials already made, so it
    # does not re-draw the first session's start points
    seed = req.seed + offset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        if req.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if req.sampler == "nsga2":
            pop = max(4, min(20, req.trials // 4))
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=pop)
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=min(10, max(3, req.trials // 3)),
            multivariate=True,
            constant_liar=batch > 1,  # a batch asked before any is told: avoid duplicates
        )


def _storage(folder: Path) -> optuna.storages.RDBStorage:
    return optuna.storages.RDBStorage(
        f"sqlite:///{folder / 'study.db'}",
        engine_kwargs={"connect_args": {"timeout": 60}},
    )


def open_study(repo: Path, req: Request, resume: bool, batch: int) -> Opened:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = optimize_dir(repo, req.experiment) / "studies"
    directions = [o.direction for o in req.objectives]
    if resume:
        sig = req.signature()
        match = [
            n
            for n in studies(repo, req.experiment)
            if _signature(root / str(n)) == sig and (root / str(n) / "study.db").exists()
        ]
        if not match:
            raise BadInput(
                "--resume",
                "$",
                f"an earlier study of '{req.experiment}' with the same objectives, "
                "constraints, space, --set values, sampler and seed",
                f"none among {studies(repo, req.experiment) or 'no studies'}",
            )
        n = match[-1]
        folder = root / str(n)
        storage = _storage(folder)
        done = len(storage.get_all_trials(storage.get_study_id_from_name("efflab")))
        study = optuna.load_study(
            study_name="efflab", storage=storage, sampler=_sampler(req, batch, done)
        )
        return Opened(n, folder, study, True, _requeue_running(study))
    root.mkdir(parents=True, exist_ok=True)
    n = (studies(repo, req.experiment) or [0])[-1] + 1
    while True:  # another optimize may take the number first
        folder = root / str(n)
        try:
            folder.mkdir()
            break
        except FileExistsError:
            n += 1
    atomic_write_json(folder / "request.json", req.to_json())
    study = optuna.create_study(
        study_name="efflab",
        storage=_storage(folder),
        directions=directions,
        sampler=_sampler(req, batch, 0),
    )
    return Opened(n, folder, study, False, 0)


def _signature(folder: Path) -> str | None:
    try:
        return json.loads((folder / "request.json").read_text())["signature"]
    except (OSError, ValueError, KeyError):
        return None


def _requeue_running(study: optuna.Study) -> int:
    """Close trials left running by a killed process (failed, no outcome attribute);
    ask their parameters again."""
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        if t.state == TrialState.WAITING:
            continue  # already queued
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        study.enqueue_trial(t.params, user_attrs={"requeued_from": t.number})
        n += 1
    return n


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials that count against the budget: complete or failed, not interrupted."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
        if t.user_attrs.get(OUTCOME)
    ]
