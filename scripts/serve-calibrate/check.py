"""Plan-time rules for serve-calibrate (pure, fast)."""

from llmserve.checks import check_engine as check  # noqa: F401
