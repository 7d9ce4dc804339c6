"""Timestamps: one format (UTC ISO 8601 with milliseconds) for every record and ledger line."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso(timespec: str = "milliseconds") -> str:
    return datetime.now(UTC).isoformat(timespec=timespec)
