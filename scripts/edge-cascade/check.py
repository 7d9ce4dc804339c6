"""Plan-time check for edge-cascade: a cascade needs two different models (pure)."""

from __future__ import annotations


def check(inputs: dict) -> list[tuple[str, str, object]]:
    """(field, expected, found) triples; empty when the combination is possible."""
    small = (inputs.get("small", "mlp-32"), inputs.get("small_precision", "fp32"))
    large = (inputs.get("large", "cnn-64"), inputs.get("large_precision", "fp32"))
    if small == large:
        return [("large", "a model/precision different from the small one", large[0])]
    return []
