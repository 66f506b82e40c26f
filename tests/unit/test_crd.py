"""The committed CRD files are exactly what the generator renders from the one spec schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from krally.api import crd
from krally.api.status_schema import STATUS_SCHEMA, pruned_fields
from krally.task.schema import SPEC_SCHEMA

ROOT = Path(__file__).resolve().parents[2]


def _version(rendered: dict) -> dict:
    (version,) = rendered["spec"]["versions"]
    return version


def _walk(schema: dict, path: str = ""):
    """Every schema node with its dotted path."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}.*")


@pytest.mark.parametrize("relative", crd.OUTPUTS)
def test_committed_crd_matches_generator(relative):
    committed = (ROOT / relative).read_text()
    assert committed == crd.render_yaml(), (
        f"{relative} is out of date: regenerate it with `python -m krally.api.crd --write`"
    )


def test_names_and_version():
    rendered = crd.render_crd()
    assert rendered["metadata"]["name"] == "benchmarktasks.krally.dev"
    names = rendered["spec"]["names"]
    assert names["kind"] == "BenchmarkTask"
    assert names["plural"] == "benchmarktasks"
    assert names["singular"] == "benchmarktask"
    assert names["shortNames"] == ["bt"]
    assert names["categories"] == ["krally"]
    assert rendered["spec"]["scope"] == "Namespaced"
    version = _version(rendered)
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def _without_rules(schema):
    if isinstance(schema, dict):
        return {k: _without_rules(v) for k, v in schema.items() if k != crd.VALIDATIONS}
    if isinstance(schema, list):
        return [_without_rules(v) for v in schema]
    return schema


def test_spec_properties_are_the_engine_schema():
    spec = _version(crd.render_crd())["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert _without_rules(spec) == SPEC_SCHEMA


def test_every_shared_rule_is_in_the_crd_at_its_place():
    from krally.api.rules import RULES

    spec = _version(crd.render_crd())["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for rule in RULES:
        node = spec
        for step in rule.where:
            node = node["items"] if step == "[]" else node["properties"][step]
        assert rule.validation() in node[crd.VALIDATIONS], rule.where


def test_status_is_the_status_schema():
    status = _version(crd.render_crd())["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status == STATUS_SCHEMA


def test_every_node_has_description_and_type():
    root = _version(crd.render_crd())["schema"]["openAPIV3Schema"]
    missing = []
    for path, node in _walk(root):
        if path == ".metadata":  # the API server allows nothing but `type` there
            continue
        if not node.get("description"):
            missing.append(f"{path or '<root>'}: description")
        if (
            "type" not in node
            and not node.get(crd.PRESERVE)
            and not node.get("x-kubernetes-int-or-string")
        ):
            missing.append(f"{path or '<root>'}: type")
    assert not missing
    assert crd.structural_problems(root, exempt={".metadata"}) == []


def test_structural_problems_are_reported():
    bad = {
        "type": "object",
        "description": "x",
        "properties": {"a": {"type": "string"}, "b": {"description": "no type"}},
        "additionalProperties": False,
        "oneOf": [{"required": ["a"]}],
    }
    problems = crd.structural_problems(bad)
    assert ".a: no description" in problems
    assert any(p.startswith(".b: no type") for p in problems)
    assert any("mutually exclusive" in p for p in problems)
    assert any("oneOf" in p for p in problems)


def test_status_declares_the_contract_fields():
    props = STATUS_SCHEMA["properties"]
    for field in (
        "observedGeneration", "phase", "conditions", "message", "startedAt", "finishedAt",
        "runnerJob", "progress", "display", "hooks", "sla", "passSLA", "result", "runner",
    ):  # fmt: skip
        assert field in props, field
    assert props["phase"]["enum"] == [
        "Pending", "Running", "Finishing", "Succeeded", "Failed", "Aborted",
    ]  # fmt: skip
    result = props["hooks"]["items"]["properties"]["results"]["items"]["properties"]
    assert set(result) >= {"triggeredBy", "status", "firedAt", "startedAt", "finishedAt", "job"}
    runner = props["runner"]["properties"]
    assert set(runner) >= {"state", "progress", "firings", "summary", "error"}
    assert props["conditions"]["x-kubernetes-list-map-keys"] == ["type"]


def test_printer_columns():
    columns = {c["name"]: c for c in _version(crd.render_crd())["additionalPrinterColumns"]}
    default = [name for name, c in columns.items() if not c.get("priority")]
    assert default == ["Phase", "Progress", "Hooks", "SLA", "Recovery", "Age"]
    assert columns["Phase"]["jsonPath"] == ".status.phase"
    assert columns["Progress"]["jsonPath"] == ".status.display.progress"
    assert columns["Hooks"]["jsonPath"] == ".status.display.hooks"
    assert columns["SLA"]["jsonPath"] == ".status.display.sla"
    assert columns["Recovery"]["jsonPath"] == ".status.display.recovery"
    wide = [name for name, c in columns.items() if c.get("priority") == 1]
    assert wide == ["Failures", "P95", "Failed SLA", "Scenario", "Message"]
    assert columns["Failures"]["jsonPath"] == ".status.display.failures"
    assert columns["P95"]["jsonPath"] == ".status.display.p95"
    assert columns["Failed SLA"]["jsonPath"] == ".status.display.failedSLA"
    # Every display column's field is declared (the API server would prune it otherwise).
    display = STATUS_SCHEMA["properties"]["display"]["properties"]
    for column in columns.values():
        if column["jsonPath"].startswith(".status.display."):
            assert column["jsonPath"].removeprefix(".status.display.") in display
    assert columns["Age"] == {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
        "description": "Time since creation.",
    }


def test_spec_is_immutable_except_abort():
    spec = _version(crd.render_crd())["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = spec[crd.VALIDATIONS]
    guarded = {r["fieldPath"].lstrip(".") for r in rules if r["message"] == crd.IMMUTABLE_MESSAGE}
    # Every spec field is guarded, generated from the schema, except the abort switch.
    assert guarded == set(SPEC_SCHEMA["properties"]) - {"abort"}
    for rule in rules:
        assert "oldSelf" in rule["rule"]  # transition rules: never block creation
    (abort_rule,) = [r for r in rules if r["fieldPath"] == ".abort"]
    assert "cannot be undone" in abort_rule["message"]


def test_yaml_round_trips_and_cli_prints_it(capsys):
    assert yaml.safe_load(crd.render_yaml()) == crd.render_crd()
    assert crd.main([]) == 0
    assert capsys.readouterr().out == crd.render_yaml()


def test_write_to_a_root(tmp_path):
    assert crd.main(["--write", "--root", str(tmp_path)]) == 0
    for relative in crd.OUTPUTS:
        assert (tmp_path / relative).read_text() == crd.render_yaml()


def test_pruned_fields_finds_undeclared_status():
    status = {
        "phase": "Running",
        "hooks": [{"summary": {"success": 1}, "results": [{"status": "success", "jobName": "x"}]}],
        "runner": {"summary": {"anything": [1, {"goes": True}]}},
        "progres": {},
    }
    assert pruned_fields(status) == ["status.hooks[0].results[0].jobName", "status.progres"]
