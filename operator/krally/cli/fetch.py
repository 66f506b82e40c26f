"""Read one BenchmarkTask from the cluster for ``krally report -n NS bt/NAME``."""

from __future__ import annotations

import re
from typing import Any

from krally.api import names
from krally.errors import KrallyError
from krally.plugins.kube.api import HookFailure, Kube, default_namespace

# As kubectl spells it: bt/NAME, benchmarktask/NAME, benchmarktasks.krally.dev/NAME
REFERENCE = re.compile(
    r"^(?:bt|benchmarktasks?)(?:\.krally\.dev)?/(?P<name>[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$"
)


class TaskNotReadable(KrallyError):
    pass


def task_reference(text: str) -> str | None:
    """NAME when ``text`` is a task reference like ``bt/NAME``, else None."""
    match = REFERENCE.match(text)
    return match.group("name") if match else None


def fetch_task(name: str, namespace: str | None) -> dict[str, Any]:
    """The task as the API serves it (one GET, with this shell's kubeconfig)."""
    namespace = namespace or default_namespace()
    path = f"/apis/{names.API_VERSION}/namespaces/{namespace}/{names.PLURAL}/{name}"
    try:
        _, task = Kube.connect().request(
            "GET",
            path,
            verb="get",
            resource=names.CRD_NAME,
            namespace=namespace,
            name=name,
            ok_statuses=(404,),
        )
    except HookFailure as exc:
        raise TaskNotReadable(f"bt/{name} in namespace {namespace}: {exc.msg}") from None
    if not isinstance(task, dict) or task.get("kind") == "Status":
        raise TaskNotReadable(f'benchmarktask "{name}" not found in namespace {namespace}')
    return task
