"""Plan-time rules for serve-sim-capacity (pure, fast): serve-sim's rules."""

from llmserve.checks import check_sim_context as check  # noqa: F401
