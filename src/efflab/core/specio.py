"""Loading YAML/JSON specs and validating them against shipped JSON Schemas.

Why one module: every spec kind (script meta, experiment, paper, tournament, suite)
must report errors the same way (file + JSON path + expected + found).
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from efflab.core.errors import BadInput, WriteFailed, did_you_mean, json_path

# Caps against hostile specs (a billion-laughs alias bomb, 3000-deep nesting, a huge
# file); each is an environment variable so a lab with bigger specs can raise it.
LIMITS = {
    "EFFLAB_MAX_SPEC_BYTES": 16 << 20,
    "EFFLAB_MAX_SPEC_DEPTH": 64,
    "EFFLAB_MAX_SPEC_NODES": 1_000_000,  # after expanding YAML aliases
    "EFFLAB_MAX_JSON_BYTES": 64 << 20,  # one run record, manifest, verdicts file, ...
    "EFFLAB_MAX_TABLE_BYTES": 1 << 30,  # one table version, uncompressed (a Parquet bomb)
}


def limit(name: str) -> int:
    """A cap from LIMITS, overridden by the environment variable of that name."""
    text = os.environ.get(name, "")
    return int(text) if text.isdigit() and int(text) > 0 else LIMITS[name]


def _kind(mode: int) -> str:
    for test, word in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):  # fmt: skip
        if test(mode):
            return word
    return "not a regular file"


def read_spec_text(path: Path) -> str:
    """The text of a spec file: a regular file (never a FIFO that would block) under
    the size cap, UTF-8."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise BadInput(path, "$", "an existing file", "no such file") from None
    except OSError as exc:
        raise BadInput(path, "$", "a readable file", exc.strerror or str(exc)) from None
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(path, "$", "a regular file", _kind(st.st_mode))
    cap = limit("EFFLAB_MAX_SPEC_BYTES")
    if st.st_size > cap:
        raise BadInput(path, "$", f"a spec of at most {cap} bytes", f"{st.st_size} bytes",
                       "raise EFFLAB_MAX_SPEC_BYTES to allow it")  # fmt: skip
    try:
        with open(path, "rb") as fh:
            data = fh.read(cap + 1)
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(path, "$", "a readable UTF-8 file", str(exc)) from None


def read_json_file(
    path: Path, what: str = "a JSON file", cap: int | None = None, shown: str | Path | None = None
) -> Any:
    """A JSON file (run record, manifest, verdicts) under a size cap: a regular file
    (never a FIFO that would block), at most EFFLAB_MAX_JSON_BYTES, valid JSON not
    nested past what the parser can take. Anything else is BadInput naming the file
    (as `shown`: where a staged copy came from)."""
    try:
        return _read_json_file(path, what, cap or limit("EFFLAB_MAX_JSON_BYTES"))
    except BadInput as exc:
        if shown is not None:
            exc.file = shown
        raise


def _read_json_file(path: Path, what: str, cap: int) -> Any:
    return parse_json(read_capped(path, what, cap), path, what)


