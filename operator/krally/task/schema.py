"""Validation of a BenchmarkTask ``spec`` against its schema and every plugin config.

The schema itself is :data:`krally.api.spec_schema.SPEC_SCHEMA` (the resource's types live in
:mod:`krally.api`); it is re-exported here for the engine's callers.
"""

from __future__ import annotations

from typing import Any

import jsonschema

from krally.api.rules import rule_problems
from krally.api.schema import PRESERVE, pruned
from krally.api.spec_schema import SPEC_SCHEMA, spec_schema
from krally.errors import InvalidConfig
from krally.task.plugin import explain, join_path

__all__ = ["PRESERVE", "SPEC_SCHEMA", "schema_errors", "spec_schema", "validate_spec"]

_VALIDATOR = jsonschema.Draft7Validator(SPEC_SCHEMA)


def schema_errors(spec: Any, path: str = "spec") -> list[InvalidConfig]:
    """Problems of ``spec`` against SPEC_SCHEMA, plus unknown fields; each with its dotted path."""
    problems = [
        InvalidConfig(join_path(path, error.absolute_path), explain(error))
        for error in sorted(_VALIDATOR.iter_errors(spec), key=lambda e: list(e.absolute_path))
    ]
    problems.extend(
        InvalidConfig(where, f"unknown field {key!r}; known fields: {', '.join(known)}")
        for where, key, known in pruned(SPEC_SCHEMA, spec, path)
    )
    if not problems:
        # The CRD's CEL rules, in Python: the API server refuses these at apply time too.
        problems.extend(
            InvalidConfig(where, message) for where, message in rule_problems(spec, path)
        )
    return problems


def validate_spec(
    spec: Any, path: str = "spec", warnings: list[str] | None = None
) -> list[InvalidConfig]:
    """Every problem of a BenchmarkTask ``spec``: schema, unknown fields, every plugin config
    (scenario, runner, contexts, SLA, hooks and triggers) and cross checks.

    Returns the errors (an empty list means valid). Non-fatal findings (an OpenStack context that
    is ignored locally, a trigger value the runner never reaches) are appended to ``warnings``
    when given, each as ``"<path>: <message>"``.
    """
    problems = schema_errors(spec, path)
    if problems:
        return problems
    # Imported here: validation imports the plugin kinds, which must not be needed to read
    # SPEC_SCHEMA (the CRD generator only wants the dict).
    from krally.task.loader import workload_from_spec
    from krally.task.validation import validate_workload

    workload = workload_from_spec(spec, path=path)
    found: list[str] = []
    problems = validate_workload(workload, style="benchmarktask", warnings=found)
    if warnings is not None:
        warnings.extend(found)
    return problems
