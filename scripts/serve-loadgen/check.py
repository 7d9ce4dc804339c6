"""Plan-time rules for serve-loadgen (pure, fast)."""

from llmserve.checks import check_engine as check  # noqa: F401
