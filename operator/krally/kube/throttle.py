"""The one write throttle of both status writers (the operator's and the runner pod's)."""

from __future__ import annotations


def write_delay(last_write: float, period: float, now: float, urgent: bool) -> float:
    """Seconds to hold a write back: 0 when it is due now (urgent, the first one, or ``period``
    has passed since ``last_write``; monotonic clock, 0 = never written)."""
    if urgent or last_write == 0:
        return 0.0
    return max(0.0, last_write + period - now)
