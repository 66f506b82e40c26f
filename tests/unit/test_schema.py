"""The BenchmarkTask spec schema: structural-OpenAPI friendly, documented, and validating."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from krally.task.loader import validate_spec
from krally.task.schema import PRESERVE, SPEC_SCHEMA, spec_schema

GOOD_SPEC: dict[str, Any] = {
    "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.01}},
    "runner": {"type": "constant", "times": 1500, "concurrency": 1},
    "contexts": {"users": {"tenants": 1, "users_per_tenant": 1}},
    "sla": {"failure_rate": {"max": 0}},
    "hooks": [
        {
            "name": "sys_call",
            "args": "/bin/echo 123",
            "trigger": {"name": "event", "args": {"unit": "iteration", "at": [5, 50, 200, 1000]}},
            "job": {"image": "krally:dev", "serviceAccountName": "chaos", "timeoutSeconds": 60},
        }
    ],
    "runnerPod": {"image": "krally:dev", "nodeSelector": {"a": "b"}},
    "abort": False,
    "abortOnSLAFailure": True,
}


def nodes(schema: dict[str, Any], path: str = "spec") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for key, sub in schema.get("properties", {}).items():
        yield from nodes(sub, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}.*")


def test_every_field_has_a_description_and_a_type_or_preserves_unknown_fields() -> None:
    for path, node in nodes(SPEC_SCHEMA):
        assert node.get("description"), f"{path} has no description"
        assert "type" in node or node.get(PRESERVE) or node.get("x-kubernetes-int-or-string"), (
            f"{path} has neither type nor {PRESERVE}"
        )


def test_structural_subset_only() -> None:
    forbidden = {"$ref", "oneOf", "anyOf", "allOf", "not", "$schema", "definitions"}
    for path, node in nodes(SPEC_SCHEMA):
        used = forbidden & set(node)
        if node.get("x-kubernetes-int-or-string"):
            # The one junctor Kubernetes allows: anyOf integer/string of an int-or-string.
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
            used -= {"anyOf"}
        assert not used, f"{path} uses {used}"
        # Kubernetes rejects additionalProperties next to properties.
        assert not ("properties" in node and "additionalProperties" in node), path


def test_plugin_args_are_free_form() -> None:
    props = SPEC_SCHEMA["properties"]
    free = [
        props["scenario"]["properties"]["args"],
        props["hooks"]["items"]["properties"]["args"],
    ]
    for node in free:
        assert node[PRESERVE] is True and "type" not in node
    # Trigger args are an object whose built-in fields are declared (for the CRD's CEL rules).
    trigger_args = props["hooks"]["items"]["properties"]["trigger"]["properties"]["args"]
    assert trigger_args[PRESERVE] is True and trigger_args["type"] == "object"
    assert props["runner"][PRESERVE] is True and props["runner"]["required"] == ["type"]
    assert props["contexts"][PRESERVE] is True and props["sla"][PRESERVE] is True
    assert props["abort"]["type"] == "boolean"
    assert props["abortOnSLAFailure"]["type"] == "boolean"


def test_spec_schema_is_a_copy() -> None:
    copy_ = spec_schema()
    copy_["properties"]["abort"]["description"] = "changed"
    assert SPEC_SCHEMA["properties"]["abort"]["description"] != "changed"


def test_good_spec_is_valid_with_warnings() -> None:
    warnings: list[str] = []
    assert validate_spec(GOOD_SPEC, warnings=warnings) == []
    assert any("spec.contexts.users" in w and "needs OpenStack" in w for w in warnings)


def test_minimal_spec_is_valid() -> None:
    assert validate_spec({"scenario": {"name": "Dummy.dummy"}}) == []


def _with(path: list[Any], value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(GOOD_SPEC)
    node: Any = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return spec


@pytest.mark.parametrize(
    ("spec", "where", "words"),
    [
        (_with(["hoks"], []), "spec.hoks", "unknown field"),
        (_with(["hooks", 0, "job", "timeoutSeconds"], 0), "spec.hooks[0].job.timeoutSeconds", "1"),
        (_with(["hooks", 0, "job", "imagee"], "x"), "spec.hooks[0].job.imagee", "unknown field"),
        (_with(["abort"], "yes"), "spec.abort", "boolean"),
        (_with(["runner"], {"times": 3}), "spec.runner", "type"),
        (_with(["hooks", 0, "name"], "nope"), "spec.hooks[0].name", "sys_call"),
        (_with(["hooks", 0, "trigger", "args", "at"], []), "spec.hooks[0].trigger", "at least one"),
        (_with(["runner", "type"], "fast"), "spec.runner.type", "constant"),
        (_with(["runner", "times"], -1), "spec.runner", "-1"),
        (_with(["scenario", "name"], "Dummy.nope"), "spec.scenario.name", "Dummy.dummy"),
        (_with(["contexts", "nope"], {}), "spec.contexts.nope", "dummy_context"),
    ],
)
def test_bad_specs(spec: dict[str, Any], where: str, words: str) -> None:
    problems = validate_spec(spec)
    assert problems, "expected a problem"
    text = "\n".join(str(p) for p in problems)
    assert any(p.path.startswith(where) for p in problems), text
    assert words in text


def test_at_beyond_times_is_a_warning() -> None:
    spec = _with(["hooks", 0, "trigger", "args", "at"], [5, 2000])
    warnings: list[str] = []
    assert validate_spec(spec, warnings=warnings) == []
    assert any("spec.hooks[0].trigger.args.at" in w and "2000" in w for w in warnings)
