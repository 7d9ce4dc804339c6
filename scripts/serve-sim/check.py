"""Plan-time rules for serve-sim (pure, fast): policy/cluster, ranges, context length."""

from llmserve.checks import check_sim_context as check  # noqa: F401
