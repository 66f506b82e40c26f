"""The runner's final report: one decision of the state a load ended in, and its exit code.

``Aborted`` when the pod was stopped (SIGTERM: pod deletion, eviction, ``spec.abort``),
``Error`` when the load (or a pod of a distributed one) failed, else ``Finished``; the same rule
for a whole load, for one shard and for pod 0's merge of the shards.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from krally.api.times import rfc3339
from krally.api.wire import EXIT_FAILED, EXIT_OK
from krally.kube.pods.runner.translate import error_text

FINISHED = "Finished"
ABORTED = "Aborted"
ERROR = "Error"


def final_state(
    stop_reason: Sequence[str],
    result: dict[str, Any],
    problems: Sequence[str] = (),
    tolerate_problems: bool = False,
) -> tuple[str, str | None]:
    """(state, error) of a load that ran: stopped → Aborted; the engine's ``result`` has an
    error → Error; other pods' ``problems`` → Error unless tolerated (podFailurePolicy
    Continue, where they become warnings); else Finished."""
    if stop_reason:
        return ABORTED, f"stopped by {stop_reason[0]}"
    if result.get("error"):
        return ERROR, error_text(result["error"])
    if problems and not tolerate_problems:
        return ERROR, "; ".join(problems)
    return FINISHED, None


def exit_code(state: str) -> int:
    return EXIT_OK if state == FINISHED else EXIT_FAILED


def exception_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def ended(state: str, error: str | None = None, **fields: Any) -> dict[str, Any]:
    """The final fields of ``status.runner`` (or of a pod's report): state, error if any,
    finishedAt now, and ``fields``."""
    final: dict[str, Any] = {"state": state, **fields, "finishedAt": rfc3339(time.time())}
    if error:
        final["error"] = error
    return final
