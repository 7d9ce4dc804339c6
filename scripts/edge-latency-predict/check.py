"""Plan-time check: the adaptation set must leave architectures to score on."""


def check(inputs: dict) -> list[tuple[str, str, object]]:
    archs, adapt = inputs.get("archs", 40), inputs.get("adapt", 10)
    if isinstance(archs, int) and isinstance(adapt, int) and archs - adapt < 8:
        return [("adapt", f"at most archs - 8 = {archs - 8} (8 held-out archs to score)", adapt)]
    return []
