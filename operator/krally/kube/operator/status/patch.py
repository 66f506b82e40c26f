"""The merge patch from the status last written to the derived one, and whether it is urgent."""

from __future__ import annotations

from typing import Any

from krally.api.types import (
    NOT_STARTED,
)
from krally.kube.operator.status.derive import OPERATOR_KEYS


def status_patch(current: dict[str, Any], derived: dict[str, Any]) -> dict[str, Any]:
    """The merge patch turning ``current`` into ``derived`` (operator keys only); {} = no write."""
    patch: dict[str, Any] = {}
    for key in OPERATOR_KEYS:
        new = derived.get(key)
        old = current.get(key)
        if new is None:
            if old is not None:
                patch[key] = None
        elif new != old:
            patch[key] = new
    return patch


def urgent(patch: dict[str, Any], current: dict[str, Any]) -> bool:
    """True when a status patch must be written at once: the phase or a condition's status
    changes (kubectl wait and Events must not lag), or a pending hook learns why its pod does not
    start (the cause must be recorded before the Job's timeout removes the pod that shows it).
    Anything else (progress, a hook going pending → running → success) may wait for the
    operator's write period."""
    if "phase" in patch:
        return True
    arming = patch.get("arming") or {}
    if arming.get("loadReleasedAt") and not (current.get("arming") or {}).get("loadReleasedAt"):
        return True  # how long the load waited for its armed pods: recorded with the release
    if _new_not_started(patch.get("hooks"), current.get("hooks")):
        return True
    if "conditions" not in patch:
        return False
    old = {c.get("type"): c.get("status") for c in current.get("conditions") or []}
    new = {c.get("type"): c.get("status") for c in patch["conditions"] or []}
    return old != new


def _new_not_started(new_hooks: Any, old_hooks: Any) -> bool:
    def causes(hooks: Any) -> set[str]:
        return {
            item.get("job", "")
            for hook in hooks or []
            for item in hook.get("results") or []
            if (item.get("error") or {}).get("etype") == NOT_STARTED
        }

    return bool(causes(new_hooks) - causes(old_hooks))


# -- the byte budget ---------------------------------------------------------------------------
