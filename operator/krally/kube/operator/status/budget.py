"""The status's byte budget: what is trimmed, and in which order, when hooks print too much."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON (about what the API server stores)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def fit_budget(derived: dict[str, Any], budget: int) -> dict[str, Any]:
    """``derived`` trimmed until it takes at most ``budget`` bytes, whatever hooks print.

    What goes, oldest results first (by firedAt, then hook order), each step only while over:
    hook outputs, then error details, then the rest of long error messages; a trimmed result
    says ``trimmed: true``. Kept always: every result's status, times, trigger and Job, the
    summaries and counters. Last resort: the oldest half of ``result.timeline``, repeatedly.
    """
    size = json_size(derived)
    if size <= budget:
        return derived
    hooks = derived.get("hooks") or []
    order = sorted(
        ((str(r.get("firedAt") or ""), h, n) for h, hook in enumerate(hooks)
         for n, r in enumerate(hook.get("results") or [])),
    )  # fmt: skip
    results = [hooks[h]["results"][n] for _, h, n in order]

    def trim(result: dict[str, Any], drop: Callable[[dict[str, Any]], None]) -> int:
        before = json_size(result)
        drop(result)
        result["trimmed"] = True
        return before - json_size(result)

    def no_output(r: dict[str, Any]) -> None:
        r.pop("output", None)

    def no_details(r: dict[str, Any]) -> None:
        r["error"] = {**r["error"], "details": ""}

    def short_msg(r: dict[str, Any]) -> None:
        r["error"] = {**r["error"], "msg": r["error"]["msg"][:200]}

    steps: list[tuple[Callable[[dict[str, Any]], bool], Callable[[dict[str, Any]], None]]] = [
        (lambda r: "output" in r, no_output),
        (lambda r: bool((r.get("error") or {}).get("details")), no_details),
        (lambda r: len((r.get("error") or {}).get("msg") or "") > 200, short_msg),
    ]
    for wanted, drop in steps:
        for result in results:
            if size <= budget:
                return derived
            if wanted(result):
                size -= trim(result, drop)  # exact: only this result's bytes change
    timeline = (derived.get("result") or {}).get("timeline")
    if size > budget and isinstance(timeline, list):
        timeline = list(timeline)  # the runner's own list (the task's status): not in place
        derived["result"] = {**derived["result"], "timeline": timeline}
    while size > budget and isinstance(timeline, list) and timeline:
        del timeline[: max(1, len(timeline) // 2)]
        size = json_size(derived)
    return derived
