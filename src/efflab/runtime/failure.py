"""Why an invocation failed, decided by the code that saw it happen.

The failure kind travels in `failure.json` and the failed run record, so callers
(tournament verification above all) branch on a field the runtime set, never on
error text — text that a script's own stderr could have written.
"""

from __future__ import annotations

SCRIPT = "script"  # the script raised, exited non-zero or returned bad outputs
TIMEOUT = "timeout"  # killed at resources.timeout_s
OOM = "oom"  # killed at the memory limit (or by the kernel's OOM killer)
INFRASTRUCTURE = "infrastructure"  # the runtime itself broke (engine lost, image missing)
KINDS = (SCRIPT, TIMEOUT, OOM, INFRASTRUCTURE)


class InvocationFailed(RuntimeError):
    """A failed invocation with its kind; the message is for people, the kind for code."""

    def __init__(self, kind: str, message: str):
        if kind not in KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; known: {KINDS}")
        super().__init__(message)
        self.kind = kind
