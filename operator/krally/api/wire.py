"""What the operator and its pods agree on: ports, exit codes, environment variables, the
firing key and the names of a task's children.

The operator builds the runner and hook Jobs from these; the runner pod (``krally runner``) and
the hook pod (``krally hook run``) read and answer with the same. Both sides import them from
here, so the operator never imports a pod's module (nor a pod the operator's).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Final

from krally.api.names import CHILD_PREFIX
from krally.api.shards import FINAL_STATES

# -- ports -------------------------------------------------------------------------------------

# The runner's firing signal: armed hook pods connect here and get their firing pushed.
SIGNAL_PORT: Final = 8087
# An armed hook pod listens here once it watches its task (the Job's tcpSocket startup probe).
READY_PORT: Final = 8086
# The signal's one line each way (a subscription, a firing): longer ones are refused.
SIGNAL_MAX_LINE: Final = 4096
# The GIL switch interval of the runner and of a waiting armed pod (Python's default: 5 ms):
# the thread that sends or receives a firing must not wait that long for the GIL each time it
# comes back from the network while another thread holds it (measured in bench/).
SWITCH_INTERVAL: Final = 0.0005

# -- exit codes --------------------------------------------------------------------------------

# Runner pod: the load finished (0); it was aborted or failed (1); its final status could not
# be written (2). Hook pod: the hook succeeded (0); it ran and failed (1); it could not be
# started (2).
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_INCOMPLETE: Final = 2
# An armed hook pod stopped (SIGTERM: deleted, evicted) before its firing: the hook Job's
# podFailurePolicy ignores it, so the Job controller starts a replacement pod (still one run).
DISARMED_EXIT: Final = 3

# -- environment of the pods -------------------------------------------------------------------

ENV_TASK_NAME: Final = "KRALLY_TASK_NAME"
ENV_TASK_NAMESPACE: Final = "KRALLY_TASK_NAMESPACE"
ENV_TASK_UID: Final = "KRALLY_TASK_UID"
# Runner pod: the spec snapshot (JSON), its address (downward API), how many armed pods wait for
# its signal, how many pods share a distributed load, and the seconds between progress writes.
ENV_SPEC: Final = "KRALLY_SPEC"
ENV_POD_IP: Final = "KRALLY_POD_IP"
ENV_ARMED_PODS: Final = "KRALLY_ARMED_PODS"
ENV_PARALLELISM: Final = "KRALLY_PARALLELISM"
ENV_PROGRESS_PERIOD: Final = "KRALLY_PROGRESS_PERIOD"
# Set by the Job controller in each pod of an Indexed Job: its shard.
ENV_COMPLETION_INDEX: Final = "JOB_COMPLETION_INDEX"
# Hook pod: the hook, its args and the firing (JSON), and where its result goes.
ENV_HOOK: Final = "KRALLY_HOOK"
ENV_TERMINATION_LOG: Final = "KRALLY_TERMINATION_LOG"

# -- the runner's report -----------------------------------------------------------------------

# hooks[].maxDelaySeconds when unset: a firing seen later than this is not run (etype Late).
DEFAULT_MAX_DELAY: Final = 60
# The runner states after which no firing is recorded any more.
RUNNER_DONE: Final = frozenset(FINAL_STATES)

Key = tuple[int, str, str]  # (hook index, unit, value as JSON)


# Each firing becomes a hook Job and a result in the task's status: the runner records at most
# this many per task (past it, firings are counted in status.runner.droppedFirings), so the
# object stays far below etcd's limit; the operator's admission bound may only be lower.
MAX_FIRINGS = 500


def firing_key(hook: Any, unit: Any, value: Any) -> Key:
    """One firing's identity, however its parts were spelled (the status, a signal line)."""
    return int(hook), str(unit), json.dumps(value, sort_keys=True)


# -- names of a task's children ----------------------------------------------------------------

MAX_NAME: Final = 63


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def child_name(task: str, suffix: str, prefix: str = "") -> str:
    """``<prefix><task><suffix>``, at most 63 characters: a long task name is cut and made
    unique again with a hash of the full name (two long names sharing a prefix must not
    collide)."""
    name = f"{prefix}{task}{suffix}"
    if len(name) <= MAX_NAME:
        return name
    keep = MAX_NAME - len(prefix) - len(suffix) - 9
    return f"{prefix}{task[:keep].rstrip('-.')}-{short_hash(task)}{suffix}"


def runner_name(task: str) -> str:
    """Name of the runner Job and of its ServiceAccount, Role and RoleBinding:
    ``krally-<task>-runner`` (the prefix keeps it clear of ordinary names such as a
    ``gitlab-runner`` ServiceAccount next to a task ``gitlab``)."""
    return child_name(task, "-runner", CHILD_PREFIX)


def hook_service_account_name(task: str) -> str:
    """The per-task ServiceAccount hooks run as when they name none: ``krally-<task>-hooks``."""
    return child_name(task, "-hooks", CHILD_PREFIX)


def _value_token(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    token = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return token or short_hash(text)


def hook_job_name(task: str, index: int, unit: str, value: Any) -> str:
    """Deterministic name of the Job of one firing: the (hook, unit, value) identity makes a
    retried or restarted create return 409 instead of firing twice."""
    return child_name(task, f"-h{index}-{(unit or 'x')[0]}{_value_token(value)}")


def task_label(task: str) -> str:
    """The ``krally.dev/task`` label of a task's children, also the key the operator's store
    keeps the task under: the name itself up to 63 characters, else cut and suffixed with a
    hash of the full name, so two long names sharing 63 characters never share state."""
    if len(task) <= MAX_NAME:
        return task
    keep = MAX_NAME - 9
    return f"{task[:keep].rstrip('-.')}-{short_hash(task)}"
