"""The organiser's baseline: what a search over the tournament's own space finds, entered
like any submission (verified sealed, in the ledger) and marked on the leaderboard.

This module knows the tournament side only: the space a submission may choose from
(the submission schema's properties, open ones narrowed to the base experiment's grid
values), the goals as `optimize` options, which front entry to enter (the ranking's
tie-break order) and the submission file. `efflab tournament baseline` runs the search
between them (the optimize view is a sibling of this package, not imported here).

Identity: in a keyed tournament the baseline is signed like any entry, by the key
registered for participant `organiser` (`organiser_key`): the organiser's own key
(--key), or one kept for the tournament under .efflab/keys/ and registered on first
use. The leaderboard marks a row as the baseline by that name and entry prefix; in a
keyed tournament nobody else can hold that row (rows follow their key).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

from efflab.core.errors import BadInput
from efflab.core.layout import state_dir
from efflab.core.specio import atomic_write_text
from efflab.plan.planner import load_experiment
from efflab.tournaments import identity
from efflab.tournaments.spec import Tournament

PARTICIPANT = "organiser"
ENTRY_PREFIX = "baseline"


def is_baseline(participant: str | None, entry: str | None) -> bool:
    return participant == PARTICIPANT and str(entry or "").startswith(ENTRY_PREFIX)


def space(repo: Path, t: Tournament) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(input schemas, search block): every submission input with a finite domain (enum,
    boolean, bounded integer); an open one (a pattern) over the base grid's values that
    the tournament allows; inputs with neither keep their default."""
    props = t.inputs_schema.get("properties") or {}
    grid = load_experiment(repo, t.experiment, t.quick, t.fixed_inputs).grid
    search: dict[str, Any] = {}
    for name, prop in props.items():
        if "enum" in prop:
            search[name] = list(prop["enum"])
        elif prop.get("type") == "boolean":
            search[name] = [False, True]
        elif prop.get("type") == "integer" and "minimum" in prop and "maximum" in prop:
            search[name] = f"{prop['minimum']}..{prop['maximum']}"
        elif name in grid:
            ok = jsonschema.Draft202012Validator(prop)
            allowed = [v for v in grid[name] if ok.is_valid(v)]
            if allowed:
                search[name] = allowed
    return props, search


def goals(t: Tournament) -> tuple[list[str], list[str]]:
    """The tournament's objectives and constraints as `optimize` options."""
    objectives = [
        f"{o.metric}:{'max' if o.direction == 'maximize' else 'min'}" for o in t.objectives
    ]
    constraints = [f"{c.metric}{c.op}{c.value!r}" for c in t.constraints if c.op != "=="]
    return objectives, constraints


def pick(t: Tournament, front: list[dict[str, Any]]) -> dict[str, Any]:
    """The front entry to enter: best in the tie-break order (objective medians)."""
    direction = {o.metric: o.direction for o in t.objectives}
    order = t.tie_break or [o.metric for o in t.objectives]

    def key(row: dict[str, Any]) -> tuple:
        out = []
        for m in order:
            v = (row["objectives"].get(m) or {}).get("median")
            if v is None:
                out.append(float("inf"))
            else:
                out.append(-v if direction.get(m) == "maximize" else v)
        return tuple(out)

    return min(front, key=key)


def write_submission(t: Tournament, folder: Path, row: dict[str, Any], study: int) -> Path:
    """The baseline as an ordinary submission file (YAML), inputs = the trial's parameters."""
    body = {
        "tournament": t.id,
        "participant": PARTICIPANT,
        "entry": f"{ENTRY_PREFIX}-optimize",
        "description": (
            f"organiser's baseline: efflab optimize, study {study}, trial {row['trial']} "
            f"of the front over the tournament's space"
        ),
        "inputs": row["params"],
    }
    f = folder / "baseline-submission.yaml"
    atomic_write_text(f, yaml.safe_dump(body, sort_keys=False))
    return f


def organiser_key(repo: Path, t: Tournament, participants: Path, key: Path | None) -> tuple[Path, str]:  # fmt: skip
    """(private key file, note) for signing the baseline as `organiser`.

    `key` (--key) must match the key registered for `organiser`, or is registered when
    none is; without it, the tournament's kept key (.efflab/keys/<id>/organiser.pem,
    made on first use) is used the same way.
    """
    reg = identity.Registry(participants)
    note = ""
    if key is None:
        key = state_dir(repo, f"keys/{t.id}") / "organiser.pem"
        if not key.exists():
            identity.generate(key)
            note = f"made the organiser's key {key}"
    elif not key.is_file():
        raise BadInput(key, "$", "the organiser's private key (PEM, from `tournament keygen`)", "no such file")  # fmt: skip
    pub = identity.load_private(key).public_key().public_bytes_raw()
    fp = identity.fingerprint(pub)
    held = reg.load().get(PARTICIPANT)
    if held is None:
        import base64

        reg.register(PARTICIPANT, base64.b64encode(pub).decode())
        note = (note + "; " if note else "") + f"registered it as '{PARTICIPANT}' ({fp})"
    elif held.fingerprint != fp:
        raise BadInput("--key", "$", f"the private key of '{PARTICIPANT}' as registered ({held.fingerprint})", f"a key with fingerprint {fp}")  # fmt: skip
    return key, note
