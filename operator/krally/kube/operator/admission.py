"""Admission: what a spec must pass before the operator runs anything for it.

The API server already enforces the CRD's schema and CEL rules (immutability); this adds what it
cannot check: every plugin's ``CONFIG_SCHEMA`` and cross checks (the engine's own validation),
and the operator's identity policy: a hook runs as the task's own rightless ServiceAccount
unless it names one its namespace's admin opted in (annotation ``krally.dev/hooks: allowed``),
and runner and hook images come from the operator's allow-list.

Pure: the ServiceAccounts a spec names are read by the caller (:mod:`.apply`, the one place for
API calls) and passed in, so every verdict is testable without a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from krally.api.names import ANNOTATION_HOOKS, HOOKS_ALLOWED
from krally.errors import KrallyError
from krally.kube.operator import firing_bound
from krally.kube.operator.settings import Settings
from krally.task.hook import Hook
from krally.task.loader import validate_spec


def validate(
    spec: Mapping[str, Any],
    settings: Settings,
    accounts: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> tuple[list[str], list[str]]:
    """(problems, warnings) of the spec, each naming its field (schema + every plugin config +
    the identity policy). ``accounts``: every ServiceAccount :func:`named_service_accounts`
    lists, as read from the task's namespace (None: not found); the operator always passes it,
    offline callers (no cluster to read) leave it out and the existence and opt-in checks are
    skipped. Warnings do not refuse the task (e.g. an OpenStack context, an ``at`` beyond
    ``times``)."""

    warnings: list[str] = []
    try:
        problems = [str(p) for p in validate_spec(spec, warnings=warnings)]
    except KrallyError as exc:
        return [str(exc)], warnings
    if not problems:
        problems += api_identity_problems(spec)
        problems += firing_bound.problems(spec, settings.max_firings)
    problems += service_account_problems(spec, settings.hook_service_accounts, accounts)
    problems += image_problems(spec, settings)
    return problems, warnings


def _hooks(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    hooks = spec.get("hooks") or []
    return [h if isinstance(h, Mapping) else {} for h in hooks]


def _job(hook: Mapping[str, Any]) -> Mapping[str, Any]:
    job = hook.get("job")
    return job if isinstance(job, Mapping) else {}


def named_service_accounts(spec: Mapping[str, Any]) -> list[str]:
    """The ServiceAccounts the spec's hooks name (each once, in order): what the caller reads."""
    names = [_job(h).get("serviceAccountName") for h in _hooks(spec)]
    return list(dict.fromkeys(n for n in names if isinstance(n, str) and n))


def opted_in(account: Mapping[str, Any]) -> bool:
    annotations = (account.get("metadata") or {}).get("annotations") or {}
    return annotations.get(ANNOTATION_HOOKS) == HOOKS_ALLOWED


def service_account_problems(
    spec: Mapping[str, Any],
    allowed: frozenset[str] | None,
    accounts: Mapping[str, Mapping[str, Any] | None] | None,
) -> list[str]:
    """A task must not borrow an identity it was not given: a named ServiceAccount must exist,
    carry its admin's opt-in annotation, and (when the operator restricts them) be listed.
    ``accounts`` None: nothing was read (offline), only the operator's list is checked."""
    problems = []
    for index, hook in enumerate(_hooks(spec)):
        account = _job(hook).get("serviceAccountName")
        if not account:
            continue
        field = f"spec.hooks[{index}].job.serviceAccountName"
        if allowed is not None and account not in allowed:
            problems.append(
                f"{field}: {account!r} is not allowed by the operator "
                f"(KRALLY_HOOK_SERVICE_ACCOUNTS: {', '.join(sorted(allowed))})"
            )
            continue
        if accounts is None:
            continue
        found = accounts.get(account)
        if found is None:
            problems.append(f"{field}: ServiceAccount {account!r} not found in the namespace")
        elif not opted_in(found):
            problems.append(
                f"{field}: ServiceAccount {account!r} is not opted in to run krally hooks "
                f"(its namespace's admin must annotate it {ANNOTATION_HOOKS}={HOOKS_ALLOWED}); "
                "without serviceAccountName the hook runs as the task's own rightless account"
            )
    return problems


def api_identity_problems(spec: Mapping[str, Any]) -> list[str]:
    """A hook that acts through the Kubernetes API (its plugin declares the rights it needs,
    ``rbac_rules``) must name a ServiceAccount: without one it runs as the task's own account,
    which has no rights, and would fail only when it fires, in the middle of the load."""

    problems = []
    for index, hook in enumerate(_hooks(spec)):
        if _job(hook).get("serviceAccountName"):
            continue
        try:
            plugin = Hook.get(str(hook.get("name")))
        except KrallyError:
            continue  # an unknown plugin is refused by the spec's validation
        declared = getattr(plugin, "rbac_rules", None)
        if declared is None or not declared(hook.get("args"), ""):
            continue
        problems.append(
            f"spec.hooks[{index}].job.serviceAccountName: hook {plugin.get_name()!r} acts "
            "through the Kubernetes API and needs a ServiceAccount with its rights "
            "(`krally rbac TASK.yaml` prints one); without one it runs as the task's own "
            "account, which has none"
        )
    return problems


def image_problems(spec: Mapping[str, Any], settings: Settings) -> list[str]:
    """Runner and hook images only from the operator's allow-list: an image is code running in
    the namespace with the task's identity, chosen by whoever runs the operator."""
    wanted: list[tuple[str, Any]] = []
    runner_pod = spec.get("runnerPod")
    if isinstance(runner_pod, Mapping):
        wanted.append(("spec.runnerPod.image", runner_pod.get("image")))
    for index, hook in enumerate(_hooks(spec)):
        wanted.append((f"spec.hooks[{index}].job.image", _job(hook).get("image")))
    allowed = sorted({settings.runner_image, settings.hook_image, *settings.allowed_images})
    return [
        f"{field}: image {image!r} is not allowed by the operator (allowed: "
        f"{', '.join(allowed)}; an admin adds more with KRALLY_ALLOWED_IMAGES)"
        for field, image in wanted
        if isinstance(image, str) and image and not settings.image_allowed(image)
    ]
