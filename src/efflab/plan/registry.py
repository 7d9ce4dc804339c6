"""Scripts registry: discovery of `scripts/<alias>/meta.yaml`, tag queries, content hashes.

A tag query (`bench,onnxruntime,-gpu`) must match exactly one script; otherwise the
error lists the candidates. Resolution is deterministic — never a prompt.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import stat
import string
import sys
import traceback
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema

from efflab.core import instruments
from efflab.core.errors import BadInput, did_you_mean, json_path
from efflab.core.requirements import Requirements
from efflab.core.specio import load_yaml, validate
from efflab.plan import collections

SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo"}


@dataclass(frozen=True)
class Dep:
    name: str
    tags: str
    inputs: dict[str, Any]
    # only planned when the script's inputs match (input -> value or list of values):
    # a dependency an input switches off costs nothing and never invalidates the key
    when: dict[str, Any] = field(default_factory=dict)

    def wanted(self, inputs: dict[str, Any]) -> bool:
        return all(
            inputs.get(k) in (v if isinstance(v, list) else [v]) for k, v in self.when.items()
        )


@dataclass
class Script:
    """A parsed, validated script folder."""

    alias: str
    uid: str
    tags: frozenset[str]
    description: str
    version: str
    run: str
    path: Path
    env: str | None
    inputs: dict[str, dict[str, Any]]
    deps: list[Dep]
    metrics: dict[str, dict[str, Any]]
    files: dict[str, dict[str, Any]]
    resources: dict[str, Any]
    include: list[Path] = field(default_factory=list)
    requires: Requirements = field(default_factory=Requirements)
    collection: str | None = None  # "name@commit" for scripts from a registered collection
    origin: str | None = None  # the collection's name (git or folder); None: the project's
    trusted: bool = True  # may its code (check.py) be imported on the host?

    @cached_property
    def meta_file(self) -> Path:
        return self.path / "meta.yaml"

    @cached_property
    def file_digests(self) -> list[tuple[str, str, str]]:
        """(path in its root, path as shown, sha256) of every file of the script folder
        and its includes, in key order; kept so `efflab explain` can name the file that
        changed a key."""
        out = []
        for root in [self.path, *self.include]:
            for f in _walk(root):
                rel = str(f.relative_to(root))
                shown = rel if root == self.path else f"{root.name}/{rel}"
                out.append((rel, shown, hashlib.sha256(f.read_bytes()).hexdigest()))
        return out

    @cached_property
    def files_digest(self) -> str:
        """sha256 over every file of the script folder and its includes."""
        h = hashlib.sha256()
        for rel, _, sha in self.file_digests:
            h.update(rel.encode() + b"\0")
            h.update(bytes.fromhex(sha))
        return h.hexdigest()

    @cached_property
    def input_validator(self):
        sch = {"type": "object", "properties": self.inputs, "additionalProperties": False}
        return jsonschema.Draft202012Validator(sch)

    def runs_checks(self, inspecting: bool) -> bool:
        """Whether this script's check.py may be imported here, on the host: the
        project's own always; a collection's only when the project trusts it, and never
        while just inspecting (`script show`, `plan`, `explain`)."""
        return self.origin is None or (self.trusted and not inspecting)

    @cached_property
    def checker(self):
        """Optional pure `check(inputs) -> [(field, expected, found)]` from check.py
        (imported in this process: callers ask `runs_checks` first)."""
        f = self.path / "check.py"
        if not f.exists():
            return None
        spec = importlib.util.spec_from_file_location(f"efflab_check_{self.alias}", f)
        mod = importlib.util.module_from_spec(spec)
        added = [str(p) for p in [self.path, *self.include] if str(p) not in sys.path]
        sys.path[:0] = added
        try:
            spec.loader.exec_module(mod)
        except Exception as exc:  # the script's own code: its error, as that file's error
            raise BadInput(f, _code_line(exc, f), "a check.py that imports cleanly",
                           f"{type(exc).__name__}: {exc}") from None  # fmt: skip
        finally:
            for p in added:
                sys.path.remove(p)
        check = getattr(mod, "check", None)
        if check is None:
            return None

        def checked(inputs: dict[str, Any]) -> list[tuple[str, str, Any]]:
            try:
                found = list(check(inputs) or [])
            except Exception as exc:
                raise BadInput(f, _code_line(exc, f), "check(inputs) to return a list",
                               f"{type(exc).__name__}: {exc}") from None  # fmt: skip
            for item in found:
                if not (isinstance(item, tuple | list) and len(item) == 3):
                    raise BadInput(f, "$.check", "(field, expected, found) triples", item)
            return [tuple(item) for item in found]

        return checked

    def defaults(self) -> dict[str, Any]:
        return {k: v["default"] for k, v in self.inputs.items()}


def _code_line(exc: BaseException, file: Path) -> str:
    """'line N' of `file` where `exc` was raised (or the syntax error's line)."""
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f"line {exc.lineno}"
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename) == file:
            return f"line {frame.lineno}"
    return "$"


