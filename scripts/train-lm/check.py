"""Plan-time input checks for ``train-lm``.

Pure and import-free on purpose: the planner calls ``check`` once per point before
anything runs, so a bad grid (heads not dividing d_model, zero steps, a typo in
precision) fails in milliseconds with exit 2 instead of after torch has been imported
and other points have already burnt minutes.  The schema in ``meta.yaml`` carries the
same bounds; repeating them here keeps the check correct even when it is called on
inputs that skipped schema validation (``run.py`` calls it too).
"""

from __future__ import annotations

PRECISIONS = ("fp32", "bf16")
CHECKPOINTING = ("off", "on")

_POSITIVE = (
    "d_model",
    "layers",
    "heads",
    "seq_len",
    "batch_size",
    "steps",
    "threads",
    "vocab_size",
)


def _is_int(value: object) -> bool:
    """True for real integers; bool is excluded because ``True`` would pass as 1."""
    return isinstance(value, int) and not isinstance(value, bool)


def check(inputs: dict) -> list[tuple[str, str, object]]:
    """Return ``(field, expected, found)`` for every impossible input combination."""
    problems: list[tuple[str, str, object]] = []
    for name in _POSITIVE:
        if name in inputs and not (_is_int(inputs[name]) and inputs[name] >= 1):
            problems.append((name, "integer >= 1", inputs[name]))

    d_model, heads = inputs.get("d_model"), inputs.get("heads")
    if _is_int(d_model) and _is_int(heads) and heads >= 1 and d_model % heads:
        problems.append(("d_model", f"a multiple of heads ({heads})", d_model))

    steps, warmup = inputs.get("steps"), inputs.get("warmup_steps", 0)
    if "warmup_steps" in inputs and not (_is_int(warmup) and warmup >= 0):
        problems.append(("warmup_steps", "integer >= 0", warmup))
    elif _is_int(steps) and steps >= 1 and _is_int(warmup) and warmup >= steps:
        # At least one step must remain to be timed, else every metric is undefined.
        problems.append(("warmup_steps", f"fewer than steps ({steps})", warmup))

    if "precision" in inputs and inputs["precision"] not in PRECISIONS:
        problems.append(("precision", f"one of {list(PRECISIONS)}", inputs["precision"]))
    if "checkpointing" in inputs and inputs["checkpointing"] not in CHECKPOINTING:
        problems.append(("checkpointing", f"one of {list(CHECKPOINTING)}", inputs["checkpointing"]))

    lr = inputs.get("lr")
    if "lr" in inputs and not (
        isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0
    ):
        problems.append(("lr", "number > 0", lr))
    return problems
