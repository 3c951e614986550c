"""Reading the timestamps senders write: webhooks, code-host APIs and reconciler objects each use
ISO-8601 with or without a zone, GitLab's ``2026-01-01 10:00:00 UTC`` or epoch seconds. One reader,
so a time means the same wherever it came from (deployments derived from a webhook and from a
``kubectl`` dump must land on the same instant)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 / GitLab-style / epoch timestamps; naive ones are read as UTC; junk gives None,
    and so does a time no datetime holds (epoch 9.2e18 seconds, NaN, year 1 east of UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(" UTC"):
        text = text[:-4]
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z")
        except ValueError:
            return None
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:
        return None
