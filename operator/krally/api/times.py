"""The one time format of the API: RFC 3339 in UTC (status, annotations, Events, reports)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def format_time(value: float | datetime, *, digits: int = 3, zone: bool = True) -> str:
    """Epoch seconds or datetime → ``...T11:02:03.456Z``: ``digits`` of the second (0, 3 or 6),
    ``zone=False`` without the trailing ``Z`` (Rally's report format)."""
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(float(value), UTC)
    text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    text = text[: len(text) - 6 + digits] if digits else text[:-7]
    return text + "Z" if zone else text


def rfc3339(value: float | datetime | None) -> str | None:
    """Status timestamps (milliseconds, ``Z``); None or 0 → None."""
    if value is None or (not isinstance(value, datetime) and not value):
        return None
    return format_time(value)


def parse_time(value: Any) -> float | None:
    """RFC 3339 string or epoch number → epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
