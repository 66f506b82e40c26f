"""SLA plugins and SLAChecker: Rally's semantics and detail strings."""

from __future__ import annotations

import pytest

from krally.errors import InvalidConfig
from krally.task import sla
from krally.task.sla import SLA, SLAChecker


def it(duration, error=False, atomics=None):
    return {
        "iteration": 1,
        "timestamp": 0.0,
        "duration": duration,
        "idle_duration": 0.0,
        "error": ["E", "m", "tb"] if error else [],
        "output": {"additive": [], "complete": []},
        "atomic_actions": atomics or [],
    }


def feed(checker, records):
    return [checker.add_iteration(r) for r in records]


def test_failure_rate():
    checker = SLAChecker({"failure_rate": {"min": 0, "max": 50}})
    assert feed(checker, [it(1), it(1, True), it(1)]) == [True, True, True]
    assert checker.results() == [
        {
            "criterion": "failure_rate",
            "success": True,
            "detail": "Failure rate criteria 0.00% <= 33.33% <= 50.00% - Passed",
        }
    ]
    assert checker.add_iteration(it(1, True)) is True  # 50 % still passes
    assert checker.add_iteration(it(1, True)) is False
    assert (
        checker.results()[0]["detail"] == "Failure rate criteria 0.00% <= 60.00% <= 50.00% - Failed"
    )


def test_failure_rate_default_and_min():
    checker = SLAChecker({"failure_rate": {"max": 0}})
    assert checker.add_iteration(it(1)) is True
    assert (
        checker.results()[0]["detail"] == "Failure rate criteria 0.00% <= 0.00% <= 0.00% - Passed"
    )
    assert checker.add_iteration(it(1, True)) is False
    lower = SLAChecker({"failure_rate": {"min": 10}})
    assert lower.add_iteration(it(1)) is False
    assert lower.results()[0]["detail"].startswith(
        "Failure rate criteria 10.00% <= 0.00% <= 100.00%"
    )


def test_max_seconds_per_iteration_counts_failed_iterations():
    checker = SLAChecker({"max_seconds_per_iteration": 2.0})
    assert checker.add_iteration(it(1.5)) is True
    assert checker.add_iteration(it(2.5, True)) is False
    assert checker.results()[0] == {
        "criterion": "max_seconds_per_iteration",
        "success": False,
        "detail": "Maximum seconds per iteration 2.50s <= 2.00s - Failed",
        "short": "max_seconds_per_iteration 2.5s > 2s",
    }


def test_max_avg_duration_only_successful():
    checker = SLAChecker({"max_avg_duration": 1.0})
    feed(checker, [it(0.5), it(1.4), it(100, True)])
    assert checker.results()[0] == {
        "criterion": "max_avg_duration",
        "success": True,
        "detail": "Average duration of one iteration 0.95s <= 1.00s - Passed",
    }
    assert checker.add_iteration(it(3)) is False


def atomic(name, seconds):
    return {"name": name, "started_at": 10.0, "finished_at": 10.0 + seconds, "children": []}


def test_max_avg_duration_per_atomic():
    checker = SLAChecker({"max_avg_duration_per_atomic": {"foo": 1.0, "bar": 0.5}})
    assert checker.add_iteration(it(1, atomics=[atomic("foo", 0.5), atomic("bar", 0.25)]))
    assert checker.add_iteration(it(1, True, atomics=[atomic("foo", 99)]))  # failed: ignored
    assert not checker.add_iteration(it(1, atomics=[atomic("foo", 2.0), atomic("bar", 0.25)]))
    detail = checker.results()[0]["detail"]
    assert detail == (
        "Average duration of one iteration for atomic actions:\n"
        "Action: 'foo'. 1.25s <= 1.00s\n"
        "Action: 'bar'. 0.25s <= 0.50s\n"
        "Status: Failed"
    )


def test_outliers():
    checker = SLAChecker({"outliers": {"max": 1, "min_iterations": 3, "sigmas": 2}})
    durations = [1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 10.0]
    assert all(feed(checker, [it(d) for d in durations]))
    assert checker.results()[0]["detail"] == "Maximum number of outliers 1 <= 1 - Passed"
    assert checker.add_iteration(it(50.0)) is False
    assert checker.results()[0]["detail"] == "Maximum number of outliers 2 <= 1 - Failed"


