"""status.display: the short strings of `kubectl get -o wide` and Argo CD's health check."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from krally.api.types import Display


def recovery_text(impact: Any) -> str:
    """The slowest recovery over the analysed firings, for `kubectl get` (empty: none)."""
    if not isinstance(impact, list):
        return ""
    verdicts = [i for i in impact if isinstance(i, dict) and isinstance(i.get("recovered"), bool)]
    if not verdicts:
        return ""
    if not all(i["recovered"] for i in verdicts):
        return "not recovered"
    return f"{max(float(i.get('recoverySeconds') or 0) for i in verdicts):.1f}s"


def progress_text(progress: dict[str, Any]) -> str:
    if not progress:
        return ""
    done = progress.get("done", 0)
    total = progress.get("total")
    return f"{done}/{total}" if total is not None else str(done)


# display.failedSLA is a column, not a report: the full details are in status.sla and Events.
MAX_FAILED_SLA = 120
# A criterion without a comparison to show (e.g. performance_degradation) shows its detail's
# first line, cut to this.
MAX_CRITERION_TEXT = 60
# Rally's pseudo-criteria whose name says it all (their detail is a fixed sentence).
_SELF_EXPLAINING = frozenset({"aborted_on_sla", "aborted_manually"})

_VERDICT_SUFFIX = re.compile(r"\s+-\s+(?:Failed|Passed)\s*$")


def short_number(value: float) -> str:
    """Three significant digits, never an exponent: 0.0123, 1.23, 12.3, 1234."""
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    decimals = max(0, 2 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def failures_text(progress: Mapping[str, Any], result: Mapping[str, Any] | None) -> str:
    """Failed iterations, with their share once any failed: '0', '32 (2.1%)'; '' before the
    load started. The final summary wins over the live progress counters."""
    source = result if result and "iterations" in result else progress
    count = source.get("iterations" if source is result else "done")
    failures = source.get("failures") or 0
    if not isinstance(count, int) or not isinstance(failures, int):
        return ""
    if not failures or not count:
        return str(failures)
    return f"{failures} ({short_number(100.0 * failures / count)}%)"


def p95_text(result: Mapping[str, Any] | None) -> str:
    """The p95 iteration duration of the final summary, e.g. '0.012s'; '' until then."""
    p95 = ((result or {}).get("durations") or {}).get("p95")
    if isinstance(p95, bool) or not isinstance(p95, int | float):
        return ""
    return f"{short_number(float(p95))}s"


def sla_short(item: Mapping[str, Any]) -> str:
    """One SLA result in a few words: the short form its plugin wrote (``failure_rate 2.1% >
    1%``, :meth:`krally.task.sla.SLA.short`), else the criterion and its detail's first line
    (cut), or the criterion alone for Rally's pseudo-criteria."""
    criterion = str(item.get("criterion") or "?")
    short = item.get("short")
    if isinstance(short, str) and short:
        return short
    detail = str(item.get("detail") or "")
    if criterion in _SELF_EXPLAINING or not detail.strip():
        return criterion
    first = _VERDICT_SUFFIX.sub("", detail.strip().splitlines()[0])
    return _clip(f"{criterion}: {first}", MAX_CRITERION_TEXT)


def failed_sla_text(sla: Any, limit: int = MAX_FAILED_SLA) -> str:
    """The failed criteria, shortest form, '; '-separated within ``limit`` characters; those
    that do not fit are counted ('; +2 more')."""
    if not isinstance(sla, list):
        return ""
    shorts = [sla_short(i) for i in sla if isinstance(i, dict) and i.get("success") is False]
    text = ""
    for shown, short in enumerate(shorts):
        rest = len(shorts) - shown - 1
        more = f"; +{rest} more" if rest else ""
        candidate = f"{text}; {short}" if text else short
        if len(candidate) + len(more) <= limit:
            text = candidate
            continue
        left = len(shorts) - shown
        if not text:  # not even the first fits: cut it
            return _clip(short, limit - len(more)) + more
        return f"{text}; +{left} more"
    return text


def display(
    progress: Mapping[str, Any],
    result: Mapping[str, Any] | None,
    sla: Any,
    pass_sla: bool | None,
    *,
    hooks: str,
    recovery: str,
) -> Display:
    """status.display: every `kubectl get` column's text, computed once here (a printer
    column can only show a field, and Argo CD's health Lua cannot format numbers)."""
    return {
        "progress": progress_text(dict(progress)),
        "hooks": hooks,
        "sla": "Passed" if pass_sla is True else "Failed" if pass_sla is False else "",
        "recovery": recovery,
        "failures": failures_text(progress, result),
        "p95": p95_text(result),
        "failedSLA": failed_sla_text(sla) if pass_sla is False else "",
    }


EMPTY_DISPLAY: Display = {
    "progress": "",
    "hooks": "",
    "sla": "",
    "recovery": "",
    "failures": "",
    "p95": "",
    "failedSLA": "",
}
