"""Plan-time check for edge-train: reject model strings the zoo cannot build (pure, no torch)."""

from __future__ import annotations

import re

_MODEL = re.compile(r"^(mlp|cnn)-([0-9]+)$")
MAX_SIZE = {"mlp": 8192, "cnn": 512}  # beyond this training blows the 2-core time budget


def check(inputs: dict) -> list[tuple[str, str, object]]:
    """(field, expected, found) for each impossible input; empty when fine."""
    model = inputs.get("model", "mlp-1024")
    m = _MODEL.match(str(model))
    if not m:
        fam = str(model).split("-", 1)[0]
        if fam not in MAX_SIZE:
            return [("model", "family 'mlp' or 'cnn' (e.g. mlp-1024, cnn-64)", model)]
        return [("model", f"'{fam}-<size>' with an integer size >= 1", model)]
    fam, size = m.group(1), int(m.group(2))
    if size < 1:
        return [("model", "size >= 1", model)]
    if size > MAX_SIZE[fam]:
        return [("model", f"{fam} size <= {MAX_SIZE[fam]}", model)]
    return []