def test_outliers_ignores_failed_and_needs_min_iterations():
    checker = SLAChecker({"outliers": {}})
    assert checker.add_iteration(it(1.0))
    assert checker.add_iteration(it(1.0))
    assert checker.add_iteration(it(999.0, True))  # failed iterations are not outliers
    assert checker.add_iteration(it(1.0))
    assert checker.add_iteration(it(1.0 + 1e-9)) is False  # std 0: anything above mean
    crit = checker.criteria[0]
    assert (crit.max_outliers, crit.min_iterations, crit.sigmas) == (0, 3, 3.0)


def test_performance_degradation():
    checker = SLAChecker({"performance_degradation": {"max_degradation": 50}})
    assert checker.add_iteration(it(1.0))
    assert checker.add_iteration(it(1.4))
    assert checker.add_iteration(it(10, True))  # failed: ignored
    assert checker.results()[0]["detail"] == "Current degradation: 40.00% - Passed"
    assert checker.add_iteration(it(2.0)) is False
    assert checker.results()[0]["detail"] == "Current degradation: 100.00% - Failed"
    assert checker.add_iteration(it(0.0)) is False  # zero durations ignored, no crash


def test_checker_feeds_every_criterion_and_pseudo_criteria():
    checker = SLAChecker({"max_seconds_per_iteration": 1, "failure_rate": {"max": 0}})
    assert checker.add_iteration(it(5)) is False
    assert checker.criteria[1].total == 1  # still fed after the first failed
    checker.set_aborted_on_sla()
    checker.set_aborted_manually()
    checker.set_unexpected_failure(RuntimeError("disk full"))
    results = checker.results()
    assert [r["criterion"] for r in results] == [
        "max_seconds_per_iteration",
        "failure_rate",
        "aborted_on_sla",
        "aborted_manually",
        "something_went_wrong",
    ]
    assert results[2]["detail"] == "Task was aborted due to SLA failure(s)."
    assert results[3]["detail"] == "Task was aborted due to abort signal."
    assert results[4] == {
        "criterion": "something_went_wrong",
        "success": False,
        "detail": "Unexpected error: disk full",
    }
    assert checker.passed() is False


def test_empty_checker_passes():
    checker = SLAChecker({})
    assert checker.add_iteration(it(1)) is True
    assert checker.results() == [] and checker.passed()


def test_merge():
    a = SLA.get("failure_rate")({"max": 10})
    b = SLA.get("failure_rate")({"max": 10})
    a.add_iteration(it(1))
    b.add_iteration(it(1, True))
    assert a.merge(b) is False
    assert a.error_rate == 50.0


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"failure_rate": {}}, "sla.failure_rate"),
        ({"failure_rate": {"max": 101}}, "sla.failure_rate.max"),
        ({"failure_rate": {"max": -1}}, "sla.failure_rate.max"),
        ({"failure_rate": {"maxx": 1}}, "sla.failure_rate"),
        ({"max_seconds_per_iteration": 0}, "sla.max_seconds_per_iteration"),
        ({"max_seconds_per_iteration": "1"}, "sla.max_seconds_per_iteration"),
        ({"max_avg_duration": -2}, "sla.max_avg_duration"),
        ({"max_avg_duration_per_atomic": {"foo": 0}}, "sla.max_avg_duration_per_atomic.foo"),
        ({"outliers": {"min_iterations": 2}}, "sla.outliers.min_iterations"),
        ({"outliers": {"sigmas": 0}}, "sla.outliers.sigmas"),
        ({"outliers": {"max": -1}}, "sla.outliers.max"),
        ({"performance_degradation": {}}, "sla.performance_degradation"),
        (
            {"performance_degradation": {"max_degradation": -1}},
            "sla.performance_degradation.max_degradation",
        ),
        ({"no_such_sla": 1}, "sla.no_such_sla"),
    ],
)
def test_bad_configs(config, path):
    problems = sla.validate(config)
    assert problems and problems[0].path == path, problems
    with pytest.raises(InvalidConfig):
        SLAChecker(config)


def test_unknown_sla_lists_known():
    (problem,) = SLA.validate("no_such_sla", 1, "sla.no_such_sla")
    for name in (
        "failure_rate",
        "max_seconds_per_iteration",
        "max_avg_duration",
        "max_avg_duration_per_atomic",
        "outliers",
        "performance_degradation",
    ):
        assert name in str(problem)


def test_good_configs():
    assert (
        sla.validate(
            {
                "failure_rate": {"min": 0, "max": 5.5},
                "max_seconds_per_iteration": 0.5,
                "max_avg_duration": 3,
                "max_avg_duration_per_atomic": {"foo": 1, "bar": 0.1},
                "outliers": {"max": 2, "min_iterations": 10, "sigmas": 2.5},
                "performance_degradation": {"max_degradation": 0},
            }
        )
        == []
    )