def read_capped(path: Path, what: str = "a JSON file", cap: int | None = None) -> bytes:
    """The bytes of a regular file of at most `cap` (EFFLAB_MAX_JSON_BYTES) bytes, opened
    without blocking (a FIFO is refused, never waited on); BadInput otherwise."""
    cap = cap or limit("EFFLAB_MAX_JSON_BYTES")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise BadInput(path, "$", what, "no such file") from None
    except OSError as exc:
        raise BadInput(path, "$", f"{what} that can be read", exc.strerror or str(exc)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadInput(path, "$", f"{what} (a regular file)", _kind(st.st_mode))
        if st.st_size > cap:
            raise BadInput(path, "$", f"{what} of at most {cap} bytes", f"{st.st_size} bytes",
                           "raise EFFLAB_MAX_JSON_BYTES to allow it")  # fmt: skip
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(cap + 1)
    finally:
        os.close(fd)
    if len(data) > cap:
        raise BadInput(path, "$", f"{what} of at most {cap} bytes", "a growing file")
    return data


def parse_json(data: bytes, path: str | Path, what: str = "a JSON file") -> Any:
    """JSON from bytes; a syntax error, bad UTF-8 or a bomb of nesting is BadInput."""
    try:
        return json.loads(data)
    except RecursionError:
        raise BadInput(path, "$", f"{what} nested less deeply", "too deep to read") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadInput(path, "$", f"{what} (valid JSON)", str(exc)[:200]) from None


class _TooDeep(Exception):
    def __init__(self, mark):
        self.mark = mark


class _SpecLoader(yaml.SafeLoader):
    """SafeLoader that stops at the nesting cap while composing (before recursion
    runs out)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth, self._max_depth = 0, limit("EFFLAB_MAX_SPEC_DEPTH")

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > self._max_depth:
                raise _TooDeep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _where(mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"


def _inspect(path: Path, root: yaml.Node) -> None:
    """Before constructing anything: the expanded size (aliases count every time they
    are used), duplicate keys and unhashable keys, each with its JSON path."""
    cap = limit("EFFLAB_MAX_SPEC_NODES")
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, parts: tuple) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 1  # a recursive alias counts once
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for i, child in enumerate(node.value):
                total += size(child, (*parts, i))
        elif isinstance(node, yaml.MappingNode):
            seen: set[tuple[str, str]] = set()
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    raise BadInput(path, json_path(parts), "mapping keys that are plain values",
                                   f"a {'list' if isinstance(key, yaml.SequenceNode) else 'mapping'}"
                                   f" used as a key at {_where(key.start_mark)}")  # fmt: skip
                if (key.tag, key.value) in seen and key.tag != "tag:yaml.org,2002:merge":
                    raise BadInput(path, json_path((*parts, key.value)), "each key once",
                                   f"duplicate key {key.value!r} at {_where(key.start_mark)}")  # fmt: skip
                seen.add((key.tag, key.value))
                total += 1 + size(value, (*parts, key.value))
        if total > cap:
            raise BadInput(path, json_path(parts), f"at most {cap} values after expanding aliases",
                           "more (an alias bomb?)", "raise EFFLAB_MAX_SPEC_NODES to allow it")  # fmt: skip
        sizes[id(node)] = total
        return total

    size(root, ())


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML (or JSON) file; syntax errors become BadInput with the line."""
    path = Path(path)
    text = read_spec_text(path)
    loader = _SpecLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _inspect(path, node)
        return loader.construct_document(node)
    except _TooDeep as exc:
        cap = limit("EFFLAB_MAX_SPEC_DEPTH")
        raise BadInput(path, "$", f"nesting at most {cap} levels deep",
                       f"deeper at {_where(exc.mark)}", "raise EFFLAB_MAX_SPEC_DEPTH to allow it") from None  # fmt: skip
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise BadInput(path, "$", "valid YAML", f"{problem} at {_where(mark)}") from None
    except RecursionError:
        raise BadInput(path, "$", "a spec nested less deeply", "too deep to read") from None
    finally:
        loader.dispose()


@cache
def schema(name: str) -> dict[str, Any]:
    """A JSON Schema shipped in efflab/schemas/."""
    text = (
        resources.files("efflab.core")
        .joinpath("schemas")
        .joinpath(f"{name}.schema.json")
        .read_text()
    )
    return json.loads(text)


@cache
def _validator(name: str):
    sch = schema(name)
    cls = jsonschema.validators.validator_for(sch)
    return cls(sch)


def describe_error(error) -> tuple[str, str]:
    """Turn a jsonschema error into (expected, found) phrases."""
    v = error.validator
    if v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"required field '{missing}'", "it missing"
    if v == "additionalProperties":
        return "only known fields", error.message
    if v == "type":
        return f"type {error.validator_value}", error.instance
    if v == "enum":
        return f"one of {error.validator_value}", error.instance
    if v == "pattern":
        return f"a string matching {error.validator_value}", error.instance
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[v]
        return f"a value {op} {error.validator_value}", error.instance
    return error.message, error.instance


def validate(
    instance: Any,
    schema_name_or_dict: str | dict,
    file: str | Path | None,
    prefix: tuple[Any, ...] = (),
) -> None:
    """Validate; raise BadInput for the most relevant (deepest) error."""
    if isinstance(schema_name_or_dict, str):
        validator = _validator(schema_name_or_dict)
    else:
        cls = jsonschema.validators.validator_for(schema_name_or_dict)
        validator = cls(schema_name_or_dict)
    errors = list(validator.iter_errors(instance))
    if not errors:
        return
    err = jsonschema.exceptions.best_match(errors)
    where = list(prefix) + list(err.absolute_path)
    expected, found = describe_error(err)
    extra = _unknown_field(err)
    # name the field itself, and what it may have meant — but only a field that looks
    # like a name: a foreign file parsed as YAML (a submission naming /etc/shadow) must
    # not have its lines echoed into a message that reaches a ledger or a page
    if extra is not None and _NAME_LIKE.fullmatch(extra):
        known = sorted((err.schema.get("properties") or {}).keys())
        near = did_you_mean(extra, known)
        expected = f"a known field ({near})" if near else f"one of the fields {', '.join(known)}"
        raise BadInput(file, json_path([*where, extra]), expected, extra)
    raise BadInput(file, json_path(where), expected, found)


_NAME_LIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


def _unknown_field(error) -> str | None:
    """The first field an additionalProperties error is about (None: another error)."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return None
    props = error.schema.get("properties") or {}
    patterns = list((error.schema.get("patternProperties") or {}).keys())
    for k in error.instance:
        if k not in props and not any(re.search(p, str(k)) for p in patterns):
            return str(k)
    return None


def file_mode(mode: int = 0o666) -> int:
    """`mode` under this process's umask (what a plain open() would give)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return mode & ~int(line.split()[1], 8)
    except OSError:
        pass
    return mode & ~0o022


def write_failed(path: str | Path, exc: OSError) -> WriteFailed:
    """The one-line run failure for a write the disk refused."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return WriteFailed(f"no space left writing {path}; nothing was half-written")
    return WriteFailed(f"cannot write {path}: {exc.strerror or exc}; nothing was half-written")


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temp file in the same folder + rename: readers never see half a file.
    A full or read-only disk is a WriteFailed (exit 1) naming the file."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, file_mode())  # mkstemp makes 0600; results are as readable as the rest
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise write_failed(path, exc) from None
    except BaseException:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def canonical_json(data: Any) -> str:
    """Stable serialisation used for hashing (keys sorted, no whitespace)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
