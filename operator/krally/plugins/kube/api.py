"""How every ``kube.*`` hook talks to the API: credentials, the default namespace, API calls
whose failures become clear hook errors, and RBAC rule declarations (the hook base is in
:mod:`krally.plugins.kube.base`, what the hooks act on in :mod:`krally.plugins.kube.objects`).

The hooks act with the identity of the process: in a pod, its ServiceAccount's mounted token
(in-cluster config); elsewhere (``krally run`` on a laptop) the kubeconfig. The ``kubernetes``
package is imported only when a hook runs, so validating a task never needs it.

Every call names its verb and resource (``create pods/eviction``, ``patch deployments.apps/scale``)
so that a 403 says exactly which rule is missing, and ``rbac_rules`` of each plugin declares
the same (verb, resource) pairs: ``krally rbac`` prints them as Roles.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from krally.kube import client

REQUEST_TIMEOUT = 30.0
POLL_SECONDS = 0.25
# Rows kept in a hook's table: the pod's termination message holds at most 4096 bytes.
MAX_ROWS = 12
RBAC_HINT = (
    "give the hook's ServiceAccount (hooks[].job.serviceAccountName) the Role that "
    "`krally rbac TASK.yaml` prints"
)
FIELD_MANAGER = "krally"


class HookFailure(Exception):
    """Ends a kube hook as failed with this Rally error (etype, msg, details)."""

    def __init__(self, etype: str, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.etype, self.msg, self.details = etype, msg, details


# -- RBAC declarations ---------------------------------------------------------------------------

# (namespace, or None for cluster scope; a PolicyRule {apiGroups, resources, verbs})
Rule = tuple[str | None, dict[str, list[str]]]


# The options of a hook that may wait for its target to be Ready again.
WAIT_SCHEMA: dict[str, Any] = {
    "wait_ready": {"type": "boolean"},
    "wait_timeout_seconds": {"type": "number", "exclusiveMinimum": 0},
}


def wait_problems(config: dict[str, Any]) -> list[tuple[str, str]]:
    if "wait_timeout_seconds" in config and not config.get("wait_ready"):
        return [("wait_timeout_seconds", "only applies with wait_ready: true")]
    return []


def rule(namespace: str | None, group: str, resource: str, *verbs: str) -> Rule:
    return namespace, {"apiGroups": [group], "resources": [resource], "verbs": sorted(verbs)}


def resource_name(group: str, resource: str) -> str:
    """``pods``, ``deployments.apps/scale``: how RBAC errors and ``kubectl auth`` name it."""
    base, _, sub = resource.partition("/")
    name = f"{base}.{group}" if group else base
    return f"{name}/{sub}" if sub else name


# -- the process's identity ----------------------------------------------------------------------


def no_credentials() -> HookFailure:
    return HookFailure(
        "NoCredentials",
        "no Kubernetes credentials: no ServiceAccount token is mounted and there is no "
        "kubeconfig; a kube.* hook needs hooks[].job.serviceAccountName naming a ServiceAccount "
        "with the rights `krally rbac TASK.yaml` prints (the task's own hooks ServiceAccount "
        "has none)",
    )


def default_namespace() -> str:
    """The task's namespace in a hook pod, else the pod's ServiceAccount namespace, else the
    kubeconfig context's, else ``default``."""
    task_ns = os.environ.get("KRALLY_TASK_NAMESPACE")
    if task_ns:
        return task_ns
    own = client.own_namespace()
    if own:
        return own
    path = client.kubeconfig_file()
    if path:
        try:
            from kubernetes import config  # noqa: PLC0415 (lazy)

            _, active = config.list_kube_config_contexts(config_file=path)
            namespace = ((active or {}).get("context") or {}).get("namespace")
            if namespace:
                return str(namespace)
        except Exception:  # a kubeconfig without contexts: not our problem here
            pass
    return "default"


def load_api_client() -> Any:
    """A ``kubernetes.client.ApiClient`` with this process's identity; NoCredentials if none."""
    try:
        return client.api_client()
    except client.NoCredentials as exc:
        if client.kubeconfig_file() is None:
            raise no_credentials() from None
        raise HookFailure("NoCredentials", str(exc)) from None


