"""Slots of a BenchmarkSchedule: parsing the schedule and deciding what is due, with no clock.

A **slot** is an instant a task is scheduled for: an aware ``datetime`` in UTC with no
fraction of a second (cron slots fall on whole minutes, ``@every`` slots on whole seconds). The
task of a slot is named after it (:func:`krally.schedule.naming.task_name`), so whoever decides
that a slot is due — after a restart, or a second replica — makes the same task, once.

Every function takes the time it should think it is (``now``, ``after``): the caller owns the
clock, the tests inject one.

Decisions:

- Cron expressions are croniter's, limited to the 5 standard fields (croniter's seconds and
  years fields and its ``H`` hashes are refused; ``L``, ``#`` and ``?`` are accepted), with
  standard cron's day-of-month OR day-of-week rule, evaluated in ``timeZone`` (default UTC).
- ``@every <d>`` slots are ``anchor + k*d`` for k >= 1, the anchor being the schedule's
  ``metadata.creationTimestamp``: a restart never shifts them (robfig/cron, CronJob's library,
  counts from the controller's start instead), and the first comes one interval after creation.
- Daylight saving time, e.g. ``30 2 * * *`` in Europe/Berlin. Spring forward (02:00 → 03:00):
  02:30 does not exist; the slot is at 03:00, when the gap ends (croniter's behaviour; CronJob's
  robfig/cron skips the day). Fall back (03:00 → 02:00): 02:30 happens twice; the slot is the
  first, 02:30 CEST, only (croniter and robfig/cron run both). A nightly disruption benchmark so
  runs exactly once every night. A schedule whose hour field is ``*`` (``*/15 * * * *``,
  ``@hourly``) keeps its real-time spacing and runs in both passes of the repeated hour.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from fractions import Fraction
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from krally.api.schedule_schema import (
    AT_FORM,
    BLANK,
    CRON,
    DURATION,
    EVERY,
    FIELD_SCHEDULE,
    FIELD_TIME_ZONE,
    MACROS,
    MAX_SCHEDULE_LENGTH,
    TIME_ZONE,
    TZ_PREFIX,
)

FIELD_DEADLINE: Final = "spec.startingDeadlineSeconds"

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MIN_EVERY: Final = timedelta(seconds=1)
# Beyond a year, @yearly or a cron expression says it better; also keeps slot arithmetic far from
# datetime's year 9999.
MAX_EVERY: Final = timedelta(days=366)
# Missed cron slots are counted one by one, at most this many (about 50 ms): past it the count is
# "at least" (Decision.missed_exact False). @every gaps are counted exactly by arithmetic.
MISSED_COUNT_LIMIT: Final = 1000
# Consecutive second-pass slots skipped in a repeated hour: at most 60 minutes' worth.
_MAX_SKIPS: Final = 1000

_UNITS_NS: Final = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # micro sign, as Go accepts
    "μs": 1_000,  # Greek mu, as Go accepts
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_REASON_SCHEDULE: Final = "InvalidSchedule"
_REASON_TIME_ZONE: Final = "InvalidTimeZone"


class ScheduleError(ValueError):
    """An invalid schedule, time zone or deadline: ``field`` names it (e.g. ``spec.schedule``),
    ``reason`` is the CamelCase condition reason, ``message`` says what is wrong."""

    def __init__(self, field: str, message: str, reason: str = _REASON_SCHEDULE) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class Schedule:
    """A parsed ``spec.schedule`` + ``spec.timeZone``: exactly one of ``cron`` and ``every``."""

    expression: str
    time_zone: str | None
    zone: tzinfo
    # The 5-field expression (a macro expanded), or None for @every.
    cron: str | None
    every: timedelta | None
    # Origin of @every slots (whole seconds); unused by cron schedules.
    anchor: datetime
    # Hour field `*`: slots in the repeated hour of a fall-back run in both passes.
    every_hour: bool = False


def parse_duration(text: str, field: str = FIELD_SCHEDULE) -> timedelta:
    """A Go duration (``5s``, ``1m30s``, ``1.5h``) of whole seconds, 1 s to 366 days."""
    if not re.fullmatch(DURATION, text):
        raise ScheduleError(
            field, f"{text!r} is not a duration: write e.g. 5s, 1m30s, 2h (units ns us ms s m h)"
        )
    total_ns = sum(
        Fraction(number) * _UNITS_NS[unit] for number, unit in _DURATION_PART.findall(text)
    )
    if total_ns % 1_000_000_000:
        raise ScheduleError(field, f"@every {text}: must be a whole number of seconds")
    seconds = int(total_ns // 1_000_000_000)
    if seconds < MIN_EVERY.total_seconds():
        raise ScheduleError(field, f"@every {text}: must be at least 1s")
    if seconds > MAX_EVERY.total_seconds():
        raise ScheduleError(field, f"@every {text}: must be at most 8784h (366 days)")
    return timedelta(seconds=seconds)


def parse_time_zone(name: str | None) -> tzinfo:
    """An IANA zone from the standard library's tz database; None → UTC."""
    if name is None:
        return UTC
    if not re.search(TIME_ZONE, name):
        raise ScheduleError(
            FIELD_TIME_ZONE,
            f"{name!r} is not a time zone name: write an IANA name such as Europe/Berlin",
            _REASON_TIME_ZONE,
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(
            FIELD_TIME_ZONE,
            f"unknown time zone {name!r} (not in the tz database), e.g. Europe/Berlin, UTC",
            _REASON_TIME_ZONE,
        ) from None


def parse_schedule(
    expression: str, time_zone: str | None = None, *, anchor: datetime = EPOCH
) -> Schedule:
    """Parse ``spec.schedule`` (5-field cron, a macro, or ``@every <duration>``) in
    ``spec.timeZone``. ``anchor`` (the schedule's creationTimestamp) is where @every counts
    from. Raises :class:`ScheduleError` naming the field."""
    if not isinstance(expression, str) or not expression.strip(BLANK):
        raise ScheduleError(FIELD_SCHEDULE, "must not be empty: e.g. '30 2 * * *' or @daily")
    if len(expression) > MAX_SCHEDULE_LENGTH:
        raise ScheduleError(FIELD_SCHEDULE, f"longer than {MAX_SCHEDULE_LENGTH} characters")
    if time_zone is not None and not isinstance(time_zone, str):
        raise ScheduleError(FIELD_TIME_ZONE, "must be a string", _REASON_TIME_ZONE)
    zone = parse_time_zone(time_zone)
    anchor = _utc(anchor, "anchor").replace(microsecond=0)
    text = expression.strip(BLANK)
    if re.search(TZ_PREFIX, text):
        raise ScheduleError(
            FIELD_SCHEDULE,
            "set the time zone in spec.timeZone, not with TZ= or CRON_TZ= in the schedule",
        )
    if re.search(AT_FORM, text):
        if re.search(EVERY, text):
            duration = re.split(f"{BLANK}+", text, maxsplit=1)[1]
            every = parse_duration(duration)
            return Schedule(expression, time_zone, zone, None, every, anchor)
        if text in MACROS:
            return _cron(expression, time_zone, zone, MACROS[text], anchor)
        raise ScheduleError(
            FIELD_SCHEDULE,
            f"unknown macro {text!r}: use one of {', '.join(MACROS)} or @every <duration>",
        )
    fields = re.split(f"{BLANK}+", text)
    if len(fields) != 5:
        extra = " (seconds and years fields are not supported)" if len(fields) in (6, 7) else ""
        raise ScheduleError(
            FIELD_SCHEDULE,
            f"{text!r} has {len(fields)} fields, a cron schedule has 5: minute hour "
            f"day-of-month month day-of-week, e.g. '30 2 * * *'{extra}",
        )
    if not re.search(CRON, text):
        raise ScheduleError(FIELD_SCHEDULE, f"{text!r}: unexpected characters in a cron field")
    return _cron(expression, time_zone, zone, " ".join(fields), anchor)


def _cron(
    expression: str, time_zone: str | None, zone: tzinfo, cron: str, anchor: datetime
) -> Schedule:
    try:
        iterator = croniter(cron, datetime(2000, 1, 1, tzinfo=zone))
    except CroniterError as error:
        message = str(error)
        if "hash" in message.lower():
            message = "H (hashed) values are not supported"
        raise ScheduleError(
            FIELD_SCHEDULE, f"invalid cron expression {cron!r}: {message}"
        ) from None
    try:
        iterator.get_next(datetime)
    except CroniterBadDateError:
        raise ScheduleError(
            FIELD_SCHEDULE, f"{cron!r} never matches a date (e.g. February 30)"
        ) from None
    hours: list[Any] = iterator.expanded[1]
    return Schedule(expression, time_zone, zone, cron, None, anchor, every_hour=hours == ["*"])


def _utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got {value!r}")
    return value.astimezone(UTC)


def _second_pass(slot: datetime, zone: tzinfo) -> bool:
    """True when ``slot``'s wall-clock time in ``zone`` already happened earlier that day (the
    second pass of a fall-back's repeated hour)."""
    local = slot.astimezone(zone)
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


def _cron_slots(schedule: Schedule, start: datetime, *, backwards: bool) -> Iterator[datetime]:
    """Cron slots strictly after (or before) ``start``, in order, the DST rule applied."""
    assert schedule.cron is not None
    iterator = croniter(schedule.cron, start.astimezone(schedule.zone))
    step = iterator.get_prev if backwards else iterator.get_next
    skipped = 0
    while True:
        try:
            value: datetime = step(datetime)
        except CroniterBadDateError:
            return
        slot = value.astimezone(UTC)
        if not schedule.every_hour and _second_pass(slot, schedule.zone):
            skipped += 1
            if skipped > _MAX_SKIPS:  # cannot happen with a real tz database; never loop
                return
            continue
        skipped = 0
        yield slot


def _every_index(schedule: Schedule, at: datetime) -> int:
    """k of the latest @every slot at or before ``at`` (0 = the anchor, which is no slot)."""
    assert schedule.every is not None
    return (at - schedule.anchor) // schedule.every


def next_slot(schedule: Schedule, after: datetime) -> datetime | None:
    """The first slot strictly after ``after`` (None: the expression never matches again)."""
    after = _utc(after, "after")
    if schedule.every is not None:
        k = max(_every_index(schedule, after), 0) + 1
        return schedule.anchor + k * schedule.every
    return next(_cron_slots(schedule, after, backwards=False), None)


def latest_slot(schedule: Schedule, at: datetime) -> datetime | None:
    """The latest slot at or before ``at`` (None: there is none)."""
    at = _utc(at, "at")
    if schedule.every is not None:
        k = _every_index(schedule, at)
        return schedule.anchor + k * schedule.every if k >= 1 else None
    # Slots are whole seconds: "strictly before the next whole second" is "at or before at".
    start = at.replace(microsecond=0) + timedelta(seconds=1)
    return next(_cron_slots(schedule, start, backwards=True), None)


def count_slots(
    schedule: Schedule, after: datetime, before: datetime, limit: int = MISSED_COUNT_LIMIT
) -> tuple[int, bool]:
    """(count, exact) of the slots strictly between ``after`` and ``before``. Bounded work: an
    @every gap is counted by arithmetic, a cron gap one slot at a time up to ``limit`` (then
    exact is False and count is a lower bound)."""
    after, before = _utc(after, "after"), _utc(before, "before")
    if before <= after:
        return 0, True
    if schedule.every is not None:
        last = latest_slot(schedule, before - timedelta(microseconds=1))
        if last is None:
            return 0, True
        return max(0, _every_index(schedule, last) - max(_every_index(schedule, after), 0)), True
    count = 0
    for slot in _cron_slots(schedule, after, backwards=False):
        if slot >= before:
            return count, True
        if count >= limit:
            return count, False
        count += 1
    return count, True


@dataclass(frozen=True)
class Decision:
    """What is due at ``now``.

    ``start``: the slot to start a task for now, or None. ``slot``: the latest slot newly passed
    (the one started, or missed, or passed while suspended), None when nothing new passed;
    record it as ``status.lastSlotTime`` once its task exists. ``missed``: slots newly passed
    that will never be started (all but the latest, plus the latest when it is past the
    deadline); a lower bound when ``missed_exact`` is False. ``late``: the latest slot was past
    ``startingDeadlineSeconds``. ``next_slot``/``requeue_after``: the next slot after now and
    the seconds until it (None: never again).
    """

    start: datetime | None
    slot: datetime | None
    missed: int
    missed_exact: bool
    late: bool
    next_slot: datetime | None
    requeue_after: float | None


def due(
    schedule: Schedule,
    created: datetime,
    last_slot: datetime | None,
    now: datetime,
    starting_deadline_seconds: int | None = None,
    *,
    suspend: bool = False,
) -> Decision:
    """What to do at ``now``: slots in (max(created, last_slot), now] are new.

    Of the new slots only the latest may start, and only within ``starting_deadline_seconds``
    of now (None: however late): never a burst, never a start on creation (a slot must come
    after ``created``). The others are counted, never started. ``last_slot`` is
    ``status.lastSlotTime`` (the latest slot already dealt with; fall back to
    ``lastScheduleTime``). With ``suspend`` new slots are passed over, not missed.
    """
    created, now = _utc(created, "created"), _utc(now, "now")
    if starting_deadline_seconds is not None and (
        isinstance(starting_deadline_seconds, bool)
        or not isinstance(starting_deadline_seconds, int)
        or starting_deadline_seconds < 1
    ):
        raise ScheduleError(FIELD_DEADLINE, "must be an integer of at least 1 (seconds)")
    since = created if last_slot is None else max(created, _utc(last_slot, "last_slot"))
    upcoming = next_slot(schedule, max(now, since))
    requeue = None if upcoming is None else max(0.0, (upcoming - now).total_seconds())
    latest = latest_slot(schedule, now)
    if latest is None or latest <= since:
        return Decision(None, None, 0, True, False, upcoming, requeue)
    if suspend:
        return Decision(None, latest, 0, True, False, upcoming, requeue)
    earlier, exact = count_slots(schedule, since, latest)
    late = (
        starting_deadline_seconds is not None
        and (now - latest).total_seconds() > starting_deadline_seconds
    )
    if late:
        return Decision(None, latest, earlier + 1, exact, True, upcoming, requeue)
    return Decision(latest, latest, earlier, exact, False, upcoming, requeue)
