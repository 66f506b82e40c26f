"""Kubernetes Events for a BenchmarkTask: start, each hook fired/finished, SLA, completion.

Events are derived from the difference between the status before and after a reconcile
(``transitions``, pure), so an operator restart re-derives the same status and posts nothing
twice.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from krally.api.names import API_VERSION, KIND
from krally.api.shards import runner_view
from krally.api.times import format_time
from krally.api.types import ACTIVE, HOOK_FINAL, HOOK_SUCCESS, TERMINAL

NORMAL, WARNING = "Normal", "Warning"
COMPONENT = "krally-operator"

log = logging.getLogger(__name__)


def _results(status: dict[str, Any]) -> dict[str, tuple[int, str, dict[str, Any]]]:
    found = {}
    for hook in status.get("hooks") or []:
        for item in hook.get("results") or []:
            if item.get("job"):
                found[item["job"]] = (hook.get("index", 0), hook.get("name", ""), item)
    return found


def _trigger_text(item: dict[str, Any]) -> str:
    by = item.get("triggeredBy") or {}
    unit, value = by.get("eventType"), by.get("value")
    return f"at {unit} {value}" + (" s" if unit == "time" else "")


def transitions(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(type, reason, message) of every Event the change ``old`` → ``new`` deserves."""
    events: list[tuple[str, str, str]] = []
    seen_warnings = set(old.get("warnings") or ())
    for warning in new.get("warnings") or ():
        if warning not in seen_warnings:
            events.append((WARNING, "SpecWarning", warning))
    old_phase, new_phase = old.get("phase"), new.get("phase")
    if new_phase in ACTIVE and old_phase not in ACTIVE and old_phase not in TERMINAL:
        events.append((NORMAL, "Started", "runner started the load"))
    before = _results(old)
    for job, (index, name, item) in _results(new).items():
        prev = before.get(job, (0, "", {}))[2]
        if not prev:
            events.append(
                (
                    NORMAL,
                    "HookFired",
                    f"hook {index} ({name}) fired {_trigger_text(item)}: Job {job}",
                )
            )
        status = item.get("status")
        if status in HOOK_FINAL and prev.get("status") != status:
            if status == HOOK_SUCCESS:
                events.append(
                    (
                        NORMAL,
                        "HookSucceeded",
                        f"hook {index} ({name}) {_trigger_text(item)}: success",
                    )
                )
            else:
                error = item.get("error") or {}
                events.append(
                    (
                        WARNING,
                        "HookFailed",
                        f"hook {index} ({name}) {_trigger_text(item)}: {status}: "
                        f"{error.get('etype', '')}: {error.get('msg', '')}",
                    )
                )
    if new.get("passSLA") is not None and old.get("passSLA") is None:
        events.append(sla_event(new))
    if new_phase in TERMINAL and old_phase != new_phase:
        message = str(new.get("message") or new_phase)
        if new_phase == "Succeeded":
            events.append((NORMAL, "Completed", _with_figures(message, new)))
        elif new_phase == "Aborted":
            events.append((NORMAL, "Aborted", _with_figures(message, new)))
        else:
            reason = next(
                (c.get("reason") for c in new.get("conditions") or [] if c.get("type") == "Failed"),
                "Failed",
            )
            events.append((WARNING, reason or "Failed", _with_cause(message, new)))
    return events


def _criterion_text(item: dict[str, Any]) -> str:
    detail = " ".join(str(item.get("detail") or "").split())  # atomic details are multi-line
    name = str(item.get("criterion") or "?")
    return f"{name}: {detail}" if detail else name


def sla_event(status: dict[str, Any]) -> tuple[str, str, str]:
    """SLAPassed / SLAFailed with each criterion's detail (what was measured against which
    limit), the failed ones only when it failed: `kubectl describe bt` tells why."""
    sla = [s for s in status.get("sla") or [] if isinstance(s, dict)]
    if status.get("passSLA"):
        passed = "; ".join(_criterion_text(s) for s in sla)
        return NORMAL, "SLAPassed", "every SLA criterion passed" + (f": {passed}" if passed else "")
    failed = [_criterion_text(s) for s in sla if not s.get("success")]
    return WARNING, "SLAFailed", "SLA failed: " + ("; ".join(failed) or "no criterion detail")


def _with_figures(message: str, status: dict[str, Any]) -> str:
    """The final message plus the run's figures from status.display (what `-o wide` shows)."""
    shown = status.get("display") or {}
    figures = [
        f"{label} {shown[key]}"
        for key, label in (
            ("progress", "iterations"),
            ("failures", "failures"),
            ("p95", "p95"),
            ("hooks", "hooks"),
            ("sla", "SLA"),
        )
        if shown.get(key)
    ]
    return f"{message} ({', '.join(figures)})" if figures else message


def _with_cause(message: str, status: dict[str, Any]) -> str:
    """A failure's message with the runner's own error when the phase's message lacks it."""
    error = str(runner_view(status.get("runner") or {}).get("error") or "")
    if error and error not in message:
        return f"{message}: runner error: {error}"
    return message


def event_body(task: dict[str, Any], etype: str, reason: str, message: str) -> dict[str, Any]:
    """A core/v1 Event about ``task`` (what ``kubectl describe bt`` lists)."""
    meta = task["metadata"]
    stamp = format_time(datetime.now(UTC), digits=0)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta['name'][:200]}.{uuid.uuid4().hex[:16]}",
            "namespace": meta["namespace"],
        },
        "involvedObject": {
            "apiVersion": task.get("apiVersion", API_VERSION),
            "kind": task.get("kind", KIND),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": etype,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "eventTime": None,
        "count": 1,
    }


def post(core_api: Any, task: dict[str, Any], events: list[tuple[str, str, str]]) -> None:
    """Post Events; best effort (an Event is never worth failing a reconcile)."""
    for etype, reason, message in events:
        body = event_body(task, etype, reason, message)
        try:
            # Bounded like every operator call (an Event is best effort).
            core_api.create_namespaced_event(
                task["metadata"]["namespace"], body, _request_timeout=10
            )
        except Exception as exc:
            log.warning("could not post Event %s for %s: %s", reason, task["metadata"]["name"], exc)
