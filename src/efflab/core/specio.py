"""Loading YAML/JSON specs and validating them against shipped JSON Schemas.

Why one module: every spec kind (script meta, experiment, paper, tournament, suite)
must report errors the same way (file + JSON path + expected + found).
"""

from __future__ import annotations

import json
import os
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from efflab.core.errors import BadInput, json_path


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys: a silently-overwritten key is a bug."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML (or JSON) file; syntax errors become BadInput with the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(path, "$", "an existing file", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(path, "$", "a readable UTF-8 file", str(exc)) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = getattr(exc, "problem", None) or str(exc)
        raise BadInput(path, "$", "valid YAML", f"{problem} at {where}") from None


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
    expected, found = describe_error(err)
    raise BadInput(file, json_path(list(prefix) + list(err.absolute_path)), expected, found)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temp file in the same folder + rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def canonical_json(data: Any) -> str:
    """Stable serialisation used for hashing (keys sorted, no whitespace)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
