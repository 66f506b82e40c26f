"""The BenchmarkSchedule CRD: generated from one source, structural, its template the task's
schema, and the committed file is exactly the generator's output."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

from krally.api import crd, schedule_crd
from krally.api.rules import RULES
from krally.api.schedule_schema import (
    SCHEDULE_RULES,
    SCHEDULE_SPEC_SCHEMA,
    SCHEDULE_STATUS_SCHEMA,
)
from krally.api.spec_schema import SPEC_SCHEMA
from krally.api.status_schema import pruned_fields

ROOT = Path(__file__).resolve().parents[2]

GOOD_SPEC = {
    "schedule": "30 2 * * *",
    "timeZone": "Europe/Berlin",
    "concurrencyPolicy": "Forbid",
    "startingDeadlineSeconds": 300,
    "suspend": False,
    "successfulRunsHistoryLimit": 3,
    "failedRunsHistoryLimit": 1,
    "taskTemplate": {
        "metadata": {"labels": {"team": "sre"}, "annotations": {"note": "nightly"}},
        "spec": {
            "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.01}},
            "runner": {"type": "constant", "times": 100, "concurrency": 2},
            "hooks": [
                {
                    "name": "sys_call",
                    "args": "/bin/true",
                    "trigger": {"name": "event", "args": {"unit": "iteration", "at": [10]}},
                }
            ],
        },
    },
}


def _version(rendered: dict) -> dict:
    (version,) = rendered["spec"]["versions"]
    return version


def _root() -> dict:
    return _version(schedule_crd.render_crd())["schema"]["openAPIV3Schema"]


def _walk(schema: dict, path: str = ""):
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}.*")


def _without_rules(schema):
    if isinstance(schema, dict):
        return {k: _without_rules(v) for k, v in schema.items() if k != crd.VALIDATIONS}
    if isinstance(schema, list):
        return [_without_rules(v) for v in schema]
    return schema


@pytest.mark.parametrize("relative", schedule_crd.OUTPUTS)
def test_committed_crd_matches_generator(relative):
    committed = (ROOT / relative).read_text()
    assert committed == schedule_crd.render_yaml(), (
        f"{relative} is out of date: regenerate it with `python -m krally.api.schedule_crd --write`"
    )


def test_names():
    rendered = schedule_crd.render_crd()
    assert rendered["metadata"]["name"] == "benchmarkschedules.krally.dev"
    assert rendered["spec"]["group"] == "krally.dev"
    assert rendered["spec"]["names"] == {
        "kind": "BenchmarkSchedule",
        "listKind": "BenchmarkScheduleList",
        "plural": "benchmarkschedules",
        "singular": "benchmarkschedule",
        "shortNames": ["bs"],
        "categories": ["krally"],
    }
    version = _version(rendered)
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_structural_with_a_description_and_type_everywhere():
    root = _root()
    assert crd.structural_problems(root, exempt={".metadata"}) == []
    for path, node in _walk(root):
        if path == ".metadata":
            continue
        assert node.get("description"), path
        assert "type" in node or node.get(crd.PRESERVE) or node.get("x-kubernetes-int-or-string")


def test_a_broken_schema_is_refused(monkeypatch):
    broken = copy.deepcopy(SCHEDULE_SPEC_SCHEMA)
    broken["properties"]["schedule"].pop("description")
    monkeypatch.setattr(schedule_crd, "SCHEDULE_SPEC_SCHEMA", broken)
    with pytest.raises(ValueError, match=r"\.spec\.schedule: no description"):
        schedule_crd.render_crd()


def test_template_spec_is_the_task_schema_object():
    # One source of truth: the very object, not a copy...
    assert SCHEDULE_SPEC_SCHEMA["properties"]["taskTemplate"]["properties"]["spec"] is SPEC_SCHEMA
    # ...and in the CRD, the task's schema plus the task's own CEL rules at their places.
    template = _root()["properties"]["spec"]["properties"]["taskTemplate"]["properties"]["spec"]
    assert _without_rules(template) == _without_rules(SPEC_SCHEMA)
    for rule in RULES:
        node = template
        for step in rule.where:
            node = node["items"] if step == "[]" else node["properties"][step]
        assert rule.validation() in node[crd.VALIDATIONS], rule.where
    # The task's immutability rules are not there: a schedule's template may change.
    assert not any("oldSelf" in r["rule"] for r in template.get(crd.VALIDATIONS, []))
    assert any(r["fieldPath"] == ".abort" for r in template[crd.VALIDATIONS])
    # Rendering never changed the shared object.
    assert crd.VALIDATIONS not in SPEC_SCHEMA


def test_spec_fields_defaults_and_bounds():
    spec = _root()["properties"]["spec"]
    props = spec["properties"]
    assert spec["required"] == ["schedule", "taskTemplate"]
    assert set(props) == {
        "schedule", "timeZone", "concurrencyPolicy", "startingDeadlineSeconds", "suspend",
        "successfulRunsHistoryLimit", "failedRunsHistoryLimit", "taskTemplate",
    }  # fmt: skip
    assert props["schedule"]["type"] == "string" and props["schedule"]["minLength"] == 1
    assert props["concurrencyPolicy"]["enum"] == ["Allow", "Forbid", "Replace"]
    assert props["concurrencyPolicy"]["default"] == "Forbid"
    assert props["startingDeadlineSeconds"]["minimum"] == 1
    assert "default" not in props["startingDeadlineSeconds"]
    assert props["suspend"] == {**props["suspend"], "type": "boolean", "default": False}
    assert props["successfulRunsHistoryLimit"]["default"] == 3
    assert props["failedRunsHistoryLimit"]["default"] == 1
    for limit in ("successfulRunsHistoryLimit", "failedRunsHistoryLimit"):
        assert props[limit]["minimum"] == 0
    assert props["taskTemplate"]["required"] == ["spec"]
    meta = props["taskTemplate"]["properties"]["metadata"]["properties"]
    assert set(meta) == {"labels", "annotations"}


def test_schedule_cel_rules_are_in_the_crd():
    spec = _root()["properties"]["spec"]
    for rule in SCHEDULE_RULES:
        assert rule.validation() in spec[crd.VALIDATIONS]
        assert rule.validation()["fieldPath"] == ".schedule"
    # Every rule reads schedule guarded by has(): no CEL error on a missing field.
    for rule in SCHEDULE_RULES:
        assert rule.cel.startswith("!has(self.schedule) || ")


def test_schema_accepts_a_good_spec_and_refuses_bad_ones():
    schema = _without_rules(_root()["properties"]["spec"])
    jsonschema.validate(GOOD_SPEC, schema)
    jsonschema.validate(
        {"schedule": "@every 5s", "taskTemplate": {"spec": {"scenario": {"name": "Dummy.dummy"}}}},
        schema,
    )
    for bad in (
        {**GOOD_SPEC, "concurrencyPolicy": "Sometimes"},
        {**GOOD_SPEC, "startingDeadlineSeconds": 0},
        {**GOOD_SPEC, "successfulRunsHistoryLimit": -1},
        {**GOOD_SPEC, "timeZone": "not a zone"},
        {**GOOD_SPEC, "schedule": ""},
        {k: v for k, v in GOOD_SPEC.items() if k != "taskTemplate"},
        {**GOOD_SPEC, "taskTemplate": {"spec": {"runner": {"type": "constant"}}}},  # no scenario
        {
            **GOOD_SPEC,
            "taskTemplate": {**GOOD_SPEC["taskTemplate"], "metadata": {"labels": {"a": "x" * 64}}},
        },
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_good_spec_passes_every_python_twin_of_the_cel_rules():
    assert all(rule.check(GOOD_SPEC) for rule in SCHEDULE_RULES)
    assert not all(rule.check({**GOOD_SPEC, "schedule": "0 2 * *"}) for rule in SCHEDULE_RULES)


def test_status_declares_the_contract_fields():
    status = _root()["properties"]["status"]
    assert status == SCHEDULE_STATUS_SCHEMA
    props = status["properties"]
    for field in (
        "observedGeneration", "conditions", "lastScheduleTime", "lastSuccessfulTime", "active",
        "missedSlots", "lastSlotTime", "nextScheduleTime", "lastResult", "activeCount",
        "skippedSlots", "lastRunNow",
    ):  # fmt: skip
        assert field in props, field
    assert set(props["active"]["items"]["properties"]) >= {"name", "slot"}
    assert props["active"]["x-kubernetes-list-map-keys"] == ["name"]
    assert props["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    assert props["lastScheduleTime"]["format"] == "date-time"
    example = {
        "observedGeneration": 2,
        "lastScheduleTime": "2024-03-31T01:00:00Z",
        "active": [{"name": "nightly-1711846800", "slot": "2024-03-31T01:00:00Z"}],
        "activeCount": 1,
        "missedSlots": 0,
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Valid"}],
        "lastRunNow": {
            "value": "v1",
            "task": "nightly-run-12345678",
            "time": "2024-01-01T00:00:00Z",
        },
    }
    assert pruned_fields(example, SCHEDULE_STATUS_SCHEMA) == []
    assert pruned_fields({"activ": []}, SCHEDULE_STATUS_SCHEMA) == ["status.activ"]


def test_printer_columns():
    columns = {
        c["name"]: c for c in _version(schedule_crd.render_crd())["additionalPrinterColumns"]
    }
    default = [name for name, c in columns.items() if not c.get("priority")]
    assert default == ["Schedule", "Suspend", "Active", "Last Schedule", "Last Result", "Age"]
    assert columns["Schedule"]["jsonPath"] == ".spec.schedule"
    assert (columns["Suspend"]["jsonPath"], columns["Suspend"]["type"]) == (
        ".spec.suspend",
        "boolean",
    )
    assert (columns["Active"]["jsonPath"], columns["Active"]["type"]) == (
        ".status.activeCount",
        "integer",
    )
    assert columns["Last Schedule"]["type"] == "date"
    assert columns["Last Result"]["jsonPath"] == ".status.lastResult"
    assert columns["Age"]["jsonPath"] == ".metadata.creationTimestamp"
    # kubectl prints a future date as <invalid>: the next slot is a plain string.
    assert columns["Next Schedule"]["type"] == "string"
    # Every status column's field is declared (else always empty).
    status = SCHEDULE_STATUS_SCHEMA["properties"]
    spec = SCHEDULE_SPEC_SCHEMA["properties"]
    for column in columns.values():
        section, _, field = column["jsonPath"].lstrip(".").partition(".")
        if section in ("spec", "status"):
            assert field in (spec if section == "spec" else status), column["name"]


def test_yaml_round_trips_and_cli(capsys, tmp_path):
    assert yaml.safe_load(schedule_crd.render_yaml()) == schedule_crd.render_crd()
    assert schedule_crd.main([]) == 0
    assert capsys.readouterr().out == schedule_crd.render_yaml()
    assert schedule_crd.main(["--write", "--root", str(tmp_path)]) == 0
    for relative in schedule_crd.OUTPUTS:
        assert (tmp_path / relative).read_text() == schedule_crd.render_yaml()
