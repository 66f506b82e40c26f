"""SLA disruption_impact: pass, fail (naming the worst firing), vacuous, config."""

from __future__ import annotations

from typing import Any

import pytest

from krally.errors import InvalidConfig
from krally.task import plugin, sla
from krally.task.sla import SLAChecker

plugin.load_builtin_plugins()


def entry(
    hook: int = 0,
    value: int = 5,
    *,
    error_rate: float = 0.0,
    recovery: float | None = 0.0,
    recovered: bool | None = True,
    p95_ratio: float | None = 1.0,
    throughput_ratio: float | None = 1.0,
) -> dict[str, Any]:
    return {
        "hook": hook,
        "name": "sys_call",
        "triggeredBy": {"eventType": "iteration", "value": value},
        "status": "success",
        "during": {"errorRate": error_rate, "iterations": 100},
        "p95Ratio": p95_ratio,
        "throughputRatio": throughput_ratio,
        "degraded": recovery not in (None, 0.0) or recovered is False,
        "recovered": recovered,
        "recoverySeconds": recovery,
    }


def check(config: dict[str, Any], impacts: list[dict[str, Any]]) -> dict[str, Any]:
    checker = SLAChecker({"disruption_impact": config})
    assert checker.add_iteration({"duration": 1.0, "error": ["E"]}) is True  # never on records
    checker.add_impact(impacts)
    (result,) = checker.results()
    assert result["criterion"] == "disruption_impact"
    return result


LIMITS = {
    "max_error_rate_during": 0.05,
    "max_recovery_seconds": 10,
    "max_p95_ratio": 2,
    "min_throughput_ratio": 0.5,
}


def test_passes_when_every_firing_is_within_its_limits() -> None:
    result = check(LIMITS, [entry(value=5), entry(value=50, recovery=3.5, error_rate=0.01)])
    assert result["success"] is True
    assert result["detail"].startswith("Disruption impact of 2 firing(s); worst hook #1 sys_call")
    assert "recovery 3.50s <= 10.00s" in result["detail"]
    assert result["detail"].endswith("- Passed")


@pytest.mark.parametrize(
    ("bad", "sentence"),
    [
        ({"error_rate": 0.2}, "error rate during 20.00% <= 5.00%"),
        ({"recovery": 12.0}, "recovery 12.00s <= 10.00s"),
        ({"p95_ratio": 3.0}, "p95 ratio 3.00 <= 2.00"),
        ({"throughput_ratio": 0.25}, "throughput ratio 0.25 >= 0.50"),
        ({"recovered": False, "recovery": None}, "recovery never <= 10.00s"),
    ],
)
def test_fails_naming_the_worst_firing(bad: dict[str, Any], sentence: str) -> None:
    impacts = [entry(value=5), entry(hook=1, value=50, **bad), entry(value=500, recovery=9.0)]
    result = check(LIMITS, impacts)
    assert result["success"] is False
    detail = result["detail"]
    assert "1 of 3 failing" in detail
    assert "worst hook #2 sys_call at iteration 50" in detail, detail
    assert sentence in detail and detail.endswith("- Failed")


def test_not_recovered_fails_only_max_recovery_seconds() -> None:
    never = entry(recovered=False, recovery=None)
    assert check({"max_p95_ratio": 2}, [never])["success"] is True
    assert check({"max_recovery_seconds": 100}, [never])["success"] is False


@pytest.mark.parametrize(
    "impacts",
    [
        [],
        [entry(recovered=None, recovery=None)],  # no baseline: no verdict
    ],
)
def test_no_analysed_firing_fails(impacts: list[dict[str, Any]]) -> None:
    result = check({"max_recovery_seconds": 10}, impacts)
    assert result["success"] is False
    assert result["detail"].startswith("No disruption was analysed")


def test_without_the_impact_it_fails_too() -> None:
    checker = SLAChecker({"disruption_impact": {"max_recovery_seconds": 1}})
    (result,) = checker.results()
    assert result["success"] is False and "No disruption was analysed" in result["detail"]


def test_other_criteria_ignore_the_impact() -> None:
    checker = SLAChecker({"failure_rate": {"max": 0}, "disruption_impact": {"max_p95_ratio": 5}})
    assert checker.add_impact([entry()]) is True
    assert [r["success"] for r in checker.results()] == [True, True]
    assert checker.add_impact([entry(p95_ratio=6)]) is False


@pytest.mark.parametrize(
    "config",
    [{}, {"max_error_rate_during": 5}, {"max_recovery_seconds": -1}, {"max_recovery": 1}, 3],
)
def test_bad_configs_are_refused(config: Any) -> None:
    problems = sla.validate({"disruption_impact": config})
    assert problems and all(isinstance(p, InvalidConfig) for p in problems)
    assert str(problems[0]).startswith("sla.disruption_impact")


def test_a_criterion_that_cannot_pass_is_warned_about_before_the_load() -> None:
    import yaml

    from krally.task.loader import load_task

    def warnings(**spec: Any) -> list[str]:
        body = {
            "apiVersion": "krally.dev/v1alpha1",
            "kind": "BenchmarkTask",
            "metadata": {"name": "t"},
            "spec": {
                "scenario": {"name": "Dummy.dummy"},
                "sla": {"disruption_impact": {"max_recovery_seconds": 5}},
                **spec,
            },
        }
        return list(load_task("t.yaml", text=yaml.safe_dump(body)).warnings)

    (no_hooks,) = warnings()
    assert no_hooks.startswith("spec.sla.disruption_impact: ") and "no hooks" in no_hooks
    hook = {
        "name": "sys_call",
        "args": "true",
        "trigger": {"name": "event", "args": {"unit": "iteration", "at": [1]}},
    }
    (disabled,) = warnings(hooks=[hook], impact={"enabled": False})
    assert "impact.enabled: false" in disabled
    assert warnings(hooks=[hook]) == []
