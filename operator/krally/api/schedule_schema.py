"""The BenchmarkSchedule ``spec`` and ``status`` schemas, declared in its CRD
(:mod:`krally.api.schedule_crd`).

A BenchmarkSchedule makes BenchmarkTasks from a cron schedule as a CronJob makes Jobs: one task
per slot, named after the slot. ``spec.taskTemplate.spec`` *is*
:data:`krally.api.spec_schema.SPEC_SCHEMA` (the same object, not a copy), so a template is
validated exactly like a task's spec; the CRD generator adds the task's CEL rules to its copy.

The schedule syntax is declared here once, as patterns both RE2 (CEL on the API server) and
Python's ``re`` read alike: :mod:`krally.schedule.slots` parses with the same patterns, and
:data:`SCHEDULE_RULES` carries each CEL rule with the same predicate in Python (tests check
that the two agree with the parser). What CEL cannot know (a time zone missing from the tz
database, a cron field out of range, a date that never comes) is refused by the parser, which the
controller reports as a False Accepted condition naming the field.
"""

from __future__ import annotations

from typing import Any, Final

from krally.api.rules import LABEL_KEY, LABEL_VALUE, Rule, matches
from krally.api.schema import PRESERVE, Schema
from krally.api.spec_schema import SPEC_SCHEMA
from krally.api.status_schema import condition_schema
from krally.api.types import TERMINAL

# -- syntaxes ------------------------------------------------------------------------------------
# Fields are separated by spaces only: RE2's and Python's `\s` differ beyond ASCII, and a tab
# would break `kubectl get`'s table.
BLANK: Final = " "
# The macros of Kubernetes CronJob (robfig/cron), each a 5-field expression.
MACROS: Final[dict[str, str]] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# A Go duration (time.ParseDuration) without a sign: 90s, 1m30s, 1.5h, 2h45m.
DURATION: Final = r"(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+"
EVERY: Final = rf"^{BLANK}*@every{BLANK}+{DURATION}{BLANK}*$"
MACRO: Final = rf"^{BLANK}*@(" + "|".join(m.removeprefix("@") for m in MACROS) + rf"){BLANK}*$"
AT_FORM: Final = rf"^{BLANK}*@"
# CronJob refuses these (the zone belongs in timeZone) and so does krally.
TZ_PREFIX: Final = rf"^{BLANK}*(CRON_)?TZ="
# The characters of cron fields: numbers, names (MON, JAN), * , - / and croniter's ? L #.
CRON_FIELD: Final = r"[-0-9A-Za-z*,/?#]+"
CRON: Final = rf"^{BLANK}*{CRON_FIELD}({BLANK}+{CRON_FIELD}){{4}}{BLANK}*$"
# An IANA time zone name, e.g. Europe/Berlin, America/Argentina/Buenos_Aires, Etc/GMT+5, UTC.
TIME_ZONE: Final = r"^[A-Za-z][-+_A-Za-z0-9]*(/[-+_A-Za-z0-9]+)*$"
MAX_SCHEDULE_LENGTH: Final = 256

CONCURRENCY_POLICIES: Final = ("Allow", "Forbid", "Replace")
# Forbid, not CronJob's Allow: two disruption benchmarks running at once disrupt each other's
# baseline and double the load and the faults on the cluster under test, so neither result means
# anything; overlap has to be asked for.
DEFAULT_CONCURRENCY_POLICY: Final = "Forbid"
DEFAULT_SUCCESSFUL_HISTORY: Final = 3
DEFAULT_FAILED_HISTORY: Final = 1

# Condition types of a schedule (Kubernetes conventions), as the operator writes them.
ACCEPTED: Final = "Accepted"
SUSPENDED: Final = "Suspended"
TASK_CREATED: Final = "TaskCreated"
SCHEDULE_CONDITION_TYPES: Final = (ACCEPTED, SUSPENDED, TASK_CREATED)

FIELD_SCHEDULE: Final = "spec.schedule"
FIELD_TIME_ZONE: Final = "spec.timeZone"


def _schedule_of(spec: dict[str, Any]) -> str:
    value = spec.get("schedule")
    return value if isinstance(value, str) else ""


