"""What every ``kube.*`` hook shares: credentials, the default namespace, API calls whose
failures become clear hook errors, readiness waits, RBAC rule declarations and small outputs.

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
import math
import os
import random
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import yaml

from krally.errors import InvalidConfig
from krally.kube import client
from krally.task import hook

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


# -- the hook base -------------------------------------------------------------------------------


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class KubeHook(hook.Hook):
    """Base of the ``kube.*`` hooks: ``act(kube)`` does the work; a :class:`HookFailure` ends
    the hook as failed with its error; ``rbac_rules`` declares the rights ``act`` uses."""

    TITLE: ClassVar[str] = "Kubernetes"
    COLUMNS: ClassVar[list[str]] = ["object", "namespace", "action", "at"]

    def __init__(self, task: Any, config: Any, triggered_by: dict[str, Any]) -> None:
        super().__init__(task, config, triggered_by)
        self.rows: list[list[Any]] = []
        self.timings: list[list[Any]] = []  # [[name, seconds], ...]: an additive StatsTable

    @classmethod
    def rbac_rules(cls, config: Any, namespace: str) -> list[Rule]:
        """The rules this hook needs for ``config`` when its task runs in ``namespace``."""
        return []

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> list[tuple[str, str]]:
        """Cross-field problems the schema cannot say well: [(field, message)]."""
        return []

    @classmethod
    def validate_config(cls, config: Any, path: str = "") -> list[InvalidConfig]:
        problems = super().validate_config(config, path)
        if problems or not isinstance(config, dict):
            return problems
        return [
            InvalidConfig(f"{path}.{field}" if path else field, f"hook {cls.get_name()!r}: {msg}")
            for field, msg in cls.check_config(config)
        ]

    @property
    def namespace(self) -> str:
        return str(self.config.get("namespace") or default_namespace())

    def act(self, kube: Kube) -> None:
        raise NotImplementedError

    _kube: Kube | HookFailure | None = None

    def prepare(self) -> None:
        # An armed pod prepares while it waits: the client's import and credentials (~0.5 s)
        # and a first connection to the API server are then paid before the firing.
        try:
            self._kube = Kube.connect()
            self._kube.warm_up()
        except HookFailure as exc:
            self._kube = exc

    def run(self) -> None:
        try:
            if self._kube is None:
                self.prepare()
            if isinstance(self._kube, HookFailure):
                raise self._kube
            assert self._kube is not None
            self.act(self._kube)
        except HookFailure as exc:
            if not self.stopping:  # stopped (timeout): the Timeout result stands
                self.set_error(exc.etype, exc.msg, exc.details)
        finally:
            self.emit_output()

    def record(self, *row: Any) -> None:
        self.rows.append(list(row))

    def emit_output(self) -> None:
        if not self.rows:
            return
        rows = self.rows[:MAX_ROWS]
        if len(self.rows) > MAX_ROWS:
            rows.append([f"... and {len(self.rows) - MAX_ROWS} more"] + [""] * (len(rows[0]) - 1))
        self.add_output(
            complete={
                "title": f"{self.get_name()}: {self.TITLE}",
                "chart_plugin": "Table",
                "data": {"cols": list(self.COLUMNS), "rows": rows},
            }
        )
        if self.timings:
            self.add_output(
                additive={
                    "title": f"{self.get_name()} timings",
                    "chart_plugin": "StatsTable",
                    "data": self.timings[:MAX_ROWS],
                }
            )

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; the hook's stop (timeout) ends it with a Stopped failure."""
        if seconds > 0 and self.wait(seconds):
            raise HookFailure("Stopped", "the hook was stopped while waiting")

    def poll(
        self,
        check: Callable[[], Any],
        timeout: float,
        what: str,
        interval: float = POLL_SECONDS,
    ) -> Any:
        """``check()``'s first truthy value, polled until ``timeout`` seconds; HookFailure
        ``Timeout`` naming ``what`` (and the last state ``check`` left in ``self.last_state``)."""
        deadline = time.monotonic() + timeout
        self.last_state = ""
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise HookFailure(
                    "Timeout", f"{what}: not reached within {timeout:g} s", str(self.last_state)
                )
            self.sleep(min(interval, max(deadline - time.monotonic(), 0.01)))

    last_state: Any = ""