# -- API calls -----------------------------------------------------------------------------------


def api_path(group: str, version: str, resource: str, namespace: str | None, name: str = "") -> str:
    """``/api/v1/namespaces/NS/pods/NAME`` or ``/apis/apps/v1/...``; ``resource`` may carry a
    subresource (``deployments/scale``), which goes after the name."""
    base, _, sub = resource.partition("/")
    root = f"/apis/{group}/{version}" if group else f"/api/{version}"
    path = root + (f"/namespaces/{urllib.parse.quote(namespace)}" if namespace else "") + "/" + base
    if name:
        path += "/" + urllib.parse.quote(name)
    if sub:
        path += "/" + sub
    return path


@dataclass
class Kube:
    """A thin JSON client over the kubernetes package's ApiClient: objects are plain dicts as
    the API serves them (camelCase), and every failure is a :class:`HookFailure`."""

    api_client: Any

    @classmethod
    def connect(cls) -> Kube:
        return cls(load_api_client())

    def request(
        self,
        method: str,
        path: str,
        *,
        verb: str,
        resource: str,
        namespace: str | None,
        name: str = "",
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        ok_statuses: Iterable[int] = (),
    ) -> tuple[int, Any]:
        """(status, parsed body). ``resource`` is RBAC's name (``deployments.apps/scale``)."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        query_params = [(k, v) for k, v in (query or {}).items() if v is not None]
        method, url, headers, _, _ = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=query_params,
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api_client.call_api(
                method, url, header_params=headers, body=body, _request_timeout=REQUEST_TIMEOUT
            )
            raw = response.read()
        except HookFailure:
            raise
        except Exception as exc:
            raise HookFailure(
                "ApiUnreachable",
                f"{verb} {resource}: cannot reach the API server: {exc}",
                f"{method} {url}",
            ) from None
        status = int(response.status)
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if 200 <= status < 300 or status in ok_statuses:
            return status, data
        raise api_failure(status, data, verb, resource, namespace, name)

    def warm_up(self) -> None:
        """Open the connection ahead (GET /version, which every identity may read)."""
        with contextlib.suppress(HookFailure):  # the real call will say what is wrong
            self.request("GET", "/version", verb="get", resource="version", namespace=None)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, verb=kwargs.pop("verb", "get"), **kwargs)[1]

    def patch(self, path: str, body: Any, *, merge: bool = True, **kwargs: Any) -> Any:
        content_type = "application/merge-patch+json" if merge else "application/json-patch+json"
        return self.request(
            "PATCH", path, verb="patch", body=body, content_type=content_type, **kwargs
        )[1]


def api_message(data: Any) -> str:
    if isinstance(data, dict):
        return str(data.get("message") or data.get("reason") or json.dumps(data)[:300])
    return str(data or "")[:300]


def api_failure(
    status: int, data: Any, verb: str, resource: str, namespace: str | None, name: str = ""
) -> HookFailure:
    """A failed call as a hook error naming the verb, the resource and where."""
    where = f"in namespace {namespace}" if namespace else "at cluster scope"
    target = f"{resource} {name}" if name else resource
    message = api_message(data)
    if status == 403:
        # The authorizer says which check failed (exec's websocket is checked as get and create).
        said = re.search(r'cannot (\w+) resource "([^"]+)" in API group "([^"]*)"', message)
        if said:
            verb, resource = said.group(1), resource_name(said.group(3), said.group(2))
        return HookFailure(
            "Forbidden",
            f"forbidden: cannot {verb} {resource} {where}"
            + (f" ({name})" if name else "")
            + f"; {RBAC_HINT}",
            message,
        )
    if status == 401:
        return HookFailure(
            "Unauthorized", f"{verb} {target}: the API server rejected the credentials", message
        )
    if status == 404:
        return HookFailure("NotFound", f"{target} not found {where}", message)
    if status == 429:
        return HookFailure("TooManyRequests", f"{verb} {target} {where}: {message}", message)
    return HookFailure(
        "ApiError", f"{verb} {target} {where}: HTTP {status}: {message}", json.dumps(data)[:500]
    )