def _rules() -> tuple[Rule, ...]:
    """CEL on spec (``self`` = the schedule's spec), each with its Python twin."""
    at = f"self.schedule.matches(r'{AT_FORM}')"
    tz = f"self.schedule.matches(r'{TZ_PREFIX}')"
    return (
        Rule(
            (),
            f"!has(self.schedule) || !{tz}",
            lambda s: not matches(TZ_PREFIX, _schedule_of(s)),
            "set the time zone in spec.timeZone, not with TZ= or CRON_TZ= in the schedule",
            ".schedule",
        ),
        Rule(
            (),
            f"!has(self.schedule) || !{at} || self.schedule.matches(r'{MACRO}') "
            f"|| self.schedule.matches(r'{EVERY}')",
            lambda s: (
                not matches(AT_FORM, _schedule_of(s))
                or matches(MACRO, _schedule_of(s))
                or matches(EVERY, _schedule_of(s))
            ),
            "a schedule starting with @ must be one of "
            + ", ".join(MACROS)
            + " or @every <duration> (e.g. @every 5m, @every 1h30m)",
            ".schedule",
        ),
        Rule(
            (),
            f"!has(self.schedule) || {at} || {tz} || self.schedule.matches(r'{CRON}')",
            lambda s: (
                matches(AT_FORM, _schedule_of(s))
                or matches(TZ_PREFIX, _schedule_of(s))
                or matches(CRON, _schedule_of(s))
            ),
            "a cron schedule has 5 fields: minute hour day-of-month month "
            "day-of-week (e.g. '30 2 * * *'), or is a macro such as @daily or @every 5m",
            ".schedule",
        ),
    )


SCHEDULE_RULES: Final = _rules()

# A template's task is started, never stopped at once: spec.abort there is a mistake.
TEMPLATE_ABORT_RULE: Final = {
    "rule": "!has(self.abort) || !self.abort",
    "message": "cannot be true in a template: every task would be aborted",
    "fieldPath": ".abort",
}


