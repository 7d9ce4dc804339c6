"""Plan-time checks: the shared pure rules in ``fpgalib.params`` (no tool, no heavy import)."""

from fpgalib.params import check

__all__ = ["check"]