def _walk(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            if Path(name).suffix not in SKIP_SUFFIXES:
                yield Path(dirpath) / name


def _confined(root: Path, confine: Path) -> None:
    """Every file of a collection's script is a regular file inside the collection: a
    link to `~/.ssh/id_ed25519` or `/dev/zero` (whose bytes the key would hash, and a
    container would get) is BadInput naming it."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            f = Path(dirpath) / name
            try:
                st = f.lstat()
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                target = f.resolve()
                if not target.is_relative_to(confine):
                    raise BadInput(f, "$", f"a file inside its collection ({confine})",
                                   f"a link to {target}")  # fmt: skip
                st = target.stat() if target.exists() else st
            if not (
                stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)
            ):
                raise BadInput(f, "$", "a regular file or folder", "a device, FIFO or socket")


def parse_script(folder: Path, confine: Path | None = None) -> Script:
    """A script folder; `confine` (a collection's checkout): its includes must lie
    inside it, so a foreign meta.yaml cannot mount `~/.ssh` into its container."""
    meta_file = folder / "meta.yaml"
    meta = load_yaml(meta_file)
    validate(meta, "meta", meta_file)
    if meta["alias"] != folder.name:
        raise BadInput(meta_file, "$.alias", f"the folder name '{folder.name}'", meta["alias"])
    if not (folder / meta["run"]).is_file():
        raise BadInput(
            meta_file, "$.run", f"an existing file {folder / meta['run']}", "no such file"
        )
    inputs = meta.get("inputs") or {}
    for name, prop in inputs.items():
        try:  # `minimum: one`, `enum: true`, `pattern: '['`: not JSON Schema
            jsonschema.Draft202012Validator.check_schema(prop)
        except jsonschema.SchemaError as exc:
            where = json_path(["inputs", name, *exc.absolute_path])
            raise BadInput(meta_file, where, "a valid JSON Schema keyword value",
                           exc.instance, exc.message) from None  # fmt: skip
        errs = list(jsonschema.Draft202012Validator(prop).iter_errors(prop["default"]))
        if errs:
            raise BadInput(meta_file, f"$.inputs.{name}.default", errs[0].message, prop["default"])
    include = []
    for i, rel in enumerate(meta.get("include") or []):
        p = (folder / rel).resolve()
        if confine is not None and not p.is_relative_to(confine):
            raise BadInput(meta_file, f"$.include[{i}]", f"a folder inside its collection ({confine})", rel)  # fmt: skip
        if not p.is_dir():
            raise BadInput(meta_file, f"$.include[{i}]", "an existing folder", rel)
        include.append(p)
    if confine is not None:
        for root in [folder, *include]:
            _confined(root, confine)
    outputs = meta.get("outputs") or {}
    deps = [
        Dep(d["name"], d["tags"], d.get("inputs") or {}, d.get("when") or {})
        for d in meta.get("deps") or []
    ]
    for i, d in enumerate(deps):
        unknown = _template_names(d.inputs, meta_file, f"$.deps[{i}].inputs") - set(inputs)
        if unknown:
            raise BadInput(
                meta_file,
                f"$.deps[{i}].inputs",
                f"templates naming inputs of this script {sorted(inputs)}",
                sorted(unknown),
            )
        for k in sorted(set(d.when) - set(inputs)):
            raise BadInput(meta_file, f"$.deps[{i}].when.{k}", f"an input of this script {sorted(inputs)}", k)  # fmt: skip
    unknown = _template_names(meta.get("resources") or {}, meta_file, "$.resources") - set(inputs)
    if unknown:
        raise BadInput(
            meta_file,
            "$.resources",
            f"templates naming inputs of this script {sorted(inputs)}",
            sorted(unknown),
        )
    resources = dict(meta.get("resources") or {})
    metrics = dict(outputs.get("metrics") or {})
    if resources.get("instrument"):  # its counts are metrics of the script
        resources["instrument"], counted = instruments.declared(resources["instrument"])
        metrics.update(counted)
    return Script(
        requires=Requirements.from_meta(meta.get("requires")),
        alias=meta["alias"],
        uid=meta["uid"],
        tags=frozenset(meta["tags"]),
        description=meta["description"],
        version=str(meta["version"]),
        run=meta["run"],
        path=folder.resolve(),
        env=meta.get("env"),
        inputs=inputs,
        deps=deps,
        metrics=metrics,
        files=outputs.get("files") or {},
        resources=resources,
        include=include,
    )


def with_instrument(script: Script, tool: str) -> Script:
    """The script as an experiment's `instrument:` runs it."""
    t, counted = instruments.declared(tool)
    return replace(
        script,
        resources={**script.resources, "instrument": t},
        metrics={**script.metrics, **counted},
    )


def _template_names(inputs: dict[str, Any], file: Path, where: str) -> set[str]:
    names: set[str] = set()
    for k, v in inputs.items():
        if isinstance(v, str):
            try:
                names |= {f for _, f, _, _ in string.Formatter().parse(v) if f}
            except ValueError as exc:  # "{n": a template with an unmatched brace
                raise BadInput(file, f"{where}.{k}", "a template like '{name}' (or '{{' for a brace)",
                               v, str(exc)) from None  # fmt: skip
    return names


class Registry:
    """All scripts visible from a repo root plus EFFLAB_SCRIPTS_PATH folders."""

    def __init__(
        self,
        roots: list[Path],
        collections: dict[Path, str] | None = None,
        origins: dict[Path, collections.Collection] | None = None,
        lenient: bool = False,
    ):
        """`collections`: root -> "name@commit" for roots that are registered git
        collections; `origins`: root -> its collection, for every registered one.
        `lenient` (listing commands): a script whose meta.yaml is bad is left out and its
        error kept in `broken`, instead of failing the whole registry."""
        self.roots = roots
        self.scripts: dict[str, Script] = {}
        self.broken: list[BadInput] = []
        for root in roots:
            if not root.is_dir():
                continue
            label = (collections or {}).get(root)
            origin = (origins or {}).get(root)
            confine = None  # a collection's includes stay inside its checkout
            if origin:
                confine = root.resolve().parents[len(Path(origin.subdir).parts) - 1]
            for meta in sorted(root.glob("*/meta.yaml")):
                try:
                    s = parse_script(meta.parent, confine)
                except BadInput as exc:
                    if not lenient:
                        raise
                    self.broken.append(exc)
                    continue
                if label:
                    s = replace(s, collection=label)
                if origin:
                    s = replace(s, origin=origin.name, trusted=origin.trusted)
                if s.alias in self.scripts:
                    other = self.scripts[s.alias].meta_file
                    raise BadInput(
                        meta, "$.alias", f"an alias not already used by {other}", s.alias
                    )
                self.scripts[s.alias] = s
        try:
            self._check_uids()
            self._check_cycles()
        except BadInput as exc:  # a dep on a broken script, a cycle: listed, not fatal
            if not lenient:
                raise
            self.broken.append(exc)

    def requirements(self, trusted_only: bool = False) -> Requirements:
        """Every tool and package the registry's scripts declare (`requires:`);
        `trusted_only`: not those of untrusted collections (`efflab doctor` runs each
        declared tool with its declared arguments, on the host)."""
        scripts = [s for s in self.scripts.values() if s.trusted or not trusted_only]
        return Requirements.union(s.requires for s in scripts)

    def untrusted(self) -> list[str]:
        """Names of the untrusted collections that scripts here come from."""
        return sorted({s.origin for s in self.scripts.values() if s.origin and not s.trusted})

    @classmethod
    def for_repo(cls, repo: Path, lenient: bool = False) -> Registry:
        extra = [Path(p) for p in os.environ.get("EFFLAB_SCRIPTS_PATH", "").split(os.pathsep) if p]
        registered = collections.script_roots(repo)
        labels = {root: c.label for root, c in registered if c.commit}
        origins = dict(registered)
        roots = [repo / "scripts", *extra, *(root for root, _ in registered)]
        return cls(roots, labels, origins, lenient)

    def _check_uids(self) -> None:
        seen: dict[str, Script] = {}
        for s in self.scripts.values():
            if s.uid in seen:
                raise BadInput(
                    s.meta_file, "$.uid", f"a uid not used by {seen[s.uid].meta_file}", s.uid
                )
            seen[s.uid] = s

    def _check_cycles(self) -> None:
        state: dict[str, int] = {}  # 1 = on stack, 2 = done

        def visit(s: Script, stack: list[str]) -> None:
            state[s.alias] = 1
            for i, d in enumerate(s.deps):
                dep = self.find(d.tags, s.meta_file, f"$.deps[{i}].tags")
                if state.get(dep.alias) == 1:
                    cycle = " -> ".join([*stack, s.alias, dep.alias])
                    raise BadInput(
                        s.meta_file,
                        f"$.deps[{i}].tags",
                        "an acyclic dependency graph",
                        f"cycle {cycle}",
                    )
                if dep.alias not in state:
                    visit(dep, [*stack, s.alias])
            state[s.alias] = 2

        for s in self.scripts.values():
            if s.alias not in state:
                visit(s, [])

    def query(self, tags: str) -> list[Script]:
        want = [t.strip() for t in tags.split(",") if t.strip()]
        pos = {t for t in want if not t.startswith("-")}
        neg = {t[1:] for t in want if t.startswith("-")}
        return [s for s in self.scripts.values() if pos <= s.tags and not (neg & s.tags)]

    def newest_first(self, scripts: list[Script] | None = None) -> list[Script]:
        """Scripts by their meta.yaml's age, newest first: the user's own (just written
        with `efflab script new`) before the shipped ones."""

        def mtime(s: Script) -> float:
            try:
                return s.meta_file.stat().st_mtime
            except OSError:
                return 0.0

        pool = list(self.scripts.values()) if scripts is None else scripts
        return sorted(pool, key=lambda s: (-mtime(s), s.alias))

    def no_match(self, tags: str) -> str:
        """Why a tag query matched nothing, with what it may have meant."""
        want = [t.strip() for t in tags.split(",") if t.strip()]
        known = {t for s in self.scripts.values() for t in s.tags} | set(self.scripts)
        parts = []
        for t in want:
            bare = t.removeprefix("-")
            if bare not in known:
                near = did_you_mean(bare, [*(x.alias for x in self.newest_first()), *sorted(known)])
                parts.append(f"no script has tag '{bare}'" + (f" ({near})" if near else ""))
        pos = [t for t in want if not t.startswith("-")]
        if not parts and pos:  # every tag exists, only not all together
            some = [s for s in self.newest_first() if set(pos) & s.tags]
            parts.append(
                f"no script has all of {', '.join(pos)}; scripts with some: "
                + ", ".join(f"{s.alias} [{','.join(sorted(s.tags))}]" for s in some[:5])
            )
        newest = ", ".join(s.alias for s in self.newest_first()[:5])
        return "; ".join([*parts, f"newest scripts: {newest}"])

    def find(self, tags: str, file: Path | str | None = None, path: str = "$") -> Script:
        """Exactly one match, or BadInput listing the candidates."""
        if tags in self.scripts and "," not in tags:
            return self.scripts[tags]  # an alias is also a valid query
        hits = self.query(tags)
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise BadInput(
                file, path, "a tag query matching exactly one script", tags, self.no_match(tags)
            )
        cands = ", ".join(f"{s.alias} [{','.join(sorted(s.tags))}]" for s in hits)
        raise BadInput(
            file,
            path,
            "a tag query matching exactly one script",
            tags,
            f"ambiguous: {cands}; add a tag to narrow it",
        )