def _str(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def _int(description: str, **extra: Any) -> Schema:
    return {"type": "integer", "description": description, **extra}


def _time(description: str) -> Schema:
    return {"type": "string", "format": "date-time", "description": description}


def _obj(description: str, properties: dict[str, Schema], **extra: Any) -> Schema:
    return {"type": "object", "description": description, "properties": properties, **extra}


def _string_map(description: str, value: Schema, max_properties: int) -> Schema:
    return {
        "type": "object",
        "description": description,
        "maxProperties": max_properties,
        "additionalProperties": value,
        # Bounded by maxProperties, so the API server's CEL cost estimate stays small.
        "x-kubernetes-validations": [
            {
                "rule": f"self.all(k, k.matches(r'{LABEL_KEY}'))",
                "message": "keys must be [prefix/]name, the name at most 63 characters of "
                "[A-Za-z0-9-_.]",
            }
        ],
    }


_TEMPLATE = _obj(
    "The BenchmarkTask made for each slot: its labels and annotations and its spec. The task's "
    "name is the schedule's and the slot's (spec changes apply to the next tasks only).",
    {
        "metadata": _obj(
            "Labels and annotations of each task (krally adds krally.dev/schedule and "
            "krally.dev/scheduled-time).",
            {
                "labels": _string_map(
                    "Labels of each task.",
                    _str("A label value.", maxLength=63, pattern=LABEL_VALUE),
                    64,
                ),
                "annotations": _string_map(
                    "Annotations of each task.", _str("An annotation value."), 64
                ),
            },
        ),
        # The task's own schema object: one source of truth (see the module docstring).
        "spec": SPEC_SCHEMA,
    },
    required=["spec"],
)

SCHEDULE_SPEC_SCHEMA: Schema = _obj(
    "When to run a benchmark (a cron schedule) and the BenchmarkTask to run: one task per "
    "slot, named after the slot, so a slot never runs twice. Set the annotation "
    "krally.dev/run-now to a new value to run once more now.",
    {
        "schedule": _str(
            "Cron schedule: 5 fields (minute hour day-of-month month day-of-week, e.g. "
            "'30 2 * * *'), a macro (@yearly, @annually, @monthly, @weekly, @daily, @midnight, "
            "@hourly) or '@every <duration>' (Go syntax: 5s, 1m30s, 2h; at least 1s, whole "
            "seconds), counted from the schedule's creation.",
            minLength=1,
            maxLength=MAX_SCHEDULE_LENGTH,
        ),
        "timeZone": _str(
            "IANA time zone of the cron schedule, e.g. Europe/Berlin (default UTC). Across "
            "daylight saving time a slot in the skipped hour runs when the hour ends, and a "
            "fixed-hour slot in the repeated hour runs once (schedules with hour * run in both).",
            minLength=1,
            maxLength=64,
            pattern=TIME_ZONE,
        ),
        "concurrencyPolicy": _str(
            "What to do when a slot comes while a task of this schedule still runs: Forbid "
            "(default) skips the slot, Replace aborts the running task and starts the new one, "
            "Allow runs both.",
            enum=list(CONCURRENCY_POLICIES),
            default=DEFAULT_CONCURRENCY_POLICY,
        ),
        "startingDeadlineSeconds": _int(
            "A slot not started within this many seconds (the operator was down) is missed, "
            "counted in status.missedSlots and an Event, never started late. Unset: the "
            "latest missed slot starts however late (only that one: never a burst).",
            minimum=1,
            format="int64",
        ),
        "suspend": {
            "type": "boolean",
            "description": "True: start no task; slots passed while suspended are skipped, "
            "not started on resume. Running tasks go on.",
            "default": False,
        },
        "successfulRunsHistoryLimit": _int(
            "Succeeded tasks to keep (the oldest are deleted); default 3.",
            minimum=0,
            default=DEFAULT_SUCCESSFUL_HISTORY,
            format="int32",
        ),
        "failedRunsHistoryLimit": _int(
            "Failed or aborted tasks to keep (the oldest are deleted); default 1.",
            minimum=0,
            default=DEFAULT_FAILED_HISTORY,
            format="int32",
        ),
        "taskTemplate": _TEMPLATE,
    },
    required=["schedule", "taskTemplate"],
)

_CONDITION = condition_schema(
    "A condition (Kubernetes conventions): Accepted (the spec is valid; False names the "
    "field that is not), Suspended (spec.suspend) or TaskCreated (False: the template was "
    "refused at a slot).",
    SCHEDULE_CONDITION_TYPES,
)

SCHEDULE_STATUS_SCHEMA: Schema = _obj(
    "Observed state of the schedule, written by the operator.",
    {
        "observedGeneration": _int("metadata.generation the operator last acted on.", minimum=0),
        "conditions": {
            "type": "array",
            "description": "Current conditions of the schedule.",
            "items": _CONDITION,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
        "message": _str("One line: the last thing the schedule did or why it did not."),
        "lastScheduleTime": _time(
            "Slot of the latest task started (for a run-now task: when it was started)."
        ),
        "lastSlotTime": _time(
            "The latest slot dealt with: started, skipped (Forbid), missed (past the "
            "deadline) or passed while suspended. Slots up to it are never considered again."
        ),
        "nextScheduleTime": _time("The next slot."),
        "lastSuccessfulTime": _time("When the latest Succeeded task finished."),
        "lastResult": _str(
            "Phase of the latest finished task: " + ", ".join(sorted(TERMINAL)) + "."
        ),
        "active": {
            "type": "array",
            "description": "Tasks of this schedule not finished yet.",
            "items": _obj(
                "A running task of this schedule.",
                {
                    "name": _str("Name of the BenchmarkTask."),
                    "slot": _time("Its slot (for a run-now task: when it was started)."),
                    "runNow": {
                        "type": "boolean",
                        "description": "True for a task started by the krally.dev/run-now "
                        "annotation.",
                    },
                },
                required=["name"],
            ),
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
        "activeCount": _int("Number of entries in active (the ACTIVE column).", minimum=0),
        "missedSlots": _int(
            "Slots not started because they were past startingDeadlineSeconds (the operator "
            "was down), since the schedule was created; at least this many when the operator "
            "stopped counting a very long gap.",
            minimum=0,
        ),
        "skippedSlots": _int(
            "Slots skipped by concurrencyPolicy Forbid because a task was still running.",
            minimum=0,
        ),
        "lastRunNow": _obj(
            "The latest krally.dev/run-now value dealt with: its task is started once.",
            {
                "value": _str("The annotation's value (its first 256 characters)."),
                "task": _str("Name of the task started for it."),
                "time": _time("When it was dealt with."),
            },
        ),
        # kopf keeps handler progress in annotations and may mirror it here.
        "kopf": {
            "type": "object",
            "description": "Internal bookkeeping of the operator framework (kopf); do not edit.",
            PRESERVE: True,
        },
    },
)
