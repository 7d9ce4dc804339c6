"""Plan-time rules for serve-engine (pure, fast)."""

from llmserve.checks import check_engine as check  # noqa: F401
