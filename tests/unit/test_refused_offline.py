"""`krally validate` refuses, offline, every bad task the API server or the webhook refuses at
apply time, naming the same field (the table is tests/bad_tasks.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests import bad_tasks
from tests.bad_tasks import CRD_REFUSED, GOOD_SPEC, WEBHOOK_REFUSED, Bad
from tests.cli import krally

from krally.task.loader import validate_spec


def _names_field(problem, field: str) -> bool:
    """The problem is at ``field`` (or inside it), or is its parent's "required" error."""
    path = problem.path
    if path == field or path.startswith((field + "[", field + ".")):
        return True
    parent, _, key = field.rpartition(".")
    return path == parent and repr(key) in problem.message


def test_the_good_task_is_valid():
    assert validate_spec(GOOD_SPEC) == []


@pytest.mark.parametrize("bad", CRD_REFUSED + WEBHOOK_REFUSED, ids=lambda b: b.kind)
def test_every_bad_task_is_refused_naming_the_field(bad: Bad):
    problems = validate_spec(bad_tasks.bad_spec(bad))
    assert problems, f"{bad.kind} was accepted"
    assert any(_names_field(p, bad.field) for p in problems), (
        bad.kind,
        [str(p) for p in problems],
    )


def test_krally_validate_names_the_field(tmp_path: Path):
    # Through the CLI as a user runs it: one CEL-only rule and one plugin-schema rule.
    for bad in (CRD_REFUSED[-1], WEBHOOK_REFUSED[1]):
        path = tmp_path / f"{bad.kind}.json"
        path.write_text(json.dumps(bad_tasks.task("t", bad_tasks.bad_spec(bad))))
        proc = krally("validate", str(path))
        assert proc.returncode != 0, proc.stdout
        assert bad.field in proc.stdout + proc.stderr
