"""Paper specs (workflows/papers/<id>.yaml): the experiments a paper needs and its claims.

Loading validates against schemas/paper.schema.json and parses every claim's
condition (efflab.papers.claims); plan-time checks against the experiments live in
efflab.papers.reproduce.prepare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from efflab.core.errors import BadInput, unknown_name
from efflab.core.specio import load_yaml, schema, validate
from efflab.papers import capabilities, claims, controls, kinds


@dataclass
class Need:
    """An experiment a paper needs, with the input overrides it runs under."""

    name: str
    inputs: dict[str, Any]
    quick_inputs: dict[str, Any]
    path: str
    requires: capabilities.Requires | None = None  # without it the experiment does not run

    def overrides(self, quick: bool) -> dict[str, Any]:
        return {**self.inputs, **(self.quick_inputs if quick else {})}


@dataclass
class PaperValue:
    text: str
    value: float | None = None
    unit: str | None = None


@dataclass
class Claim:
    id: str
    statement: str
    condition: claims.Condition
    paper: PaperValue | None
    note: str
    path: str
    kind: str = "claim"  # "sanity": shown, never counted, no say in the exit code
    cites: str | None = None  # "<paper>/<claim>" whose check this claim reuses
    control: controls.Control | None = None  # None: none declared (shown "uncontrolled")
    placebo: controls.PlaceboRule = field(default_factory=controls.PlaceboRule)
    requires: capabilities.Requires | None = None  # without it: "not applicable"

    @property
    def counted(self) -> bool:
        return self.kind == "claim"

    @property
    def experiments(self) -> list[str]:
        return sorted({s.experiment for s in claims.selections(self.condition)})


@dataclass
class Scale:
    """What the paper measured (hardware, model, size) against what we measure here."""

    paper: str
    ours: str


@dataclass
class Paper:
    id: str
    title: str
    authors: list[str]
    venue: str
    year: int
    link: str
    summary: str
    experiments: list[Need]
    claims: list[Claim]
    file: Path
    scale: Scale | None = None


@cache
def paper_schema() -> dict[str, Any]:
    """schemas/paper.schema.json with each condition kind's own fragment filled in."""
    return kinds.paper_schema(schema("paper"))


def papers_dir(repo: Path) -> Path:
    return repo / "workflows" / "papers"


def paper_ids(repo: Path) -> list[str]:
    return sorted(p.stem for p in papers_dir(repo).glob("*.yaml"))


def paper_file(repo: Path, pid: str) -> Path:
    if pid.endswith((".yaml", ".yml")) and Path(pid).is_file():
        return Path(pid)
    f = papers_dir(repo) / f"{pid}.yaml"
    if not f.is_file():
        files = list(papers_dir(repo).glob("*.yaml"))
        err = unknown_name("a paper id", pid, files, "efflab papers list")
        raise BadInput(f, "$", err.expected, pid, err.hint)
    return f


def load_paper(repo: Path, pid: str) -> Paper:
    """Load + schema-validate one spec and parse its claims (no plan checks yet)."""
    f = paper_file(repo, pid)
    raw = load_yaml(f)
    for i, c in enumerate(raw.get("claims") or [] if isinstance(raw, dict) else []):
        found = claims.bare_numbers(
            c.get("check") if isinstance(c, dict) else None, f"$.claims[{i}].check"
        )
        if found:
            path, num = found[0]
            raise BadInput(f, path, claims.THRESHOLD_EXPECTED, num, "say where the bar comes from")
        ctl = c.get("control") if isinstance(c, dict) else None
        if (
            isinstance(ctl, dict)
            and "none" not in ctl
            and not {"replace", "set", "metric"} & set(ctl)
        ):
            raise BadInput(
                f, f"$.claims[{i}].control", controls.CONTROL_EXPECTED, ctl, "see docs/claims.md"
            )
    validate(raw, paper_schema(), f)
    if raw["id"] != f.stem:
        raise BadInput(f, "$.id", f"the file name '{f.stem}'", raw["id"])
    needs: list[Need] = []
    for i, e in enumerate(raw["experiments"]):
        if any(n.name == e["name"] for n in needs):
            raise BadInput(f, f"$.experiments[{i}].name", "each experiment once", e["name"])
        p = f"$.experiments[{i}]"
        needs.append(
            Need(
                e["name"],
                e.get("inputs") or {},
                e.get("quick_inputs") or {},
                p,
                capabilities.parse_requires(e.get("requires"), f"{p}.requires"),
            )
        )
    names = [n.name for n in needs]
    out: list[Claim] = []
    for i, c in enumerate(raw["claims"]):
        path = f"$.claims[{i}]"
        if any(o.id == c["id"] for o in out):
            raise BadInput(f, f"{path}.id", "a claim id unique in the paper", c["id"])
        pv = c.get("paper")
        paper = PaperValue(pv["text"], pv.get("value"), pv.get("unit")) if pv else None
        target = None
        if paper is not None and paper.value is not None:
            target = claims.Const(paper.value, "paper", paper.text, f"{path}.paper.value")
        if "cites" in c:
            for own in ("control", "placebo"):
                if own in c:
                    raise BadInput(
                        f, f"{path}.{own}", f"no {own} (the cited claim's applies)", c[own]
                    )
            cited = cited_claim(repo, f, f"{path}.cites", c["cites"])
            cond, control, placebo = cited.condition, cited.control, cited.placebo
        else:
            cond = claims.parse(c["check"], f"{path}.check", names, f, target)
            control = None
            if "control" in c:
                control = controls.parse_control(c["control"], f"{path}.control", cond, f)
            placebo = controls.parse_placebo(c.get("placebo"))
        out.append(
            Claim(
                c["id"],
                c["statement"],
                cond,
                paper,
                c.get("note", ""),
                path,
                c.get("kind", "claim"),
                c.get("cites"),
                control,
                placebo,
                capabilities.parse_requires(c.get("requires"), f"{path}.requires"),
            )
        )
    return Paper(
        id=raw["id"],
        title=raw["title"],
        authors=list(raw["authors"]),
        venue=raw.get("venue", ""),
        year=raw["year"],
        link=raw["link"],
        summary=raw.get("summary", ""),
        experiments=needs,
        claims=out,
        file=f,
        scale=Scale(raw["scale"]["paper"], raw["scale"]["ours"]),
    )


def cited_claim(repo: Path, file: Path, path: str, ref: str) -> Claim:
    """Claim `<paper>/<claim>` (its check, control and placebo rule are reused); that
    claim must define its own check."""
    pid, cid = ref.split("/", 1)
    if pid not in paper_ids(repo) or pid == file.stem:
        raise BadInput(file, path, "another paper's id / a claim id", ref)
    other = load_paper(repo, pid)
    for c in other.claims:
        if c.id == cid:
            if c.cites:
                raise BadInput(
                    file, path, "a claim that defines its own check", ref, f"it cites {c.cites}"
                )
            return c
    raise BadInput(file, path, f"a claim of {pid} ({', '.join(c.id for c in other.claims)})", cid)


def load_papers(repo: Path, ids: list[str], all_papers: bool = False) -> list[Paper]:
    """The requested papers (or all), each loaded once, in the order asked."""
    if all_papers:
        ids = paper_ids(repo)
        if not ids:
            raise BadInput(papers_dir(repo), "$", "at least one paper spec (*.yaml)", "none")
    if not ids:
        raise BadInput("reproduce", "$", "a paper id or --all", "nothing")
    return [load_paper(repo, pid) for pid in dict.fromkeys(ids)]
