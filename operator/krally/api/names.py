"""Group, version, kind and the label/annotation keys of the BenchmarkTask API: defined once."""

from __future__ import annotations

from typing import Final

GROUP: Final = "krally.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "BenchmarkTask"
LIST_KIND: Final = f"{KIND}List"
PLURAL: Final = "benchmarktasks"
SINGULAR: Final = "benchmarktask"
SHORT_NAMES: Final = ("bt",)
CATEGORIES: Final = ("krally",)
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

# Labels on every child object (DESIGN.md "Names").
MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGER: Final = "krally"
LABEL_TASK: Final = "krally.dev/task"
LABEL_ROLE: Final = "krally.dev/role"
LABEL_HOOK_INDEX: Final = "krally.dev/hook-index"
LABEL_TRIGGER_UNIT: Final = "krally.dev/trigger-unit"
LABEL_TRIGGER_VALUE: Final = "krally.dev/trigger-value"
ROLE_RUNNER: Final = "runner"
ROLE_HOOK: Final = "hook"
# The operator's own clock when it sent the create request (ms precision): creationTimestamp has
# 1 s resolution, too coarse to measure the firing → Job lag.
ANNOTATION_CREATED_AT: Final = "krally.dev/created-at"
ANNOTATION_FIRED_AT: Final = "krally.dev/fired-at"
# On a hook Job created ahead of its firing (its pod waits for it): "true".
ANNOTATION_ARMED: Final = "krally.dev/armed"
# Its hook timeout (its activeDeadlineSeconds also counts the wait before the firing).
ANNOTATION_HOOK_TIMEOUT: Final = "krally.dev/hook-timeout"
# On a ServiceAccount: its namespace's admin lets tasks run hooks as it (spec.hooks[].job.
# serviceAccountName); any other value, or none, refuses it.
ANNOTATION_HOOKS: Final = "krally.dev/hooks"
HOOKS_ALLOWED: Final = "allowed"
# Every child named after its task and created once for it (the runner's Job and identity, the
# hooks' ServiceAccount) starts with this: `<task>-runner` alone collides with ordinary names
# (a task `gitlab` and the ServiceAccount `gitlab-runner`).
CHILD_PREFIX: Final = "krally-"
# Reason of a task Failed because a name it needs is taken by an object it does not own.
REASON_NAME_CONFLICT: Final = "NameConflict"

# -- BenchmarkSchedule: makes BenchmarkTasks from a cron schedule, like CronJob makes Jobs -------
SCHEDULE_KIND: Final = "BenchmarkSchedule"
SCHEDULE_LIST_KIND: Final = f"{SCHEDULE_KIND}List"
SCHEDULE_PLURAL: Final = "benchmarkschedules"
SCHEDULE_SINGULAR: Final = "benchmarkschedule"
SCHEDULE_SHORT_NAMES: Final = ("bs",)
SCHEDULE_CRD_NAME: Final = f"{SCHEDULE_PLURAL}.{GROUP}"
# On every task a schedule made: the schedule's name (cut and hashed past 63 characters, see
# krally.schedule.naming.label_value), so its tasks can be listed by label.
LABEL_SCHEDULE: Final = "krally.dev/schedule"
# On a task a schedule made for a slot: the slot (RFC 3339, UTC), so status.active[] and the
# history can be rebuilt from the tasks alone after a restart.
ANNOTATION_SCHEDULED_TIME: Final = "krally.dev/scheduled-time"
# On a schedule: a new value starts one task now (GitOps reruns); copied to that task.
ANNOTATION_RUN_NOW: Final = "krally.dev/run-now"
