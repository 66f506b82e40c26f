"""BenchmarkSchedule's slot logic with an injected clock: parsing, macros, @every anchoring, DST,
missed slots and deadlines, concurrency policies, task names, run-now, history limits."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from krally.api.schedule_schema import SCHEDULE_RULES
from krally.schedule import (
    ConcurrencyPolicy,
    FinishedTask,
    ScheduleError,
    TaskState,
    concurrency,
    count_slots,
    due,
    label_value,
    last_finished,
    last_successful_time,
    latest_slot,
    name_prefix,
    next_slot,
    parse_duration,
    parse_schedule,
    prune,
    run_now_pending,
    run_now_task_name,
    task_name,
)
from krally.schedule.slots import MISSED_COUNT_LIMIT

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def berlin(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=BERLIN, fold=fold)


def slots(schedule, start, n):
    out, at = [], start
    for _ in range(n):
        at = next_slot(schedule, at)
        out.append(at)
    return out


# -- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("macro", "cron"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_macros_are_their_cron_expressions(macro, cron):
    schedule = parse_schedule(f" {macro} ")
    assert schedule.cron == cron and schedule.every is None
    start = utc(2024, 5, 17, 13, 7)
    assert slots(schedule, start, 3) == slots(parse_schedule(cron), start, 3)


def test_macro_slots():
    assert next_slot(parse_schedule("@weekly"), utc(2024, 5, 17)) == utc(2024, 5, 19)  # a Sunday
    assert next_slot(parse_schedule("@yearly"), utc(2024, 5, 17)) == utc(2025, 1, 1)
    assert next_slot(parse_schedule("@monthly"), utc(2024, 12, 31, 23)) == utc(2025, 1, 1)
    assert next_slot(parse_schedule("@hourly"), utc(2024, 5, 17, 13, 0)) == utc(2024, 5, 17, 14)


def test_cron_in_a_time_zone_and_utc_by_default():
    assert next_slot(parse_schedule("30 2 * * *"), utc(2024, 6, 1)) == utc(2024, 6, 1, 2, 30)
    berlin_schedule = parse_schedule("30 2 * * *", "Europe/Berlin")
    assert next_slot(berlin_schedule, utc(2024, 6, 1)) == utc(2024, 6, 1, 0, 30)  # CEST = +2
    assert next_slot(berlin_schedule, utc(2024, 12, 1)) == utc(2024, 12, 1, 1, 30)  # CET = +1


def test_slots_are_aware_utc_whole_seconds():
    for schedule in (parse_schedule("*/7 * * * *", "Asia/Kolkata"), parse_schedule("@every 5s")):
        slot = next_slot(schedule, utc(2024, 1, 1, 0, 0, 1).replace(microsecond=123))
        assert slot.tzinfo is UTC and slot.microsecond == 0


def test_names_days_and_croniter_extras():
    assert next_slot(parse_schedule("0 9 * * MON-FRI"), utc(2024, 5, 18)) == utc(2024, 5, 20, 9)
    assert next_slot(parse_schedule("0 0 L * *"), utc(2024, 2, 1)) == utc(2024, 2, 29)
    # Standard cron: day-of-month OR day-of-week when both are restricted.
    assert next_slot(parse_schedule("0 0 13 * 5"), utc(2024, 5, 1)) == utc(2024, 5, 3)


def test_next_slot_is_strictly_after_and_latest_slot_inclusive():
    schedule = parse_schedule("0 * * * *")
    assert next_slot(schedule, utc(2024, 1, 1, 10)) == utc(2024, 1, 1, 11)
    assert latest_slot(schedule, utc(2024, 1, 1, 10)) == utc(2024, 1, 1, 10)
    assert latest_slot(schedule, utc(2024, 1, 1, 9, 59, 59, 999999)) == utc(2024, 1, 1, 9)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5), ("1m30s", 90), ("2h", 7200), ("1.5h", 5400), ("1500ms", None), ("90m", 5400)],
)
def test_go_durations(text, seconds):
    if seconds is None:
        with pytest.raises(ScheduleError, match="whole number of seconds"):
            parse_duration(text)
    else:
        assert parse_duration(text) == timedelta(seconds=seconds)


BAD = [
    ("", "spec.schedule", "must not be empty"),
    ("   ", "spec.schedule", "must not be empty"),
    ("* * * *", "spec.schedule", "has 4 fields"),
    ("0\t2 * * *", "spec.schedule", "has 4 fields"),  # spaces only: a tab breaks kubectl get
    ("0 * * * * *", "spec.schedule", "seconds and years"),
    ("61 * * * *", "spec.schedule", "invalid cron expression"),
    ("0 25 * * *", "spec.schedule", "invalid cron expression"),
    ("a b c d e", "spec.schedule", "invalid cron"),
    ("H * * * *", "spec.schedule", "hashed"),
    ("0 0 30 2 *", "spec.schedule", "never matches"),
    ("0 0 * * % ", "spec.schedule", "unexpected characters"),
    ("TZ=Europe/Berlin 30 2 * * *", "spec.schedule", "spec.timeZone"),
    ("CRON_TZ=UTC 0 * * * *", "spec.schedule", "spec.timeZone"),
    ("@often", "spec.schedule", "unknown macro"),
    ("@Daily", "spec.schedule", "unknown macro"),
    ("@every", "spec.schedule", "unknown macro"),
    ("@every 5", "spec.schedule", "unknown macro"),
    ("@every 500ms", "spec.schedule", "whole number"),
    ("@every 0s", "spec.schedule", "at least 1s"),
    ("@every 1.5s", "spec.schedule", "whole number"),
    ("@every 9000h", "spec.schedule", "at most"),
    ("@every -5s", "spec.schedule", "unknown macro"),
]


@pytest.mark.parametrize(("expression", "field", "message"), BAD)
def test_bad_schedules_name_the_field(expression, field, message):
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(expression)
    assert caught.value.field == field
    assert caught.value.reason == "InvalidSchedule"
    assert message.lower() in caught.value.message.lower()
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Europe/Berlin ", "../etc/passwd", "", "Local"])
def test_bad_time_zones_name_the_field(zone):
    with pytest.raises(ScheduleError) as caught:
        parse_schedule("0 * * * *", zone)
    assert (caught.value.field, caught.value.reason) == ("spec.timeZone", "InvalidTimeZone")
    assert "time zone" in caught.value.message


def test_bad_deadline_names_the_field():
    schedule = parse_schedule("@hourly")
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ScheduleError) as caught:
            due(schedule, utc(2024, 1, 1), None, utc(2024, 1, 2), bad)
        assert caught.value.field == "spec.startingDeadlineSeconds"


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="aware"):
        next_slot(parse_schedule("@hourly"), datetime(2024, 1, 1))


GOOD = ["30 2 * * *", "*/5 * * * *", "0 9 * * MON-FRI", "0 0 L * *", "@daily", "@every 1m30s"]


@pytest.mark.parametrize("expression", GOOD + [e for e, _, _ in BAD])
def test_cel_rules_never_accept_less_than_the_parser_refuses(expression):
    """A string a CEL rule refuses is refused by the parser too (the parser knows more: ranges,
    dates), and everything the parser accepts passes CEL: kubectl apply and the controller
    never disagree the wrong way."""
    cel_ok = all(rule.check({"schedule": expression}) for rule in SCHEDULE_RULES)
    try:
        parse_schedule(expression)
        parsed = True
    except ScheduleError:
        parsed = False
    if parsed:
        assert cel_ok
    if not cel_ok:
        assert not parsed


def test_cel_rules_refuse_the_obvious_mistakes():
    for expression in ("* * * *", "@often", "TZ=UTC 0 * * * *", "@every 5", "0\t2 * * * *"):
        assert not all(rule.check({"schedule": expression}) for rule in SCHEDULE_RULES)


# -- @every anchoring --------------------------------------------------------------------------


def test_every_is_anchored_to_creation_not_to_the_restart():
    created = utc(2024, 1, 1, 12, 0, 3)
    schedule = parse_schedule("@every 5s", anchor=created)
    assert next_slot(schedule, created) == utc(2024, 1, 1, 12, 0, 8)
    # An operator (re)started at any moment sees the same slots.
    for restart in (utc(2024, 1, 1, 12, 0, 9), utc(2024, 1, 1, 12, 0, 12, 999)):
        assert next_slot(schedule, restart) == utc(2024, 1, 1, 12, 0, 13)
    assert latest_slot(schedule, utc(2024, 1, 1, 12, 0, 13)) == utc(2024, 1, 1, 12, 0, 13)
    # The anchor itself is no slot (never on creation), even seen from before it.
    assert next_slot(schedule, created - timedelta(hours=1)) == utc(2024, 1, 1, 12, 0, 8)
    assert latest_slot(schedule, created) is None
    assert latest_slot(schedule, utc(2024, 1, 1, 12, 0, 7)) is None


def test_every_anchor_drops_the_fraction_of_a_second():
    schedule = parse_schedule("@every 1m", anchor=utc(2024, 1, 1, 0, 0, 0).replace(microsecond=7))
    assert next_slot(schedule, utc(2024, 1, 1)) == utc(2024, 1, 1, 0, 1)


def test_every_ignores_dst_it_is_elapsed_time():
    schedule = parse_schedule("@every 1h", "Europe/Berlin", anchor=utc(2024, 10, 26, 22))
    assert slots(schedule, utc(2024, 10, 26, 22), 4) == [
        utc(2024, 10, 26, 23), utc(2024, 10, 27, 0), utc(2024, 10, 27, 1), utc(2024, 10, 27, 2),
    ]  # fmt: skip


# -- DST ---------------------------------------------------------------------------------------


def test_spring_forward_the_missing_slot_runs_when_the_gap_ends():
    # 2024-03-31 in Berlin: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that night.
    schedule = parse_schedule("30 2 * * *", "Europe/Berlin")
    got = slots(schedule, berlin(2024, 3, 29, 12), 4)
    assert [s.astimezone(BERLIN).strftime("%d %H:%M %Z") for s in got] == [
        "30 02:30 CET", "31 03:00 CEST", "01 02:30 CEST", "02 02:30 CEST",
    ]  # fmt: skip
    # Exactly once that night, backwards too.
    assert latest_slot(schedule, berlin(2024, 3, 31, 12)) == berlin(2024, 3, 31, 3, 0)
    assert count_slots(schedule, berlin(2024, 3, 30, 12), berlin(2024, 4, 1, 12)) == (2, True)


def test_fall_back_a_fixed_hour_slot_runs_once():
    # 2024-10-27 in Berlin: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
    schedule = parse_schedule("30 2 * * *", "Europe/Berlin")
    got = slots(schedule, berlin(2024, 10, 26, 12), 3)
    # (An ambiguous local time never equals a UTC one in Python: compare in UTC.)
    assert got == [utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30), utc(2024, 10, 29, 1, 30)]
    assert got[0].astimezone(BERLIN).strftime("%H:%M %Z") == "02:30 CEST"  # the first pass
    # From inside the repeated hour, the second 02:30 is not a slot either.
    second_pass = berlin(2024, 10, 27, 2, 10, fold=1)
    assert next_slot(schedule, second_pass) == utc(2024, 10, 28, 1, 30)
    assert latest_slot(schedule, berlin(2024, 10, 27, 4)) == utc(2024, 10, 27, 0, 30)
    assert count_slots(schedule, berlin(2024, 10, 26, 12), berlin(2024, 10, 28, 12)) == (2, True)


def test_fall_back_wildcard_hours_keep_real_time_spacing():
    hourly = parse_schedule("0 * * * *", "Europe/Berlin")
    got = slots(hourly, utc(2024, 10, 26, 23, 30), 4)
    assert got == [utc(2024, 10, 27, h) for h in range(4)]  # 02:00 CEST and 02:00 CET both run
    quarter = parse_schedule("*/15 * * * *", "Europe/Berlin")
    # 02:00 CEST (00:00Z) to 03:00 CET (02:00Z): two real hours, 9 slots, every 15 minutes.
    got = slots(quarter, utc(2024, 10, 26, 23, 59), 9)
    assert got == [utc(2024, 10, 27, 0) + timedelta(minutes=15 * i) for i in range(9)]
    assert count_slots(quarter, utc(2024, 10, 26, 23, 59), utc(2024, 10, 27, 2, 1)) == (9, True)


def test_due_across_fall_back_never_starts_the_second_pass():
    schedule = parse_schedule("30 2 * * *", "Europe/Berlin")
    created = utc(2024, 10, 1)
    first = utc(2024, 10, 27, 0, 30)
    decision = due(schedule, created, first, berlin(2024, 10, 27, 2, 31, fold=1), 300)
    assert decision.start is None and decision.slot is None and decision.missed == 0


# -- due: missed slots, deadlines, creation ----------------------------------------------------


def test_never_on_creation():
    schedule = parse_schedule("*/5 * * * *")
    created = utc(2024, 1, 1, 10, 2, 30)
    decision = due(schedule, created, None, created, None)
    assert (decision.start, decision.slot, decision.missed) == (None, None, 0)
    assert decision.next_slot == utc(2024, 1, 1, 10, 5)
    assert decision.requeue_after == 150.0
    # Created exactly on a slot: that slot is not after creation, so it does not run.
    on_slot = utc(2024, 1, 1, 10, 5)
    assert due(schedule, on_slot, None, on_slot + timedelta(seconds=3)).start is None
    # The first slot after creation does.
    later = due(schedule, created, None, utc(2024, 1, 1, 10, 5, 1))
    assert later.start == utc(2024, 1, 1, 10, 5) and later.missed == 0


def test_a_slot_starts_once_then_is_dealt_with():
    schedule = parse_schedule("*/5 * * * *")
    created = utc(2024, 1, 1, 10)
    now = utc(2024, 1, 1, 10, 5, 2)
    first = due(schedule, created, None, now)
    assert first.start == first.slot == utc(2024, 1, 1, 10, 5)
    again = due(schedule, created, first.slot, now + timedelta(seconds=30))
    assert (again.start, again.slot, again.missed) == (None, None, 0)
    assert again.next_slot == utc(2024, 1, 1, 10, 10)


def test_missed_slots_start_only_the_latest_and_count_the_others():
    schedule = parse_schedule("*/5 * * * *")
    created, last = utc(2024, 1, 1), utc(2024, 1, 1, 10)
    decision = due(schedule, created, last, utc(2024, 1, 1, 11, 0, 20), 60)
    assert decision.start == utc(2024, 1, 1, 11)  # within the deadline
    assert (decision.missed, decision.missed_exact, decision.late) == (11, True, False)


def test_past_the_deadline_nothing_starts_and_all_are_missed():
    schedule = parse_schedule("*/5 * * * *")
    decision = due(schedule, utc(2024, 1, 1), utc(2024, 1, 1, 10), utc(2024, 1, 1, 11, 1, 1), 60)
    assert decision.start is None and decision.late
    assert decision.slot == utc(2024, 1, 1, 11)  # recorded: never considered again
    assert decision.missed == 12
    assert decision.next_slot == utc(2024, 1, 1, 11, 5)
    # The deadline is inclusive.
    on_edge = due(schedule, utc(2024, 1, 1), utc(2024, 1, 1, 10), utc(2024, 1, 1, 11, 1), 60)
    assert on_edge.start == utc(2024, 1, 1, 11)


def test_without_deadline_the_latest_starts_however_late():
    schedule = parse_schedule("@daily")
    decision = due(schedule, utc(2024, 1, 1), utc(2024, 1, 2), utc(2024, 1, 9, 15))
    assert decision.start == utc(2024, 1, 9) and decision.missed == 6


def test_a_year_of_downtime_is_bounded_work_and_no_error():
    minutely = parse_schedule("* * * * *")
    started = time.perf_counter()
    decision = due(minutely, utc(2023, 1, 1), utc(2023, 1, 1), utc(2024, 1, 1, 0, 0, 30), 60)
    assert time.perf_counter() - started < 2.0  # ~1000 croniter steps, not 525600
    assert decision.start == utc(2024, 1, 1)
    assert decision.missed == MISSED_COUNT_LIMIT and not decision.missed_exact
    # @every counts exactly by arithmetic, however many: 6,307,200 slots of 5 s in 365 days.
    every = parse_schedule("@every 5s", anchor=utc(2023, 1, 1))
    started = time.perf_counter()
    decision = due(every, utc(2023, 1, 1), None, utc(2024, 1, 1, 0, 0, 2), 10)
    assert time.perf_counter() - started < 0.1
    assert decision.start == utc(2024, 1, 1)
    assert (decision.missed, decision.missed_exact) == (365 * 24 * 720 - 1, True)
    # A daily schedule's year is counted exactly.
    daily = due(parse_schedule("@daily"), utc(2023, 1, 1), None, utc(2024, 1, 1, 1), 60)
    assert (daily.start, daily.missed, daily.missed_exact, daily.late) == (None, 365, True, True)


def test_suspended_slots_are_passed_over_not_missed():
    schedule = parse_schedule("@hourly")
    decision = due(schedule, utc(2024, 1, 1), None, utc(2024, 1, 1, 5, 10), suspend=True)
    assert decision.start is None and decision.missed == 0
    assert decision.slot == utc(2024, 1, 1, 5)
    assert decision.requeue_after == 50 * 60


def test_clock_behind_creation_or_last_slot_starts_nothing():
    schedule = parse_schedule("@hourly")
    assert due(schedule, utc(2024, 1, 1, 5), None, utc(2024, 1, 1, 3)).start is None
    future_last = due(schedule, utc(2024, 1, 1), utc(2024, 1, 1, 9), utc(2024, 1, 1, 7, 30))
    assert future_last.start is None and future_last.next_slot == utc(2024, 1, 1, 10)


def test_requeue_is_the_next_slot():
    schedule = parse_schedule("@every 5s", anchor=utc(2024, 1, 1))
    decision = due(schedule, utc(2024, 1, 1), None, utc(2024, 1, 1, 0, 0, 6, 500000))
    assert decision.start == utc(2024, 1, 1, 0, 0, 5)
    assert decision.requeue_after == pytest.approx(3.5)


# -- concurrency -------------------------------------------------------------------------------

RUNNING = [TaskState("s-100", "Running"), TaskState("s-50", "Succeeded"), TaskState("s-60", None)]


def test_no_active_task_starts_under_every_policy():
    for policy in ConcurrencyPolicy:
        decision = concurrency(policy, [TaskState("s-50", "Failed")], "s-200")
        assert (decision.start, decision.abort, decision.reason) == (True, (), "NoneActive")


def test_allow_starts_alongside():
    decision = concurrency("Allow", RUNNING, "s-200")
    assert decision.start and decision.abort == ()
    assert decision.reason == "ConcurrentAllowed"


def test_forbid_skips_and_says_why():
    decision = concurrency("Forbid", RUNNING, "s-200")
    assert not decision.start and decision.abort == ()
    assert decision.reason == "TaskAlreadyActive"
    assert "s-100, s-60" in decision.message and "Forbid" in decision.message


def test_replace_aborts_the_active_ones_then_starts():
    decision = concurrency("Replace", RUNNING, "s-200")
    assert decision.start and decision.abort == ("s-100", "s-60")
    assert decision.reason == "ReplacedActive"


def test_the_due_task_itself_is_not_a_conflict():
    # Created before a crash, status not yet written: it is this slot's, not another's.
    for policy in ("Forbid", "Replace"):
        decision = concurrency(policy, [TaskState("s-200", "Running")], "s-200")
        assert decision.start and decision.abort == ()


def test_default_policy_is_forbid_and_bad_policy_names_the_field():
    assert not concurrency(None, RUNNING, "s-200").start
    with pytest.raises(ScheduleError) as caught:
        concurrency("Sometimes", RUNNING, "s-200")
    assert caught.value.field == "spec.concurrencyPolicy"


# -- names -------------------------------------------------------------------------------------


def test_task_name_is_the_slot_in_unix_seconds():
    slot = utc(2024, 3, 31, 1, 0)
    assert task_name("nightly", slot) == f"nightly-{int(slot.timestamp())}" == "nightly-1711846800"
    # The same instant in any zone, or seen by any replica, is the same name.
    assert task_name("nightly", slot.astimezone(BERLIN)) == task_name("nightly", slot)
    assert task_name("fast", utc(2024, 1, 1, 0, 0, 5)) != task_name(
        "fast", utc(2024, 1, 1, 0, 0, 10)
    )


def test_long_names_fit_63_and_stay_distinct():
    base = "a" * 41
    one, two = base + "-first-schedule-with-a-long-name", base + "-second-schedule-long-name"
    slot = utc(2286, 11, 20)  # 10-digit seconds until then
    names = {task_name(n, slot) for n in (one, two)} | {
        run_now_task_name(n, "v") for n in (one, two)
    }
    assert len(names) == 4
    for name in names:
        assert len(name) <= 63
        assert name[0].isalnum() and name[-1].isalnum()
    assert task_name(one, slot) == task_name(one, slot)  # deterministic
    assert name_prefix(one).startswith(base) and len(name_prefix(one)) == 50
    # Cutting never leaves "-" or "." before the hash.
    assert "--" not in name_prefix("b" * 40 + "-" + "c" * 30)
    assert name_prefix("x" * 50) == "x" * 50  # fits: kept as is
    assert len(task_name("y" * 253, slot)) <= 63


def test_run_now_names_one_task_per_value():
    first = run_now_task_name("nightly", "2024-06-01T10:00")
    assert first == run_now_task_name("nightly", "2024-06-01T10:00")
    assert first.startswith("nightly-run-") and len(first) == len("nightly-run-") + 8
    assert run_now_task_name("nightly", "2024-06-02") != first
    assert run_now_task_name("nightly", "") is None and run_now_task_name("nightly", None) is None
    assert first != task_name("nightly", utc(2024, 6, 1))


def test_run_now_pending():
    name = run_now_task_name("s", "v2")
    assert run_now_pending("s", "v2", None, first_seen=False) == name
    assert run_now_pending("s", "v2", name, first_seen=False) is None  # already dealt with
    assert run_now_pending("s", "v2", None, first_seen=True) is None  # never on creation
    assert run_now_pending("s", None, name, first_seen=False) is None


def test_label_value():
    assert label_value("nightly") == "nightly"
    long = "z" * 100
    assert len(label_value(long)) == 63 and label_value(long) != label_value(long + "x")


# -- history -----------------------------------------------------------------------------------


def _finished(name, phase, minute):
    return FinishedTask(name, phase, None if minute is None else utc(2024, 1, 1, 0, minute))


def test_prune_keeps_the_newest_within_each_limit():
    tasks = [
        _finished("ok-1", "Succeeded", 1),
        _finished("ok-4", "Succeeded", 4),
        _finished("ok-2", "Succeeded", 2),
        _finished("ok-3", "Succeeded", 3),
        _finished("bad-1", "Failed", 5),
        _finished("bad-2", "Aborted", 6),
        _finished("bad-3", "Failed", 7),
        _finished("running", "Running", None),
        _finished("new", None, None),
    ]
    assert prune(tasks, 3, 1) == ["ok-1", "bad-1", "bad-2"]
    assert prune(tasks, 0, 0) == ["ok-1", "ok-2", "ok-3", "ok-4", "bad-1", "bad-2", "bad-3"]
    assert prune(tasks, None, None) == []
    assert prune(tasks, 10, 10) == []
    with pytest.raises(ValueError):
        prune(tasks, -1, 1)


def test_prune_unknown_finish_time_goes_first_and_ties_break_by_name():
    tasks = [
        _finished("b", "Succeeded", 3),
        _finished("a", "Succeeded", 3),
        _finished("x", "Succeeded", None),
    ]
    assert prune(tasks, 1, 1) == ["x", "a"]


def test_last_result_and_last_success():
    tasks = [
        _finished("ok", "Succeeded", 1),
        _finished("bad", "Failed", 2),
        _finished("r", "Running", None),
    ]
    assert last_finished(tasks).name == "bad"
    assert last_successful_time(tasks) == utc(2024, 1, 1, 0, 1)
    assert last_finished([]) is None and last_successful_time([]) is None


def test_policy_vocabulary_is_the_schemas():
    from krally.api.schedule_schema import CONCURRENCY_POLICIES, DEFAULT_CONCURRENCY_POLICY

    assert tuple(ConcurrencyPolicy) == CONCURRENCY_POLICIES
    assert DEFAULT_CONCURRENCY_POLICY == "Forbid"
