"""The per-firing disruption impact as a compact text table (``krally run`` / ``krally report``).

One row per firing: hook, trigger value, error rate and p95 of the baseline, during and after
windows, the throughput ratio (during / baseline) and the recovery; the notes below it.
"""

from __future__ import annotations

from typing import Any

from krally.results.text_table import ascii_table

HEADERS = ("Hook", "Trigger", "Baseline err / p95", "During err / p95", "After err / p95")
TAIL = ("Thr ratio", "Recovery")
MAX_NOTES = 20


def _window(window: Any) -> str:
    if not isinstance(window, dict):
        return "-"
    rate = window.get("errorRate")
    p95 = window.get("p95")
    rate_text = f"{rate * 100:.1f}%" if isinstance(rate, int | float) else "n/a"
    p95_text = f"{p95:.3f}" if isinstance(p95, int | float) else "n/a"
    return f"{rate_text} / {p95_text}"


def _recovery(entry: dict[str, Any]) -> str:
    if entry.get("recovered") is None:
        return "n/a"
    if entry.get("recovered") is False:
        return "not recovered"
    seconds = entry.get("recoverySeconds") or 0.0
    return f"{seconds:.2f} s" if entry.get("degraded") else "no impact"


def _trigger(entry: dict[str, Any]) -> str:
    by = entry.get("triggeredBy") or {}
    unit = by.get("eventType", by.get("event_type"))
    return f"{unit} {by.get('value')}" if unit else str(by.get("value"))


def render(impact: Any) -> str:
    """The table and its notes ("" when there is no impact to show)."""
    if not isinstance(impact, list) or not impact:
        return ""
    rows: list[list[str]] = []
    notes: list[str] = []
    for entry in impact:
        if not isinstance(entry, dict):
            continue
        hook = f"#{int(entry.get('hook') or 0) + 1} {entry.get('name') or ''}".rstrip()
        ratio = entry.get("throughputRatio")
        rows.append(
            [
                hook,
                _trigger(entry),
                _window(entry.get("baseline")),
                _window(entry.get("during")),
                _window(entry.get("after")),
                f"{ratio:.2f}" if isinstance(ratio, int | float) else "n/a",
                _recovery(entry),
            ]
        )
        notes.extend(f"  {hook} {_trigger(entry)}: {note}" for note in entry.get("notes") or [])
    out = ["\nDisruption impact (error rate / p95 in s, per window):\n"]
    out.append(ascii_table((*HEADERS, *TAIL), rows))
    if notes:
        more = len(notes) - MAX_NOTES
        out.extend(note + "\n" for note in notes[:MAX_NOTES])
        if more > 0:
            out.append(f"  (and {more} more notes)\n")
    return "".join(out)
