"""Webhook notifications: a nightly's or a comparison's summary POSTed as
Slack-compatible JSON (`{"text": ...}` in Slack's mrkdwn; Mattermost, Rocket.Chat and
Teams' Slack-compatible endpoints take the same).

The URL comes from `--notify URL` or $EFFLAB_NOTIFY_URL (a CI secret), is checked
before anything runs (http or https, a host), and a failed POST is a warning: the
measurement and its exit status stand whether or not the chat heard of it.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from efflab.core.errors import BadInput

ENV = "EFFLAB_NOTIFY_URL"
TIMEOUT_S = 10.0
MAX_LINES = 15  # a chat message is a summary; the full report is linked or attached


def target(given: str | None) -> str | None:
    """The webhook URL (option, else $EFFLAB_NOTIFY_URL), checked; None: no webhook."""
    url = given if given is not None else os.environ.get(ENV) or None
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        where = "--notify" if given is not None else f"${ENV}"
        raise BadInput(where, "$", "an http(s) URL of a webhook", url)
    return url


def payload(title: str, lines: list[str], link: str | None = None) -> dict[str, str]:
    shown = lines[:MAX_LINES]
    if len(lines) > MAX_LINES:
        shown.append(f"... and {len(lines) - MAX_LINES} more")
    text = "\n".join([f"*{title}*", *shown] + ([f"<{link}|full report>"] if link else []))
    return {"text": text}


def post(url: str, body: dict[str, str]) -> str | None:
    """POST the JSON; None on a 2xx answer, else why not (for a warning)."""
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "efflab"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:  # noqa: S310 (checked scheme)
            code = resp.status
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))
    return None if 200 <= code < 300 else f"HTTP {code}"
