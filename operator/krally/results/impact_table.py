"""The per-firing disruption impact as a compact text table (``krally run`` / ``krally report``).

One row per firing: hook, trigger value, error rate and p95 of the baseline, during and after
windows, the throughput ratio (during / baseline) and the recovery; the notes below it.
"""

from __future__ import annotations

from typing import Any

from krally.results.text_table import ascii_table
from krally.task.impact_config import ImpactConfig

HEADERS = ("Hook", "Trigger", "Baseline err / p95", "During err / p95", "After err / p95")
TAIL = ("Thr ratio", "Recovery")
MAX_NOTES = 20


def window_text(window: Any) -> str:
    if not isinstance(window, dict):
        return "-"
    rate = window.get("errorRate")
    p95 = window.get("p95")
    rate_text = f"{rate * 100:.1f}%" if isinstance(rate, int | float) else "n/a"
    p95_text = f"{p95:.3f}" if isinstance(p95, int | float) else "n/a"
    return f"{rate_text} / {p95_text}"


def lowest_throughput_ratio(entry: dict[str, Any]) -> float | None:
    """The lowest throughput of the during and after windows over the baseline's."""
    base = (entry.get("baseline") or {}).get("throughput")
    if not isinstance(base, int | float) or not base:
        return None
    windows = [entry.get(n) for n in ("during", "after")]
    known = [
        w["throughput"]
        for w in windows
        if isinstance(w, dict) and isinstance(w.get("throughput"), int | float)
    ]
    return min(known) / base if known else None


def tolerated_throughput_ratio(entry: dict[str, Any]) -> float:
    """The throughput tolerance the verdict was judged by (the default for older results)."""
    tolerance = entry.get("tolerance")
    value = tolerance.get("throughputRatio") if isinstance(tolerance, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return ImpactConfig().throughput_ratio


def recovery_text(entry: dict[str, Any]) -> str:
    """The recovery cell: seconds, "not recovered", "n/a" without a verdict, and "no impact"
    only where no window's throughput fell below the tolerance either."""
    if entry.get("recovered") is None:
        return "n/a"
    if entry.get("recovered") is False:
        return "not recovered"
    if entry.get("degraded"):
        return f"{entry.get('recoverySeconds') or 0.0:.2f} s"
    low, tolerated = lowest_throughput_ratio(entry), tolerated_throughput_ratio(entry)
    if low is not None and low < tolerated:
        return f"throughput {low:.2f} x baseline (tolerance {tolerated:g})"
    return "no impact"


def trigger_label(entry: dict[str, Any]) -> str:
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
                trigger_label(entry),
                window_text(entry.get("baseline")),
                window_text(entry.get("during")),
                window_text(entry.get("after")),
                f"{ratio:.2f}" if isinstance(ratio, int | float) else "n/a",
                recovery_text(entry),
            ]
        )
        notes.extend(
            f"  {hook} {trigger_label(entry)}: {note}" for note in entry.get("notes") or []
        )
    out = ["\nDisruption impact (error rate / p95 in s, per window):\n"]
    out.append(ascii_table((*HEADERS, *TAIL), rows))
    if notes:
        more = len(notes) - MAX_NOTES
        out.extend(note + "\n" for note in notes[:MAX_NOTES])
        if more > 0:
            out.append(f"  (and {more} more notes)\n")
    return "".join(out)
