"""Polling with a failure message that says what was awaited and what was last seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not hold in time (an AssertionError so pytest reports it as a failure)."""


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    message: str = "",
    interval: float = 0.2,
) -> T:
    """Call `predicate` until it returns a truthy value and return that value.

    An exception from the predicate counts as "not yet" (the object may not exist yet); the last
    value and the last exception are both in the failure message.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
        except Exception as exc:  # "not yet"; reported on timeout
            last_error = exc
        else:
            if value:
                return value
            last, last_error = value, None
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            detail = f"last value: {last!r}"
            if last_error is not None:
                detail += f"; last error: {type(last_error).__name__}: {last_error}"
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}; {detail}")
        time.sleep(interval)
