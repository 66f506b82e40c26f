"""The labels of a task's children: what the operator's store and selectors find them by."""

from __future__ import annotations

import json
import re
from typing import Any

from krally.api.names import (
    LABEL_HOOK_INDEX,
    LABEL_ROLE,
    LABEL_TASK,
    LABEL_TRIGGER_UNIT,
    LABEL_TRIGGER_VALUE,
    MANAGED_BY,
    MANAGER,
    ROLE_HOOK,
)
from krally.api.wire import MAX_NAME, task_label


def label_value(value: Any) -> str:
    """A value usable as a label value (≤ 63 chars of [A-Za-z0-9._-])."""
    text = value if isinstance(value, str) else json.dumps(value)
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    return text[:MAX_NAME].rstrip("._-")


def task_labels(task_name: str, role: str) -> dict[str, str]:
    return {MANAGED_BY: MANAGER, LABEL_TASK: task_label(task_name), LABEL_ROLE: role}


def hook_labels(task_name: str, index: int, unit: str, value: Any) -> dict[str, str]:
    return {
        **task_labels(task_name, ROLE_HOOK),
        LABEL_HOOK_INDEX: str(index),
        LABEL_TRIGGER_UNIT: label_value(unit),
        LABEL_TRIGGER_VALUE: label_value(value),
    }
