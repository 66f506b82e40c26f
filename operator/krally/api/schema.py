"""The one walker over the resource's OpenAPI schemas (spec and status).

``pruned`` finds what the API server would silently drop from a value (undeclared fields);
``structural_problems`` what keeps a schema from being structural. Both step through the schema
with :func:`children`, so the two agree on what ``properties``, ``items`` and
``additionalProperties`` mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

PRESERVE = "x-kubernetes-preserve-unknown-fields"
VALIDATIONS = "x-kubernetes-validations"
INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]

Schema = dict[str, Any]


def join_path(prefix: str, parts: Iterable[Any]) -> str:
    """``spec.hooks`` + ``[0, "trigger"]`` → ``spec.hooks[0].trigger``."""
    path = prefix
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def children(schema: Schema) -> Iterator[tuple[str, str | None, Schema]]:
    """The sub-schemas of ``schema``: ("property", name, sub), ("items", None, sub) and
    ("additional", None, sub)."""
    for name, sub in (schema.get("properties") or {}).items():
        yield "property", name, sub
    if isinstance(schema.get("items"), dict):
        yield "items", None, schema["items"]
    if isinstance(schema.get("additionalProperties"), dict):
        yield "additional", None, schema["additionalProperties"]


def pruned(schema: Schema, value: Any, path: str) -> Iterator[tuple[str, str, list[str]]]:
    """(path, key, known keys) of every member of ``value`` the schema does not declare, i.e.
    what the API server's pruning would drop without an error."""
    if schema.get(PRESERVE):
        return
    subs = {(kind, name): sub for kind, name, sub in children(schema)}
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = subs.get(("additional", None))
        for key, item in value.items():
            if props is not None and key in props:
                yield from pruned(props[key], item, join_path(path, [key]))
            elif extra is not None:
                yield from pruned(extra, item, join_path(path, [key]))
            else:
                yield join_path(path, [key]), key, sorted(props or ())
    elif isinstance(value, list) and ("items", None) in subs:
        for index, item in enumerate(value):
            yield from pruned(subs[("items", None)], item, join_path(path, [index]))


def structural_problems(
    schema: Any, path: str = "", exempt: frozenset[str] | set[str] = frozenset()
) -> list[str]:
    """What keeps ``schema`` from being a structural schema with a description on every node.

    The API server checks structure itself when the CRD is applied; this check runs without a
    cluster (unit tests, generation) and also demands the descriptions `kubectl explain` shows.
    """
    if not isinstance(schema, dict):
        return [f"{path or '<root>'}: not a schema object"]
    where = path or "<root>"
    if path in exempt:
        return []
    problems: list[str] = []
    if not schema.get("description"):
        problems.append(f"{where}: no description")
    if (
        "type" not in schema
        and not schema.get(PRESERVE)
        and not schema.get("x-kubernetes-int-or-string")
    ):
        problems.append(f"{where}: no type (nor {PRESERVE})")
    for key in ("$ref", "$schema", "definitions", "patternProperties", "additionalItems", "id"):
        if key in schema:
            problems.append(f"{where}: {key} is not allowed in a CRD schema")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{where}: properties and additionalProperties are mutually exclusive")
    for junctor in ("oneOf", "anyOf", "allOf", "not"):
        if junctor == "anyOf" and schema.get(junctor) == INT_OR_STRING_ANY_OF:
            continue  # the one typed junctor Kubernetes allows (an int-or-string quantity)
        if junctor in schema:
            # Junctors may only restrict values (no types, descriptions); H4's schema has none.
            problems.append(f"{where}: {junctor} is not supported by this generator")
    if "items" in schema and not isinstance(schema["items"], dict):
        problems.append(f"{where}: items must be a single schema")
    suffix = {"items": "[]", "additional": ".*"}
    for kind, name, sub in children(schema):
        below = f"{path}.{name}" if kind == "property" else path + suffix[kind]
        problems.extend(structural_problems(sub, below, exempt))
    return problems
