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

__all__ = ["PRESERVE", "SPEC_SCHEMA", "schema_errors", "spec_schema"]

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