# -- workloads -----------------------------------------------------------------------------------

WORKLOADS = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "ReplicaSet": "replicasets",
}


def workload_path(kind: str, namespace: str, name: str, sub: str = "") -> str:
    resource = WORKLOADS[kind] + (f"/{sub}" if sub else "")
    return api_path("apps", "v1", resource, namespace, name)


def rollout_state(obj: dict[str, Any]) -> tuple[bool, str]:
    """(complete, why not): the rollout is done and every desired replica is ready."""
    kind = obj.get("kind", "")
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return False, "the controller has not observed the latest generation yet"
    if kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled", 0)
        updated = status.get("updatedNumberScheduled", 0)
        ready = status.get("numberReady", 0)
        if updated < desired or ready < desired:
            return False, f"{updated} updated, {ready} ready of {desired}"
        return True, ""
    desired = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    ready = status.get("readyReplicas", 0)
    total = status.get("replicas", 0)
    if kind == "StatefulSet" and status.get("updateRevision") != status.get("currentRevision"):
        return False, f"rolling update in progress: {updated} updated of {desired}"
    if updated < desired or ready < desired or total > desired:
        return False, f"{updated} updated, {ready} ready, {total} existing of {desired} desired"
    return True, ""


def pod_ready(pod: dict[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def selector_string(label_selector: dict[str, Any]) -> str:
    """A LabelSelector object as the ``labelSelector`` query string."""
    parts = [f"{k}={v}" for k, v in sorted((label_selector.get("matchLabels") or {}).items())]
    for expr in label_selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


# -- selection (pure) ----------------------------------------------------------------------------


class SelectionError(ValueError):
    pass


def creation_key(pod: dict[str, Any]) -> tuple[str, str]:
    meta = pod.get("metadata") or {}
    return str(meta.get("creationTimestamp") or ""), str(meta.get("name") or "")


def live(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Those not already being deleted (no deletionTimestamp)."""
    return [o for o in objects if not (o.get("metadata") or {}).get("deletionTimestamp")]


def how_many(matched: int, count: int | None, percent: float | None, default: int = 1) -> int:
    """Pods to pick of ``matched``: ``count``, or ``percent`` of them rounded up (at least one),
    else ``default``. SelectionError when more are asked than matched."""
    if percent is not None:
        wanted = max(1, math.ceil(matched * percent / 100))
    else:
        wanted = count if count is not None else default
    if wanted > matched:
        raise SelectionError(f"{wanted} asked, {matched} matched")
    return wanted


def choose(
    objects: list[dict[str, Any]],
    wanted: int,
    pick: str = "random",
    rng: random.Random | None = None,
) -> list[dict[str, Any]]:
    """``wanted`` of ``objects``: at random, the oldest or the newest (creationTimestamp)."""
    if wanted > len(objects):
        raise SelectionError(f"{wanted} asked, {len(objects)} matched")
    if pick == "oldest":
        return sorted(objects, key=creation_key)[:wanted]
    if pick == "newest":
        return sorted(objects, key=creation_key, reverse=True)[:wanted]
    return (rng or random.SystemRandom()).sample(objects, wanted)


# -- manifests -----------------------------------------------------------------------------------


def manifest_objects(manifest: Any) -> list[dict[str, Any]]:
    """A manifest (a dict, a list of dicts, or YAML text of one or more documents) as objects;
    ValueError saying what is wrong."""
    if isinstance(manifest, str):
        try:
            docs: list[Any] = [d for d in yaml.safe_load_all(manifest) if d is not None]
        except yaml.YAMLError as exc:
            raise ValueError(f"manifest is not valid YAML: {str(exc).splitlines()[0]}") from None
    elif isinstance(manifest, list):
        docs = list(manifest)
    else:
        docs = [manifest]
    objects: list[dict[str, Any]] = []
    for index, doc in enumerate(docs):
        if isinstance(doc, dict) and doc.get("kind") == "List" and "items" in doc:
            objects.extend(manifest_objects(doc["items"]))
            continue
        if not isinstance(doc, dict):
            raise ValueError(f"manifest object {index} is not a mapping")
        for key in ("apiVersion", "kind"):
            if not isinstance(doc.get(key), str) or not doc[key]:
                raise ValueError(f"manifest object {index} has no {key}")
        name = (doc.get("metadata") or {}).get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"manifest object {index} ({doc['kind']}) has no metadata.name")
        objects.append(doc)
    if not objects:
        raise ValueError("manifest holds no object")
    return objects


def group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


# Kinds whose resource name and scope krally rbac knows without asking a cluster.
KNOWN_KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("", "ConfigMap"): ("configmaps", True),
    ("", "Secret"): ("secrets", True),
    ("", "Service"): ("services", True),
    ("", "Pod"): ("pods", True),
    ("", "ServiceAccount"): ("serviceaccounts", True),
    ("", "Endpoints"): ("endpoints", True),
    ("", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("", "ResourceQuota"): ("resourcequotas", True),
    ("", "LimitRange"): ("limitranges", True),
    ("", "Namespace"): ("namespaces", False),
    ("", "Node"): ("nodes", False),
    ("", "PersistentVolume"): ("persistentvolumes", False),
    ("networking.k8s.io", "NetworkPolicy"): ("networkpolicies", True),
    ("networking.k8s.io", "Ingress"): ("ingresses", True),
    ("policy", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("apps", "Deployment"): ("deployments", True),
    ("apps", "StatefulSet"): ("statefulsets", True),
    ("apps", "DaemonSet"): ("daemonsets", True),
    ("apps", "ReplicaSet"): ("replicasets", True),
    ("batch", "Job"): ("jobs", True),
    ("batch", "CronJob"): ("cronjobs", True),
    ("rbac.authorization.k8s.io", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("scheduling.k8s.io", "PriorityClass"): ("priorityclasses", False),
    ("storage.k8s.io", "StorageClass"): ("storageclasses", False),
}


def guess_resource(group: str, kind: str) -> tuple[str, bool, bool]:
    """(plural resource, namespaced, known) of a kind, without a cluster: known kinds from a
    table, others pluralised the way the API server does for most kinds."""
    known = KNOWN_KINDS.get((group, kind))
    if known:
        return known[0], known[1], True
    lower = kind.lower()
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        plural = lower + "es"
    elif lower.endswith("y") and lower[-2:-1] not in "aeiou":
        plural = lower[:-1] + "ies"
    else:
        plural = lower + "s"
    return plural, True, False


def object_rules(manifest: Any, namespace: str, verbs: tuple[str, ...]) -> list[Rule]:
    """``verbs`` on each object of a manifest, where it lives (its metadata.namespace, else
    ``namespace``; cluster scope for cluster-scoped kinds)."""
    try:
        objects = manifest_objects(manifest)
    except ValueError:
        return []
    rules = []
    for obj in objects:
        group, _ = group_version(obj["apiVersion"])
        plural, namespaced, _ = guess_resource(group, obj["kind"])
        where = ((obj.get("metadata") or {}).get("namespace") or namespace) if namespaced else None
        rules.append(rule(where, group, plural, *verbs))
    return rules


def discover(kube: Kube, api_version: str, kind: str) -> tuple[str, bool]:
    """(plural resource, namespaced) of ``kind`` from the API server's discovery."""
    group, version = group_version(api_version)
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    status, data = kube.request(
        "GET",
        path,
        verb="get",
        resource=f"discovery {api_version}",
        namespace=None,
        ok_statuses=(404,),
    )
    for res in (data or {}).get("resources") or [] if status == 200 else []:
        if res.get("kind") == kind and "/" not in res.get("name", ""):
            return str(res["name"]), bool(res.get("namespaced"))
    raise HookFailure(
        "UnknownKind", f"the API server serves no kind {kind} in {api_version}", api_version
    )


def object_label(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
