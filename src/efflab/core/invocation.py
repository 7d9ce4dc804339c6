"""The Invocation: one script run with fully resolved inputs, as planned and as executed.

One typed object from the planner to the job: the plan writes it as
`artifacts/<alias>/<key>/invocation.json`, the runtime reads it back with
`Invocation.load`, so no layer passes the raw dict around. Pure stdlib: the job
process (and the container side of the docker runtime) imports it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

KEY_LEN = 20


@dataclass
class Invocation:
    """One script run with fully resolved inputs; the unit Snakemake schedules."""

    key: str
    alias: str
    script_dir: str
    run: str
    inputs: dict[str, Any]
    deps: dict[str, dict[str, str]]  # dep name -> {"alias", "key"}
    env: str | None
    env_digest: str | None
    resources: dict[str, Any]
    repetition: int = 0
    include: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)  # declared metrics/files
    # what the key was computed from, per component (file digests, inputs, dep keys,
    # env digest, salt, collection): `efflab explain` diffs these between runs
    key_parts: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> str:
        """Artifact folder, relative to the repo root."""
        return f"artifacts/{self.alias}/{self.key}"

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "alias": self.alias,
            "script_dir": self.script_dir,
            "run": self.run,
            "inputs": self.inputs,
            "deps": self.deps,
            "env": self.env,
            "env_digest": self.env_digest,
            "resources": self.resources,
            "repetition": self.repetition,
            "include": self.include,
            "outputs": self.outputs,
            "key_parts": self.key_parts,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Invocation:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def load(cls, folder: Path) -> Invocation:
        return cls.from_json(json.loads((Path(folder) / "invocation.json").read_text()))

    def with_resources(self, resources: dict[str, Any]) -> Invocation:
        return replace(self, resources=resources)

    @property
    def network(self) -> bool:
        return bool(self.resources.get("network"))
