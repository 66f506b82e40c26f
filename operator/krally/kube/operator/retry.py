"""The operator's one retry policy: which API failures are transient (retried in place, then
after a capped, jittered back-off) and which are refusals for good (recorded, never retried).

401 and 403 (RBAC, a quota) are taken as permanent only after FORBIDDEN_PATIENCE attempts in a
row: an API server that just restarted answers 403 until its authorizer has caught up, and a
quota may free up. The official client blocks, so every call runs off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("krally.operator")

_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
# 4xx that a retry cannot change: bad request (an admission webhook's denial), not found (the
# namespace), gone, too large, invalid (a ValidatingAdmissionPolicy, a bad object).
_PERMANENT_STATUS = frozenset({400, 404, 405, 406, 410, 413, 415, 422})
_FORBIDDEN_STATUS = frozenset({401, 403})
# Attempts (with the back-off between them: about 10 s in all) before a 401/403 counts as final.
FORBIDDEN_PATIENCE = 6
# Every API call of the operator gives up after this many seconds (a hung connection during an
# API outage must not hold a task's pass forever); the retry policy then takes over.
REQUEST_TIMEOUT = 20.0


@dataclass(frozen=True)
class RetryPolicy:
    """In place: ``delays`` between attempts of one transient call (each jittered down to half).
    Between passes: ``backoff(n)`` after the n-th failure in a row, capped exponential with
    jitter. A permanent refusal is never retried (the caller records it)."""

    delays: tuple[float, ...] = (0.5, 1.0, 2.0)
    base: float = 0.5
    max_backoff: float = 10.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, failures: int) -> float:
        """min(base * 2^(n-1), max_backoff), drawn uniformly from its upper half: retries of
        many tasks spread out instead of hitting a recovering API server at once."""
        ceiling = min(self.base * 2 ** max(0, min(failures, 64) - 1), self.max_backoff)
        return self.rng.uniform(ceiling / 2, ceiling)

    @staticmethod
    def transient(exc: BaseException) -> bool:
        status = getattr(exc, "status", None)
        if isinstance(status, int) and status:
            return status in _TRANSIENT_STATUS
        # No HTTP status (0: the client's own ApiException without a response): no answer.
        return (
            isinstance(exc, ConnectionError | TimeoutError)
            or type(exc).__module__.startswith("urllib3")
            or type(exc).__name__ == "ApiException"
        )

    @staticmethod
    def permanent(exc: BaseException, attempts: int = 1) -> bool:
        """The API server refused the request for good (retrying only repeats the refusal),
        ``attempts`` being how many times in a row it answered so."""
        status = getattr(exc, "status", None)
        if status in _FORBIDDEN_STATUS:
            return attempts >= FORBIDDEN_PATIENCE
        return isinstance(status, int) and status in _PERMANENT_STATUS

    async def run(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_error: Callable[[Callable[..., Any], BaseException], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        """``fn(*args, **kwargs)`` off the event loop, retried while transient; ``on_error``
        hears of every failed attempt (the metrics count them)."""
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        for delay in (*self.delays, None):
            try:
                return await asyncio.to_thread(fn, *args, **kwargs)
            except Exception as exc:
                if on_error is not None:
                    on_error(fn, exc)
                if delay is None or not self.transient(exc):
                    raise
                wait = self.rng.uniform(delay / 2, delay)
                log.warning("API call failed (%s); retrying in %.1f s", short_error(exc), wait)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")


def refusal(exc: BaseException) -> tuple[str, str]:
    """(reason, message) of an API refusal, as the API server's Status says them."""
    status = getattr(exc, "status", None)
    reason = str(getattr(exc, "reason", "") or "")
    message = ""
    try:
        body = json.loads(getattr(exc, "body", None) or "{}")
    except (TypeError, ValueError):
        body = {}
    if isinstance(body, dict):
        reason = str(body.get("reason") or reason)
        message = str(body.get("message") or "")
    return reason or "Refused", f"{status} {reason}: {message or exc}"[:1000]


def short_error(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status:
        return f"{status} {getattr(exc, 'reason', '')}"
    # urllib3's errors repeat the whole URL and cause: one short line is enough for a retry.
    text = str(exc)
    return f"{type(exc).__name__}: {text[-160:] if len(text) > 160 else text}"
