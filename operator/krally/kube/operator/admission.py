"""Admission: what a spec must pass before the operator runs anything for it.

The API server already enforces the CRD's schema and CEL rules (immutability); this adds what it
cannot check: every plugin's ``CONFIG_SCHEMA`` and cross checks (the engine's own validation),
and the operator's identity policy for hooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from krally.kube.operator.settings import Settings


def validate(spec: Mapping[str, Any], settings: Settings) -> tuple[list[str], list[str]]:
    """(problems, warnings) of the spec, each naming its field (schema + every plugin config +
    the service-account policy). Warnings do not refuse the task (e.g. an OpenStack context,
    an ``at`` beyond ``times``)."""
    from krally.errors import KrallyError
    from krally.task.schema import validate_spec

    warnings: list[str] = []
    try:
        problems = [str(p) for p in validate_spec(spec, warnings=warnings)]
    except KrallyError as exc:
        return [str(exc)], warnings
    return problems + service_account_problems(spec, settings.hook_service_accounts), warnings


def service_account_problems(spec: Mapping[str, Any], allowed: frozenset[str] | None) -> list[str]:
    """Hooks may only run as service accounts the operator allows (None = any): a task must not
    borrow a powerful identity it was not given."""
    if allowed is None:
        return []
    problems = []
    for index, hook in enumerate(spec.get("hooks") or []):
        account = (hook.get("job") or {}).get("serviceAccountName")
        if account and account not in allowed:
            problems.append(
                f"spec.hooks[{index}].job.serviceAccountName: {account!r} is not allowed by the "
                f"operator (allowed: {', '.join(sorted(allowed))})"
            )
    return problems
